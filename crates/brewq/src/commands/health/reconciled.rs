//! The reconciler's work, as the audit trail keeps it: how many leaked reservations the
//! controllers released or committed, and the last such entry. Read from the stream's count of
//! messages per subject and its last message per subject, so its cost does not grow with the
//! trail.

use brewq_protocol::{AuditEntry, audit, subjects};
use futures::TryStreamExt;
use serde::Serialize;

/// What the reconciler did, over what the audit trail keeps (90 days).
#[derive(Debug, Default, Serialize)]
pub struct ReconcilerHealth {
    /// Reservations given back: orders with no record and no message, or failed or cancelled.
    pub released: u64,
    /// Reservations consumed: orders that were brewed.
    pub committed: u64,
    /// The latest of its entries.
    pub last: Option<AuditEntry>,
}

/// Reads the reconciler's entries from the audit trail.
pub async fn read(jetstream: &async_nats::jetstream::Context) -> anyhow::Result<ReconcilerHealth> {
    let mut stream = jetstream.get_stream(subjects::AUDIT_STREAM).await?;
    let [release, commit] = audit::reconcile_actions();
    let mut latest = Vec::new();
    let released = count(&mut stream, &release, &mut latest).await?;
    let committed = count(&mut stream, &commit, &mut latest).await?;
    let last = latest.into_iter().max_by_key(|entry| entry.at);
    Ok(ReconcilerHealth { released, committed, last })
}

/// The entries of `action` the trail keeps; the last of them goes to `latest`.
async fn count(stream: &mut async_nats::jetstream::stream::Stream, action: &str, latest: &mut Vec<AuditEntry>) -> anyhow::Result<u64> {
    let subject = subjects::audit_subject(action);
    let counts: Vec<(String, usize)> = stream.info_with_subjects(&subject).await?.try_collect().await?;
    let count = counts.iter().map(|(_, count)| *count as u64).sum();
    if count > 0 {
        let message = stream.get_last_raw_message_by_subject(&subject).await?;
        latest.extend(serde_json::from_slice::<AuditEntry>(&message.payload).ok());
    }
    Ok(count)
}
