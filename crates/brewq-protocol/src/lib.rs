//! The wire contract of brewq: subject and bucket names, message types, the recipe and the
//! order state machine. No IO lives here, so every service and test speaks the same language.

pub mod accounting;
pub mod audit;
pub mod board;
pub mod ids;
pub mod machine;
pub mod order;
pub mod queue;
pub mod record;
pub mod reply;
pub mod stock;
pub mod subjects;
pub mod view;

pub use audit::{AuditEntry, DeadLetter, OperatorSession, SESSION_LIFETIME};
pub use board::{Activity, ActivityLookup, BoardItem, BoardLookup, BoardView, RecentOrders};
pub use machine::{MachineCommand, MachineHeartbeat, MachineState, MachineView};
pub use order::{Bean, KeyedOrder, Milk, Order, OrderRequest, Size, ValidationError};
pub use queue::QueueView;
pub use record::{HistoryEntry, OrderRecord, OrderStatus, OrderUpdate, TransitionError, UpdateReply};
pub use reply::{OrderReply, RejectCode};
pub use stock::{Ingredient, Items, StockCommand, StockLevel, StockReply, StockSnapshot};
pub use view::{OrderLookup, OrderView, QueueSnapshot, ShopView};

/// Current time, the one clock every record and event uses.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Gives back the table of a map that a burst grew and that has since emptied: a map keeps
/// its largest size otherwise, and the process its pages.
pub fn shrink_after_burst<K: Eq + std::hash::Hash, V>(map: &mut std::collections::HashMap<K, V>) {
    if map.capacity() > 4 * map.len() + 1024 {
        map.shrink_to(2 * map.len());
    }
}

/// `at` as RFC 3339, as records and the CLI show times.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests;
