//! `brewq status` with no order id: the whole system at a glance. Each server (up or down,
//! from its monitoring endpoint), the JetStream meta leader and the work queue's stream leader,
//! the machines online, the queue, stock alerts, failed orders waiting for the operator, and
//! the leaked reservations the controllers settled.

mod monitor;
mod reconciled;
mod report;

use std::time::Duration;

use brewq_protocol::{StockCommand, StockReply, subjects};
use futures::TryStreamExt;
use serde::Serialize;

pub use monitor::ServerHealth;
pub use reconciled::ReconcilerHealth;

use crate::args::ShowStatusArgs as StatusArgs;

/// Everything `brewq status` shows.
#[derive(Debug, Serialize)]
pub struct Health {
    pub servers: Vec<ServerHealth>,
    /// The server leading JetStream's meta group (streams and consumers placement).
    pub meta_leader: Option<String>,
    /// The work-queue stream's leader and replicas.
    pub stream: Option<StreamHealth>,
    pub machines: MachinesHealth,
    pub queue: Option<QueueHealth>,
    /// Ingredients below their alert level.
    pub stock_alerts: Vec<StockAlert>,
    /// Failed orders waiting for the operator (`brewq failed`).
    pub dead_letters: Option<u64>,
    /// Leaked reservations the controllers released or committed (from the audit trail).
    pub reconciled: Option<ReconcilerHealth>,
    /// What could not be read, and why.
    pub errors: Vec<String>,
}

/// The `coffee-orders` stream's Raft group.
#[derive(Debug, Serialize)]
pub struct StreamHealth {
    pub name: String,
    pub leader: Option<String>,
    pub replicas: Vec<ReplicaHealth>,
}

/// One follower of the stream, as its leader sees it.
#[derive(Debug, Serialize)]
pub struct ReplicaHealth {
    pub name: String,
    pub current: bool,
    pub offline: bool,
    /// Entries the leader has committed that this follower has not stored, at the last read.
    pub lag: u64,
}

/// Machines with a heartbeat, and those taking orders now.
#[derive(Debug, Default, Serialize)]
pub struct MachinesHealth {
    pub online: usize,
    pub known: usize,
    /// Online and neither paused nor out of service; with none, orders wait in the queue.
    pub taking_orders: usize,
}

impl MachinesHealth {
    /// The counts of a fleet as `brewq machines` lists it.
    pub fn of(fleet: &[brewq_protocol::MachineView]) -> Self {
        MachinesHealth {
            online: fleet.iter().filter(|machine| machine.online).count(),
            known: fleet.len(),
            taking_orders: fleet.iter().filter(|machine| machine.takes_orders()).count(),
        }
    }
}

/// The makers' consumer.
#[derive(Debug, Serialize)]
pub struct QueueHealth {
    pub waiting: u64,
    pub in_flight: u64,
    pub redelivered: u64,
}

/// An ingredient to restock.
#[derive(Debug, Serialize)]
pub struct StockAlert {
    pub ingredient: String,
    pub on_hand: u64,
    pub low_at: u64,
}

/// Prints the system's health; fails (after printing it) when the system is degraded, so that
/// a script or a monitoring probe can run `brewq status` as its check.
pub async fn run(args: &StatusArgs) -> anyhow::Result<()> {
    // Without a system to look at there is nothing to report, not an empty, healthy-looking one.
    if args.monitor_url.is_empty() && args.client.connect.nats_url.is_empty() {
        brewq_launch::ClusterInfo::load(&args.client.connect.data_dir)?;
    }
    let health = gather(args).await;
    if args.client.json {
        crate::output::json(&health);
    } else {
        report::print(&health);
    }
    let problems = health.problems();
    anyhow::ensure!(problems.is_empty(), "degraded: {}", problems.join("; "));
    Ok(())
}

impl Health {
    /// What is wrong with the cluster itself: a server down, no JetStream meta leader, the work
    /// queue without a leader or with a replica behind, a figure that could not be read. Stock
    /// alerts and failed orders are work for the operator, not a degraded system.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self.servers.iter().filter(|server| !server.up).map(ServerHealth::describe_down).collect();
        if self.servers.is_empty() {
            problems.push("no server monitoring URL known".into());
        }
        if self.meta_leader.is_none() {
            problems.push("no JetStream meta leader".into());
        }
        match &self.stream {
            Some(stream) if stream.leader.is_none() => problems.push(format!("stream {} has no leader", stream.name)),
            Some(stream) => problems.extend(stream.replicas.iter().filter(|replica| replica.offline || !replica.current).map(|replica| {
                match replica.offline {
                    true => format!("replica {} of {} is offline", replica.name, stream.name),
                    false => format!("replica {} of {} stays behind its leader ({} entries)", replica.name, stream.name, replica.lag),
                }
            })),
            None => {}
        }
        problems.extend(self.errors.iter().cloned());
        problems
    }
}

/// Reads every figure; what cannot be read is listed in `errors`, never fatal.
async fn gather(args: &StatusArgs) -> Health {
    let monitor_urls = monitor_urls(args);
    let mut servers = futures::future::join_all(monitor_urls.iter().map(|url| monitor::server(url))).await;
    if args.monitor_url.is_empty() {
        // A server that is down does not say its name: cluster.json lists the nodes in order,
        // and brewq names them by their place.
        for (index, server) in servers.iter_mut().enumerate() {
            server.name.get_or_insert_with(|| brewq_launch::cluster::node_name(index));
        }
    }
    let mut meta_leader = None;
    for server in servers.iter().filter(|server| server.up) {
        meta_leader = monitor::meta_leader(&server.url).await;
        if meta_leader.is_some() {
            break;
        }
    }
    let mut health = Health {
        servers,
        meta_leader,
        stream: None,
        machines: MachinesHealth::default(),
        queue: None,
        stock_alerts: Vec::new(),
        dead_letters: None,
        reconciled: None,
        errors: Vec::new(),
    };
    match tokio::time::timeout(Duration::from_secs(10), super::admin(&args.client)).await {
        Ok(Ok(client)) => read_system(&client, &mut health).await,
        Ok(Err(error)) => health.errors.push(crate::output::chain(&error)),
        Err(_) => health.errors.push("no NATS server answered within 10 s".into()),
    }
    health
}

/// `--monitor-url`, else the monitoring URLs in `cluster.json`.
fn monitor_urls(args: &StatusArgs) -> Vec<String> {
    if !args.monitor_url.is_empty() {
        return args.monitor_url.clone();
    }
    brewq_launch::ClusterInfo::load(&args.client.connect.data_dir).map(|info| info.monitor_urls).unwrap_or_default()
}

/// The figures read over NATS with the admin role.
async fn read_system(client: &async_nats::Client, health: &mut Health) {
    let jetstream = async_nats::jetstream::new(client.clone());
    match stream_health(&jetstream).await {
        Ok(stream) => health.stream = Some(stream),
        Err(error) => health.errors.push(format!("stream {}: {}", subjects::ORDERS_STREAM, crate::output::chain(&error))),
    }
    match queue_health(&jetstream).await {
        Ok(queue) => health.queue = Some(queue),
        Err(error) => health.errors.push(format!("queue: {}", crate::output::chain(&error))),
    }
    match super::machines::list(client).await {
        Ok(fleet) => health.machines = MachinesHealth::of(&fleet),
        Err(error) => health.errors.push(format!("machines: {}", crate::output::chain(&error))),
    }
    match stock_alerts(client).await {
        Ok(alerts) => health.stock_alerts = alerts,
        Err(error) => health.errors.push(format!("stock: {}", crate::output::chain(&error))),
    }
    match dead_letters(client).await {
        Ok(count) => health.dead_letters = Some(count),
        Err(error) => health.errors.push(format!("failed orders: {}", crate::output::chain(&error))),
    }
    match reconciled::read(&jetstream).await {
        Ok(reconciled) => health.reconciled = Some(reconciled),
        Err(error) => health.errors.push(format!("reconciler: {}", crate::output::chain(&error))),
    }
}

/// A follower is "current" when it has stored everything its leader applied, so any write can
/// leave one a few entries behind for a moment. A follower counts as behind only when it stays
/// so over a few reads spread across about two seconds; then it is lagging for real.
async fn stream_health(jetstream: &async_nats::jetstream::Context) -> anyhow::Result<StreamHealth> {
    const READS: usize = 5;
    let mut stream = jetstream.get_stream(subjects::ORDERS_STREAM).await?;
    let mut health = read_stream_health(&mut stream).await?;
    for _ in 1..READS {
        if health.replicas.iter().all(|replica| replica.current && !replica.offline) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let again = read_stream_health(&mut stream).await?;
        health.leader = again.leader;
        for replica in &mut health.replicas {
            if let Some(seen) = again.replicas.iter().find(|seen| seen.name == replica.name) {
                replica.current |= seen.current;
                replica.offline &= seen.offline;
                replica.lag = seen.lag;
            }
        }
    }
    Ok(health)
}

async fn read_stream_health(stream: &mut async_nats::jetstream::stream::Stream) -> anyhow::Result<StreamHealth> {
    let cluster = stream.info().await?.cluster.clone().unwrap_or_default();
    let replicas = cluster
        .replicas
        .into_iter()
        .map(|peer| ReplicaHealth { name: peer.name, current: peer.current, offline: peer.offline, lag: peer.lag.unwrap_or(0) })
        .collect();
    Ok(StreamHealth { name: subjects::ORDERS_STREAM.into(), leader: cluster.leader, replicas })
}

async fn queue_health(jetstream: &async_nats::jetstream::Context) -> anyhow::Result<QueueHealth> {
    let queue = brewq_controller::work_queue(jetstream).await?;
    Ok(QueueHealth { waiting: queue.waiting, in_flight: queue.in_flight, redelivered: queue.redelivered })
}

async fn stock_alerts(client: &async_nats::Client) -> anyhow::Result<Vec<StockAlert>> {
    let subject = subjects::stock_subject(&StockCommand::Get);
    let reply = brewq_runtime::request::request_json(client, &subject, &StockCommand::Get, Duration::from_secs(5)).await?;
    let stock = match reply {
        StockReply::Snapshot { stock } => stock,
        StockReply::Error { message } => anyhow::bail!("the stock manager cannot read the levels now: {message}"),
        other => anyhow::bail!("unexpected stock reply {other:?}"),
    };
    let low = stock.levels.into_iter().filter(|(_, level)| level.is_low());
    Ok(low
        .map(|(ingredient, level)| StockAlert { ingredient: ingredient.as_str().into(), on_hand: level.on_hand, low_at: level.low_at })
        .collect())
}

async fn dead_letters(client: &async_nats::Client) -> anyhow::Result<u64> {
    let store = super::bucket(client, subjects::DEAD_LETTERS_BUCKET).await?;
    let keys: Vec<String> = store.keys().await?.try_collect().await?;
    Ok(keys.len() as u64)
}
