//! In a shop of a chain: the commands the chain's operator sent the shop (restocks, alert
//! levels), sourced from the hub into the shop's commands stream whenever the link is up, taken
//! one at a time in order and applied to the stock once each ([`Ledger::apply_chain_command`]).

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Context};
use brewq_protocol::{StockCommand, subjects};
use tokio_util::sync::CancellationToken;

use crate::Ledger;

/// Applies the chain's commands until `shutdown`; returns at once where there is no commands
/// stream (a shop alone, not part of a chain).
pub(crate) async fn follow(ledger: Ledger, jetstream: Context, shutdown: CancellationToken) {
    let (stream, consumer) = (subjects::SHOP_COMMANDS_STREAM, subjects::SHOP_COMMANDS_CONSUMER);
    brewq_runtime::follow::one_at_a_time(&jetstream, stream, consumer, "the chain's commands", &shutdown, |message| {
        let ledger = &ledger;
        async move { apply(ledger, &message).await }
    })
    .await;
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
