//! What every handler shares: the NATS client, the buckets (bound on first use), and the latest
//! queue figures kept fresh by one background task.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use brewq_protocol::subjects;
use tokio::sync::{OnceCell, watch};
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::queue::{QueueSnapshot, refresh};

/// Shared by every request.
pub struct AppState {
    pub config: Config,
    pub client: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    pub queue: watch::Receiver<QueueSnapshot>,
    /// Fires when the server shuts down, to end open event streams.
    pub shutdown: CancellationToken,
    /// Failed logins, to slow guessing down.
    pub throttle: crate::admin::session::Throttle,
    records: OnceCell<Store>,
}

impl AppState {
    /// The state, and the task that keeps its queue figures fresh.
    pub fn new(
        config: Config,
        client: async_nats::Client,
        shutdown: CancellationToken,
    ) -> (AppState, impl std::future::Future<Output = ()> + Send + 'static) {
        let jetstream = async_nats::jetstream::new(client.clone());
        let (sender, queue) = watch::channel(QueueSnapshot::default());
        let refresher = refresh(jetstream.clone(), sender, Duration::from_secs(1), shutdown.clone());
        let state = AppState {
            config,
            client,
            jetstream,
            queue,
            shutdown,
            throttle: crate::admin::session::Throttle::default(),
            records: OnceCell::new(),
        };
        (state, refresher)
    }

    /// The order-record bucket.
    pub async fn records(&self) -> anyhow::Result<&Store> {
        self.records
            .get_or_try_init(|| async {
                self.jetstream.get_key_value(subjects::ORDERS_BUCKET).await.context("binding the order records")
            })
            .await
    }
}
