//! What every handler shares: the NATS client and the latest queue figures and pickup board,
//! kept fresh by background tasks.

use std::time::Duration;

use brewq_protocol::BoardView;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::queue::{Figures, refresh};

/// Shared by every request.
pub struct AppState {
    pub config: Config,
    pub client: async_nats::Client,
    pub queue: watch::Receiver<Figures>,
    /// The pickup board; `None` while it cannot be read.
    pub board: watch::Receiver<Option<BoardView>>,
    /// Fires when the server shuts down, to end open event streams.
    pub shutdown: CancellationToken,
    /// Failed logins, to slow guessing down.
    pub throttle: crate::admin::throttle::Throttle,
}

impl AppState {
    /// The state, and the task that keeps its figures fresh.
    pub fn new(
        config: Config,
        client: async_nats::Client,
        shutdown: CancellationToken,
    ) -> (AppState, impl std::future::Future<Output = ()> + Send + 'static) {
        let every = Duration::from_secs(1);
        let (sender, queue) = watch::channel(Figures::default());
        let (board_sender, board) = watch::channel(None);
        let figures = refresh(client.clone(), sender, every, shutdown.clone());
        let boards = crate::board::refresh(client.clone(), board_sender, every, shutdown.clone());
        let refresher = async move {
            futures::future::join(figures, boards).await;
        };
        let state = AppState { config, client, queue, board, shutdown, throttle: crate::admin::throttle::Throttle::default() };
        (state, refresher)
    }
}
