//! The queue as the controllers see it: the true pending count (waiting plus being brewed, read
//! from the consumer) written to `orders-values`/`orders.pending`, the live machines counted
//! from their heartbeats, and the ETA computed from both. The figures are metrics too
//! (`brewq_queue_pending`, `_waiting`, `_in_flight`, `brewq_machines_online`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv::Store;
use brewq_protocol::{MachineHeartbeat, Size, now, subjects};
use tokio_util::sync::CancellationToken;

/// How often the figures are read again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Queue figures shared by the handlers of one controller.
pub struct QueueStats {
    pending: AtomicU64,
    machines: AtomicU64,
    /// Mean brew time per size over the machines taking orders.
    brew_times: Mutex<BTreeMap<Size, Duration>>,
    /// The time per cup assumed while no machine taking orders has measured one.
    default_brew_time: Duration,
    /// Whether the fleet has been read once since the start.
    fleet_read: std::sync::atomic::AtomicBool,
}

impl QueueStats {
    /// Empty figures, assuming `default_brew_time` per cup until machines measure it.
    pub fn new(default_brew_time: Duration) -> Self {
        QueueStats {
            pending: AtomicU64::new(0),
            machines: AtomicU64::new(0),
            brew_times: Mutex::new(BTreeMap::new()),
            default_brew_time,
            fleet_read: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Counts one more order in the queue and returns its position.
    pub fn admit(&self) -> u64 {
        self.pending.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Orders waiting or being brewed.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// True once the fleet has been read and no machine takes orders (all paused, out of
    /// service or offline): a new order waits until one is back.
    pub fn no_machine_taking_orders(&self) -> bool {
        self.fleet_read.load(Ordering::Relaxed) && self.machines() == 0
    }

    /// Machines online and taking orders.
    pub fn machines(&self) -> u64 {
        self.machines.load(Ordering::Relaxed)
    }

    /// Time until the order of `size` at `position` is ready, as the web shows it.
    pub fn eta(&self, position: u64, size: Size) -> Duration {
        let times = self.brew_times.lock().expect("brew times");
        brewq_protocol::queue::order_eta(position, self.machines(), &times, size, self.default_brew_time)
    }
}

/// Reads the figures every second until shutdown, and publishes the pending count.
pub(crate) async fn refresh(
    stats: std::sync::Arc<QueueStats>,
    jetstream: async_nats::jetstream::Context,
    values: Store,
    machines: Store,
    shutdown: CancellationToken,
) {
    let mut last_written = None;
    loop {
        match work_queue(&jetstream).await {
            Ok(WorkQueue { waiting, in_flight, .. }) => {
                let pending = waiting + in_flight;
                metrics::gauge!("brewq_queue_pending").set(pending as f64);
                metrics::gauge!("brewq_queue_waiting").set(waiting as f64);
                metrics::gauge!("brewq_queue_in_flight").set(in_flight as f64);
                stats.pending.store(pending, Ordering::Relaxed);
                if last_written != Some(pending) {
                    match values.put(subjects::PENDING_KEY, pending.to_string().into()).await {
                        Ok(_) => last_written = Some(pending),
                        Err(error) => tracing::warn!(%error, "cannot write the pending count"),
                    }
                }
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "cannot read the queue"),
        }
        match live_machines(&machines).await {
            Ok(fleet) => {
                stats.machines.store(fleet.len() as u64, Ordering::Relaxed);
                stats.fleet_read.store(true, Ordering::Relaxed);
                metrics::gauge!("brewq_machines_online").set(fleet.len() as f64);
                // As the web computes it: from the machines taking orders.
                *stats.brew_times.lock().expect("brew times") = brewq_protocol::queue::brew_times(&fleet);
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "cannot read the machines"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(REFRESH_EVERY) => {}
        }
    }
}

/// The work queue as the makers' consumer sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkQueue {
    /// Orders not yet delivered to a machine.
    pub waiting: u64,
    /// Delivered and not yet acknowledged: being brewed.
    pub in_flight: u64,
    /// Delivered more than once.
    pub redelivered: u64,
    /// The stream sequence of the last order delivered.
    pub delivered_sequence: u64,
}

/// Reads the makers' consumer: the one place its figures are read.
pub async fn work_queue(jetstream: &async_nats::jetstream::Context) -> anyhow::Result<WorkQueue> {
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        jetstream.get_consumer_from_stream(subjects::MAKERS_CONSUMER, subjects::ORDERS_STREAM).await?;
    let info = consumer.cached_info();
    Ok(WorkQueue {
        waiting: info.num_pending,
        in_flight: info.num_ack_pending as u64,
        redelivered: info.num_redelivered as u64,
        delivered_sequence: info.delivered.stream_sequence,
    })
}

/// Heartbeats of the machines taking orders now.
pub async fn live_machines(machines: &Store) -> anyhow::Result<Vec<MachineHeartbeat>> {
    let at = now();
    let fleet: Vec<MachineHeartbeat> = brewq_runtime::kv::all_json(machines).await?;
    Ok(fleet.into_iter().filter(|heartbeat| heartbeat.takes_orders(at)).collect())
}
