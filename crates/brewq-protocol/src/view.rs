//! Where an order stands, as its customer sees it: the queue's figures (read by the
//! controllers from the makers' consumer, the stream and the heartbeats) and, from them, an
//! order's place, its waiting time and, while brewing, its progress. Also the replies of
//! [`crate::subjects::ORDER_READ`] and [`crate::subjects::SHOP_READ`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::queue::{DEFAULT_BREW_TIME, Estimate, brew_times, estimate, own_brew_time};
use crate::{MachineHeartbeat, MachineView, OrderRecord, OrderStatus, QueueView, Size, now};

/// The latest figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueSnapshot {
    /// Orders not yet delivered to a machine.
    pub waiting: u64,
    /// Orders delivered and not yet acknowledged (brewing, or waiting for a retry).
    pub in_flight: u64,
    /// Stream sequence of the last order handed to a machine.
    pub delivered_sequence: u64,
    /// Stream sequences of the first and the last order in the queue when it was read.
    pub first_sequence: u64,
    pub last_sequence: u64,
    /// Sequences after `delivered_sequence` no longer in the queue (cancelled orders), in order.
    pub gaps: Vec<u64>,
    pub machines: Vec<MachineView>,
    /// False until the first successful read, and after a failed one.
    pub fresh: bool,
}

impl QueueSnapshot {
    /// Machines online and taking orders.
    pub fn machines_online(&self) -> u64 {
        let at = now();
        self.machines.iter().filter(|machine| machine.heartbeat.takes_orders(at)).count() as u64
    }

    /// The machines the waiting times count on ([`MachineHeartbeat::counts_for_estimates`]).
    fn online_heartbeats(&self) -> Vec<MachineHeartbeat> {
        let at = now();
        self.machines.iter().filter(|machine| machine.heartbeat.counts_for_estimates(at)).map(|machine| machine.heartbeat.clone()).collect()
    }

    /// The queue as `GET /api/queue` shows it, with the wait of an order placed now: what
    /// the order's page would then say.
    pub fn view(&self) -> QueueView {
        let fleet = self.online_heartbeats();
        let times = brew_times(&fleet);
        let (_, estimate) = self.queued(&fleet, None, None);
        QueueView {
            pending: self.waiting + self.in_flight,
            machines_online: self.machines_online(),
            eta_seconds: estimate.expected.as_secs(),
            eta_range_seconds: estimate.range_seconds(),
            brew_seconds: times.iter().map(|(size, time)| (*size, time.as_secs_f64())).collect(),
        }
    }

    /// The position and the wait of an order not handed out yet, at `sequence` in the queue
    /// (none: queued after the figures were read, or not placed yet), of `size` (none: not
    /// placed yet), with `fleet` the machines online.
    fn queued(&self, fleet: &[MachineHeartbeat], sequence: Option<u64>, size: Option<Size>) -> (u64, Estimate) {
        let brewing = fleet.iter().filter(|machine| machine.state == crate::MachineState::Brewing).count() as u64;
        // Orders handed out are on the machines, as many as there are, even those whose
        // heartbeat does not say so yet (sent every 2 s); beyond, they were handed back (a
        // failed brew, a machine paused) and go out again first.
        let on_machines = self.in_flight.min(fleet.len() as u64);
        let unseen = on_machines.saturating_sub(brewing);
        let handed_back = self.in_flight - on_machines;
        let (position, ahead) = match sequence {
            // Handed back itself: counted in flight until it goes out again, before any new
            // order.
            Some(sequence) if sequence <= self.delivered_sequence => (self.in_flight.max(1), 0),
            Some(sequence) => {
                let waiting = self.waiting_before(sequence);
                (waiting + self.in_flight + 1, waiting + handed_back)
            }
            None => (self.waiting + self.in_flight + 1, self.waiting + handed_back),
        };
        // The heartbeats are read after the queue: a machine may show an order brewing that
        // the queue's figures still count as waiting.
        let ahead = ahead.saturating_sub(brewing.saturating_sub(self.in_flight));
        (position, estimate(ahead, unseen, fleet, size, now()))
    }

    /// Orders never handed out that wait ahead of the one at `sequence` (itself never handed
    /// out): those between the last one handed out and it, but for the gaps cancelled orders
    /// left, and at most the others waiting.
    fn waiting_before(&self, sequence: u64) -> u64 {
        let from = self.delivered_sequence.saturating_add(1).max(self.first_sequence);
        let gaps = self.gaps.iter().filter(|gap| **gap < sequence).count() as u64;
        // Queued after the figures were read: behind those waiting then, and those queued
        // since, ahead of it.
        let others = match sequence <= self.last_sequence {
            true => self.waiting.saturating_sub(1),
            false => self.waiting + (sequence - self.last_sequence.max(self.delivered_sequence) - 1),
        };
        sequence.saturating_sub(from).saturating_sub(gaps).min(others)
    }

    /// Where `record` stands: position and ETA while queued, progress and ETA while brewing.
    pub fn order_view(&self, record: OrderRecord) -> OrderView {
        let fleet = self.online_heartbeats();
        let times = brew_times(&fleet);
        let mut view = OrderView::of(record);
        match view.record.status {
            OrderStatus::Queued => {
                let (position, estimate) = self.queued(&fleet, view.record.queue_sequence, Some(view.record.order.size));
                view.position = Some(position);
                view.eta_seconds = Some(estimate.expected.as_secs());
                view.eta_range_seconds = Some(estimate.range_seconds());
            }
            OrderStatus::Brewing => {
                let own = own_brew_time(&times, view.record.order.size, DEFAULT_BREW_TIME);
                let started = view.record.history.last().map(|entry| entry.at).unwrap_or_else(now);
                let elapsed = Duration::try_from(now() - started).unwrap_or_default();
                view.progress = Some((elapsed.as_secs_f64() / own.as_secs_f64().max(0.001)).min(0.99));
                view.eta_seconds = Some(own.saturating_sub(elapsed).as_secs());
            }
            OrderStatus::Ready | OrderStatus::Failed | OrderStatus::Cancelled => {}
        }
        view
    }
}

/// An order as the API shows it: its record, and where it stands now. Once the customer's
/// name is removed, `name` shows [`crate::record::REMOVED_NAME`] (and `name_removed_at` says
/// when), so that pages greet no one rather than show an empty name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderView {
    #[serde(flatten)]
    pub record: OrderRecord,
    /// The order's ticket: what screens and lists that other people see show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// While queued, the range the wait most likely falls in, `[low, high]` seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_range_seconds: Option<[u64; 2]>,
    /// From 0 to 1, while brewing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
}

impl OrderView {
    /// The record alone, with its ticket: an order that has ended, or one whose queue is not
    /// known.
    pub fn of(mut record: OrderRecord) -> Self {
        let ticket = record.ticket();
        record.order.name = record.shown_name().to_owned();
        OrderView { record, ticket, position: None, eta_seconds: None, eta_range_seconds: None, progress: None }
    }
}

/// The answer to [`crate::subjects::ORDER_READ`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum OrderLookup {
    Found {
        order: Box<OrderView>,
    },
    /// No order has this id (or it is not an order id at all).
    NotFound,
    /// The record or the queue could not be read; try again.
    Unavailable {
        message: String,
    },
}

/// The answer to [`crate::subjects::SHOP_READ`]: the queue and the fleet, as the shop shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ShopView {
    Current {
        queue: QueueView,
        /// Orders not yet handed to a machine, and handed out but not finished.
        waiting: u64,
        in_flight: u64,
        machines: Vec<MachineView>,
    },
    Unavailable {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use crate::{Bean, MachineHeartbeat, MachineView, Milk, Order, OrderRecord, Size, now};

    use super::QueueSnapshot;

    fn queued(sequence: u64) -> OrderRecord {
        let order = Order { name: "Ada".into(), size: Size::Small, bean_type: Bean::Arabica, milk: Milk::None, sugar_count: 0 };
        OrderRecord { queue_sequence: Some(sequence), ..OrderRecord::queued(&format!("o{sequence}"), order, now()) }
    }

    #[test]
    fn a_cancelled_order_ahead_does_not_count_in_the_position() {
        // Orders 1 to 5 queued, none handed out yet; 2 was cancelled and left the queue.
        let queue = QueueSnapshot { waiting: 4, last_sequence: 5, gaps: vec![2], fresh: true, ..QueueSnapshot::default() };
        let positions: Vec<_> = [1, 3, 4, 5].into_iter().map(|sequence| queue.order_view(queued(sequence)).position).collect();
        assert_eq!(positions, [Some(1), Some(2), Some(3), Some(4)]);
        // Two handed out and brewing: they count as ahead of every waiting order.
        let brewing =
            QueueSnapshot { waiting: 2, in_flight: 2, delivered_sequence: 3, last_sequence: 5, fresh: true, ..QueueSnapshot::default() };
        assert_eq!(brewing.order_view(queued(5)).position, Some(4));
        // Order 1 handed to a machine that was paused meanwhile and handed it back: it goes
        // out again first.
        let handed_back =
            QueueSnapshot { waiting: 3, in_flight: 1, delivered_sequence: 1, last_sequence: 4, fresh: true, ..QueueSnapshot::default() };
        let positions: Vec<_> = [1, 2, 4].into_iter().map(|sequence| handed_back.order_view(queued(sequence)).position).collect();
        assert_eq!(positions, [Some(1), Some(2), Some(4)]);
        // Order 1 cancelled: the queue now starts at 2, with no gap left to count.
        let first_gone = QueueSnapshot { waiting: 2, first_sequence: 2, last_sequence: 3, fresh: true, ..QueueSnapshot::default() };
        assert_eq!(first_gone.order_view(queued(2)).position, Some(1));
        // Queued after the figures were read: behind every order waiting then.
        assert_eq!(queue.order_view(queued(6)).position, Some(5));
    }

    fn machine(id: u32, brewing_for: Option<u64>) -> MachineView {
        let at = now();
        let heartbeat = MachineHeartbeat {
            id,
            state: if brewing_for.is_some() { crate::MachineState::Brewing } else { crate::MachineState::Idle },
            order_id: None,
            brewing_since: brewing_for.map(|seconds| at - std::time::Duration::from_secs(seconds)),
            cups: 100,
            failures: 0,
            brew_millis: Size::ALL.iter().map(|&size| (size, 60_000)).collect(),
            at,
        };
        MachineView { online: true, heartbeat, hold: None }
    }

    #[test]
    fn the_wait_shown_before_ordering_is_the_one_the_order_then_gets() {
        // Seven orders waiting, two on machines 10 s into their minute, a third machine idle.
        let machines = vec![machine(1, Some(10)), machine(2, Some(10)), machine(3, None)];
        let queue = QueueSnapshot {
            waiting: 7,
            in_flight: 2,
            delivered_sequence: 2,
            last_sequence: 9,
            machines,
            fresh: true,
            ..Default::default()
        };
        let shown = queue.view();
        // Placed now, it is queued behind all of them: its page says the same.
        let mut placed = queued(10);
        placed.queue_sequence = None;
        let page = queue.order_view(placed);
        assert_eq!((Some(shown.eta_seconds), Some(shown.eta_range_seconds)), (page.eta_seconds, page.eta_range_seconds));
        // Each of the seven goes to the first machine free (at 0, 50 and 50 s), this one at
        // 170 s, then its own minute (less the moments since the heartbeats were made, so 229
        // once truncated to seconds); rounds of three machines said 4 minutes.
        assert!((229..=230).contains(&shown.eta_seconds), "{shown:?}");
        assert_eq!((shown.pending, shown.machines_online), (9, 3));
    }
}
