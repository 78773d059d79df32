//! Following a durable pull consumer of a stream that only some deployments have (a shop's
//! commands from its chain): one message at a time, so in order, until shutdown.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, Context};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Hands each message of `consumer` on `stream` to `handle`, one at a time, until `shutdown`;
/// returns at once where there is no such stream. `what` names the messages in the logs.
pub async fn one_at_a_time<F, Fut>(
    jetstream: &Context,
    stream: &str,
    consumer: &str,
    what: &str,
    shutdown: &CancellationToken,
    mut handle: F,
) where
    F: FnMut(jetstream::Message) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(consumer) = bind(jetstream, stream, consumer, what, shutdown).await else { return };
    tracing::info!("following {what}");
    while !shutdown.is_cancelled() {
        let batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(5)).messages();
        let mut batch = match tokio::select! { () = shutdown.cancelled() => return, batch = batch => batch } {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "cannot fetch {what}; trying again");
                if !back_off(shutdown).await {
                    return;
                }
                continue;
            }
        };
        while let Some(Ok(message)) = tokio::select! { () = shutdown.cancelled() => return, next = batch.next() => next } {
            handle(message).await;
        }
    }
}

/// The consumer; `None` if there is no such stream, or on shutdown.
async fn bind(jetstream: &Context, stream: &str, consumer: &str, what: &str, shutdown: &CancellationToken) -> Option<PullConsumer> {
    loop {
        match jetstream.get_stream(stream).await {
            Ok(stream) => match stream.get_consumer(consumer).await {
                Ok(consumer) => return Some(consumer),
                Err(error) => tracing::warn!(%error, "cannot bind to {what}; trying again"),
            },
            Err(error) if is_not_found(&error) => return None,
            Err(error) => tracing::warn!(%error, "cannot read the stream of {what}; trying again"),
        }
        if !back_off(shutdown).await {
            return None;
        }
    }
}

fn is_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(error.kind(), jetstream::context::GetStreamErrorKind::JetStream(error) if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Waits a moment; false on shutdown.
async fn back_off(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(Duration::from_secs(2)) => true,
    }
}
