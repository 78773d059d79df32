//! In a shop of a chain: the commands the chain's operator sent the shop (restocks, alert
//! levels), sourced from the hub into the shop's commands stream whenever the link is up, taken
//! one at a time in order and applied to the stock once each ([`Ledger::apply_chain_command`]).

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind, Context};
use brewq_protocol::{StockCommand, subjects};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::Ledger;

/// Applies the chain's commands until `shutdown`; returns at once where there is no commands
/// stream (a shop alone, not part of a chain).
pub(crate) async fn follow(ledger: Ledger, jetstream: Context, shutdown: CancellationToken) {
    let Some(consumer) = bind(&jetstream, &shutdown).await else { return };
    tracing::info!("following the chain's commands");
    while !shutdown.is_cancelled() {
        let batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(5)).messages();
        let mut batch = match tokio::select! { () = shutdown.cancelled() => return, batch = batch => batch } {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "cannot fetch the chain's commands; trying again");
                back_off(&shutdown).await;
                continue;
            }
        };
        while let Some(Ok(message)) = tokio::select! { () = shutdown.cancelled() => return, next = batch.next() => next } {
            apply(&ledger, &message).await;
        }
    }
}

/// The stock managers' consumer of the shop's commands; `None` if there is no such stream or
/// on shutdown.
async fn bind(jetstream: &Context, shutdown: &CancellationToken) -> Option<PullConsumer> {
    loop {
        match jetstream.get_stream(subjects::SHOP_COMMANDS_STREAM).await {
            Ok(stream) => match stream.get_consumer(subjects::SHOP_COMMANDS_CONSUMER).await {
                Ok(consumer) => return Some(consumer),
                Err(error) => tracing::warn!(%error, "cannot bind to the chain's commands; trying again"),
            },
            Err(error) if is_not_found(&error) => return None,
            Err(error) => tracing::warn!(%error, "cannot read the chain's commands stream; trying again"),
        }
        if !back_off(shutdown).await {
            return None;
        }
    }
}

fn is_not_found(error: &jetstream::context::GetStreamError) -> bool {
    matches!(error.kind(), jetstream::context::GetStreamErrorKind::JetStream(error) if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Applies one command; acked once applied (or found applied), offered again otherwise.
async fn apply(ledger: &Ledger, message: &jetstream::Message) {
    let Ok(info) = message.info() else { return };
    let sequence = info.stream_sequence;
    let command = match serde_json::from_slice::<StockCommand>(&message.payload) {
        Ok(command) => command,
        Err(error) => {
            tracing::warn!(sequence, %error, "a command of the chain that is no stock command: dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    match ledger.apply_chain_command(sequence, command).await {
        Ok(reply) => {
            tracing::info!(sequence, ?reply, "command of the chain applied");
            if let Err(error) = message.double_ack().await {
                tracing::warn!(sequence, %error, "ack not confirmed; the command comes again and changes nothing");
            }
        }
        Err(error) => {
            tracing::warn!(sequence, error = format!("{error:#}"), "command of the chain not applied yet; trying again");
            let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
        }
    }
}

/// Waits a moment; false on shutdown.
async fn back_off(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(Duration::from_secs(2)) => true,
    }
}
