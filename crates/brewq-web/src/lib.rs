//! The coffee shop on the web: the customer's pages (order form, the order's own live page)
//! and the JSON API (README.md, "The HTTP API"), over NATS. It holds no state of its own, so
//! any number of instances can run behind a load balancer.

pub mod admin;
mod api;
mod error;
mod events;
mod observe;
mod pages;
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
    /// The operator's account; without one, the admin pages answer 404.
    pub operator: Option<admin::Operator>,
    /// The process's metrics, served on `/metrics`; no such route without them.
    pub metrics: Option<brewq_runtime::prometheus::Metrics>,
}

impl Default for Config {
    fn default() -> Self {
        Config { request_timeout: Duration::from_secs(8), operator: None, metrics: None }
    }
}

/// The router: pages, API, event streams and metrics, every request tracked by
/// [`observe::track`].
pub fn app(state: AppState) -> Router {
    let metrics = state.config.metrics.clone();
    let router = Router::new()
        .route("/", get(pages::index))
        .route("/orders/{id}", get(pages::order_page))
        .route("/assets/{file}", get(pages::asset))
        .route("/api/orders", axum::routing::post(api::create_order))
        .route("/api/orders/{id}", get(api::get_order).delete(api::cancel_order))
        .route("/api/orders/{id}/events", get(events::order_events))
        .route("/api/queue", get(api::queue))
        .route("/api/queue/events", get(events::queue_events))
        .route("/api/stock", get(api::stock))
        .route("/api/machines", get(api::machines))
        .route("/healthz", get(api::healthz))
        .merge(admin::routes());
    let router = match metrics {
        Some(metrics) => router.merge(brewq_runtime::prometheus::router(metrics)),
        None => router,
    };
    router.with_state(Arc::new(state)).layer(axum::middleware::from_fn(observe::track))
}

/// Serves on `listener` until `shutdown` fires; open event streams end then too.
pub async fn run(
    config: Config,
    client: async_nats::Client,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let tracker = TaskTracker::new();
    let (state, refresher) = AppState::new(config, client.clone(), shutdown.clone());
    tracker.spawn(refresher);
    let address = listener.local_addr().context("reading the listening address")?;
    tracing::info!(%address, "web shop ready");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("serving HTTP")?;
    tracker.close();
    tracker.wait().await;
    client.drain().await.context("draining the NATS connection")?;
    tracing::info!("web shop stopped");
    Ok(())
}

#[cfg(test)]
mod tests;
