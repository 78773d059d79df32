//! The bare pipeline: an order's durable path with no service in it, measured raw on the same
//! cluster. Each order is published to a work queue with the work queue's settings and, once
//! its PubAck is in, recorded as queued in a bucket with the order records' settings; takers,
//! one per connection given, take one at a time, record it brewing then ready, and ack.
//! No stock, no request between services: what any design that keeps a replicated work queue
//! and the three recorded statuses of an order costs on this cluster, at the least.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, kv, message::PublishMessage};
use brewq_launch::provision::bench_records_bucket;
use brewq_protocol::{OrderRecord, OrderStatus, subjects};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use time::OffsetDateTime;

use super::raw::{RawFigure, Taken, bench_queue, feed, per_second, take};

/// Runs the bare pipeline for `duration`, one taker on each of the `takers` connections (the
/// same connection several times shares it); orders ready per second.
pub async fn measure(
    jetstream: &jetstream::Context,
    replicas: usize,
    takers: &[async_nats::Client],
    duration: Duration,
) -> anyhow::Result<RawFigure> {
    let _ = jetstream.delete_stream(subjects::BENCH_STREAM).await;
    let _ = jetstream.delete_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await;
    bench_queue(jetstream, replicas).await?;
    jetstream.create_stream(bench_records_bucket(replicas)).await.context("creating the bench records bucket")?;
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
    let ended = Taken::default();
    let start = Instant::now();
    // Customers: each order published, then recorded as queued.
    let feeding = feed(&ended, takers.len(), start, duration, |index| place(jetstream, &records, index));
    let taking = bound
        .iter()
        .map(|(consumer, records)| take(consumer, &ended, start, duration, |message| brew(records, message)))
        .collect::<FuturesUnordered<_>>();
    let (fed, taken) = tokio::join!(feeding, taking.collect::<Vec<_>>());
    fed?;
    per_second(start, taken)
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

/// A machine's part with nothing in between: record the order brewing, then ready, and ack.
async fn brew(records: &kv::Store, message: jetstream::Message) -> anyhow::Result<()> {
    let id = message
        .headers
        .as_ref()
        .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
        .map(|id| id.to_string())
        .context("bare pipeline order without its id")?;
    let index: u64 = id.trim_start_matches("bench-").parse().context("bare pipeline order id")?;
    records.put(&id, record(index, OrderStatus::Brewing).into()).await.context("bare pipeline brewing record")?;
    records.put(&id, record(index, OrderStatus::Ready).into()).await.context("bare pipeline ready record")?;
    message.ack().await.map_err(|error| anyhow::anyhow!("bare pipeline ack: {error}"))
}
