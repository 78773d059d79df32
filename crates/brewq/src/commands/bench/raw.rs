//! The raw ceilings, measured on the same cluster in the same run: a JetStream publish with
//! PubAck, pipelined, on a stream with the work queue's settings; and a compare-and-swap on
//! one KV key, on a bucket with the stock bucket's settings. Both are made for the run and
//! deleted after it.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, message::PublishMessage};
use brewq_launch::provision::{bench_bucket, bench_stream};
use brewq_protocol::subjects;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;

use super::stats::Latency;

/// Publishes waiting for their PubAck at once.
const WINDOW: usize = 256;

/// One raw figure.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RawFigure {
    pub per_second: f64,
    pub latency: Latency,
}

/// Both raw figures.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RawFigures {
    pub replicas: usize,
    pub jetstream_publish: RawFigure,
    pub kv_compare_and_swap: RawFigure,
}

/// Measures both ceilings for `duration` each, as the provisioner (the one role that may
/// make and delete the stream and the bucket).
pub async fn measure(client: &async_nats::Client, duration: Duration) -> anyhow::Result<RawFigures> {
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
    let cas = compare_and_swap(&jetstream, replicas, duration).await;
    let _ = jetstream.delete_stream(format!("KV_{}", subjects::BENCH_BUCKET)).await;
    Ok(RawFigures { replicas, jetstream_publish: publish?, kv_compare_and_swap: cas? })
}

/// Pipelined publishes, [`WINDOW`] in flight, each with a `Nats-Msg-Id` like an order's.
async fn publish(jetstream: &jetstream::Context, replicas: usize, duration: Duration) -> anyhow::Result<RawFigure> {
    jetstream.create_or_update_stream(bench_stream(replicas)).await.context("creating the bench stream")?;
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
    jetstream.create_or_update_stream(bench_bucket(replicas)).await.context("creating the bench bucket")?;
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
