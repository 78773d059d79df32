//! The chain's view of one shop, kept in memory from the hub's `chain` stream in the shop's
//! account: batches of direct gets read the last value of every key (the stream keeps one a
//! key), then ask a few times a second for what the shop's link brought since (no consumer: the
//! operator's process may create none). It survives the hub's restarts and the shop's cuts (it
//! asks again from where it was); while the link is down it shows the shop as last heard from. Of the orders it
//! keeps those open and those ended in the last [`ENDED_SHOWN_FOR`], so that its memory follows
//! a day of the shop, not its whole history.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use brewq_protocol::stock::LevelsDoc;
use brewq_protocol::{DeadLetter, MachineHeartbeat, MachineView, OrderRecord, OrderStatus, StockSnapshot, now, subjects};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the follow asks for what changed since its last read.
const ASK_EVERY: Duration = Duration::from_millis(500);

/// How long an ended order counts on the dashboard after it ended.
pub const ENDED_SHOWN_FOR: time::Duration = time::Duration::DAY;

/// What the hub knows of a shop.
#[derive(Debug, Clone, Default)]
pub struct ShopState {
    machines: BTreeMap<u32, MachineHeartbeat>,
    stock: Option<LevelsDoc>,
    failed: BTreeMap<String, DeadLetter>,
    /// Open orders, and those ended within [`ENDED_SHOWN_FOR`]: each status with when the
    /// order last changed.
    orders: HashMap<String, (OrderStatus, OffsetDateTime)>,
    /// When the shop last wrote something the hub has.
    last_heard: Option<OffsetDateTime>,
}

/// A shop as the chain's dashboard shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ShopSummary {
    pub id: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_heard: Option<OffsetDateTime>,
    pub machines: Vec<MachineView>,
    pub stock: Option<StockSnapshot>,
    pub failed: Vec<FailedOrder>,
    pub orders: OrderCounts,
}

/// A failed order as the chain's dashboard shows it: by its reference (as in the logs), never
/// its id; the chain's operator acts on it from the shop's own pages.
#[derive(Debug, Clone, Serialize)]
pub struct FailedOrder {
    pub reference: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The shop's open orders, and those that ended in the last [`ENDED_SHOWN_FOR`], by status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrderCounts {
    pub queued: usize,
    pub brewing: usize,
    pub ready: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl ShopState {
    /// The shop as shown, shop number `id`.
    pub fn summary(&self, id: u32) -> ShopSummary {
        let mut orders = OrderCounts::default();
        for (status, _) in self.orders.values() {
            let count = match status {
                OrderStatus::Queued => &mut orders.queued,
                OrderStatus::Brewing => &mut orders.brewing,
                OrderStatus::Ready => &mut orders.ready,
                OrderStatus::Failed => &mut orders.failed,
                OrderStatus::Cancelled => &mut orders.cancelled,
            };
            *count += 1;
        }
        let stock = self.stock.as_ref().map(|doc| {
            let mut levels = doc.levels.clone();
            for &ingredient in brewq_protocol::Ingredient::ALL {
                levels.entry(ingredient).or_default();
            }
            StockSnapshot { levels }
        });
        ShopSummary {
            id,
            last_heard: self.last_heard,
            machines: MachineView::fleet(self.machines.values().cloned().collect(), now()),
            stock,
            failed: self
                .failed
                .values()
                .map(|letter| FailedOrder {
                    reference: brewq_protocol::ids::order_ref(&letter.order_id),
                    reason: letter.reason.clone(),
                    at: letter.at,
                })
                .collect(),
            orders,
        }
    }

    /// Takes in one value of the stream (`None`: the key was deleted in the shop).
    fn apply(&mut self, subject: &str, payload: Option<&[u8]>) {
        let mut parts = subject.splitn(3, '.');
        let (Some(_), Some(what), Some(key)) = (parts.next(), parts.next(), parts.next()) else { return };
        match (what, payload) {
            ("machines", Some(payload)) => {
                if let Ok(beat) = serde_json::from_slice::<MachineHeartbeat>(payload) {
                    self.machines.insert(beat.id, beat);
                }
            }
            ("machines", None) => {
                let id = key.strip_prefix("machine.").and_then(|id| id.parse().ok());
                id.map(|id| self.machines.remove(&id));
            }
            ("stock", Some(payload)) if key == subjects::STOCK_KEY => self.stock = serde_json::from_slice(payload).ok(),
            ("failed", Some(payload)) => {
                if let Ok(letter) = serde_json::from_slice::<DeadLetter>(payload) {
                    self.failed.insert(key.to_owned(), letter);
                }
            }
            ("failed", None) => drop(self.failed.remove(key)),
            ("orders", Some(payload)) => {
                if let Ok(record) = serde_json::from_slice::<OrderRecord>(payload) {
                    let changed = record.history.last().map_or(OffsetDateTime::UNIX_EPOCH, |entry| entry.at);
                    match record.status.is_terminal() && changed < now() - ENDED_SHOWN_FOR {
                        // Ended long ago (read again from the start, or its name removed).
                        true => drop(self.orders.remove(&record.id)),
                        false => drop(self.orders.insert(record.id, (record.status, changed))),
                    }
                }
            }
            ("orders", None) => drop(self.orders.remove(key)),
            _ => {}
        }
    }

    /// Forgets the orders that ended longer than [`ENDED_SHOWN_FOR`] before `at`; whether it
    /// forgot any.
    fn forget_ended_before(&mut self, at: OffsetDateTime) -> bool {
        let before = self.orders.len();
        self.orders.retain(|_, (status, changed)| !status.is_terminal() || *changed >= at - ENDED_SHOWN_FOR);
        self.orders.len() != before
    }
}

/// Follows the hub's view of one shop through `client` (a user of the shop's account on the
/// hub) into `state` until `shutdown`.
pub async fn follow(client: async_nats::Client, state: watch::Sender<ShopState>, shutdown: CancellationToken) {
    use brewq_runtime::direct::{self, Start};
    let mut next = Start::Sequence(1);
    let mut ask = tokio::time::interval(ASK_EVERY);
    ask.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut forget = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = forget.tick() => {
                state.send_if_modified(|shop| shop.forget_ended_before(now()));
                continue;
            }
            _ = ask.tick() => {}
        }
        let read = direct::read(&client, subjects::CHAIN_STREAM, "chain.>", next, |read| {
            let deleted = read.payload.is_empty() || read.operation != async_nats::jetstream::kv::Operation::Put;
            let at = Some(OffsetDateTime::from(read.written_at));
            state.send_modify(|shop| {
                shop.apply(&read.subject, (!deleted).then_some(&read.payload[..]));
                shop.last_heard = shop.last_heard.max(at);
            });
        });
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = read => outcome,
        };
        match outcome {
            Ok(after) => next = after,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "the chain's view of a shop is not readable; trying again");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_key_leaves_the_view_and_a_later_value_replaces_an_earlier_one() {
        let mut shop = ShopState::default();
        let letter = |reason: &str| serde_json::to_vec(&DeadLetter { order_id: "a".into(), reason: reason.into(), at: now() }).unwrap();
        shop.apply("chain.failed.a", Some(&letter("jammed")));
        shop.apply("chain.failed.a", Some(&letter("burnt")));
        assert_eq!(shop.summary(1).failed.len(), 1);
        assert_eq!(shop.summary(1).failed[0].reason, "burnt");
        let shown = serde_json::to_string(&shop.summary(1)).unwrap();
        assert!(!shown.contains("\"a\"") && shown.contains(&brewq_protocol::ids::order_ref("a")), "{shown}");
        shop.apply("chain.failed.a", None);
        assert!(shop.summary(1).failed.is_empty());
        shop.apply("chain.unknown", Some(b"{}"));
        assert!(shop.summary(1).machines.is_empty());
    }

    fn record(id: &str, steps: &[(OrderStatus, time::Duration)]) -> Vec<u8> {
        let order = brewq_protocol::Order {
            name: "Ada".into(),
            size: brewq_protocol::Size::Small,
            bean_type: brewq_protocol::Bean::Arabica,
            milk: brewq_protocol::Milk::None,
            sugar_count: 0,
        };
        let mut record = OrderRecord::queued(id, order, now() - steps[0].1);
        for &(status, ago) in &steps[1..] {
            record.status = status;
            record.history.push(brewq_protocol::HistoryEntry { status, at: now() - ago, machine: None, reason: None });
        }
        serde_json::to_vec(&record).unwrap()
    }

    #[test]
    fn the_orders_kept_are_the_open_ones_and_those_ended_within_a_day() {
        use OrderStatus::{Brewing, Queued, Ready};
        let (hour, days) = (time::Duration::HOUR, time::Duration::days(2));
        let mut shop = ShopState::default();
        shop.apply("chain.orders.old", Some(&record("old", &[(Queued, days), (Brewing, days), (Ready, days)])));
        shop.apply("chain.orders.stuck", Some(&record("stuck", &[(Queued, days)])));
        shop.apply("chain.orders.recent", Some(&record("recent", &[(Queued, hour), (Brewing, hour), (Ready, hour)])));
        let counts = |shop: &ShopState| {
            let orders = shop.summary(1).orders;
            (orders.queued, orders.brewing, orders.ready)
        };
        // Ended two days ago: neither counted nor kept; open for two days: counted.
        assert_eq!((counts(&shop), shop.orders.len()), ((1, 0, 1), 2));
        // The same old record read again (the view read from the start, or its name removed):
        // still not counted, and it does not come back.
        shop.apply("chain.orders.old", Some(&record("old", &[(Queued, days), (Ready, days)])));
        assert_eq!(counts(&shop), (1, 0, 1));
        // A day on, the recent one leaves too; the open one stays.
        assert!(shop.forget_ended_before(now() + time::Duration::DAY));
        assert_eq!((counts(&shop), shop.orders.len()), ((1, 0, 0), 1));
        assert!(!shop.forget_ended_before(now() + time::Duration::DAY), "nothing more to forget");
    }
}
