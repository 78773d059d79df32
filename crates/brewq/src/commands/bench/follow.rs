//! Watches the order records from before the first order is sent, and notes when each order
//! reaches its end (ready, failed or cancelled).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use brewq_protocol::{OrderRecord, OrderStatus, subjects};
use futures::StreamExt;

/// When each order ended, and how, by order id.
pub type Ends = Arc<Mutex<HashMap<String, (Instant, OrderStatus)>>>;

/// Starts watching; the watch runs until the returned task is aborted.
pub async fn start(client: &async_nats::Client) -> anyhow::Result<(Ends, tokio::task::JoinHandle<()>)> {
    let records = super::super::bucket(client, subjects::ORDERS_BUCKET).await?;
    // New changes only: the records of earlier runs are not this run's.
    let mut watch = records.watch(">").await.context("watching the order records")?;
    let ends = Ends::default();
    let noted = ends.clone();
    let task = tokio::spawn(async move {
        while let Some(entry) = watch.next().await {
            let Ok(entry) = entry else { continue };
            let Ok(record) = serde_json::from_slice::<OrderRecord>(&entry.value) else { continue };
            if record.status.is_terminal() {
                noted.lock().expect("ends").entry(record.id).or_insert((Instant::now(), record.status));
            }
        }
    });
    Ok((ends, task))
}
