//! The raw ceilings, measured on the same cluster in the same run: a JetStream publish with
//! PubAck, pipelined, on a stream with the work queue's settings; takes from a work queue, one
//! message at a time and acked, by as many takers as there are machines; and a
//! compare-and-swap on one KV key, on a bucket with the stock bucket's settings; and the bare
//! pipeline, an order's durable path with no service in it. Each stream and bucket is made for
//! the run and deleted after it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, message::PublishMessage};
use brewq_launch::provision::{bench_bucket, bench_queue_consumer, bench_queue_stream, bench_stream, create_scratch_stream};
use brewq_protocol::subjects;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::Notify;

use super::stats::Latency;

/// Publishes waiting for their PubAck at once.
pub(super) const WINDOW: usize = 256;

/// One raw figure.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RawFigure {
    pub per_second: f64,
    pub latency: Latency,
}

/// The raw figures.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RawFigures {
    pub replicas: usize,
    pub jetstream_publish: RawFigure,
    /// Messages taken and acked per second; the latency is one take, from asking to ack.
    pub work_queue_take: RawFigure,
    /// Takers at once in `work_queue_take`.
    pub takers: usize,
    pub kv_compare_and_swap: RawFigure,
    /// Orders per second through the bare pipeline, each taker on a connection of its own as
    /// each machine is; the latency is one order's take, from asking to ack.
    pub bare_pipeline: RawFigure,
    /// The same with every taker on one connection, which batches their traffic.
    pub bare_pipeline_one_connection: RawFigure,
    /// The bare pipeline at the run's rate, each taker on a connection of its own: the
    /// latencies any design that keeps a replicated work queue and an order's recorded
    /// statuses has at that rate on this cluster. Only for a run with `--rate`.
    pub bare_pipeline_at_rate: Option<super::bare::PacedFigure>,
}

/// Measures each ceiling for `duration`, as the provisioner (the one role that may make and
/// delete the streams and the bucket); one taker per connection in `takers` takes from the
/// work queue at once. With a `rate`, the bare pipeline is also paced at it.
pub async fn measure(
    client: &async_nats::Client,
    duration: Duration,
    takers: &[async_nats::Client],
    rate: Option<f64>,
) -> anyhow::Result<RawFigures> {
    let jetstream = jetstream::new(client.clone());
    let replicas = jetstream
        .get_stream(subjects::ORDERS_STREAM)
        .await
        .context("reading the orders stream (is the cluster provisioned?)")?
        .cached_info()
        .config
        .num_replicas;
    let publish = publish(&jetstream, replicas, duration).await;
    let _ = jetstream.delete_stream(subjects::BENCH_STREAM).await;
    let take = work_queue(&jetstream, replicas, takers.len(), duration).await;
    let _ = jetstream.delete_stream(subjects::BENCH_STREAM).await;
    let cas = compare_and_swap(&jetstream, replicas, duration).await;
    let _ = jetstream.delete_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await;
    let bare_shared = super::bare::measure(&jetstream, replicas, &vec![client.clone(); takers.len()], duration).await;
    let bare = super::bare::measure(&jetstream, replicas, takers, duration).await;
    let paced = match rate {
        Some(rate) => Some(super::bare::at_rate(&jetstream, replicas, takers, rate, duration).await),
        None => None,
    };
    let _ = jetstream.delete_stream(subjects::BENCH_STREAM).await;
    let _ = jetstream.delete_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await;
    Ok(RawFigures {
        replicas,
        jetstream_publish: publish?,
        work_queue_take: take?,
        takers: takers.len(),
        kv_compare_and_swap: cas?,
        bare_pipeline: bare?,
        bare_pipeline_one_connection: bare_shared?,
        bare_pipeline_at_rate: paced.transpose()?,
    })
}

/// `takers` tasks take one message at a time from a work queue and ack it, as machines take
/// orders, while the queue is kept filled.
async fn work_queue(jetstream: &jetstream::Context, replicas: usize, takers: usize, duration: Duration) -> anyhow::Result<RawFigure> {
    let consumer = bench_queue(jetstream, replicas).await?;
    let taken = Taken::default();
    let start = Instant::now();
    let payload: Vec<u8> = serde_json::to_vec(&super::load::order(0)).expect("order serializes");
    let feeding = feed(&taken, takers, start, duration, |_| async {
        let message = PublishMessage::build().message_id(nuid::next().as_str()).payload(payload.clone().into());
        jetstream
            .send_publish(subjects::BENCH_QUEUE, message)
            .await
            .context("raw queue publish")?
            .await
            .context("raw queue publish ack")?;
        Ok(())
    });
    let taking = (0..takers).map(|_| take(&consumer, &taken, start, duration, ack)).collect::<FuturesUnordered<_>>();
    let (fed, taken_latencies) = tokio::join!(feeding, taking.collect::<Vec<_>>());
    fed?;
    per_second(start, taken_latencies)
}

/// Makes the bench work queue and its takers' consumer.
pub(super) async fn bench_queue(jetstream: &jetstream::Context, replicas: usize) -> anyhow::Result<jetstream::consumer::PullConsumer> {
    let info = create_scratch_stream(jetstream, bench_queue_stream(replicas)).await?;
    let stream = jetstream.get_stream(&info.config.name).await.context("binding the bench work queue")?;
    stream.create_consumer(bench_queue_consumer(replicas)).await.context("creating the bench takers' consumer")
}

/// The figure of takers that each timed their takes since `start`.
pub(super) fn per_second(start: Instant, takers: Vec<anyhow::Result<Vec<Duration>>>) -> anyhow::Result<RawFigure> {
    let mut latencies = Vec::new();
    for taker in takers {
        latencies.extend(taker?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(RawFigure { per_second: latencies.len() as f64 / elapsed, latency: Latency::of(&mut latencies) })
}

/// Messages taken so far; a take wakes the feeder.
#[derive(Default)]
pub(super) struct Taken {
    pub count: AtomicU64,
    pub wanted: Notify,
}

impl Taken {
    pub fn one_more(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.wanted.notify_one();
    }
}

/// Keeps a few messages per taker waiting in the queue, [`WINDOW`] placed at a time:
/// `place(n)` places the n-th (and returns once the stream has it).
pub(super) async fn feed<F, Fut>(taken: &Taken, takers: usize, start: Instant, duration: Duration, mut place: F) -> anyhow::Result<()>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let ahead = (4 * takers + WINDOW) as u64;
    let mut placed = 0u64;
    let mut in_flight = FuturesUnordered::new();
    while start.elapsed() < duration {
        if placed < taken.count.load(Ordering::Relaxed) + ahead && in_flight.len() < WINDOW {
            in_flight.push(place(placed));
            placed += 1;
            continue;
        }
        match in_flight.next().await {
            Some(placed) => placed?,
            // Far enough ahead, and every one placed: wait for a take.
            None => {
                let left = duration.saturating_sub(start.elapsed());
                let _ = tokio::time::timeout(left, taken.wanted.notified()).await;
            }
        }
    }
    while let Some(placed) = in_flight.next().await {
        placed?;
    }
    Ok(())
}

/// One taker: take one message, `handle` it (which acks it), again, until `duration` is over;
/// the time of each, from asking to the end of `handle`.
pub(super) async fn take<H, Fut>(
    consumer: &jetstream::consumer::PullConsumer,
    taken: &Taken,
    start: Instant,
    duration: Duration,
    handle: H,
) -> anyhow::Result<Vec<Duration>>
where
    H: Fn(jetstream::Message) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut latencies = Vec::new();
    while start.elapsed() < duration {
        let asked = Instant::now();
        if let Some(message) = take_one(consumer).await? {
            handle(message).await?;
            latencies.push(asked.elapsed());
            taken.one_more();
        }
    }
    Ok(latencies)
}

/// Acks a raw take.
async fn ack(message: jetstream::Message) -> anyhow::Result<()> {
    message.ack().await.map_err(|error| anyhow::anyhow!("raw take ack: {error}"))
}

/// Asks for one message, as a machine does; `None` if none came within a second, or if the
/// consumer could not answer yet: a consumer made a moment ago may have no leader, and its
/// pull then ends in a 503 status, which a machine also waits out.
pub(super) async fn take_one(consumer: &jetstream::consumer::PullConsumer) -> anyhow::Result<Option<jetstream::Message>> {
    let mut batch = consumer.batch().max_messages(1).expires(Duration::from_secs(1)).messages().await.context("raw take")?;
    match batch.next().await.transpose() {
        // async-nats reports a pull's status in the error's text only.
        Err(error) if error.to_string().contains(": 503,") => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(None)
        }
        taken => taken.map_err(|error| anyhow::anyhow!("raw take: {error}")),
    }
}

/// Pipelined publishes, [`WINDOW`] in flight, each with a `Nats-Msg-Id` like an order's.
async fn publish(jetstream: &jetstream::Context, replicas: usize, duration: Duration) -> anyhow::Result<RawFigure> {
    create_scratch_stream(jetstream, bench_stream(replicas)).await?;
    let payload: Vec<u8> = serde_json::to_vec(&super::load::order(0)).expect("order serializes");
    let mut in_flight = FuturesUnordered::new();
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration || !in_flight.is_empty() {
        if in_flight.len() < WINDOW && start.elapsed() < duration {
            let message = PublishMessage::build().message_id(nuid::next().as_str()).payload(payload.clone().into());
            let sent = Instant::now();
            let ack = jetstream.send_publish(subjects::BENCH_PUBLISH, message).await.context("raw publish")?;
            in_flight.push(async move { ack.await.map(|_| sent.elapsed()) });
        } else if let Some(acked) = in_flight.next().await {
            latencies.push(acked.context("raw publish ack")?);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(RawFigure { per_second: latencies.len() as f64 / elapsed, latency: Latency::of(&mut latencies) })
}

/// Compare-and-swaps on one key, one after the other (each needs the last one's revision).
async fn compare_and_swap(jetstream: &jetstream::Context, replicas: usize, duration: Duration) -> anyhow::Result<RawFigure> {
    create_scratch_stream(jetstream, bench_bucket(replicas)).await?;
    let store = jetstream.get_key_value(subjects::BENCH_BUCKET).await.context("binding the bench bucket")?;
    let value: Vec<u8> = b"{\"levels\":{}}".to_vec();
    let mut revision = store.put("cas", value.clone().into()).await.context("raw put")?;
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < duration {
        let sent = Instant::now();
        revision = store.update("cas", value.clone().into(), revision).await.context("raw compare-and-swap")?;
        latencies.push(sent.elapsed());
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(RawFigure { per_second: latencies.len() as f64 / elapsed, latency: Latency::of(&mut latencies) })
}
