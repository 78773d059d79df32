//! JSON values in NATS KV, and the compare-and-swap loop every read-modify-write goes through.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv::{Operation, Store, UpdateErrorKind};
use brewq_protocol::subjects;
use rand::Rng;
use serde::{Serialize, de::DeserializeOwned};

/// Gives up on one key after this many conflicting writers in a row.
const MAX_ATTEMPTS: u32 = 200;

/// What a read-modify-write decides to do.
pub enum Change<T> {
    /// Leave the value as it is.
    Keep,
    /// Store this value, if nobody wrote the key since it was read.
    Write(T),
}

/// Reads `key` as JSON with its revision; `None` when absent or deleted.
pub async fn get_json<T: DeserializeOwned>(store: &Store, key: &str) -> anyhow::Result<Option<(T, u64)>> {
    match entry(store, key).await? {
        Some(entry) if entry.operation == Operation::Put => {
            let value = serde_json::from_slice(&entry.value).with_context(|| format!("decoding {key}"))?;
            Ok(Some((value, entry.revision)))
        }
        _ => Ok(None),
    }
}

/// The last revision of one key.
pub struct Entry {
    pub operation: Operation,
    pub value: bytes::Bytes,
    pub revision: u64,
}

/// The last revision of `key`, `None` if it was never written. Read from the bucket's stream
/// leader, which has every write it acknowledged, unless the bucket is one of
/// [`subjects::READ_ANY_REPLICA`]: the buckets that allow direct gets for whole-bucket reads
/// ([`scan_entries`]) would otherwise have their keys read from any replica, perhaps a moment
/// behind.
pub async fn entry(store: &Store, key: &str) -> anyhow::Result<Option<Entry>> {
    if subjects::READ_ANY_REPLICA.contains(&store.name.as_str()) {
        let entry = store.entry(key).await.with_context(|| format!("reading {key}"))?;
        return Ok(entry.map(|entry| Entry { operation: entry.operation, value: entry.value, revision: entry.revision }));
    }
    let subject = format!("{}{key}", store.prefix);
    match store.stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => {
            let operation = operation_in(Some(&message.headers));
            Ok(Some(Entry { operation, value: message.payload, revision: message.sequence }))
        }
        Err(error) if matches!(error.kind(), async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound) => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {key}")),
    }
}

/// Read-modify-write of `key` with compare-and-swap, retried while other writers get there
/// first. `decide` sees the current value and may run several times, so it must not have
/// effects of its own; it returns the change and a result for the caller.
///
/// A write whose acknowledgement timed out may or may not have landed: the loop reads again,
/// so `decide` must recognise its own earlier write: a value that already says what it would
/// write (an order already in the state asked for) is kept.
pub async fn modify<T, R>(store: &Store, key: &str, decide: impl FnMut(Option<T>) -> anyhow::Result<(Change<T>, R)>) -> anyhow::Result<R>
where
    T: Serialize + DeserializeOwned,
{
    Ok(modify_entry(store, key, decide).await?.0)
}

/// [`modify`], also returning the value it wrote with its new revision (`None` when it kept
/// the value as it was), for a caller that remembers revisions to skip the next read.
pub async fn modify_entry<T, R>(
    store: &Store,
    key: &str,
    decide: impl FnMut(Option<T>) -> anyhow::Result<(Change<T>, R)>,
) -> anyhow::Result<(R, Option<(T, u64)>)>
where
    T: Serialize + DeserializeOwned,
{
    modify_with(store, Earlier::Keep, key, decide).await
}

/// [`modify_entry`], where the write also removes every earlier revision of the key (a rollup,
/// in the same compare-and-swap): for a change that must leave no trace of what it took out.
/// `jetstream` is a context on the store's connection.
pub async fn modify_rolling_up<T, R>(
    store: &Store,
    jetstream: &async_nats::jetstream::Context,
    key: &str,
    decide: impl FnMut(Option<T>) -> anyhow::Result<(Change<T>, R)>,
) -> anyhow::Result<(R, Option<(T, u64)>)>
where
    T: Serialize + DeserializeOwned,
{
    modify_with(store, Earlier::RollUp(jetstream), key, decide).await
}

/// What a write does with the key's earlier revisions.
#[derive(Clone, Copy)]
enum Earlier<'a> {
    /// The bucket keeps as many as its history allows.
    Keep,
    /// The write removes them all, published through this context.
    RollUp(&'a async_nats::jetstream::Context),
}

async fn modify_with<T, R>(
    store: &Store,
    earlier: Earlier<'_>,
    key: &str,
    mut decide: impl FnMut(Option<T>) -> anyhow::Result<(Change<T>, R)>,
) -> anyhow::Result<(R, Option<(T, u64)>)>
where
    T: Serialize + DeserializeOwned,
{
    for attempt in 0..MAX_ATTEMPTS {
        let (current, revision) = match entry(store, key).await? {
            Some(entry) if entry.operation == Operation::Put => {
                let value = serde_json::from_slice(&entry.value).with_context(|| format!("decoding {key}"))?;
                (Some(value), Some(entry.revision))
            }
            Some(entry) => (None, Some(entry.revision)),
            None => (None, None),
        };
        let (change, result) = decide(current)?;
        let Change::Write(value) = change else { return Ok((result, None)) };
        let bytes = serde_json::to_vec(&value).context("encoding value")?;
        let written = match (revision, earlier) {
            (Some(revision), Earlier::Keep) => store.update(key, bytes.into(), revision).await,
            (Some(revision), Earlier::RollUp(jetstream)) => update_rolling_up(store, jetstream, key, bytes, revision).await,
            (None, _) => store.create(key, bytes.into()).await.map_err(|error| {
                let kind = match error.kind() {
                    async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => UpdateErrorKind::WrongLastRevision,
                    _ => UpdateErrorKind::Other,
                };
                async_nats::jetstream::kv::UpdateError::with_source(kind, error)
            }),
        };
        match written {
            Ok(revision) => return Ok((result, Some((value, revision)))),
            Err(error) if is_retryable(&error) => backoff(attempt).await,
            Err(error) => return Err(error).with_context(|| format!("writing {key}")),
        }
    }
    anyhow::bail!("gave up writing {key}: {MAX_ATTEMPTS} conflicting writes in a row")
}

/// `store.update`, with the header that has the stream drop the key's earlier revisions.
async fn update_rolling_up(
    store: &Store,
    jetstream: &async_nats::jetstream::Context,
    key: &str,
    value: Vec<u8>,
    revision: u64,
) -> Result<u64, async_nats::jetstream::kv::UpdateError> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, revision.to_string().as_str());
    headers.insert(async_nats::header::NATS_ROLLUP, "sub");
    let subject = format!("{}{key}", store.put_prefix.as_deref().unwrap_or(&store.prefix));
    let acknowledgement = jetstream.publish_with_headers(subject, headers, value.into()).await?;
    Ok(acknowledgement.await?.sequence)
}

/// Whether a failed compare-and-swap may be tried again: a lost race (wrong revision), a
/// write still in flight on the leader (JetStream error 10164, which async-nats reports as
/// `Other`), a timeout or a leader change: read again.
pub fn is_retryable(error: &async_nats::jetstream::kv::UpdateError) -> bool {
    match error.kind() {
        UpdateErrorKind::WrongLastRevision | UpdateErrorKind::TimedOut => true,
        UpdateErrorKind::InvalidKey => false,
        UpdateErrorKind::Other => {
            let text = format!("{error:?} {error}");
            text.contains("10164")
                || text.contains("10071")
                || text.contains("StreamNotFound")
                || text.contains("no responders")
                || text.contains("BrokenPipe")
        }
    }
}

/// A short random pause before attempt `attempt + 1`, growing with the attempts.
pub async fn backoff(attempt: u32) {
    let ceiling_ms = 2u64.saturating_pow(attempt.min(6)).min(50);
    let pause = rand::rng().random_range(0..=ceiling_ms * 1000);
    tokio::time::sleep(Duration::from_micros(pause)).await;
}

/// Stores `value` as JSON under `key`, whatever was there.
pub async fn put_json<T: Serialize>(store: &Store, key: &str, value: &T) -> anyhow::Result<u64> {
    let bytes = serde_json::to_vec(value).context("encoding value")?;
    store.put(key, bytes.into()).await.with_context(|| format!("writing {key}"))
}

/// Binds to a provisioned bucket, waiting while it does not exist yet (the provisioner has not
/// run, or the cluster is still electing); `None` if `shutdown` fires first.
pub async fn wait_for_bucket(
    jetstream: &async_nats::jetstream::Context,
    bucket: &str,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Option<Store> {
    loop {
        match jetstream.get_key_value(bucket).await {
            Ok(store) => return Some(store),
            Err(error) => tracing::warn!(bucket, %error, "bucket not available yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Every value of the bucket, decoded as `T`, by key order: one pass of [`scan_entries`], rather
/// than one read per key.
pub async fn all_json<T: DeserializeOwned>(client: &async_nats::Client, store: &Store) -> anyhow::Result<Vec<T>> {
    Ok(all_json_by_key(client, store).await?.into_values().collect())
}

/// Every value of the bucket, decoded as `T`, by key.
pub async fn all_json_by_key<T: DeserializeOwned>(
    client: &async_nats::Client,
    store: &Store,
) -> anyhow::Result<std::collections::BTreeMap<String, T>> {
    let mut values = std::collections::BTreeMap::new();
    scan_json(client, store, |key, value: Option<(T, u64)>| match value {
        Some((value, _)) => {
            values.insert(key, value);
        }
        None => {
            values.remove(&key);
        }
    })
    .await?;
    Ok(values)
}

/// Every key of the bucket, one at a time, with its value decoded as `T` and its revision
/// (`None` once deleted), as [`scan_entries`] delivers them: a whole bucket read without
/// holding it all. A key may come more than once, each time with a newer value (the earlier
/// revisions the bucket keeps, then a write made during the read); the last one is current.
pub async fn scan_json<T: DeserializeOwned>(
    client: &async_nats::Client,
    store: &Store,
    mut visit: impl FnMut(String, Option<(T, u64)>),
) -> anyhow::Result<()> {
    scan_entries(client, store, "", |key, entry: Option<Scanned<T>>| visit(key, entry.map(|entry| (entry.value, entry.revision)))).await
}

/// One revision of one key, as [`scan_entries`] delivers it.
#[derive(Debug, Clone)]
pub struct Scanned<T> {
    pub value: T,
    pub revision: u64,
    /// When this revision was written, by the server's clock.
    pub written_at: std::time::SystemTime,
}

/// [`scan_json`] of the keys that start with `prefix`, each with the time its revision was
/// written; the other keys are passed over without being decoded (they may hold another type).
/// Batches of direct gets from the bucket's first message, through `client`: a bucket of any
/// size is read with a bounded buffer and no consumer (the bucket must allow direct gets).
pub async fn scan_entries<T: DeserializeOwned>(
    client: &async_nats::Client,
    store: &Store,
    prefix: &str,
    mut visit: impl FnMut(String, Option<Scanned<T>>),
) -> anyhow::Result<()> {
    // A prefix up to a dot is a subject filter; any other is checked on each key.
    let tokens = prefix.rfind('.').map_or("", |dot| &prefix[..=dot]);
    let filter = format!("{}{tokens}>", store.prefix);
    let mut failure = None;
    crate::direct::read(client, &store.stream_name, &filter, crate::direct::Start::Sequence(1), |read| {
        let key = read.subject.strip_prefix(store.prefix.as_str()).unwrap_or_default().to_owned();
        if failure.is_some() || !key.starts_with(prefix) {
            return;
        }
        let value = match read.operation {
            Operation::Put => match serde_json::from_slice(&read.payload) {
                Ok(value) => Some(Scanned { value, revision: read.sequence, written_at: read.written_at }),
                Err(error) => {
                    failure = Some(anyhow::Error::new(error).context(format!("decoding {key}")));
                    return;
                }
            },
            Operation::Delete | Operation::Purge => None,
        };
        visit(key, value);
    })
    .await
    .with_context(|| format!("reading the bucket {}", store.name))?;
    failure.map_or(Ok(()), Err)
}

/// What a bucket's message does to its key, from its `KV-Operation` header (none: a put); also
/// for a stream that sources a bucket and keeps its headers.
pub fn operation(message: &async_nats::jetstream::Message) -> Operation {
    operation_in(message.headers.as_ref())
}

/// [`operation`], from a message's headers however it was read (a direct get, the leader).
pub fn operation_in(headers: Option<&async_nats::HeaderMap>) -> Operation {
    match headers.and_then(|headers| headers.get("KV-Operation")).map(|value| value.as_str()) {
        Some("DEL") => Operation::Delete,
        Some("PURGE") => Operation::Purge,
        _ => Operation::Put,
    }
}
