//! The chaos run's figures, one row per fault: the orders of the fault's window (from the fault
//! until the system serves again), what their customers were told, what became of them, and
//! how long the system took to recover. Read from the customers' answers, the order records
//! and `brewq check` once the run is over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use brewq_protocol::{OrderRecord, OrderStatus, subjects};
use serde_json::Value;

use super::customers::{Answer, Outcome, Shop};
use crate::harness::TestSystem;

/// A fault of the run; times are counted from the start of the run.
#[derive(Debug, Clone)]
pub struct Fault {
    pub name: String,
    /// When it was made.
    pub injected: Duration,
    /// When it was over (the server back, the link up); `injected` for a kill.
    pub over: Duration,
    /// When every running server was healthy again, after `over`.
    pub healthy: Duration,
}

/// What the end of the run shows of the orders.
pub struct Evidence {
    /// The records of each customer's orders, by the customer's name; the records of orders
    /// rolled back and placed again under a new id are left out.
    records: HashMap<String, Vec<OrderRecord>>,
    /// Orders whose stock does not match their record, or is held for no open order.
    differing: HashSet<String>,
    /// When the stock of each order that has no record was reserved and is still held.
    orphans: Vec<Duration>,
}

/// The figures of one fault's window.
#[derive(Debug, Default)]
pub struct Row {
    pub fault: String,
    /// Orders sent or waiting for their answer in the window.
    pub orders: usize,
    /// Of which from plain customers.
    pub plain: usize,
    pub accepted: usize,
    /// Plain orders refused, by the refusal's code.
    pub refused: BTreeMap<String, usize>,
    /// Plain orders not answered within the customer's patience, by channel (NATS, HTTP).
    pub timed_out: BTreeMap<&'static str, usize>,
    /// Accepted orders that never ended.
    pub lost: usize,
    /// Customers whose order was brewed twice, or ended twice.
    pub twice: usize,
    /// Orders whose stock does not match their record, and stock held for no open order.
    pub stock_difference: usize,
    /// From the fault until the system served again; `None` if it did not before the next.
    pub recovered_after: Option<Duration>,
}

impl Row {
    /// Plain orders refused or not answered.
    pub fn unserved(&self) -> usize {
        self.refused.values().sum::<usize>() + self.timed_out.values().sum::<usize>()
    }

    /// Whether the plain orders left unserved are at most `share` of the window's plain orders.
    pub fn unserved_within(&self, share: f64) -> bool {
        self.unserved() as f64 <= share * self.plain as f64
    }
}

/// Reads every order record and, from `brewq check --json`'s `accounting`, the orders whose
/// stock differs and when the stock of a leaked order with no record was reserved.
pub async fn gather(system: &TestSystem, shop: &Shop, accounting: &Value) -> Evidence {
    let bucket = system.bucket(subjects::ORDERS_BUCKET).await;
    let all: Vec<OrderRecord> = brewq_runtime::kv::all_json(&system.admin, &bucket).await.expect("the order records are readable");
    let mut records: HashMap<String, Vec<OrderRecord>> = HashMap::new();
    for record in all.into_iter().filter(|record| !(record.never_queued() && record.retried_as.is_some())) {
        records.entry(record.order.name.clone()).or_default().push(record);
    }
    // Each difference about one order starts with "order <id> ".
    let problems = accounting["problems"].as_array().cloned().unwrap_or_default();
    let mut differing: HashSet<String> =
        problems.iter().filter_map(|problem| problem.as_str()?.strip_prefix("order ")?.split(' ').next().map(str::to_owned)).collect();
    let stock = system.bucket(subjects::STOCK_BUCKET).await;
    let mut orphans = Vec::new();
    for leak in accounting["leaks"].as_array().cloned().unwrap_or_default() {
        let Some(order_id) = leak["order_id"].as_str() else { continue };
        differing.insert(order_id.to_owned());
        if leak["status"].is_null() {
            let entry = stock.entry(subjects::reservation_key(order_id)).await.expect("the reservation is readable");
            orphans.push(entry.map_or(Duration::ZERO, |entry| shop.since_start(entry.created)));
        }
    }
    Evidence { records, differing, orphans }
}

/// Each plain order left unserved, with when it was sent against the last fault made before
/// it: how long after the fault was made and after it was over (the server back, the link up).
pub fn unserved_by_time(faults: &[Fault], outcomes: &[Outcome]) -> Vec<String> {
    let mut lines = Vec::new();
    for outcome in outcomes.iter().filter(|outcome| outcome.unserved()) {
        let Some(fault) = faults.iter().rev().find(|fault| fault.injected <= outcome.sent) else { continue };
        let signed = |from: Duration| match outcome.sent.checked_sub(from) {
            Some(after) => format!("+{:.1} s", after.as_secs_f64()),
            None => format!("-{:.1} s", (from - outcome.sent).as_secs_f64()),
        };
        lines.push(format!(
            "{} {:?}: sent {} after \"{}\" was made, {} after it was over",
            outcome.kind.channel(),
            outcome.answer,
            signed(fault.injected),
            fault.name,
            signed(fault.over)
        ));
    }
    lines
}

/// One row per fault, then one for the orders outside every fault's window. An order belongs to
/// the first window its life (from sent to answered) overlaps.
pub fn rows(faults: &[Fault], outcomes: &[Outcome], evidence: &Evidence) -> Vec<Row> {
    let mut counted = vec![false; outcomes.len()];
    let mut orphans_counted = vec![false; evidence.orphans.len()];
    let mut rows = Vec::new();
    for (index, fault) in faults.iter().enumerate() {
        let next = faults.get(index + 1).map_or(Duration::MAX, |next| next.injected);
        let recovered = recovered_at(fault, next, outcomes);
        let end = recovered.unwrap_or(next);
        let mut row = Row { fault: fault.name.clone(), recovered_after: recovered.map(|at| at - fault.injected), ..Row::default() };
        for (outcome, counted) in outcomes.iter().zip(&mut counted) {
            if !*counted && outcome.sent <= end && outcome.answered >= fault.injected {
                *counted = true;
                row.count(outcome, evidence);
            }
        }
        for (at, counted) in evidence.orphans.iter().zip(&mut orphans_counted) {
            if !*counted && fault.injected <= *at && *at <= end {
                *counted = true;
                row.stock_difference += 1;
            }
        }
        rows.push(row);
    }
    let mut outside = Row { fault: "outside the fault windows".into(), ..Row::default() };
    for (outcome, _) in outcomes.iter().zip(&counted).filter(|(_, counted)| !**counted) {
        outside.count(outcome, evidence);
    }
    outside.stock_difference += orphans_counted.iter().filter(|counted| !**counted).count();
    rows.push(outside);
    rows
}

/// When the system served again after `fault`: every running server healthy, and a plain order
/// sent after the fault was over, and after the last plain order of the fault left unserved
/// (before the `next` fault), accepted. `None` if no such order was.
fn recovered_at(fault: &Fault, next: Duration, outcomes: &[Outcome]) -> Option<Duration> {
    let in_fault = |outcome: &&Outcome| fault.injected <= outcome.sent && outcome.sent < next;
    let last_unserved = outcomes.iter().filter(in_fault).filter(|outcome| outcome.unserved()).map(|outcome| outcome.sent).max();
    let from = last_unserved.map_or(fault.over, |sent| sent.max(fault.over));
    let served = outcomes
        .iter()
        .filter(|outcome| outcome.kind.is_plain() && outcome.sent >= from && matches!(outcome.answer, Answer::Accepted(_)))
        .map(|outcome| outcome.answered)
        .min()?;
    Some(served.max(fault.healthy))
}

impl Row {
    fn count(&mut self, outcome: &Outcome, evidence: &Evidence) {
        self.orders += 1;
        self.plain += usize::from(outcome.kind.is_plain());
        let records = evidence.records.get(&outcome.name).map_or(&[][..], Vec::as_slice);
        match &outcome.answer {
            Answer::Accepted(order_id) => {
                self.accepted += 1;
                let ended = records.iter().any(|record| record.id == *order_id && record.status.is_terminal());
                self.lost += usize::from(!ended);
            }
            // A careful customer not accepted fails the run on its own.
            _ if !outcome.kind.is_plain() => {}
            Answer::Refused(code) => *self.refused.entry(code.clone()).or_default() += 1,
            Answer::TimedOut => *self.timed_out.entry(outcome.kind.channel()).or_default() += 1,
        }
        let ready = records.iter().filter(|record| record.status == OrderStatus::Ready).count();
        let ended_twice = records.iter().any(|record| record.history.iter().filter(|entry| entry.status.is_terminal()).count() > 1);
        self.twice += usize::from(ready > 1 || ended_twice);
        self.stock_difference += records.iter().filter(|record| evidence.differing.contains(&record.id)).count();
    }
}

/// Records that no customer's answer explains: a record of an order nobody sent, or a record
/// beside the accepted one (or of a refused order) that was not rolled back before it was
/// queued. A customer whose answer leaves the outcome unknown may have had the order placed
/// all the same.
pub fn unexplained(outcomes: &[Outcome], evidence: &Evidence) -> Vec<String> {
    let by_name: HashMap<&str, &Outcome> = outcomes.iter().map(|outcome| (outcome.name.as_str(), outcome)).collect();
    let mut unexplained = Vec::new();
    for (name, records) in &evidence.records {
        for record in records {
            let explained = match by_name.get(name.as_str()) {
                None => false,
                Some(outcome) if outcome_unknown(outcome) => true,
                Some(outcome) => match &outcome.answer {
                    Answer::Accepted(order_id) => record.id == *order_id || record.never_queued(),
                    _ => record.never_queued(),
                },
            };
            if !explained {
                unexplained.push(format!("{name}: order {} {}", record.id, record.status));
            }
        }
    }
    unexplained
}

/// Plain customers whose answer left the outcome unknown, but whose order was brewed.
pub fn brewed_unanswered(outcomes: &[Outcome], evidence: &Evidence) -> usize {
    let brewed = |outcome: &Outcome| {
        evidence.records.get(&outcome.name).is_some_and(|records| records.iter().any(|record| record.status == OrderStatus::Ready))
    };
    outcomes.iter().filter(|outcome| outcome_unknown(outcome) && brewed(outcome)).count()
}

/// Whether the customer's answer leaves the order's fate unknown: no answer, or the web shop's
/// 503, which it also gives when its own wait for the controllers runs out.
fn outcome_unknown(outcome: &Outcome) -> bool {
    match &outcome.answer {
        Answer::TimedOut => true,
        Answer::Refused(code) => code.starts_with("HTTP 503"),
        Answer::Accepted(_) => false,
    }
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut table = String::from(
        "| fault | orders (plain) | accepted | refused | timed out | unserved plain | lost | brewed twice | stock difference | time to recover |\n\
         | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let (refused, timed_out) = (breakdown(&row.refused), breakdown(&row.timed_out));
        let share = if row.plain == 0 { "-".to_owned() } else { format!("{:.1} %", 100.0 * row.unserved() as f64 / row.plain as f64) };
        let recovered = match (row.recovered_after, row.fault.starts_with("outside")) {
            (_, true) => "-".to_owned(),
            (Some(after), false) => format!("{:.1} s", after.as_secs_f64()),
            (None, false) => "not before the next fault".to_owned(),
        };
        writeln!(
            table,
            "| {} | {} ({}) | {} | {refused} | {timed_out} | {share} | {} | {} | {} | {recovered} |",
            row.fault, row.orders, row.plain, row.accepted, row.lost, row.twice, row.stock_difference
        )
        .expect("writing to a string");
    }
    table
}

/// A total with its parts: `3 (HTTP 2, NATS 1)`, or `0`.
fn breakdown<K: std::fmt::Display>(counts: &BTreeMap<K, usize>) -> String {
    match counts.values().sum::<usize>() {
        0 => "0".to_owned(),
        total => {
            let parts: Vec<String> = counts.iter().map(|(part, count)| format!("{part} {count}")).collect();
            format!("{total} ({})", parts.join(", "))
        }
    }
}
