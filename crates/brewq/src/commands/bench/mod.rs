//! `brewq bench`: how fast an order goes, against a running system, next to what the same
//! NATS cluster does raw in the same run. See BENCHMARKS.md.

mod bare;
mod follow;
mod load;
mod memory;
mod raft;
mod raw;
mod report;
mod stats;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use brewq_launch::{ClusterInfo, Role};
use brewq_protocol::stock::{Items, recipe};
use brewq_protocol::{StockCommand, StockReply, subjects};
use brewq_runtime::request::request_json;

pub use load::Via;

use crate::args::BenchArgs;
use load::{Tally, Target};

/// Runs the benchmark and prints the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    check(&args)?;
    let admin = super::admin(&args.client).await?;
    let target = target(&args, admin.clone())?;
    restock(&admin, args.orders).await?;
    let info = ClusterInfo::load(&args.client.connect.data_dir).ok();
    let monitors = info.as_ref().map(|info| info.monitor_urls.clone()).unwrap_or_default();
    let monitoring = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().context("HTTP client")?;
    let (ends, watch) = follow::start(&admin).await?;
    let counters_before = raft::read(&monitoring, &monitors).await;
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    // The progress line is for a person watching: not with --json, nor into a file.
    let quiet = args.client.json || !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = tokio::spawn(progress(tally.clone(), ends.clone(), start, quiet));
    match args.rate {
        Some(rate) => load::at_rate(target, args.orders, args.clients, rate, tally.clone()).await,
        None => load::as_fast_as_possible(target, args.orders, args.clients, tally.clone()).await,
    }
    let load_time = start.elapsed();
    let accepted = tally.accepted.load(Ordering::Relaxed) as usize;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    while ended(&tally, &ends) < accepted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress.abort();
    watch.abort();
    let replicated = match (counters_before, raft::read(&monitoring, &monitors).await) {
        (Some(before), Some(after)) => Some(after.since(&before)),
        _ => None,
    };
    let memory = memory::read(&monitoring, &info.map(|info| info.metrics_urls).unwrap_or_default()).await;
    let raw = if args.raw_seconds > 0 {
        let provisioner = crate::connect::connect_once(&args.client.connect, Role::Provisioner, "brewq-bench").await?;
        let mut takers = Vec::new();
        for _ in 0..machines_online(&admin).await {
            takers.push(crate::connect::connect_once(&args.client.connect, Role::Provisioner, "brewq-bench-taker").await?);
        }
        Some(raw::measure(&provisioner, Duration::from_secs(args.raw_seconds), &takers, args.rate).await?)
    } else {
        None
    };
    let report = report::Report { memory, ..report::Report::new(&args, &tally, &ends, start, load_time, raw, replicated) };
    report.print(args.client.json);
    Ok(())
}

fn check(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.orders > 0, "--orders must be at least 1");
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    if let Some(rate) = args.rate {
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be a number of orders per second above 0, got {rate}");
    }
    Ok(())
}

fn target(args: &BenchArgs, nats: async_nats::Client) -> anyhow::Result<Target> {
    let http_url = match (&args.url, args.via) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Via::Http) => {
            ClusterInfo::load(&args.client.connect.data_dir)?.web_shop_url().context("no web shop in cluster.json: give --url")?
        }
        (None, Via::Nats) => String::new(),
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.clients).build().context("HTTP client")?;
    Ok(Target { via: args.via, nats, http, http_url, timeout: Duration::from_secs(10) })
}

/// Machines online (at least one): the raw figures use as many takers, each on a connection
/// of its own in the bare pipeline, as each machine has.
async fn machines_online(admin: &async_nats::Client) -> usize {
    let fleet = super::machines::list(admin).await.unwrap_or_default();
    fleet.iter().filter(|machine| machine.online).count().max(1)
}

/// Orders of this run that have ended, among the accepted ones.
fn ended(tally: &Tally, ends: &follow::Ends) -> usize {
    let due = tally.due.lock().expect("tally");
    let ends = ends.lock().expect("ends");
    due.keys().filter(|id| ends.contains_key(*id)).count()
}

/// Tops the stock up so that every order of the run can be accepted.
async fn restock(admin: &async_nats::Client, orders: usize) -> anyhow::Result<()> {
    let mut needed = Items::new();
    for index in 0..orders {
        for (ingredient, amount) in recipe(&load::order(index)) {
            *needed.entry(ingredient).or_default() += amount;
        }
    }
    let read = StockCommand::Get;
    let snapshot = match request_json(admin, &subjects::stock_subject(&read), &read, Duration::from_secs(10)).await? {
        StockReply::Snapshot { stock } => stock,
        other => anyhow::bail!("unexpected stock reply {other:?}"),
    };
    let missing: Items = needed
        .into_iter()
        .filter_map(|(ingredient, amount)| {
            let on_hand = snapshot.levels.get(&ingredient).map_or(0, |level| level.on_hand);
            (amount > on_hand).then(|| (ingredient, amount - on_hand))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = StockCommand::Restock { items: missing.clone(), request_id: None };
    match request_json(admin, &subjects::stock_subject(&command), &command, Duration::from_secs(10)).await? {
        StockReply::Snapshot { .. } => {}
        other => anyhow::bail!("restocking for the run failed: {other:?}"),
    }
    let items: Vec<String> = missing.iter().map(|(ingredient, amount)| format!("{ingredient}={amount}")).collect();
    super::audit(admin, "restock", &format!("{} (for brewq bench)", items.join(" ")), "ok").await;
    eprintln!("restocked {} for the run", items.join(" "));
    Ok(())
}

/// A progress line every second, on stderr, unless `quiet`.
async fn progress(tally: Arc<Tally>, ends: follow::Ends, start: Instant, quiet: bool) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    let mut last_accepted = 0;
    loop {
        ticks.tick().await;
        let accepted = tally.accepted.load(Ordering::Relaxed);
        if !quiet {
            eprintln!(
                "[{:>4.0} s] sent {:>7}  accepted {:>7} ({:>5}/s)  refused {:>5}  ended {:>7}",
                start.elapsed().as_secs_f64(),
                tally.sent.load(Ordering::Relaxed),
                accepted,
                accepted - last_accepted,
                tally.refused.load(Ordering::Relaxed),
                ended(&tally, &ends),
            );
        }
        last_accepted = accepted;
    }
}
