//! The figures of a run, printed as a table or as JSON.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use brewq_protocol::OrderStatus;
use serde::Serialize;

use super::follow::Ends;
use super::load::Tally;
use super::memory::ServiceMemory;
use super::raft::Replication;
use super::raw::RawFigures;
use super::stats::{Errors, Latency};
use crate::args::BenchArgs;

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub via: String,
    pub orders: usize,
    pub clients: usize,
    /// Orders per second asked for; none means as fast as possible.
    pub rate: Option<f64>,
    pub accepted: usize,
    pub accepted_per_second: f64,
    pub acceptance: Latency,
    pub ready: usize,
    pub failed: usize,
    /// Accepted orders not ended when the run gave up waiting.
    pub unfinished: usize,
    /// Ready orders per second, from the first order sent to the last one ready.
    pub ready_per_second: f64,
    pub order_to_ready: Latency,
    pub errors: Errors,
    /// What the servers replicated while the orders went through (their own counts, `/raftz`
    /// and `/jsz`), and per order ended; none without the servers' monitoring.
    pub replicated: Option<Replicated>,
    /// Each kind of service's resident memory once the orders went through; empty without
    /// the services' metrics.
    pub memory: Vec<ServiceMemory>,
    pub raw: Option<RawFigures>,
}

#[derive(Debug, Serialize)]
pub struct Replicated {
    #[serde(flatten)]
    pub replication: Replication,
    /// Log entries per order ended.
    pub per_order: f64,
    /// Messages stored, deliveries and acks per order ended.
    pub proposals_per_order: f64,
}

impl Replicated {
    fn print(&self, ended: usize) {
        let (replication, entries) = (&self.replication, self.replication.entries);
        let per_order = |count: u64| count as f64 / ended.max(1) as f64;
        let shares = |counts: &[(String, u64)]| {
            counts.iter().map(|(name, count)| format!("{name} {:.2}", per_order(*count))).collect::<Vec<_>>().join(", ")
        };
        println!(
            "replicated       {:>8} log entries {:>8.2} per order   (streams {}, consumers {}, meta {}; the servers' /raftz)",
            entries.total(),
            self.per_order,
            entries.streams,
            entries.consumers,
            entries.meta
        );
        println!("  entries per order by group: {}", shares(&replication.entries_by_group));
        println!(
            "proposals        {:>8}             {:>8.2} per order   (messages stored, {} deliveries, {} acks; the servers' /jsz)",
            replication.proposals(),
            self.proposals_per_order,
            replication.deliveries,
            replication.acks
        );
        println!("  messages stored per order: {}", shares(&replication.stored_by_stream));
    }
}

impl Report {
    pub fn new(
        args: &BenchArgs,
        tally: &Tally,
        ends: &Ends,
        start: Instant,
        load_time: Duration,
        raw: Option<RawFigures>,
        replicated: Option<Replication>,
    ) -> Report {
        let due = tally.due.lock().expect("tally");
        let ends = ends.lock().expect("ends");
        let mut to_ready = Vec::new();
        let (mut failed, mut last_ready) = (0, start);
        for (id, due) in due.iter() {
            match ends.get(id) {
                Some((at, OrderStatus::Ready)) => {
                    to_ready.push(at.saturating_duration_since(*due));
                    last_ready = last_ready.max(*at);
                }
                Some(_) => failed += 1,
                None => {}
            }
        }
        let ready = to_ready.len();
        let accepted = tally.accepted.load(Ordering::Relaxed) as usize;
        Report {
            via: format!("{:?}", args.via).to_lowercase(),
            orders: args.orders,
            clients: args.clients,
            rate: args.rate,
            accepted,
            accepted_per_second: accepted as f64 / load_time.as_secs_f64(),
            acceptance: Latency::of(&mut tally.latencies.lock().expect("tally")),
            ready,
            failed,
            unfinished: accepted - ready - failed,
            ready_per_second: ready as f64 / last_ready.duration_since(start).as_secs_f64().max(f64::EPSILON),
            order_to_ready: Latency::of(&mut to_ready),
            errors: tally.errors.lock().expect("tally").clone(),
            replicated: replicated.map(|replication| {
                let ended = (ready + failed).max(1) as f64;
                Replicated {
                    per_order: replication.entries.total() as f64 / ended,
                    proposals_per_order: replication.proposals() as f64 / ended,
                    replication,
                }
            }),
            memory: Vec::new(),
            raw,
        }
    }

    pub fn print(&self, json: bool) {
        if json {
            crate::output::json(self);
            return;
        }
        let pace = self.rate.map_or("as fast as possible".to_owned(), |rate| format!("at {rate} orders/s"));
        println!("{} orders through {}, {} clients, {pace}", self.orders, self.via, self.clients);
        println!("accepted         {:>8} orders   {:>9.1} orders/s", self.accepted, self.accepted_per_second);
        println!("acceptance       {}", self.acceptance);
        println!(
            "ready            {:>8} orders   {:>9.1} orders/s   ({} failed, {} unfinished)",
            self.ready, self.ready_per_second, self.failed, self.unfinished
        );
        println!("order to ready   {}", self.order_to_ready);
        let errors: Vec<String> = self.errors.iter().map(|(kind, count)| format!("{kind} {count}")).collect();
        println!("errors           {}", if errors.is_empty() { "none".to_owned() } else { errors.join(", ") });
        if let Some(replicated) = &self.replicated {
            replicated.print(self.ready + self.failed);
        }
        if !self.memory.is_empty() {
            let kinds: Vec<String> = self.memory.iter().map(memory_line).collect();
            println!("memory           {}   (resident after the run, highest in brackets; each service's /metrics)", kinds.join(", "));
        }
        if let Some(raw) = &self.raw {
            let publish = raw.jetstream_publish;
            let (take, cas) = (raw.work_queue_take, raw.kv_compare_and_swap);
            println!("raw NATS, same cluster, R{}:", raw.replicas);
            println!(
                "  JetStream publish + PubAck, pipelined   {:>9.1} msgs/s   p50 {:>6.2} ms   accepted/raw = {:.3}",
                publish.per_second,
                publish.latency.p50_ms,
                self.accepted_per_second / publish.per_second
            );
            println!(
                "  work queue, take 1 + ack, {:>3} takers    {:>9.1} msgs/s   p50 {:>6.2} ms   ready/raw    = {:.3}",
                raw.takers,
                take.per_second,
                take.latency.p50_ms,
                self.ready_per_second / take.per_second
            );
            println!(
                "  KV compare-and-swap, one key            {:>9.1} ops/s    p50 {:>6.2} ms   accepted/CAS = {:.3}",
                cas.per_second,
                cas.latency.p50_ms,
                self.accepted_per_second / cas.per_second
            );
            // The bare pipeline: the queue and the three record writes of an order, no service.
            for (bare, connections) in [(raw.bare_pipeline_one_connection, "one conn."), (raw.bare_pipeline, "own conns")] {
                let label = format!("bare pipeline, {} takers, {connections}", raw.takers);
                println!(
                    "  {label:<39} {:>9.1} orders/s p50 {:>6.2} ms   ready/raw    = {:.3}",
                    bare.per_second,
                    bare.latency.p50_ms,
                    self.ready_per_second / bare.per_second
                );
            }
            if let Some(paced) = &raw.bare_pipeline_at_rate {
                println!("  bare pipeline at {} orders/s, {} takers, own conns:", paced.rate, raw.takers);
                for (label, bare, ours) in
                    [("acceptance", paced.acceptance, self.acceptance), ("order to ready", paced.order_to_ready, self.order_to_ready)]
                {
                    println!("    {label:<15}{bare}   p99 brewq/raw = {:.2}", ours.p99_ms / bare.p99_ms);
                }
            }
        }
    }
}

/// One kind of service's memory, as the report prints it.
fn memory_line(memory: &ServiceMemory) -> String {
    // Processes that show the same figure show it once.
    let (least, most) = (format!("{:.1}", memory.resident_min_mib), format!("{:.1}", memory.resident_max_mib));
    let resident = if least == most { most } else { format!("{least} to {most}") };
    format!("{} {resident} MiB ({:.1})", memory.service, memory.highest_mib)
}
