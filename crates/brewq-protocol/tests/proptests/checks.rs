//! What must hold for any payload a service reads from the network, one check per wire type:
//! it parses or is refused, what parses is used as the service would use it, and a refused
//! order names its field. A check panics when a property fails. The property tests run them on
//! generated payloads; the fuzz targets (`fuzz/` at the repository's root) include this file and
//! run them on what the fuzzer makes.

use std::collections::BTreeMap;
use std::time::Duration;

use brewq_protocol::accounting;
use brewq_protocol::audit::{AuditEntry, DeadLetter};
use brewq_protocol::order::MAX_NAME_CHARS;
use brewq_protocol::queue::{self, QueueView};
use brewq_protocol::stock::Reservation;
use brewq_protocol::{
    KeyedOrder, MachineCommand, MachineHeartbeat, MachineView, Order, OrderRecord, OrderReply, OrderRequest, OrderStatus, OrderUpdate,
    Size, StockCommand, StockReply, StockSnapshot, UpdateReply, subjects,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The fields of an order request that validation may name.
pub const ORDER_FIELDS: &[&str] = &["name", "size", "bean_type", "milk", "sugar_count"];

/// Characters that must never reach a public screen in a name: bidirectional controls,
/// zero-width and other invisible characters (the list of issue 17; the validator's own table
/// is larger).
pub const HIDDEN_IN_NAMES: &[char] = &[
    '\u{202A}',
    '\u{202B}',
    '\u{202C}',
    '\u{202D}',
    '\u{202E}',
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}',
    '\u{200E}',
    '\u{200F}',
    '\u{061C}',
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{2060}',
    '\u{2061}',
    '\u{2062}',
    '\u{2063}',
    '\u{2064}',
    '\u{FEFF}',
    '\u{00AD}',
    '\u{180E}',
    '\u{115F}',
    '\u{1160}',
    '\u{3164}',
    '\u{FFA0}',
    '\u{E0001}',
    '\u{E0020}',
    '\u{E007F}',
];

/// Longest error message a refused order may carry: a refusal quotes a little of the value,
/// never all of it.
const MAX_MESSAGE_BYTES: usize = 400;

/// A check of one wire type, on a payload's bytes.
pub type Check = fn(&[u8]);

/// The wire types, by the number the dispatching fuzz target reads from its first byte.
pub const PAYLOADS: &[(&str, Check)] = &[
    ("order request", order_request),
    ("order update", order_update),
    ("order record", order_record),
    ("stock command", stock_command),
    ("stock reply", stock_reply),
    ("stock snapshot", stock_snapshot),
    ("reservation", reservation),
    ("machine command", machine_command),
    ("machine heartbeat", machine_heartbeat),
    ("machine view", machine_view),
    ("order reply", order_reply),
    ("update reply", update_reply),
    ("keyed order", keyed_order),
    ("dead letter", dead_letter),
    ("audit entry", audit_entry),
    ("queue view", queue_view),
];

/// Parses `bytes` as a `T`; what parses serializes (services `expect` that of their replies and
/// records), and reads back the same.
fn parse<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Option<T> {
    let parsed = serde_json::from_slice::<T>(bytes).ok()?;
    let value = serde_json::to_value(&parsed).expect("what parses serializes");
    let again = serde_json::from_value::<T>(value.clone()).expect("what serializes parses");
    assert_eq!(serde_json::to_value(&again).expect("serializes again"), value, "reads back the same");
    Some(parsed)
}

/// The body of `POST /api/orders` and of a request on `coffee.web.requests`, validated as the
/// controller and the web do; also what a machine reads from the work queue.
pub fn order_request(bytes: &[u8]) {
    let Some(request) = parse::<OrderRequest>(bytes) else { return };
    match request.validate() {
        Ok(order) => {
            valid_order(&order);
            assert_eq!(OrderRequest::from(&order).validate().as_ref(), Ok(&order), "a valid order's own request is valid");
        }
        Err(error) => {
            assert!(ORDER_FIELDS.contains(&error.field), "unknown field {:?}", error.field);
            assert!(error.message.len() <= MAX_MESSAGE_BYTES, "{} bytes of message", error.message.len());
            // The field named is at fault: with a good value there, it is no longer the one named.
            let mut mended = request.clone();
            let good = Some(Value::from(match error.field {
                "name" => "Zoë",
                "size" => "small",
                "bean_type" => "arabica",
                "milk" => "none",
                _ => "1",
            }));
            match error.field {
                "name" => mended.name = good,
                "size" => mended.size = good,
                "bean_type" => mended.bean_type = good,
                "milk" => mended.milk = good,
                _ => mended.sugar_count = good,
            }
            assert_ne!(mended.validate().err().map(|mended| mended.field), Some(error.field), "{error}");
        }
    }
    match request.idempotency_key() {
        Ok(Some(key)) => assert!(brewq_protocol::order::check_idempotency_key(&key).is_ok()),
        Ok(None) => {}
        Err(error) => assert_eq!(error.field, "idempotency_key"),
    }
}

/// What validation promises of an order.
fn valid_order(order: &Order) {
    let name = &order.name;
    assert!(!name.is_empty() && name.trim() == name, "{name:?}");
    assert!(name.chars().count() <= MAX_NAME_CHARS, "{name:?}");
    assert!(!name.chars().any(|c| c.is_control() || HIDDEN_IN_NAMES.contains(&c)), "{name:?}");
    assert!(order.sugar_count <= brewq_protocol::order::MAX_SUGAR);
}

/// A machine's request on `coffee.records.update`, applied to an order in every state.
pub fn order_update(bytes: &[u8]) {
    let Some(update) = parse::<OrderUpdate>(bytes) else { return };
    if let Some(order) = &update.order {
        let _ = OrderRequest::from(order).validate();
    }
    for record in records_in_every_state(&update.order_id) {
        match record.updated(&update, at()) {
            Ok(updated) => {
                assert!(!record.status.is_terminal(), "a final order changed");
                assert_eq!(updated.status, update.status);
                assert!(updated.history.len() > record.history.len());
                let _ = parse::<OrderRecord>(&serde_json::to_vec(&updated).expect("serializes")).expect("a record reads back");
            }
            Err(refused) => assert_eq!(refused.order_id, update.order_id),
        }
    }
}

/// An order's record in the records bucket, as the web, the CLI and the checker read it, then
/// moved by the controller.
pub fn order_record(bytes: &[u8]) {
    let Some(record) = parse::<OrderRecord>(bytes) else { return };
    let _ = (record.settlement(), record.never_queued(), record.created_at());
    let _ = accounting::check(std::slice::from_ref(&record), &BTreeMap::new(), &StockSnapshot::default());
    let worn = OrderRecord { attempts: u32::MAX, ..record.clone() };
    for next in [OrderStatus::Brewing, OrderStatus::Queued, OrderStatus::Ready, OrderStatus::Cancelled] {
        for mut moved in [record.clone(), worn.clone()] {
            if moved.transition(next, Some(1), None, at()).is_ok() {
                assert_eq!(moved.status, next);
            }
        }
    }
}

/// A request to the stock managers: its subject is `coffee.stock.<op>`.
pub fn stock_command(bytes: &[u8]) {
    let Some(command) = parse::<StockCommand>(bytes) else { return };
    let subject = subjects::stock_subject(&command);
    assert_eq!(subject.strip_prefix("coffee.stock."), Some(command.op()));
}

/// The stock manager's answer.
pub fn stock_reply(bytes: &[u8]) {
    let _ = parse::<StockReply>(bytes);
}

/// The stock levels document, as the checker reads it.
pub fn stock_snapshot(bytes: &[u8]) {
    let Some(stock) = parse::<StockSnapshot>(bytes) else { return };
    for level in stock.levels.values() {
        let _ = level.is_low();
    }
    let _ = accounting::check(&[], &BTreeMap::new(), &stock);
}

/// One order's reservation record in the stock bucket.
pub fn reservation(bytes: &[u8]) {
    let _ = parse::<Reservation>(bytes);
}

/// An operator's command to a machine on `coffee.machines.<id>.control`, in JSON and as the
/// CLI and the operator's URLs spell it.
pub fn machine_command(bytes: &[u8]) {
    let _ = parse::<MachineCommand>(bytes);
    if let Some(command) = MachineCommand::parse(&String::from_utf8_lossy(bytes)) {
        assert_eq!(MachineCommand::parse(command.action_name()), Some(command));
    }
}

/// A machine's heartbeat in the machines bucket, and the waiting times computed from it (by
/// the controller for its answer and by the web for a page).
pub fn machine_heartbeat(bytes: &[u8]) {
    let Some(heartbeat) = parse::<MachineHeartbeat>(bytes) else { return };
    let now = at();
    let _ = (heartbeat.is_online(now), heartbeat.takes_orders(now));
    // Beside it, a machine that claims the longest brew times, each size its own: coverage
    // does not lead a fuzzer to twenty-digit numbers.
    let extreme = BTreeMap::from([(Size::Small, u64::MAX), (Size::Medium, u64::MAX / 2), (Size::Large, 1)]);
    let boastful = MachineHeartbeat { brew_millis: extreme, ..heartbeat.clone() };
    let fleet = vec![heartbeat.clone(), heartbeat.clone(), boastful];
    let times = queue::brew_times(&fleet);
    let _ = queue::typical_brew_time(&times);
    for position in [1, heartbeat.cups, u64::MAX] {
        let _ = queue::estimate(position, heartbeat.failures, &fleet, None, now);
        for size in Size::ALL {
            let _ = queue::estimate(position, position, &fleet, Some(*size), now);
            let _ = queue::own_brew_time(&times, *size, Duration::MAX);
        }
    }
    let _ = MachineView::fleet(fleet, now);
}

/// A machine as the API shows it.
pub fn machine_view(bytes: &[u8]) {
    let Some(machine) = parse::<MachineView>(bytes) else { return };
    let _ = machine.takes_orders();
}

/// The controller's answer to an order, a cancel or an operator's retry.
pub fn order_reply(bytes: &[u8]) {
    let Some(reply) = parse::<OrderReply>(bytes) else { return };
    let _ = reply.is_success();
}

/// The controller's answer to a machine's update.
pub fn update_reply(bytes: &[u8]) {
    let _ = parse::<UpdateReply>(bytes);
}

/// What an idempotency key stands for, in the idempotency bucket.
pub fn keyed_order(bytes: &[u8]) {
    let _ = parse::<KeyedOrder>(bytes);
}

/// A failed order waiting for the operator.
pub fn dead_letter(bytes: &[u8]) {
    let _ = parse::<DeadLetter>(bytes);
}

/// One line of the audit stream.
pub fn audit_entry(bytes: &[u8]) {
    let _ = parse::<AuditEntry>(bytes);
}

/// The queue as `GET /api/queue` answers it. Its brew times are floats, which JSON may read
/// back a bit off: it only has to parse and serialize.
pub fn queue_view(bytes: &[u8]) {
    if let Ok(queue) = serde_json::from_slice::<QueueView>(bytes) {
        serde_json::to_vec(&queue).expect("what parses serializes");
    }
}

/// A fixed moment, so that a failing case fails again.
fn at() -> time::OffsetDateTime {
    time::macros::datetime!(2026-12-01 12:00 UTC)
}

/// A record of order `id` queued, brewing, ready, failed and cancelled.
fn records_in_every_state(id: &str) -> Vec<OrderRecord> {
    let order = Order {
        name: "Zoë".into(),
        size: Size::Large,
        bean_type: brewq_protocol::Bean::Mixed,
        milk: brewq_protocol::Milk::Soy,
        sugar_count: 3,
    };
    let queued = OrderRecord::queued(id, order, at());
    let moved = |from: &OrderRecord, to| {
        let mut record = from.clone();
        record.transition(to, Some(7), Some("why".into()), at()).expect("allowed");
        record
    };
    let brewing = moved(&queued, OrderStatus::Brewing);
    vec![moved(&brewing, OrderStatus::Ready), moved(&brewing, OrderStatus::Failed), moved(&queued, OrderStatus::Cancelled), brewing, queued]
}
