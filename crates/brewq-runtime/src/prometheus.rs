//! Prometheus metrics of one process: the global `metrics` recorder, installed once, and the
//! `/metrics` route that renders it. Services record with the `metrics` macros; without a
//! recorder installed (no `--metrics-listen`) those calls cost next to nothing.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Histogram buckets, in seconds: from a fast HTTP answer to a large coffee brewed slowly.
const BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0];

/// How often histograms are compacted when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics, rendered in the Prometheus text format; cheap to clone.
#[derive(Clone)]
pub struct Metrics(PrometheusHandle);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Every metric recorded so far, as Prometheus text, with the process's resident memory
    /// as of now (`process_resident_memory_bytes`, and its highest,
    /// `process_resident_memory_max_bytes`).
    pub fn render(&self) -> String {
        if let Some((now, peak)) = crate::memory::resident() {
            metrics::gauge!("process_resident_memory_bytes").set(now as f64);
            metrics::gauge!("process_resident_memory_max_bytes").set(peak as f64);
        }
        self.0.render()
    }
}

/// Installs the global recorder on first call; later calls return the same handle.
pub fn install() -> anyhow::Result<Metrics> {
    if let Some(metrics) = HANDLE.get() {
        return Ok(metrics.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    Ok(HANDLE.get_or_init(|| Metrics(handle)).clone())
}

/// The `GET /metrics` route, to merge into any router.
pub fn router<S: Clone + Send + Sync + 'static>(metrics: Metrics) -> Router<S> {
    Router::new().route("/metrics", get(move || async move { render_response(metrics.render()) }))
}

fn render_response(text: String) -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Serves `/metrics` on `listener` and keeps the histograms compact, until `shutdown` fires.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics, shutdown: CancellationToken) -> anyhow::Result<()> {
    let upkeep = {
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(UPKEEP_EVERY) => metrics.0.run_upkeep(),
                }
            }
        }
    };
    let server = axum::serve(listener, router(metrics)).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let (served, ()) = tokio::join!(server, upkeep);
    served.context("serving metrics")
}
