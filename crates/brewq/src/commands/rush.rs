//! `brewq rush`: a simulated rush against a running system, to see how right the ETA is. It
//! places orders of mixed sizes at once, follows each to its end, and compares the ETA first
//! shown to each customer with the wait they actually had.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use brewq_protocol::{OrderRecord, OrderReply, OrderRequest, OrderStatus, subjects};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::args::RushArgs;
use crate::output;

/// The report.
#[derive(Debug, Serialize)]
pub struct RushReport {
    pub orders: usize,
    pub ready: usize,
    pub failed: usize,
    /// Absolute error of the first ETA, in seconds.
    pub eta_error_median_seconds: f64,
    pub eta_error_p90_seconds: f64,
    /// Error of the first ETA relative to the wait the customer had (0.05 = 5 %).
    pub eta_error_median_share: f64,
    pub eta_error_p90_share: f64,
    /// Share of the ready orders whose wait fell in the range first shown beside the ETA.
    pub within_range_share: f64,
    /// Actual waits, in seconds.
    pub wait_median_seconds: f64,
    pub wait_p90_seconds: f64,
}

/// Runs the rush and prints the report.
pub async fn run(args: RushArgs) -> anyhow::Result<()> {
    let client = super::admin(&args.client).await?;
    let sizes = ["small", "medium", "large"];
    let requests = (0..args.orders).map(|index| OrderRequest {
        name: Some(Value::from(format!("rush-{index}"))),
        size: Some(Value::from(sizes[index % sizes.len()])),
        bean_type: Some(Value::from("mixed")),
        milk: Some(Value::from("none")),
        sugar_count: Some(Value::from(0)),
        idempotency_key: None,
    });
    let mut etas = HashMap::new();
    let mut ranges = HashMap::new();
    for request in requests {
        let reply: OrderReply =
            brewq_runtime::request::request_json(&client, subjects::ORDER_REQUESTS, &request, Duration::from_secs(10)).await?;
        anyhow::ensure!(reply.is_success(), "order refused: {}", reply.message);
        let id = reply.order_id.context("order id")?;
        ranges.insert(id.clone(), reply.eta_range_seconds);
        etas.insert(id, reply.eta_seconds.unwrap_or(0) as f64);
    }
    if !args.client.json {
        eprintln!("{} orders placed; following them to the end", etas.len());
    }
    let records = follow_all(&client, &etas, Duration::from_secs(args.timeout_seconds)).await?;
    let report = report(&etas, &ranges, &records);
    if args.client.json {
        output::json(&report);
    } else {
        println!("orders {}: {} ready, {} failed", report.orders, report.ready, report.failed);
        println!("actual wait     median {:>7.1} s   p90 {:>7.1} s", report.wait_median_seconds, report.wait_p90_seconds);
        println!(
            "ETA error       median {:>7.1} s   p90 {:>7.1} s   ({:.0} % and {:.0} % of the wait)",
            report.eta_error_median_seconds,
            report.eta_error_p90_seconds,
            report.eta_error_median_share * 100.0,
            report.eta_error_p90_share * 100.0
        );
        println!("within the range shown beside the ETA: {:.0} % of the orders", report.within_range_share * 100.0);
    }
    Ok(())
}

/// Watches every record until all of `etas`' orders are final.
async fn follow_all(
    client: &async_nats::Client,
    etas: &HashMap<String, f64>,
    timeout: Duration,
) -> anyhow::Result<HashMap<String, OrderRecord>> {
    let records = super::bucket(client, subjects::ORDERS_BUCKET).await?;
    let mut watch = records.watch_with_history(">").await.context("watching orders")?;
    let mut done = HashMap::new();
    let followed = tokio::time::timeout(timeout, async {
        while done.len() < etas.len() {
            let Some(entry) = watch.next().await else { break };
            let Ok(record) = serde_json::from_slice::<OrderRecord>(&entry.context("watching orders")?.value) else { continue };
            if etas.contains_key(&record.id) && record.status.is_terminal() {
                done.insert(record.id.clone(), record);
            }
        }
        anyhow::Ok(())
    })
    .await;
    followed.with_context(|| format!("{} orders still open after {timeout:?}", etas.len() - done.len()))??;
    Ok(done)
}

fn report(etas: &HashMap<String, f64>, ranges: &HashMap<String, Option<[u64; 2]>>, records: &HashMap<String, OrderRecord>) -> RushReport {
    let mut waits = Vec::new();
    let mut within = 0;
    let mut errors = Vec::new();
    let mut shares = Vec::new();
    for (id, record) in records.iter().filter(|(_, record)| record.status == OrderStatus::Ready) {
        let (Some(first), Some(last)) = (record.history.first(), record.history.last()) else { continue };
        let wait = (last.at - first.at).as_seconds_f64();
        waits.push(wait);
        errors.push((wait - etas[id]).abs());
        shares.push((wait - etas[id]).abs() / wait.max(0.001));
        // Whole seconds shown: a wait counts as within up to the next second.
        if let Some(Some([low, high])) = ranges.get(id) {
            within += usize::from(wait + 1.0 >= *low as f64 && wait <= *high as f64 + 1.0);
        }
        if std::env::var_os("BREWQ_RUSH_DETAILS").is_some() {
            eprintln!("detail ticket {:?} eta {:.1} wait {:.1} attempts {}", record.ticket(), etas[id], wait, record.attempts);
        }
    }
    RushReport {
        orders: etas.len(),
        ready: waits.len(),
        failed: records.values().filter(|record| record.status == OrderStatus::Failed).count(),
        eta_error_median_seconds: percentile(&mut errors, 0.5),
        eta_error_p90_seconds: percentile(&mut errors, 0.9),
        within_range_share: within as f64 / waits.len().max(1) as f64,
        eta_error_median_share: percentile(&mut shares, 0.5),
        eta_error_p90_share: percentile(&mut shares, 0.9),
        wait_median_seconds: percentile(&mut waits, 0.5),
        wait_p90_seconds: percentile(&mut waits, 0.9),
    }
}

/// The `rank` percentile (0 to 1) by nearest rank; 0 for no values.
fn percentile(values: &mut [f64], rank: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let index = ((rank * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
    values[index]
}
