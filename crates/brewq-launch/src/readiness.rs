//! Is the system up? Probes with no side effects: a stock read, an empty order (refused as
//! invalid before anything else happens), and the machines' heartbeats.

use std::time::Duration;

use brewq_protocol::{MachineHeartbeat, OrderReply, StockCommand, StockReply, subjects};
use brewq_runtime::request::{request_bytes, request_json};

use crate::SystemConfig;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes every 100 ms until everything is ready; what still is not, in words, once
/// `timeout` has passed.
pub(crate) async fn wait(
    admin: &async_nats::Client,
    config: &SystemConfig,
    machines: &[u32],
    since: time::OffsetDateTime,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let waiting = not_ready(admin, config, machines, since).await;
        if waiting.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(waiting);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What is not ready yet, in words; empty when everything is.
pub(crate) async fn not_ready(admin: &async_nats::Client, config: &SystemConfig, machines: &[u32], since: time::OffsetDateTime) -> String {
    if config.stock_managers > 0 {
        let stock: Result<StockReply, _> =
            request_json(admin, &subjects::stock_subject(&StockCommand::Get), &StockCommand::Get, PROBE_TIMEOUT).await;
        if !matches!(stock, Ok(StockReply::Snapshot { .. })) {
            return "stock manager".into();
        }
    }
    if config.controllers > 0 {
        let reply: Result<OrderReply, _> = request_bytes(admin, subjects::ORDER_REQUESTS, b"{}".to_vec(), PROBE_TIMEOUT).await;
        if reply.is_err() {
            return "controller".into();
        }
    }
    if let Some(listen) = &config.web_listen
        && tokio::net::TcpStream::connect(listen.as_str()).await.is_err()
    {
        return "web shop".into();
    }
    if let Some(listen) = &config.office_listen
        && tokio::net::TcpStream::connect(listen.as_str()).await.is_err()
    {
        return "operator's pages".into();
    }
    let Ok(store) = async_nats::jetstream::new(admin.clone()).get_key_value(subjects::MACHINES_BUCKET).await else {
        return "machines bucket".into();
    };
    for &id in machines {
        let heartbeat = brewq_runtime::kv::get_json::<MachineHeartbeat>(&store, &subjects::machine_key(id)).await;
        let fresh = matches!(heartbeat, Ok(Some((beat, _))) if beat.at >= since && beat.is_online(brewq_protocol::now()));
        if !fresh {
            return format!("machine {id}");
        }
    }
    String::new()
}
