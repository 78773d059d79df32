//! The load: orders sent through NATS (`coffee.web.requests`) or HTTP (`POST /api/orders`),
//! by N concurrent clients as fast as they go, or at a fixed rate. Latency is measured from
//! the moment an order was due, so a generator that falls behind shows it in the figures.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use brewq_protocol::{Bean, Milk, Order, OrderReply, OrderRequest, Size, subjects};
use brewq_runtime::request::{RequestError, request_json};

use super::stats::Errors;

/// How orders reach the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// A NATS request on `coffee.web.requests`, as the web shop makes it.
    Nats,
    /// `POST /api/orders` on the web shop.
    Http,
}

/// Where and how to send.
#[derive(Clone)]
pub struct Target {
    pub via: Via,
    pub nats: async_nats::Client,
    pub http: reqwest::Client,
    /// `http://host:port` of a web shop.
    pub http_url: String,
    pub timeout: Duration,
}

/// The `index`th order of the run: every size, bean, milk and sugar count in turn.
pub fn order(index: usize) -> Order {
    Order {
        name: format!("bench-{index}"),
        size: Size::ALL[index % Size::ALL.len()],
        bean_type: Bean::ALL[(index / 3) % Bean::ALL.len()],
        milk: Milk::ALL[(index / 9) % Milk::ALL.len()],
        sugar_count: (index % 4) as u8,
    }
}

/// What happened to the orders sent so far; shared by every client.
#[derive(Default)]
pub struct Tally {
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub errors: Mutex<Errors>,
    /// Acceptance latencies of the accepted orders.
    pub latencies: Mutex<Vec<Duration>>,
    /// When each accepted order was due, by order id.
    pub due: Mutex<HashMap<String, Instant>>,
}

impl Tally {
    fn record(&self, due: Instant, outcome: Result<String, String>) {
        match outcome {
            Ok(order_id) => {
                self.latencies.lock().expect("tally").push(due.elapsed());
                self.due.lock().expect("tally").insert(order_id, due);
                self.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(kind) => {
                *self.errors.lock().expect("tally").entry(kind).or_default() += 1;
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Sends one order; the order id, or the kind of error.
async fn send(target: &Target, order: &Order) -> Result<String, String> {
    let request = OrderRequest::from(order);
    let reply: OrderReply = match target.via {
        Via::Nats => request_json(&target.nats, subjects::ORDER_REQUESTS, &request, target.timeout).await.map_err(|error| match error {
            RequestError::TimedOut { .. } => "timeout".to_owned(),
            RequestError::NoResponders { .. } => "no controller".to_owned(),
            other => format!("nats: {other}"),
        })?,
        Via::Http => {
            let response = target
                .http
                .post(format!("{}/api/orders", target.http_url))
                .json(&request)
                .timeout(target.timeout)
                .send()
                .await
                .map_err(|error| if error.is_timeout() { "timeout".to_owned() } else { "http: connection".to_owned() })?;
            let status = response.status();
            let reply: OrderReply = response.json().await.map_err(|_| format!("http {}", status.as_u16()))?;
            reply
        }
    };
    match (reply.is_success(), reply.order_id, reply.code) {
        (true, Some(order_id), _) => Ok(order_id),
        (_, _, Some(code)) => Err(code.as_str().to_owned()),
        _ => Err("unexpected reply".to_owned()),
    }
}

/// `clients` closed loops, each sending its next order as soon as the last one is answered.
pub async fn as_fast_as_possible(target: Target, orders: usize, clients: usize, tally: Arc<Tally>) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (target, tally, next) = (target.clone(), tally.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= orders {
                    break;
                }
                let due = Instant::now();
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let outcome = send(&target, &order(index)).await;
                tally.record(due, outcome);
            }
        });
    }
    tasks.join_all().await;
}

/// One order every `1/rate` seconds, at most `clients` of them waiting for their answer.
pub async fn at_rate(target: Target, orders: usize, clients: usize, rate: f64, tally: Arc<Tally>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(clients));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..orders {
        let due = start + Duration::from_secs_f64(index as f64 / rate);
        tokio::time::sleep_until(due).await;
        // Waits when every client is busy: the generator falls behind, and the latency,
        // measured from `due`, says so.
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let (target, tally) = (target.clone(), tally.clone());
        tally.sent.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            let outcome = send(&target, &order(index)).await;
            tally.record(due.into_std(), outcome);
            drop(permit);
        });
    }
    tasks.join_all().await;
}
