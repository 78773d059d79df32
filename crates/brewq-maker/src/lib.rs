//! A coffee machine: takes one order at a time from the `coffeeMakers` work queue, asks the
//! controllers to record each step, brews through a [`Brewer`], settles the stock, and acks.
//! It keeps no state of its own, so any number can run and any can die mid-brew.

pub mod brewer;
mod control;
mod heartbeat;
mod order;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::consumer::PullConsumer;
use brewq_protocol::subjects;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use brewer::{BrewFailure, Brewer, SimulatedBrewer};
use heartbeat::Status;

/// Settings of one machine.
#[derive(Debug, Clone)]
pub struct Config {
    /// This machine's number, unique in the fleet.
    pub id: u32,
    /// Brew attempts of one order (across machines) before it ends failed.
    pub max_attempts: i64,
    /// Wait before a failed brew is offered again.
    pub retry_delay: Duration,
    /// How long the controllers and the stock manager may take to answer.
    pub request_timeout: Duration,
    /// How often the machine publishes its heartbeat.
    pub heartbeat_every: Duration,
}

impl Config {
    /// Defaults for machine `id`.
    pub fn new(id: u32) -> Self {
        Config {
            id,
            max_attempts: 5,
            retry_delay: Duration::from_secs(1),
            request_timeout: Duration::from_secs(3),
            heartbeat_every: Duration::from_secs(2),
        }
    }
}

/// What the order handling of one machine shares.
struct Machine<B> {
    config: Config,
    client: async_nats::Client,
    brewer: B,
    status: Arc<Status>,
    control: Arc<control::Control>,
    /// How often a brewing machine tells JetStream it is still working.
    progress_every: Duration,
}

/// Runs a machine until `shutdown` fires; a brew in progress then is handed back to the queue.
pub async fn run<B: Brewer>(config: Config, brewer: B, client: async_nats::Client, shutdown: CancellationToken) -> anyhow::Result<()> {
    let jetstream = async_nats::jetstream::new(client.clone());
    let Some(heartbeats) = brewq_runtime::kv::wait_for_bucket(&jetstream, subjects::MACHINES_BUCKET, &shutdown).await else {
        return Ok(());
    };
    let Some(holds) = brewq_runtime::kv::wait_for_bucket(&jetstream, subjects::MACHINE_HOLDS_BUCKET, &shutdown).await else {
        return Ok(());
    };
    let Some(consumer) = wait_for_consumer(&jetstream, &shutdown).await else { return Ok(()) };
    let status = Arc::new(Status::new(|size| brewer.expected_brew_time(size)));
    // In-progress three times per AckWait: one lost message does not cost the order.
    let progress_every = (consumer.cached_info().config.ack_wait / 3).max(Duration::from_millis(100));
    let control = Arc::new(control::Control::new());
    // Listening before the hold is read: a hold kept while the machine was not running is
    // either read here or sent to it again once kept (`command`).
    let requests = match client.subscribe(subjects::machine_control(config.id)).await {
        Ok(requests) => requests,
        Err(error) => anyhow::bail!("cannot listen for operator commands: {error}"),
    };
    control::restore(config.id, &holds, &control).await;
    status.follow(control.clone());
    let machine = Machine { config, client: client.clone(), brewer, status: status.clone(), control: control.clone(), progress_every };
    let tracker = TaskTracker::new();
    let stop_heartbeat = CancellationToken::new();
    tracker.spawn(heartbeat::publish(
        machine.config.id,
        machine.config.heartbeat_every,
        status.clone(),
        heartbeats,
        stop_heartbeat.clone(),
    ));
    let id = machine.config.id;
    let reply = move || {
        status.touch();
        serde_json::to_vec(&status.heartbeat(id, None)).unwrap_or_default()
    };
    tracker.spawn(control::serve(id, client.clone(), requests, control, holds, reply, stop_heartbeat.clone()));
    // Shown at 0 from the start, so that a dashboard sees the series before the first one.
    let label = machine.config.id.to_string();
    metrics::counter!("brewq_brew_failures_total", "machine" => label.clone()).increment(0);
    metrics::counter!("brewq_redeliveries_total", "machine" => label).increment(0);
    tracing::info!(machine = machine.config.id, "machine ready");
    tokio::select! {
        () = take_orders(&machine, &consumer, &shutdown) => {}
        () = past_grace(&shutdown, STOP_GRACE) => {
            tracing::warn!("the order in hand did not end within the stop's grace; it comes back to the queue after its ack wait");
        }
    }
    stop_heartbeat.cancel();
    tracker.close();
    if tokio::time::timeout(TASKS_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("the last heartbeat not written within the stop's grace");
    }
    // A machine cut off (its credential revoked, its servers gone) cannot flush what it sent.
    match tokio::time::timeout(TASKS_GRACE, client.drain()).await {
        Ok(drained) => drained.context("draining the NATS connection")?,
        Err(_) => tracing::warn!("the NATS connection not drained within the stop's grace"),
    }
    tracing::info!(machine = machine.config.id, "machine stopped");
    Ok(())
}

/// How long after the stop a machine may take to end the order in hand (hand it back, record
/// it): its servers answer within seconds, and a machine cut off from them must still stop.
const STOP_GRACE: Duration = Duration::from_secs(8);
/// How long its last heartbeat, then draining its connection, may each take.
const TASKS_GRACE: Duration = Duration::from_secs(2);

/// Returns `grace` after `shutdown` fires.
async fn past_grace(shutdown: &CancellationToken, grace: Duration) {
    shutdown.cancelled().await;
    tokio::time::sleep(grace).await;
}

/// Fetches one order at a time (never a prefetched batch, whose AckWait would run while it
/// waits) and handles it, until shutdown.
async fn take_orders<B: Brewer>(machine: &Machine<B>, consumer: &PullConsumer, shutdown: &CancellationToken) {
    while !shutdown.is_cancelled() {
        if !machine.control.wait_running(shutdown).await {
            break;
        }
        // Asking waits for the servers while disconnected (a revoked credential stays so).
        let fetched = tokio::select! {
            () = shutdown.cancelled() => break,
            fetched = consumer.batch().max_messages(1).expires(Duration::from_secs(5)).messages() => fetched,
        };
        let mut batch = match fetched {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, "cannot ask for an order");
                sleep_unless_stopped(shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            next = batch.next() => next,
        };
        // Paused while asking: an order that still arrives is brewed (pause finishes a brew).
        match next {
            Some(Ok(message)) => order::handle(machine, message, shutdown).await,
            Some(Err(error)) => {
                tracing::warn!(%error, "fetching an order failed");
                sleep_unless_stopped(shutdown, Duration::from_secs(1)).await;
            }
            None => {}
        }
    }
}

async fn wait_for_consumer(jetstream: &async_nats::jetstream::Context, shutdown: &CancellationToken) -> Option<PullConsumer> {
    loop {
        match jetstream.get_consumer_from_stream(subjects::MAKERS_CONSUMER, subjects::ORDERS_STREAM).await {
            Ok(consumer) => return Some(consumer),
            Err(error) => tracing::warn!(%error, "work queue not available yet"),
        }
        if sleep_unless_stopped(shutdown, Duration::from_millis(500)).await {
            return None;
        }
    }
}

/// Sleeps for `time`; true if shutdown came first.
async fn sleep_unless_stopped(shutdown: &CancellationToken, time: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(time) => false,
    }
}
