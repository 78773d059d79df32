//! `--metrics-listen`: the process's Prometheus recorder and the `/metrics` server beside a
//! service, started before it connects (so its connection events count) and stopped after it.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// The metrics server of this process, if one was asked for.
pub struct MetricsServer {
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl MetricsServer {
    /// Installs the recorder and serves it on `listen`; does nothing when `listen` is `None`.
    pub async fn start(listen: Option<&str>) -> anyhow::Result<MetricsServer> {
        let stop = CancellationToken::new();
        let Some(listen) = listen else { return Ok(MetricsServer { stop, task: None }) };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot serve metrics on {listen} (is it in use? choose another with --metrics-listen)"))?;
        let metrics = brewq_runtime::prometheus::install()?;
        tracing::info!(address = listen, "metrics on /metrics");
        let task = tokio::spawn(brewq_runtime::prometheus::serve(listener, metrics, stop.clone()));
        Ok(MetricsServer { stop, task: Some(task) })
    }

    /// Stops serving, once the service has stopped (its last figures stay readable until then).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        match self.task {
            Some(task) => task.await.context("the metrics server panicked")?,
            None => Ok(()),
        }
    }
}
