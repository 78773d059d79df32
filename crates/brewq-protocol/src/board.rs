//! The pickup board and the shop's last hour, as the controllers derive them from the order
//! records they watch ([`RecentOrders`]): what is brewing, what is ready for pickup (for a few
//! minutes), orders and waiting times per minute, and each machine's share of the brews.
//! Screens that other people see show a ticket and a first name, never an order id.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{OrderRecord, OrderStatus};

/// How long a ready order stays on the board unless the controllers are told otherwise.
pub const DEFAULT_READY_SHOWN_FOR: Duration = Duration::from_secs(3 * 60);
/// How far back the activity goes: the last hour, minute by minute.
pub const ACTIVITY_MINUTES: usize = 60;
/// The longest first name a board shows.
const NAME_CHARS: usize = 20;
/// The most orders a board lists in each column (brewing, ready); past it, it counts the
/// others: a wall screen shows a few dozen, and an answer stays far under a NATS message's
/// limit however busy the shop.
pub const BOARD_MOST_LISTED: usize = 100;

/// One order on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardItem {
    /// The order's public ticket ([`crate::ids::ticket`]).
    pub ticket: u32,
    /// The customer's first name (the first word of the name given).
    pub name: String,
    pub machine: Option<u32>,
    /// When it started brewing, or became ready.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// `GET /api/board`: the orders brewing (oldest first) and ready (newest first), at most
/// [`BOARD_MOST_LISTED`] of each, with how many more there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardView {
    pub brewing: Vec<BoardItem>,
    pub ready: Vec<BoardItem>,
    /// Orders brewing beyond those listed (the newest ones).
    #[serde(default)]
    pub more_brewing: u64,
    /// Orders ready beyond those listed (the oldest ones).
    #[serde(default)]
    pub more_ready: u64,
}

/// The answer to [`crate::subjects::BOARD_READ`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum BoardLookup {
    Current { board: BoardView },
    Unavailable { message: String },
}

/// One minute of the shop's activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinuteActivity {
    /// The minute's start.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Orders accepted in this minute.
    pub accepted: u64,
    /// Orders that became ready in this minute.
    pub ready: u64,
    /// Waiting time (accepted to ready) of those, median and 90th percentile, in seconds.
    pub wait_p50_seconds: Option<f64>,
    pub wait_p90_seconds: Option<f64>,
}

/// The last hour of the shop, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// [`ACTIVITY_MINUTES`] minutes, oldest first, the current one last.
    pub minutes: Vec<MinuteActivity>,
    /// Orders each machine brewed to ready in the last hour, by machine.
    pub brews_by_machine: Vec<MachineBrews>,
}

/// A machine's brews in the last hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineBrews {
    pub machine: u32,
    pub brews: u64,
}

/// The answer to [`crate::subjects::ACTIVITY_READ`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ActivityLookup {
    Current { activity: Activity },
    Unavailable { message: String },
}

/// What a controller keeps of one order changed in the last hour: fixed in size but for the
/// name of an order on the board, so that an hour of orders is one table, not tens of
/// thousands of small blocks.
#[derive(Debug, Clone, PartialEq)]
struct Recent {
    status: OrderStatus,
    ticket: Option<u32>,
    /// The first name, only while the order may be on the board (brewing, or ready for
    /// less than the board shows it): an order that left the board is only counted.
    first_name: Option<Box<str>>,
    machine: Option<u32>,
    /// When it last changed status.
    since: OffsetDateTime,
    accepted_at: Option<OffsetDateTime>,
}

/// What stands for an order id in [`RecentOrders`]: 128 bits of its SHA-256, a fixed size
/// where the id is a string of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct OrderKey(u128);

impl OrderKey {
    fn of(order_id: &str) -> OrderKey {
        let digest = ring::digest::digest(&ring::digest::SHA256, order_id.as_bytes());
        OrderKey(u128::from_be_bytes(digest.as_ref()[..16].try_into().expect("a SHA-256 digest has 32 bytes")))
    }
}

/// The orders that changed in the last hour, by id, each as its latest record says: seeing a
/// record again (a redelivery, an older revision replayed) only replaces what was kept, so
/// the figures depend on the records, not on how often they were read.
#[derive(Debug, Clone)]
pub struct RecentOrders {
    orders: HashMap<OrderKey, Recent>,
    /// How long a ready order stays on the board.
    ready_for: Duration,
}

impl RecentOrders {
    /// No orders yet, for a board that shows ready orders for `ready_for`.
    pub fn new(ready_for: Duration) -> RecentOrders {
        RecentOrders { orders: HashMap::new(), ready_for }
    }

    /// Keeps what `record` says of its order, at `now`.
    pub fn note(&mut self, record: &OrderRecord, now: OffsetDateTime) {
        let since = record.history.last().map(|entry| entry.at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let shown = match record.status {
            OrderStatus::Brewing => true,
            OrderStatus::Ready => now - since < self.ready_for,
            _ => false,
        };
        let recent = Recent {
            status: record.status,
            ticket: record.ticket(),
            first_name: shown.then(|| first_name(record.shown_name()).into_boxed_str()),
            machine: record.machine,
            since,
            accepted_at: record.created_at(),
        };
        self.orders.insert(OrderKey::of(&record.id), recent);
    }

    /// Forgets an order whose record went.
    pub fn forget(&mut self, order_id: &str) {
        self.orders.remove(&OrderKey::of(order_id));
    }

    /// At `now`, forgets the orders that last changed before the activity's first minute,
    /// and the first names of those that left the board.
    pub fn prune(&mut self, now: OffsetDateTime) {
        let first = minute_of(now) - time::Duration::minutes(ACTIVITY_MINUTES as i64 - 1);
        self.orders.retain(|_, recent| recent.since >= first || recent.status == OrderStatus::Brewing);
        for recent in self.orders.values_mut() {
            if recent.status == OrderStatus::Ready && now - recent.since >= self.ready_for {
                recent.first_name = None;
            }
        }
        crate::shrink_after_burst(&mut self.orders);
    }

    /// The board at `now`: a ready order shows for the board's time after it became ready
    /// (and never without its name, should the clock have gone back since it was pruned).
    pub fn board(&self, now: OffsetDateTime) -> BoardView {
        let mut brewing = Vec::new();
        let mut ready = Vec::new();
        for recent in self.orders.values() {
            match recent.status {
                OrderStatus::Brewing => brewing.push(recent),
                OrderStatus::Ready if now - recent.since < self.ready_for && recent.first_name.is_some() => ready.push(recent),
                _ => {}
            }
        }
        let (brewing, more_brewing) = listed(brewing, |recent| (recent.since, recent.ticket));
        let (ready, more_ready) = listed(ready, |recent| std::cmp::Reverse((recent.since, recent.ticket)));
        BoardView { brewing, ready, more_brewing, more_ready }
    }

    /// The last [`ACTIVITY_MINUTES`] minutes at `now`.
    pub fn activity(&self, now: OffsetDateTime) -> Activity {
        let last = minute_of(now);
        let first = last - time::Duration::minutes(ACTIVITY_MINUTES as i64 - 1);
        let index =
            |at: OffsetDateTime| (at >= first && at < last + time::Duration::MINUTE).then(|| ((at - first).whole_minutes()) as usize);
        let mut accepted = [0u64; ACTIVITY_MINUTES];
        let mut waits: Vec<Vec<f64>> = vec![Vec::new(); ACTIVITY_MINUTES];
        let mut brews_by_machine = BTreeMap::<u32, u64>::new();
        for recent in self.orders.values() {
            if let Some(minute) = recent.accepted_at.and_then(index) {
                accepted[minute] += 1;
            }
            if recent.status != OrderStatus::Ready {
                continue;
            }
            if let Some(minute) = index(recent.since) {
                let wait = recent.accepted_at.map(|at| (recent.since - at).as_seconds_f64().max(0.0)).unwrap_or(0.0);
                waits[minute].push(wait);
                *brews_by_machine.entry(recent.machine.unwrap_or(0)).or_insert(0) += 1;
            }
        }
        let minutes = (0..ACTIVITY_MINUTES)
            .map(|minute| {
                let mut waits = std::mem::take(&mut waits[minute]);
                MinuteActivity {
                    at: first + time::Duration::minutes(minute as i64),
                    accepted: accepted[minute],
                    ready: waits.len() as u64,
                    wait_p50_seconds: percentile(&mut waits, 0.5),
                    wait_p90_seconds: percentile(&mut waits, 0.9),
                }
            })
            .collect();
        let brews_by_machine = brews_by_machine.into_iter().map(|(machine, brews)| MachineBrews { machine, brews }).collect();
        Activity { minutes, brews_by_machine }
    }
}

/// The first [`BOARD_MOST_LISTED`] of `orders` by `key`, as the board lists them (those
/// without a ticket left out), and how many more there are.
fn listed<K: Ord>(mut orders: Vec<&Recent>, key: impl Fn(&Recent) -> K) -> (Vec<BoardItem>, u64) {
    orders.retain(|recent| recent.ticket.is_some());
    let more = orders.len().saturating_sub(BOARD_MOST_LISTED);
    if more > 0 {
        orders.select_nth_unstable_by_key(BOARD_MOST_LISTED, |recent| key(recent));
        orders.truncate(BOARD_MOST_LISTED);
    }
    orders.sort_by_key(|recent| key(recent));
    let item = |recent: &Recent| BoardItem {
        ticket: recent.ticket.unwrap_or_default(),
        name: recent.first_name.as_deref().unwrap_or_default().to_owned(),
        machine: recent.machine,
        since: recent.since,
    };
    (orders.into_iter().map(item).collect(), more as u64)
}

/// The first word of a name, at most [`NAME_CHARS`] characters: enough to call someone, no more.
pub fn first_name(name: &str) -> String {
    name.split_whitespace().next().unwrap_or_default().chars().take(NAME_CHARS).collect()
}

/// The start of the minute `at` is in.
fn minute_of(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_second(0).and_then(|at| at.replace_nanosecond(0)).unwrap_or(at)
}

/// The `rank` percentile (0 to 1) of `values` by nearest rank; `None` for no values.
pub fn percentile(values: &mut [f64], rank: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let position = ((rank * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[position - 1])
}

#[cfg(test)]
mod tests;
