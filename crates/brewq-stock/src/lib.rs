//! The stock manager: answers reserve, commit, release, restock and read on
//! `coffee.stock.requests`, keeping the stock in a replicated KV bucket (see [`ledger`]).
//! Any number of instances can run; they share a queue group and the compare-and-swap.
//! Each command is logged under the order id of its header (or payload); the levels are
//! metrics (`brewq_stock_on_hand`, `brewq_stock_reserved`, `brewq_stock_low`).

mod chain;
pub mod ledger;
mod writer;

use anyhow::Context;
use brewq_protocol::{StockCommand, StockReply, subjects};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use ledger::Ledger;

/// Settings of one stock-manager instance.
#[derive(Debug, Clone, Default)]
pub struct Config {}

/// Serves stock commands until `shutdown` fires, then finishes the commands in hand.
pub async fn run(_config: Config, client: async_nats::Client, shutdown: CancellationToken) -> anyhow::Result<()> {
    let jetstream = brewq_runtime::connect::jetstream(&client);
    let Some(mut store) = brewq_runtime::kv::wait_for_bucket(&jetstream, subjects::STOCK_BUCKET, &shutdown).await else {
        return Ok(());
    };
    if !wait_for_atomic_batches(&mut store, &shutdown).await {
        return Ok(());
    }
    let (ledger, writer) = Ledger::new(store, client.clone());
    let writers = TaskTracker::new();
    writers.spawn(writer);
    let following = TaskTracker::new();
    following.spawn(chain::follow(ledger.clone(), jetstream.clone(), shutdown.clone()));
    let mut requests =
        client.queue_subscribe(subjects::STOCK_SUBJECTS, subjects::STOCK_QUEUE.into()).await.context("subscribing to stock requests")?;
    tracing::info!("stock manager ready");
    let tracker = TaskTracker::new();
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = requests.next() => match message { Some(message) => message, None => break },
        };
        let (ledger, client) = (ledger.clone(), client.clone());
        tracker.spawn(async move { serve(&ledger, &client, message).await });
    }
    let _ = requests.unsubscribe().await;
    tracker.close();
    tracker.wait().await;
    following.close();
    following.wait().await;
    // The last ledger handle goes: the writer finishes its batch and ends.
    drop(ledger);
    writers.close();
    writers.wait().await;
    client.drain().await.context("draining the NATS connection")?;
    tracing::info!("stock manager stopped");
    Ok(())
}

/// Waits until the stock bucket takes atomic batches, which this version's `brewq provision`
/// turns on: without them no stock change can be written. Says so once; false if shut down
/// meanwhile.
async fn wait_for_atomic_batches(store: &mut async_nats::jetstream::kv::Store, shutdown: &CancellationToken) -> bool {
    let mut said = false;
    loop {
        match store.stream.info().await {
            Ok(info) if info.config.allow_atomic_publish => return true,
            Ok(_) if !said => {
                said = true;
                tracing::error!(
                    bucket = subjects::STOCK_BUCKET,
                    "the stock bucket does not take atomic batches yet; waiting for this version's `brewq provision`"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot read the stock bucket's settings; trying again"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return false,
            () = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}

async fn serve(ledger: &Ledger, client: &async_nats::Client, message: async_nats::Message) {
    let Some(reply_to) = brewq_runtime::respond::reply_subject(message.subject.as_str(), &message) else { return };
    let reply = match serde_json::from_slice::<StockCommand>(&message.payload) {
        // The subject says what the sender may do; a payload asking for more is refused.
        Ok(command) if message.subject.as_str() != subjects::stock_subject(&command) => {
            StockReply::Error { message: format!("{} cannot carry a {} command", message.subject, command.op()) }
        }
        Ok(command) => {
            let header = message.headers.as_ref().and_then(|headers| headers.get(subjects::ORDER_ID_HEADER));
            let order_id = header.map(|value| value.as_str()).or(command.order_id()).unwrap_or_default().to_owned();
            let order = brewq_protocol::ids::order_ref(&order_id);
            let span = tracing::info_span!("stock", op = command.op(), order);
            let op = command.op();
            let reply = execute(ledger, command).instrument(span.clone()).await;
            let result = result_name(&reply);
            metrics::counter!("brewq_stock_commands_total", "op" => op, "result" => result).increment(1);
            span.in_scope(|| match op {
                "read" => tracing::debug!(result, "stock command done"),
                _ => tracing::info!(result, "stock command done"),
            });
            reply
        }
        Err(error) => StockReply::Error { message: format!("bad stock command: {error}") },
    };
    // Our own reply type always serializes.
    let payload = serde_json::to_vec(&reply).expect("stock reply serializes");
    if let Err(error) = client.publish(reply_to, payload.into()).await {
        tracing::warn!(%error, "cannot send stock reply");
    }
}

async fn execute(ledger: &Ledger, command: StockCommand) -> StockReply {
    let result = match command {
        StockCommand::Reserve { order_id, items } => ledger.reserve(&order_id, &items).await,
        StockCommand::Commit { order_id } => ledger.commit(&order_id).await,
        StockCommand::Release { order_id } => ledger.release(&order_id).await,
        StockCommand::Restock { items, request_id } => ledger.restock(&items, request_id.as_deref()).await,
        StockCommand::Threshold { items } => ledger.threshold(&items).await,
        StockCommand::Get => ledger.snapshot().await.map(|stock| StockReply::Snapshot { stock }),
    };
    result.unwrap_or_else(|error| {
        tracing::warn!(error = format!("{error:#}"), "stock command failed");
        StockReply::Error { message: format!("{error:#}") }
    })
}

/// The reply's kind, as a metric label.
fn result_name(reply: &StockReply) -> &'static str {
    match reply {
        StockReply::Reserved => "reserved",
        StockReply::Committed => "committed",
        StockReply::Released => "released",
        StockReply::OutOfStock { .. } => "out_of_stock",
        StockReply::Snapshot { .. } => "snapshot",
        StockReply::Refused { .. } => "refused",
        StockReply::Error { .. } => "error",
    }
}
