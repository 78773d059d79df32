//! JetStream helpers: a JSON publish that waits for the stream's acknowledgement, and reading
//! the last messages of a stream without creating a consumer.

use anyhow::Context;
use serde::{Serialize, de::DeserializeOwned};

/// Publishes `value` as JSON on `subject` and waits for the PubAck (the message is stored).
pub async fn publish_json<T: Serialize>(jetstream: &async_nats::jetstream::Context, subject: String, value: &T) -> anyhow::Result<u64> {
    let payload = serde_json::to_vec(value).context("encoding")?;
    let ack = jetstream.publish(subject, payload.into()).await.context("publishing")?.await.context("storing")?;
    Ok(ack.sequence)
}

/// The last `count` messages of `stream` decoded as `T`, oldest first, read one by one from the
/// stream leader (only `STREAM.INFO` and `STREAM.MSG.GET` rights are needed).
pub async fn last_json<T: DeserializeOwned>(
    jetstream: &async_nats::jetstream::Context,
    stream: &str,
    count: u64,
) -> anyhow::Result<Vec<T>> {
    let mut handle = jetstream.get_stream(stream).await.with_context(|| format!("binding {stream}"))?;
    let state = handle.info().await.with_context(|| format!("reading {stream}"))?.state.clone();
    let mut values = Vec::new();
    if state.messages == 0 {
        return Ok(values);
    }
    let first = state.first_sequence.max(state.last_sequence.saturating_sub(count.saturating_sub(1)));
    for sequence in first..=state.last_sequence {
        // A sequence can be missing (deleted); skip it.
        if let Ok(message) = handle.get_raw_message(sequence).await
            && let Ok(value) = serde_json::from_slice(&message.payload)
        {
            values.push(value);
        }
    }
    Ok(values)
}
