//! In a shop of a chain: the machine commands the chain's operator sent the shop from the hub,
//! sourced into the shop's commands stream whenever the link is up, taken one at a time in order
//! by the shop's operator process and applied with its rights, as the shop's own operator
//! would ([`super::command::command`]); one that arrives after its `valid_until` is dropped.
//! Each, applied or dropped, goes into the shop's audit trail.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind};
use brewq_protocol::machine::ChainMachineCommand;
use brewq_protocol::{AuditEntry, now, subjects};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::command::Commanded;

/// Who the audit trail names for a command from the hub.
const FROM_THE_HUB: &str = "chain";

/// Applies the chain's machine commands until `shutdown`; returns at once where there is no
/// commands stream (a shop alone, or the hub).
pub async fn follow(client: async_nats::Client, shutdown: CancellationToken) {
    let jetstream = jetstream::new(client.clone());
    let Some(consumer) = bind(&jetstream, &shutdown).await else { return };
    tracing::info!("following the chain's machine commands");
    while !shutdown.is_cancelled() {
        let batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(5)).messages();
        let mut batch = match tokio::select! { () = shutdown.cancelled() => return, batch = batch => batch } {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "cannot fetch the chain's machine commands; trying again");
                if !back_off(&shutdown).await {
                    return;
                }
                continue;
            }
        };
        while let Some(Ok(message)) = tokio::select! { () = shutdown.cancelled() => return, next = batch.next() => next } {
            apply(&client, &message).await;
        }
    }
}

/// The consumer of the shop's machine commands; `None` if there is no such stream or on
/// shutdown.
async fn bind(jetstream: &jetstream::Context, shutdown: &CancellationToken) -> Option<PullConsumer> {
    loop {
        match jetstream.get_stream(subjects::SHOP_COMMANDS_STREAM).await {
            Ok(stream) => match stream.get_consumer(subjects::SHOP_MACHINE_COMMANDS_CONSUMER).await {
                Ok(consumer) => return Some(consumer),
                Err(error) => tracing::warn!(%error, "cannot bind to the chain's machine commands; trying again"),
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
        let outcome = format!("dropped: arrived {}, later than it was valid for ({})", rfc3339(arrived), command.valid_until_text());
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
    let entry = AuditEntry { at: now(), who: FROM_THE_HUB.to_owned(), action: action.to_owned(), target: target.to_owned(), outcome };
    let jetstream = jetstream::new(client.clone());
    if let Err(error) = brewq_runtime::jetstream::publish_json(&jetstream, subjects::audit_subject(action), &entry).await {
        tracing::error!(error = format!("{error:#}"), action, "a machine command of the chain not recorded in the audit trail");
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Waits a moment; false on shutdown.
async fn back_off(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(Duration::from_secs(2)) => true,
    }
}
