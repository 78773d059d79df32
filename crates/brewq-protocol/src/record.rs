//! The order record: an order's state with its history, and the state machine that says which
//! changes are allowed. Terminal states absorb, so an order ends exactly once.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Order;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Queued,
    Brewing,
    Ready,
    Failed,
    Cancelled,
}

impl OrderStatus {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Queued => "queued",
            OrderStatus::Brewing => "brewing",
            OrderStatus::Ready => "ready",
            OrderStatus::Failed => "failed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Ready, failed and cancelled are final.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Ready | OrderStatus::Failed | OrderStatus::Cancelled)
    }

    /// Whether an order may go from `self` to `next`. Brewing to brewing is a machine taking
    /// over the order of one that stopped; brewing to queued is a failed brew to be retried.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!((self, next), (Queued, Brewing | Cancelled | Failed) | (Brewing, Brewing | Ready | Queued | Failed))
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: OrderStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An order and its life, as stored in [`crate::subjects::ORDERS_BUCKET`] and shown by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub id: String,
    #[serde(flatten)]
    pub order: Order,
    pub status: OrderStatus,
    /// The machine brewing or having brewed it.
    pub machine: Option<u32>,
    /// Why it failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Brew attempts started.
    #[serde(default)]
    pub attempts: u32,
    /// Sequence of the order in the `coffee-orders` stream, once it is there (for its place in
    /// the queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_sequence: Option<u64>,
    /// The new order an operator queued in place of this failed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_as: Option<String>,
    /// When the customer's name was removed from the record (some time after the order
    /// ended; the name is then empty). Everything else stays, for the statistics.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub name_removed_at: Option<OffsetDateTime>,
    pub history: Vec<HistoryEntry>,
}

/// What pages and the CLI show in place of a name that was removed.
pub const REMOVED_NAME: &str = "—";

/// A change the state machine refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order {order_id} cannot go from {from} to {to}")]
pub struct TransitionError {
    pub order_id: String,
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderRecord {
    /// The stock operation that ends this order: commit a ready one, release a failed or
    /// cancelled one; none while it is still open.
    pub fn settlement(&self) -> Option<crate::StockCommand> {
        let order_id = self.id.clone();
        match self.status {
            OrderStatus::Ready => Some(crate::StockCommand::Commit { order_id }),
            OrderStatus::Failed | OrderStatus::Cancelled => Some(crate::StockCommand::Release { order_id }),
            OrderStatus::Queued | OrderStatus::Brewing => None,
        }
    }

    /// A freshly accepted order.
    pub fn queued(id: &str, order: Order, at: OffsetDateTime) -> Self {
        OrderRecord {
            id: id.to_owned(),
            order,
            status: OrderStatus::Queued,
            machine: None,
            reason: None,
            attempts: 0,
            queue_sequence: None,
            retried_as: None,
            name_removed_at: None,
            history: vec![HistoryEntry { status: OrderStatus::Queued, at, machine: None, reason: None }],
        }
    }

    /// Failed before it ever reached the work queue (a controller rolled it back): no stream
    /// sequence, and never brewed.
    pub fn never_queued(&self) -> bool {
        self.status == OrderStatus::Failed
            && self.queue_sequence.is_none()
            && self.history.iter().all(|entry| entry.status != OrderStatus::Brewing)
    }

    /// Moves the order to `next`, recording when, where and why.
    pub fn transition(
        &mut self,
        next: OrderStatus,
        machine: Option<u32>,
        reason: Option<String>,
        at: OffsetDateTime,
    ) -> Result<(), TransitionError> {
        if !self.status.can_become(next) {
            return Err(TransitionError { order_id: self.id.clone(), from: self.status, to: next });
        }
        if next == OrderStatus::Brewing {
            self.attempts = self.attempts.saturating_add(1);
        }
        self.status = next;
        if machine.is_some() {
            self.machine = machine;
        }
        if next == OrderStatus::Queued {
            self.machine = None;
        }
        self.reason.clone_from(&reason);
        self.history.push(HistoryEntry { status: next, at, machine, reason });
        Ok(())
    }

    /// The record after a machine's `update`, made at `at`. An update that says when its brew
    /// started (`brewing_since`, an instant brew recorded only with its outcome) moves a queued
    /// order to brewing at that time first, so the history shows the brew and the attempt counts.
    pub fn updated(&self, update: &OrderUpdate, at: OffsetDateTime) -> Result<OrderRecord, TransitionError> {
        let mut record = self.clone();
        if let Some(since) = update.brewing_since
            && record.status == OrderStatus::Queued
        {
            record.transition(OrderStatus::Brewing, update.machine, None, since)?;
        }
        record.transition(update.status, update.machine, update.reason.clone(), at)?;
        Ok(record)
    }

    /// The order's public ticket, once it has its place in the work queue.
    pub fn ticket(&self) -> Option<u32> {
        self.queue_sequence.map(crate::ids::ticket)
    }

    /// When the order was accepted.
    pub fn created_at(&self) -> Option<OffsetDateTime> {
        self.history.first().map(|entry| entry.at)
    }

    /// When the order ended (ready, failed or cancelled); `None` while it is open. Terminal
    /// states absorb, so the end is the last change.
    pub fn ended_at(&self) -> Option<OffsetDateTime> {
        match self.status.is_terminal() {
            true => self.history.last().map(|entry| entry.at),
            false => None,
        }
    }

    /// The record without the customer's name, removed at `at`: an empty name and the time it
    /// went. Size, recipe, statuses and timings stay.
    pub fn without_name(&self, at: OffsetDateTime) -> OrderRecord {
        let mut record = self.clone();
        record.order.name.clear();
        record.name_removed_at = Some(at);
        record
    }

    /// The customer's name, or [`REMOVED_NAME`] once it was removed.
    pub fn shown_name(&self) -> &str {
        match self.name_removed_at {
            Some(_) => REMOVED_NAME,
            None => &self.order.name,
        }
    }
}

/// A status change asked of the controllers by a machine, on
/// [`crate::subjects::ORDER_UPDATES`]: the controllers are the one writer of order records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderUpdate {
    pub order_id: String,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The order itself, sent by a machine with its brewing update: an order that a controller
    /// queued but stopped before recording gets its record then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Order>,
    /// When the machine started a brew it did not record first, because it expected it to be
    /// instant: the record shows the order brewing from then, written with `status` in one
    /// change.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub brewing_since: Option<OffsetDateTime>,
}

/// The outcome of an [`OrderUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum UpdateReply {
    /// The change is recorded; here is the record after it.
    Applied { record: OrderRecord },
    /// The state machine refused it; here is the record as it stands.
    Refused { record: OrderRecord },
    /// The record is final (now, or it was already) and its stock settled, as the update asked.
    Settled { record: OrderRecord },
    /// No order has this id.
    NotFound,
    /// The record could not be read or written; try again later.
    Error { message: String },
}
