//! The bare pipeline: an order's durable path with no service in it, measured raw on the same
//! cluster. Each order is published to a work queue with the work queue's settings and, once
//! its PubAck is in, recorded as queued in a bucket with the order records' settings; takers,
//! one per connection given, take one at a time, record it brewing then ready, and ack.
//! No stock, no request between services: what any design that keeps a replicated work queue
//! and the three recorded statuses of an order costs on this cluster, at the least.
//! Measured as fast as it goes, and paced at the run's rate for its latencies.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, kv, message::PublishMessage};
use brewq_launch::provision::{bench_records_bucket, create_scratch_stream};
use brewq_protocol::{OrderRecord, OrderStatus, subjects};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use time::OffsetDateTime;

use super::raw::{RawFigure, Taken, bench_queue, feed, per_second, take, take_one};
use super::stats::Latency;

/// How long the takers of a paced run wait, after the last order is due, for it to be ready.
const PACED_GRACE: Duration = Duration::from_secs(30);

/// The bare pipeline paced at a rate, as the run's load is.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PacedFigure {
    /// Orders per second asked for.
    pub rate: f64,
    /// From the moment an order was due to its queued record written (its PubAck in before).
    pub acceptance: Latency,
    /// From the moment an order was due to its ready record written and its ack sent.
    pub order_to_ready: Latency,
}

/// Each taker bound to the bench work queue and records, on its own connection.
type Bound = Vec<(jetstream::consumer::PullConsumer, kv::Store)>;

/// Makes the bench work queue and records bucket afresh and binds each taker to them.
async fn prepare(jetstream: &jetstream::Context, replicas: usize, takers: &[async_nats::Client]) -> anyhow::Result<(kv::Store, Bound)> {
    let _ = jetstream.delete_stream(subjects::BENCH_STREAM).await;
    let _ = jetstream.delete_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await;
    bench_queue(jetstream, replicas).await?;
    create_scratch_stream(jetstream, bench_records_bucket(replicas)).await?;
    let records = jetstream.get_key_value(subjects::BENCH_BUCKET).await.context("binding the bench records bucket")?;
    let mut bound = Vec::new();
    for client in takers {
        let jetstream = jetstream::new(client.clone());
        let consumer: jetstream::consumer::PullConsumer = jetstream
            .get_consumer_from_stream(subjects::BENCH_CONSUMER, subjects::BENCH_STREAM)
            .await
            .context("binding a taker to the bench work queue")?;
        let records = jetstream.get_key_value(subjects::BENCH_BUCKET).await.context("binding a taker to the bench records")?;
        bound.push((consumer, records));
    }
    Ok((records, bound))
}

/// Runs the bare pipeline for `duration`, one taker on each of the `takers` connections (the
/// same connection several times shares it); orders ready per second.
pub async fn measure(
    jetstream: &jetstream::Context,
    replicas: usize,
    takers: &[async_nats::Client],
    duration: Duration,
) -> anyhow::Result<RawFigure> {
    let (records, bound) = prepare(jetstream, replicas, takers).await?;
    let ended = Taken::default();
    let start = Instant::now();
    // Customers: each order published, then recorded as queued.
    let feeding = feed(&ended, takers.len(), start, duration, |index| place(jetstream, &records, index));
    let taking = bound
        .iter()
        .map(|(consumer, records)| take(consumer, &ended, start, duration, |message| async { brew(records, message).await.map(drop) }))
        .collect::<FuturesUnordered<_>>();
    let (fed, taken) = tokio::join!(feeding, taking.collect::<Vec<_>>());
    fed?;
    per_second(start, taken)
}

/// Runs the bare pipeline at `rate` orders/s for `duration`: the n-th order is due `n / rate`
/// after the start and placed then, whatever the ones before it are doing, as the run's load
/// sends them; each is timed from then to its queued record, and to its ready record.
pub async fn at_rate(
    jetstream: &jetstream::Context,
    replicas: usize,
    takers: &[async_nats::Client],
    rate: f64,
    duration: Duration,
) -> anyhow::Result<PacedFigure> {
    let (records, bound) = prepare(jetstream, replicas, takers).await?;
    let orders = ((duration.as_secs_f64() * rate).ceil() as u64).max(1);
    let start = Instant::now();
    let due = |index: u64| start + Duration::from_secs_f64(index as f64 / rate);
    let deadline = due(orders) + PACED_GRACE;
    let (ready, ended) = (Mutex::new(Vec::new()), Taken::default());
    let taking = bound
        .iter()
        .map(|(consumer, records)| async {
            while ended.count.load(Ordering::Relaxed) < orders && Instant::now() < deadline {
                if let Some(message) = take_one(consumer).await? {
                    let index = brew(records, message).await?;
                    ready.lock().expect("ready").push(due(index).elapsed());
                    ended.one_more();
                }
            }
            anyhow::Ok(())
        })
        .collect::<FuturesUnordered<_>>();
    let (accepted, taken) = tokio::join!(place_paced(jetstream, &records, orders, due), taking.collect::<Vec<_>>());
    let mut accepted = accepted?;
    taken.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let mut ready = ready.into_inner().expect("ready");
    anyhow::ensure!(ready.len() as u64 == orders, "the bare pipeline brewed {} of {orders} orders paced at {rate}/s", ready.len());
    Ok(PacedFigure { rate, acceptance: Latency::of(&mut accepted), order_to_ready: Latency::of(&mut ready) })
}

/// Places `orders` orders, each at its `due` moment, while the earlier ones are still in
/// flight; how long each took from its due moment to its queued record.
async fn place_paced(
    jetstream: &jetstream::Context,
    records: &kv::Store,
    orders: u64,
    due: impl Fn(u64) -> Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut placing = FuturesUnordered::new();
    let mut accepted = Vec::new();
    for index in 0..orders {
        let wait = tokio::time::sleep_until(due(index).into());
        tokio::pin!(wait);
        // Collect the answers while waiting for the next order's moment.
        loop {
            tokio::select! {
                () = &mut wait => break,
                Some(placed) = placing.next() => accepted.push(placed?),
            }
        }
        let due = due(index);
        placing.push(async move { place(jetstream, records, index).await.map(|()| due.elapsed()) });
    }
    while let Some(placed) = placing.next().await {
        accepted.push(placed?);
    }
    Ok(accepted)
}

/// A record as the controller writes it, for the bench order `index`.
fn record(index: u64, status: OrderStatus) -> Vec<u8> {
    let mut record = OrderRecord::queued(&format!("bench-{index}"), super::load::order(index as usize), OffsetDateTime::now_utc());
    if status != OrderStatus::Queued {
        // Ready is reached through brewing, as a machine moves it.
        let _ = record.transition(OrderStatus::Brewing, Some(1), None, OffsetDateTime::now_utc());
        if status == OrderStatus::Ready {
            let _ = record.transition(OrderStatus::Ready, Some(1), None, OffsetDateTime::now_utc());
        }
    }
    serde_json::to_vec(&record).expect("record serializes")
}

/// One order placed: queued with its PubAck, then recorded.
async fn place(jetstream: &jetstream::Context, records: &kv::Store, index: u64) -> anyhow::Result<()> {
    let id = format!("bench-{index}");
    let payload = serde_json::to_vec(&super::load::order(index as usize)).expect("order serializes");
    let message = PublishMessage::build().message_id(id.as_str()).payload(payload.into());
    jetstream.send_publish(subjects::BENCH_QUEUE, message).await.context("bare pipeline publish")?.await.context("bare pipeline PubAck")?;
    // A put, not a create: a taker may already have recorded it brewing (as a machine does
    // when its controller is late).
    records.put(&id, record(index, OrderStatus::Queued).into()).await.context("bare pipeline queued record")?;
    Ok(())
}

/// A machine's part with nothing in between: record the order brewing, then ready, and ack;
/// the order's index.
async fn brew(records: &kv::Store, message: jetstream::Message) -> anyhow::Result<u64> {
    let id = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|id| id.to_string())
        .context("bare pipeline order without its id")?;
    let index: u64 = id.trim_start_matches("bench-").parse().context("bare pipeline order id")?;
    records.put(&id, record(index, OrderStatus::Brewing).into()).await.context("bare pipeline brewing record")?;
    records.put(&id, record(index, OrderStatus::Ready).into()).await.context("bare pipeline ready record")?;
    message.ack().await.map_err(|error| anyhow::anyhow!("bare pipeline ack: {error}"))?;
    Ok(index)
}
