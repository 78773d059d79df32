//! The operator's side of the shop, behind a login: a live dashboard of machines, stock,
//! queue, failed orders and the audit trail, and the actions on them. Actions go out over the
//! operator's own NATS connection (the admin role), never the customer-facing one, and each is
//! written to the audit trail with the operator's name.

mod actions;
pub mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use crate::AppState;
use crate::error::AppError;

/// The operator's account and connection.
#[derive(Clone)]
pub struct Operator {
    pub user: String,
    /// bcrypt hash of the password.
    pub password_hash: String,
    /// Key that signs session cookies (shared by all web instances).
    pub session_key: Vec<u8>,
    /// A connection with the admin role's rights.
    pub client: async_nats::Client,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Operator({}, <secrets redacted>)", self.user)
    }
}

/// The admin routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin", get(view::dashboard))
        .route("/admin/login", get(view::login_page).post(actions::login))
        .route("/admin/logout", post(actions::logout))
        .route("/assets/admin.js", get(view::script))
        .route("/api/admin/state", get(view::state))
        .route("/api/admin/events", get(view::events))
        .route("/api/admin/machines/{id}/{action}", post(actions::machine))
        .route("/api/admin/stock/restock", post(actions::restock))
        .route("/api/admin/failed/{id}/{action}", post(actions::failed))
}

/// The operator if the request carries a valid session; 401 otherwise, and 404 when this
/// instance has no operator account. Actions (`changes`) must also come from the shop's own
/// pages: a custom header that a cross-site form cannot send, and a same-origin `Origin`.
fn require(state: &AppState, headers: &HeaderMap, changes: bool) -> Result<(String, Operator), AppError> {
    let operator = state.config.operator.clone().ok_or_else(|| AppError::status(StatusCode::NOT_FOUND, "no operator account"))?;
    let user = session::operator(&operator.session_key, headers)
        .ok_or_else(|| AppError::status(StatusCode::UNAUTHORIZED, "log in first"))?;
    if changes && !same_origin(headers) {
        return Err(AppError::status(StatusCode::FORBIDDEN, "cross-site request refused"));
    }
    Ok((user, operator))
}

fn same_origin(headers: &HeaderMap) -> bool {
    let marked = headers.get("x-brewq-csrf").is_some_and(|value| value == "1");
    let host = headers.get("host").and_then(|host| host.to_str().ok());
    let origin_ok = match headers.get("origin").and_then(|origin| origin.to_str().ok()) {
        None => true,
        Some(origin) => host.is_some_and(|host| origin.split("://").nth(1) == Some(host)),
    };
    marked && origin_ok
}
