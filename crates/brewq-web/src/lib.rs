//! The coffee shop on the web: the customer's pages (order form, the order's own live page,
//! the pickup board), in French or English,
//! and the JSON API (README.md, "The HTTP API"), over NATS with a customer's rights only; and,
//! in a process of its own, the operator's side ([`admin`]). Neither holds state of its own,
//! so any number of instances can run behind a load balancer.

pub mod admin;
mod api;
mod board;
pub mod chain;
mod error;
mod events;
pub mod i18n;
mod limits;
mod observe;
mod pages;
mod qr;
pub mod queue;
mod state;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use state::AppState;

/// Settings of one web instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long the controllers and stock managers may take to answer a request.
    pub request_timeout: Duration,
    /// The operator's account, for the operator's side ([`admin::run`]); the shop has none.
    pub operator: Option<admin::Operator>,
    /// Requests answered at once; beyond, 503 with `Retry-After: 1` rather than a queue.
    pub max_in_flight: usize,
    /// Event streams open at once (each holds a watch); beyond, 503 with `Retry-After`.
    pub max_event_streams: usize,
    /// Longest request body; 413 beyond (an order or a login is a few hundred bytes).
    pub max_body_bytes: usize,
    /// Deadline of a whole request, body included (not of an event stream once it is open);
    /// longer than `request_timeout`, so that a back end's own refusal comes through first.
    pub answer_within: Duration,
    /// A second connection, to another server than the main one's: an order with no answer
    /// yet is sent again through it (`api::place`), so that a server that stops answering
    /// does not keep the shop's customers waiting until the main connection gives it up.
    pub another_server: Option<async_nats::Client>,
    /// On a chain's hub, the shops the operator's side shows ([`chain`]).
    pub chain: Option<chain::Chain>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_timeout: Duration::from_secs(10),
            operator: None,
            max_in_flight: 512,
            max_event_streams: 1024,
            max_body_bytes: 4096,
            answer_within: Duration::from_secs(15),
            another_server: None,
            chain: None,
        }
    }
}

/// The router: pages, API and event streams, every request bounded by [`limits::guard`] and
/// tracked by [`observe::track`]. No `/metrics` here: the process serves them on an address of
/// its own, never the customers'.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(pages::index))
        .route("/orders/{id}", get(pages::order_page))
        .route("/board", get(pages::board))
        .route("/assets/{file}", get(pages::asset))
        .route("/api/orders", axum::routing::post(api::create_order))
        .route("/api/orders/{id}", get(api::get_order).delete(api::cancel_order))
        .route("/api/orders/{id}/events", get(events::order_events))
        .route("/api/orders/{id}/qr", get(qr::order_qr))
        .route("/api/board", get(board::board))
        .route("/api/board/events", get(board::board_events))
        .route("/api/queue", get(api::queue))
        .route("/api/queue/events", get(events::queue_events))
        .route("/api/stock", get(api::stock))
        .route("/api/machines", get(api::machines))
        .route("/healthz", get(api::healthz));
    guarded(routes, state)
}

/// `routes` over `state`, every request bounded by [`limits::guard`] and tracked by
/// [`observe::track`]: what every listener of this crate serves through.
fn guarded(routes: Router<Arc<AppState>>, state: AppState) -> Router {
    let limits = Arc::new(limits::Limits::new(&state.config));
    routes
        .with_state(Arc::new(state))
        .layer(axum::middleware::from_fn_with_state(limits, limits::guard))
        .layer(axum::middleware::from_fn(observe::track))
}

/// Serves the shop on `listener` until `shutdown` fires; open event streams end then too.
pub async fn run(
    config: Config,
    client: async_nats::Client,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = Config { operator: None, ..config };
    serve(config, client, listener, shutdown, app, "web shop").await
}

/// Serves `router` over a fresh state until `shutdown` fires, then drains the connection.
async fn serve(
    config: Config,
    client: async_nats::Client,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    router: fn(AppState) -> Router,
    what: &'static str,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("reading the listening address")?;
    let second = config.another_server.clone();
    let tracker = TaskTracker::new();
    let (state, refresher) = AppState::new(config, client.clone(), shutdown.clone());
    tracker.spawn(refresher);
    tracing::info!(%address, "{what} ready");
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown.clone().cancelled_owned()).await.context("serving HTTP")?;
    tracker.close();
    tracker.wait().await;
    client.drain().await.context("draining the NATS connection")?;
    if let Some(second) = second {
        second.drain().await.context("draining the second NATS connection")?;
    }
    tracing::info!("{what} stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
