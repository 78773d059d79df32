//! In a shop of a chain: the machine commands the chain's operator sent the shop from the hub,
//! sourced into the shop's commands stream whenever the link is up, taken one at a time in order
//! by the shop's operator process and applied with its rights, as the shop's own operator
//! would ([`super::command::command`]); one that arrives after its `valid_until` is dropped.
//! Each, applied or dropped, goes into the shop's audit trail.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use brewq_protocol::machine::ChainMachineCommand;
use brewq_protocol::{now, subjects};
use tokio_util::sync::CancellationToken;

use super::command::Commanded;

/// Who the audit trail names for a command from the hub.
const FROM_THE_HUB: &str = "chain";

/// Applies the chain's machine commands until `shutdown`; returns at once where there is no
/// commands stream (a shop alone, or the hub).
pub async fn follow(client: async_nats::Client, shutdown: CancellationToken) {
    let jetstream = jetstream::new(client.clone());
    let (stream, consumer) = (subjects::SHOP_COMMANDS_STREAM, subjects::SHOP_MACHINE_COMMANDS_CONSUMER);
    brewq_runtime::follow::one_at_a_time(&jetstream, stream, consumer, "the chain's machine commands", &shutdown, |message| {
        let client = &client;
        async move { apply(client, &message).await }
    })
    .await;
}

/// Applies one command, or drops it if it came too late or is no machine command; acked then.
/// A machine that does not answer has it offered again, until it comes too late.
async fn apply(client: &async_nats::Client, message: &jetstream::Message) {
    let Ok(info) = message.info() else { return };
    let sequence = info.stream_sequence;
    let command = match serde_json::from_slice::<ChainMachineCommand>(&message.payload) {
        Ok(command) if command.machine >= 1 => command,
        Ok(_) | Err(_) => {
            tracing::warn!(sequence, "a machine command of the chain that cannot be read: dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let action = command.command.action_name();
    let target = format!("machine {}", command.machine);
    let arrived = now();
    if !command.valid_at(arrived) {
        let outcome =
            format!("dropped: arrived {}, later than it was valid for ({})", brewq_protocol::rfc3339(arrived), command.valid_until_text());
        tracing::warn!(sequence, machine = command.machine, action, "a machine command of the chain came too late: dropped");
        audit(client, action, &target, outcome).await;
        acked(message, sequence).await;
        return;
    }
    match super::command::command(client, command.machine, command.command).await {
        Ok(commanded) => {
            let outcome = match commanded {
                Commanded::Applied(_) => "ok".to_owned(),
                Commanded::Kept => "kept (machine not running)".to_owned(),
            };
            tracing::info!(sequence, machine = command.machine, action, outcome, "machine command of the chain applied");
            audit(client, action, &target, outcome).await;
            acked(message, sequence).await;
        }
        Err(error) => {
            tracing::warn!(sequence, error = format!("{error:#}"), "machine command of the chain not applied yet; trying again");
            let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(2)))).await;
        }
    }
}

async fn acked(message: &jetstream::Message, sequence: u64) {
    if let Err(error) = message.double_ack().await {
        tracing::warn!(sequence, %error, "ack not confirmed; the command comes again, and applying it again changes nothing");
    }
}

async fn audit(client: &async_nats::Client, action: &str, target: &str, outcome: String) {
    super::actions::record(client, FROM_THE_HUB.to_owned(), action, target, outcome).await;
}
