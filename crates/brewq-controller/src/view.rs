//! The read side of the shop, for callers that may not read the buckets and streams
//! themselves (the public web shop holds no JetStream rights): one order by its id
//! ([`subjects::ORDER_READ`]) and the queue with the fleet ([`subjects::SHOP_READ`]), from
//! figures read once a second.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::Context;
use brewq_protocol::ids::is_order_id;
use brewq_protocol::{MachineCommand, MachineView, OrderLookup, OrderView, QueueSnapshot, ShopView, now, subjects};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Controller, to_json};

/// How often the figures are read again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Answers [`subjects::ORDER_READ`]: the payload is the order id.
pub(crate) async fn order(controller: &Controller, payload: &[u8]) -> Vec<u8> {
    let order_id = std::str::from_utf8(payload).unwrap_or_default().trim();
    let lookup = if !is_order_id(order_id) {
        OrderLookup::NotFound
    } else {
        match controller.records.get(order_id).await {
            Ok(Some(record)) => {
                let snapshot = controller.snapshot.borrow().clone();
                let view = if snapshot.fresh { snapshot.order_view(record) } else { OrderView::of(record) };
                OrderLookup::Found { order: Box::new(view) }
            }
            Ok(None) => OrderLookup::NotFound,
            Err(error) => OrderLookup::Unavailable { message: format!("cannot read the order: {error:#}") },
        }
    };
    to_json(&lookup)
}

/// Answers [`subjects::SHOP_READ`].
pub(crate) fn shop(controller: &Controller) -> Vec<u8> {
    let snapshot = controller.snapshot.borrow().clone();
    let view = match snapshot.fresh {
        true => ShopView::Current {
            queue: snapshot.view(),
            waiting: snapshot.waiting,
            in_flight: snapshot.in_flight,
            machines: snapshot.machines,
        },
        false => ShopView::Unavailable { message: "the queue's figures cannot be read right now".into() },
    };
    to_json(&view)
}

/// Reads the figures every second until shutdown; a failed read marks them stale.
pub(crate) async fn refresh(jetstream: Context, sender: watch::Sender<QueueSnapshot>, shutdown: CancellationToken) {
    let jetstream = &jetstream;
    brewq_runtime::refresh::every(sender, REFRESH_EVERY, shutdown, |previous| async move {
        read(jetstream).await.unwrap_or_else(|error| {
            tracing::debug!(error = format!("{error:#}"), "cannot read the queue");
            QueueSnapshot { fresh: false, ..previous }
        })
    })
    .await
}

/// Reads the figures once: the stream, the consumer, the heartbeats and the operator's holds.
pub async fn read(jetstream: &Context) -> anyhow::Result<QueueSnapshot> {
    // The stream before the consumer: an order in the stream at the first read is counted in
    // the consumer's figures of the second.
    let state = stream_state(jetstream).await;
    let queue = crate::queue::work_queue(jetstream).await?;
    let delivered_sequence = queue.delivered_sequence;
    let (first_sequence, last_sequence, gaps) = match state {
        Some((first, last, deleted)) => (first, last, deleted.into_iter().filter(|gap| *gap > delivered_sequence).collect()),
        None => (0, 0, Vec::new()),
    };
    let machines_bucket = jetstream.get_key_value(subjects::MACHINES_BUCKET).await?;
    let mut machines = MachineView::fleet(brewq_runtime::kv::all_json(&jetstream.client(), &machines_bucket).await?, now());
    // The operator's holds, for the pages; not worth failing the figures for.
    if let Ok(holds) = holds(jetstream).await {
        MachineView::note_holds(&mut machines, &holds);
    }
    Ok(QueueSnapshot {
        waiting: queue.waiting,
        in_flight: queue.in_flight,
        delivered_sequence,
        first_sequence,
        last_sequence,
        gaps,
        machines,
        fresh: true,
    })
}

/// The operator's hold on each machine that has one.
async fn holds(jetstream: &Context) -> anyhow::Result<BTreeMap<u32, MachineCommand>> {
    let store = jetstream.get_key_value(subjects::MACHINE_HOLDS_BUCKET).await?;
    let holds = brewq_runtime::kv::all_json_by_key::<MachineCommand>(&jetstream.client(), &store).await?;
    Ok(holds.into_iter().filter_map(|(key, hold)| Some((key.strip_prefix("machine.")?.parse().ok()?, hold))).collect())
}

/// The queue's first and last sequences and the ones deleted between them (cancelled orders,
/// and orders acked out of order); `None` when they cannot be read, and positions then count
/// every sequence.
async fn stream_state(jetstream: &Context) -> Option<(u64, u64, Vec<u64>)> {
    let stream = jetstream.get_stream_no_info(subjects::ORDERS_STREAM).await.ok()?;
    let state = stream.info_builder().with_deleted(true).fetch().await.ok()?.info.state;
    Some((state.first_sequence, state.last_sequence, state.deleted.unwrap_or_default()))
}
