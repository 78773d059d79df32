//! The operator's side: the audit trail (every operator action, who did it and when, kept in
//! the `coffee-audit` stream) and the operator's sessions (in [`crate::subjects::SESSIONS_BUCKET`]).

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

/// How long an operator's login lasts; also the age limit of the sessions bucket, so that an
/// expired session is gone from it too.
pub const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// An operator's session, under the SHA-256 of its cookie's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSession {
    pub user: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}
