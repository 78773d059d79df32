//! The queue as the controllers see it: the true pending count (waiting plus being brewed, read
//! from the consumer) written to `orders-values`/`orders.pending`, the live machines counted
//! from their heartbeats, and the ETA computed from both. The figures are metrics too
//! (`brewq_queue_pending`, `_waiting`, `_in_flight`, `brewq_machines_online`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv::Store;
use brewq_protocol::{MachineHeartbeat, Size, now, subjects};
use tokio_util::sync::CancellationToken;

/// How often the figures are read again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Queue figures shared by the handlers of one controller.
#[derive(Default)]
pub struct QueueStats {
    pending: AtomicU64,
    machines: AtomicU64,
    /// The machines taking orders, as last read.
    fleet: Mutex<Vec<MachineHeartbeat>>,
    /// Whether the fleet has been read once since the start.
    fleet_read: std::sync::atomic::AtomicBool,
}

impl QueueStats {
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

    /// The wait of the order of `size` at `position` (the brews under way counted in it), by
    /// the rule the order's page uses ([`brewq_protocol::queue::estimate`]).
    pub fn estimate(&self, position: u64, size: Size) -> brewq_protocol::queue::Estimate {
        let fleet = self.fleet.lock().expect("fleet");
        let brewing = fleet.iter().filter(|machine| machine.state == brewq_protocol::MachineState::Brewing).count() as u64;
        brewq_protocol::queue::estimate(position.saturating_sub(1).saturating_sub(brewing), 0, &fleet, Some(size), now())
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
        match read_fleet(&jetstream.client(), &machines).await {
            Ok((fleet, counted)) => {
                stats.machines.store(fleet.len() as u64, Ordering::Relaxed);
                stats.fleet_read.store(true, Ordering::Relaxed);
                metrics::gauge!("brewq_machines_online").set(fleet.len() as f64);
                *stats.fleet.lock().expect("fleet") = counted;
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

/// Heartbeats of the machines taking orders now, and of those the waiting times count on
/// ([`MachineHeartbeat::counts_for_estimates`]).
async fn read_fleet(client: &async_nats::Client, machines: &Store) -> anyhow::Result<(Vec<MachineHeartbeat>, Vec<MachineHeartbeat>)> {
    let at = now();
    let fleet: Vec<MachineHeartbeat> = brewq_runtime::kv::all_json(client, machines).await?;
    let counted = fleet.iter().filter(|heartbeat| heartbeat.counts_for_estimates(at)).cloned().collect();
    Ok((fleet.into_iter().filter(|heartbeat| heartbeat.takes_orders(at)).collect(), counted))
}
