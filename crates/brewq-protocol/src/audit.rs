//! The audit trail: every operator action, who did it and when, kept in the `coffee-audit`
//! stream.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The operator (`web:<user>` or `cli:<user>`).
    pub who: String,
    /// What was done (`pause`, `restock`, `retry`, ...).
    pub action: String,
    /// What it was done to (a machine, an order, ingredients).
    pub target: String,
    /// `ok`, or why it failed.
    pub outcome: String,
}

/// A failed order waiting for an operator's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub order_id: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}
