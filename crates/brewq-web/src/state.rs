//! What every handler shares: the NATS client and the latest queue figures, kept fresh by one
//! background task.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::queue::{Figures, refresh};

/// Shared by every request.
pub struct AppState {
    pub config: Config,
    pub client: async_nats::Client,
    pub queue: watch::Receiver<Figures>,
    /// Fires when the server shuts down, to end open event streams.
    pub shutdown: CancellationToken,
    /// Failed logins, to slow guessing down.
    pub throttle: crate::admin::throttle::Throttle,
}

impl AppState {
    /// The state, and the task that keeps its queue figures fresh.
    pub fn new(
        config: Config,
        client: async_nats::Client,
        shutdown: CancellationToken,
    ) -> (AppState, impl std::future::Future<Output = ()> + Send + 'static) {
        let (sender, queue) = watch::channel(Figures::default());
        let refresher = refresh(client.clone(), sender, Duration::from_secs(1), shutdown.clone());
        let state = AppState { config, client, queue, shutdown, throttle: crate::admin::throttle::Throttle::default() };
        (state, refresher)
    }
}
