//! The operator's side of the shop, a process of its own on its own listener: a live
//! dashboard of machines, stock, queue, failed orders and the audit trail, and the actions on
//! them, behind a login with server-side sessions. It connects with the operator role, which
//! has exactly the operator's actions; each action is written to the audit trail with the
//! operator's name. The public shop ([`crate::app`]) has none of this.

pub(crate) mod actions;
mod chain_commands;
pub mod command;
pub mod history;
pub mod session;
pub mod throttle;
mod view;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

use crate::error::AppError;
use crate::{AppState, Config};

/// The operator's account and connection.
#[derive(Clone)]
pub struct Operator {
    pub user: String,
    /// bcrypt hash of the password.
    pub password_hash: String,
    /// Where sessions live (shared by every instance).
    pub sessions: session::Sessions,
    /// The connection with the operator role's rights.
    pub client: async_nats::Client,
    /// The stock's last hour, sampled by this process.
    pub stock_history: std::sync::Arc<history::StockHistory>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Operator({}, <secrets redacted>)", self.user)
    }
}

/// The operator's pages and API, bounded and tracked like the shop's.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(home))
        .route("/admin", get(view::dashboard))
        .route("/admin/login", get(view::login_page).post(actions::login))
        .route("/admin/logout", post(actions::logout))
        .route("/admin/logout-everywhere", post(actions::logout_everywhere))
        .route("/assets/{file}", get(view::asset))
        .route("/api/admin/state", get(view::state))
        .route("/api/admin/events", get(view::events))
        .route("/api/admin/machines/{id}/{action}", post(actions::machine))
        .route("/api/admin/stock/restock", post(actions::restock))
        .route("/api/admin/failed/{id}/{action}", post(actions::failed))
        .route("/chain", get(crate::chain::page))
        .route("/api/chain/state", get(crate::chain::shops))
        .route("/api/chain/events", get(crate::chain::events))
        .route("/api/chain/shops/{shop}/machines/{id}/{action}", post(crate::chain::machine))
        .route("/api/chain/shops/{shop}/stock/restock", post(crate::chain::restock))
        .route("/healthz", get(crate::api::healthz));
    crate::guarded(routes, state)
}

/// `GET /`: the chain's dashboard on a chain's hub, the shop's otherwise.
async fn home(axum::extract::State(state): axum::extract::State<std::sync::Arc<AppState>>) -> axum::response::Redirect {
    axum::response::Redirect::to(if state.config.chain.is_some() { "/chain" } else { "/admin" })
}

/// Serves the operator's side on `listener` until `shutdown` fires. `config.operator` must be
/// set; `client` is the operator role's connection.
pub async fn run(
    config: Config,
    client: async_nats::Client,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Some(operator) = &config.operator else { anyhow::bail!("the operator's side needs the operator's account") };
    // The sampler and the follower stop with the pages, even when serving fails before any shutdown.
    let stop_background = shutdown.child_token();
    let sampler = history::sample(operator.client.clone(), operator.stock_history.clone(), history::SAMPLE_EVERY, stop_background.clone());
    let sampler = tokio::spawn(sampler);
    // In a shop of a chain, the machine commands from the hub; nothing elsewhere.
    let follower = tokio::spawn(chain_commands::follow(operator.client.clone(), stop_background.clone()));
    let served = crate::serve(config, client, listener, shutdown, app, "operator pages").await;
    stop_background.cancel();
    let _ = sampler.await;
    let _ = follower.await;
    served
}

/// The operator if the request carries a live session; 401 otherwise, 503 when the sessions
/// cannot be read, and 404 when this instance has no operator account. Actions (`changes`)
/// must also come from the operator's own pages: a custom header that a cross-site form
/// cannot send, and a same-origin `Origin`.
pub(crate) async fn require(state: &AppState, headers: &HeaderMap, changes: bool) -> Result<(String, Operator), AppError> {
    let operator = state.config.operator.clone().ok_or_else(|| AppError::status(StatusCode::NOT_FOUND, "no operator account"))?;
    let user = operator.sessions.user(headers).await?.ok_or_else(|| AppError::status(StatusCode::UNAUTHORIZED, "log in first"))?;
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
