//! The operator's side: the audit trail (every operator action, who did it and when, kept in
//! the `coffee-audit` stream, beside the reconciler's settlements of leaked stock) and the
//! operator's sessions (in [`crate::subjects::SESSIONS_BUCKET`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The operator (`web:<user>` or `cli:<user>`), or [`RECONCILER`].
    pub who: String,
    /// What was done (`pause`, `restock`, `retry`, ...).
    pub action: String,
    /// What it was done to (a machine, an order, ingredients).
    pub target: String,
    /// `ok`, or why it failed.
    pub outcome: String,
}

/// Who the reconciler's entries name: every controller runs it.
pub const RECONCILER: &str = "controller:reconciler";

/// The reconciler's action when it settles the leaked reservation of an order with `command`
/// (a release or a commit): `reconcile-release`, `reconcile-commit`.
pub fn reconcile_action(command: &crate::StockCommand) -> String {
    format!("reconcile-{}", command.op())
}

/// Every action the reconciler records: the release's, then the commit's.
pub fn reconcile_actions() -> [String; 2] {
    let release = crate::StockCommand::Release { order_id: String::new() };
    let commit = crate::StockCommand::Commit { order_id: String::new() };
    [reconcile_action(&release), reconcile_action(&commit)]
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
