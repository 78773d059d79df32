//! The chaos run's customers. Orders arrive at a steady pace, each from a customer of its own,
//! in turn of three kinds: one that retries with an idempotency key until the shop answers for
//! good, and two plain ones that ask once, with no key, and wait 10 s for the answer: a NATS
//! request on a connection of its own (as `nats req` sends it) and an HTTP `POST /api/orders`
//! to the web shop. Every answer is kept with the times it was sent and answered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brewq_protocol::{OrderReply, RejectCode, subjects};
use brewq_runtime::request::RequestError;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::harness::{order_json, order_until_answered};

/// How long a plain customer waits for the answer.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a plain NATS customer tries to connect: each of the three servers once.
const CONNECTING_FOR: Duration = Duration::from_secs(6);
/// How long a retrying customer keeps trying.
const RETRYING_FOR: Duration = Duration::from_secs(120);

/// The kind of customer who sends an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Retries with an idempotency key until the shop answers for good (for 120 s at most).
    Retrying,
    /// One NATS request with no key.
    Nats,
    /// One HTTP request with no key.
    Http,
}

impl Kind {
    /// The kind of the customer of the `index`th order: the three in turn.
    fn of(index: usize) -> Kind {
        [Kind::Retrying, Kind::Nats, Kind::Http][index % 3]
    }

    /// True for the customers who ask once.
    pub fn is_plain(self) -> bool {
        self != Kind::Retrying
    }

    /// How the customer orders.
    pub fn channel(self) -> &'static str {
        match self {
            Kind::Retrying => "NATS with a key",
            Kind::Nats => "NATS",
            Kind::Http => "HTTP",
        }
    }
}

/// What a customer was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accepted under this order id.
    Accepted(String),
    /// Refused: the channel and the refusal (`NATS unavailable`, `HTTP 503 unavailable`,
    /// `NATS no responders`).
    Refused(String),
    /// No answer within [`PATIENCE`].
    TimedOut,
}

/// One order and what came of it; times are counted from the start of the run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The customer's name, which the order's record carries.
    pub name: String,
    pub kind: Kind,
    pub sent: Duration,
    pub answered: Duration,
    pub answer: Answer,
}

impl Outcome {
    /// True for a plain customer's order that was refused or not answered.
    pub fn unserved(&self) -> bool {
        self.kind.is_plain() && !matches!(self.answer, Answer::Accepted(_))
    }
}

/// Where the customers order, and the answers so far.
pub struct Shop {
    /// For the retrying customers.
    admin: async_nats::Client,
    /// How a plain NATS customer connects.
    kiosk: brewq_runtime::NatsConfig,
    http: reqwest::Client,
    /// The web shop's base URL.
    web_url: String,
    /// When the run started.
    started: Instant,
    /// The same moment by the wall clock, to place the times the servers stamp.
    started_wall: time::OffsetDateTime,
    outcomes: Mutex<Vec<Outcome>>,
    /// When each order still waiting for its answer was sent, by its index.
    waiting: Mutex<std::collections::BTreeMap<usize, Duration>>,
}

impl Shop {
    /// A shop whose clock starts now.
    pub fn new(admin: async_nats::Client, kiosk: brewq_runtime::NatsConfig, web_url: String) -> Shop {
        let (started, started_wall) = (Instant::now(), time::OffsetDateTime::now_utc());
        Shop {
            admin,
            kiosk,
            http: reqwest::Client::new(),
            web_url,
            started,
            started_wall,
            outcomes: Mutex::new(Vec::new()),
            waiting: Mutex::default(),
        }
    }

    /// The time since the run started of a moment of the wall clock (zero for one before).
    pub fn since_start(&self, moment: time::OffsetDateTime) -> Duration {
        Duration::try_from(moment - self.started_wall).unwrap_or_default()
    }

    /// The time since the run started.
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Every order answered so far.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes.lock().expect("outcomes").clone()
    }

    /// How many plain orders sent at or after `since` were accepted so far.
    pub fn plain_accepted_since(&self, since: Duration) -> usize {
        let outcomes = self.outcomes.lock().expect("outcomes");
        outcomes
            .iter()
            .filter(|outcome| outcome.kind.is_plain() && outcome.sent >= since && matches!(outcome.answer, Answer::Accepted(_)))
            .count()
    }

    /// Whether every order sent before `moment` has its answer (or gave up waiting for it).
    pub fn answered_all_sent_before(&self, moment: Duration) -> bool {
        self.waiting.lock().expect("waiting").values().all(|sent| *sent >= moment)
    }

    /// Places the `index`th order as its customer would, and keeps the answer.
    async fn serve(&self, index: usize) {
        let kind = Kind::of(index);
        let name = format!("chaos-{index}");
        let (sizes, beans, milks) = (["small", "medium", "large"], ["arabica", "robusta", "mixed"], ["none", "cow", "soy"]);
        let mut order = order_json(&name, sizes[index / 3 % 3], beans[index / 9 % 3], milks[index / 27 % 3], (index / 81 % 4) as u8);
        let sent = self.now();
        self.waiting.lock().expect("waiting").insert(index, sent);
        let answer = match kind {
            Kind::Retrying => {
                order["idempotency_key"] = json!(name);
                // Cut off at RETRYING_FOR, before the retries' own deadline: a customer still
                // refused then is counted unanswered, and the run fails on it once the figures
                // are printed.
                let retrying = order_until_answered(&self.admin, &order, Instant::now() + 2 * RETRYING_FOR);
                tokio::time::timeout(RETRYING_FOR, retrying).await.map_or(Answer::TimedOut, answer_of)
            }
            Kind::Nats => by_nats(&self.kiosk, &order).await,
            Kind::Http => by_http(&self.http, &self.web_url, &order).await,
        };
        let outcome = Outcome { name, kind, sent, answered: self.now(), answer };
        self.outcomes.lock().expect("outcomes").push(outcome);
        self.waiting.lock().expect("waiting").remove(&index);
    }
}

/// Sends an order every `every` until `stop`, then waits for every customer's answer; returns
/// how many were sent.
pub async fn arrive(shop: Arc<Shop>, every: Duration, stop: CancellationToken) -> usize {
    let mut customers = tokio::task::JoinSet::new();
    let mut pace = tokio::time::interval(every);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = pace.tick() => {}
        }
        let shop = shop.clone();
        customers.spawn(async move { shop.serve(sent).await });
        sent += 1;
    }
    while let Some(served) = customers.join_next().await {
        if let Err(error) = served {
            std::panic::resume_unwind(error.into_panic());
        }
    }
    sent
}

/// One request on a connection of its own, as `nats req --timeout 10s` sends it: connect (each
/// server tried for 2 s, the Go client's default, in random order), then wait [`PATIENCE`] for
/// the answer.
async fn by_nats(kiosk: &brewq_runtime::NatsConfig, order: &Value) -> Answer {
    let options = brewq_runtime::connect::options(kiosk).expect("credentials").connection_timeout(Duration::from_secs(2));
    let connecting = options.connect(kiosk.urls.as_slice());
    let Ok(Ok(client)) = tokio::time::timeout(CONNECTING_FOR, connecting).await else {
        return Answer::Refused("NATS no server".into());
    };
    match brewq_runtime::request::request_json::<_, OrderReply>(&client, subjects::ORDER_REQUESTS, order, PATIENCE).await {
        Ok(reply) => match answer_of(reply) {
            Answer::Refused(code) => Answer::Refused(format!("NATS {code}")),
            answer => answer,
        },
        Err(RequestError::TimedOut { .. }) => Answer::TimedOut,
        Err(RequestError::NoResponders { .. }) => Answer::Refused("NATS no responders".into()),
        Err(RequestError::Transport { .. }) => Answer::Refused("NATS connection failed".into()),
        Err(RequestError::BadReply { .. }) => Answer::Refused("NATS bad reply".into()),
    }
}

/// One `POST /api/orders`, answered within [`PATIENCE`] or not at all.
async fn by_http(http: &reqwest::Client, web_url: &str, order: &Value) -> Answer {
    let posted = http.post(format!("{web_url}/api/orders")).json(order).timeout(PATIENCE).send().await;
    let response = match posted {
        Ok(response) => response,
        Err(error) if error.is_timeout() => return Answer::TimedOut,
        Err(_) => return Answer::Refused("HTTP connection failed".into()),
    };
    let status = response.status();
    match response.json::<OrderReply>().await {
        Ok(reply) if status == reqwest::StatusCode::CREATED => answer_of(reply),
        Ok(reply) => Answer::Refused(format!("HTTP {} {}", status.as_u16(), code_name(reply.code))),
        Err(error) if error.is_timeout() => Answer::TimedOut,
        Err(_) => Answer::Refused(format!("HTTP {}", status.as_u16())),
    }
}

fn answer_of(reply: OrderReply) -> Answer {
    match reply.order_id {
        Some(order_id) if reply.is_success() => Answer::Accepted(order_id),
        _ => Answer::Refused(code_name(reply.code)),
    }
}

/// A refusal's code as the wire spells it (`unavailable`).
fn code_name(code: Option<RejectCode>) -> String {
    code.and_then(|code| serde_json::to_value(code).ok()).and_then(|code| code.as_str().map(str::to_owned)).unwrap_or("no code".into())
}
