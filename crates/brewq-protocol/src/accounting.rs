//! The invariant checker: from every order record, every reservation and the stock levels,
//! an accounting of the ingredients and a list of every difference. Pure: the caller reads the
//! data (`brewq check`, the chaos test), this decides.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stock::{Items, Reservation, ReservationState, recipe};
use crate::{Ingredient, OrderRecord, OrderStatus, StockSnapshot};

/// One line of the accounting table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Line {
    pub added: u64,
    pub on_hand: u64,
    pub reserved: u64,
    pub consumed: u64,
    /// What the ready orders' recipes consumed.
    pub ready_recipes: u64,
    /// What the open (queued, brewing) orders' recipes hold.
    pub open_recipes: u64,
}

/// The result of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Orders, each counted once: a rolled-back order placed again counts as its new order.
    pub orders: usize,
    /// Orders rolled back before they were queued and placed again under a new id (each
    /// still checked: its stock must be released).
    pub placed_again: usize,
    pub by_status: BTreeMap<String, usize>,
    pub lines: BTreeMap<Ingredient, Line>,
    /// Every difference found; empty when every invariant holds.
    pub problems: Vec<String>,
    /// Stock still reserved with no open order, by order id (each also makes a difference).
    pub leaks: Vec<Leak>,
}

/// A reservation still held for an order that is not open: one with no record (its
/// controller stopped before recording it, or it waits in the work queue unrecorded), or one
/// that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leak {
    pub order_id: String,
    /// The order's status; none when it has no record.
    pub status: Option<OrderStatus>,
}

/// Whether `reservation` holds stock that no open order stands for: still reserved, and the
/// order (its `record`) absent or ended.
pub fn is_leak(reservation: &Reservation, record: Option<&OrderRecord>) -> bool {
    reservation.state == ReservationState::Reserved && record.is_none_or(|record| record.status.is_terminal())
}

/// The leaks among `reservations` (by order id), given every order record.
fn leaks(records: &[OrderRecord], reservations: &BTreeMap<String, Reservation>) -> Vec<Leak> {
    let by_id: BTreeMap<&str, &OrderRecord> = records.iter().map(|record| (record.id.as_str(), record)).collect();
    reservations
        .iter()
        .filter_map(|(order_id, reservation)| {
            let record = by_id.get(order_id.as_str()).copied();
            is_leak(reservation, record).then(|| Leak { order_id: order_id.clone(), status: record.map(|record| record.status) })
        })
        .collect()
}

/// Checks `records` (every accepted order), their `reservations` (by order id) and `stock`.
pub fn check(records: &[OrderRecord], reservations: &BTreeMap<String, Reservation>, stock: &StockSnapshot) -> Accounting {
    let mut accounting = Accounting::default();
    let mut ready = Items::new();
    let mut open = Items::new();
    for record in records {
        check_order(record, reservations.get(&record.id), &mut accounting.problems);
        if record.never_queued() && record.retried_as.is_some() {
            accounting.placed_again += 1;
            continue;
        }
        accounting.orders += 1;
        *accounting.by_status.entry(record.status.to_string()).or_default() += 1;
        let total = match record.status {
            OrderStatus::Ready => &mut ready,
            OrderStatus::Queued | OrderStatus::Brewing => &mut open,
            OrderStatus::Failed | OrderStatus::Cancelled => continue,
        };
        for (ingredient, amount) in recipe(&record.order) {
            *total.entry(ingredient).or_default() += amount;
        }
    }
    for (&ingredient, level) in &stock.levels {
        let line = Line {
            added: level.added,
            on_hand: level.on_hand,
            reserved: level.reserved,
            consumed: level.consumed,
            ready_recipes: ready.get(&ingredient).copied().unwrap_or(0),
            open_recipes: open.get(&ingredient).copied().unwrap_or(0),
        };
        check_line(ingredient, &line, &mut accounting.problems);
        accounting.lines.insert(ingredient, line);
    }
    accounting.leaks = leaks(records, reservations);
    accounting
}

fn check_order(record: &OrderRecord, reservation: Option<&Reservation>, problems: &mut Vec<String>) {
    let id = &record.id;
    let terminal = record.history.iter().filter(|entry| entry.status.is_terminal()).count();
    if terminal > 1 || (record.status.is_terminal() && terminal != 1) {
        problems.push(format!("order {id} reached a final state {terminal} times"));
    }
    let expected = match record.status {
        OrderStatus::Ready => ReservationState::Committed,
        OrderStatus::Failed | OrderStatus::Cancelled => ReservationState::Released,
        OrderStatus::Queued | OrderStatus::Brewing => ReservationState::Reserved,
    };
    match reservation {
        None => problems.push(format!("order {id} ({}) has no reservation", record.status)),
        Some(reservation) if reservation.state != expected => {
            problems.push(format!("order {id} is {} but its stock is {:?}", record.status, reservation.state));
        }
        // Rolled back before anything was set aside: released, holding nothing.
        Some(reservation) if record.never_queued() && reservation.items.is_empty() => {}
        Some(reservation) if reservation.items != recipe(&record.order) => {
            problems.push(format!("order {id} reserved {:?}, its recipe is {:?}", reservation.items, recipe(&record.order)));
        }
        Some(_) => {}
    }
}

fn check_line(ingredient: Ingredient, line: &Line, problems: &mut Vec<String>) {
    // Checked: levels past what a u64 holds do not add up either.
    let total = line.on_hand.checked_add(line.reserved).and_then(|total| total.checked_add(line.consumed));
    if total != Some(line.added) {
        problems.push(format!(
            "{ingredient}: on hand {} + reserved {} + consumed {} != added {}",
            line.on_hand, line.reserved, line.consumed, line.added
        ));
    }
    if line.consumed != line.ready_recipes {
        problems.push(format!("{ingredient}: consumed {} but ready orders' recipes make {}", line.consumed, line.ready_recipes));
    }
    if line.reserved != line.open_recipes {
        problems.push(format!("{ingredient}: reserved {} but open orders' recipes make {}", line.reserved, line.open_recipes));
    }
}

impl std::fmt::Display for Accounting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let statuses: Vec<String> = self.by_status.iter().map(|(status, count)| format!("{count} {status}")).collect();
        writeln!(f, "{} orders: {}", self.orders, statuses.join(", "))?;
        if self.placed_again > 0 {
            writeln!(f, "and {} rolled back before they were queued, then placed again under a new id", self.placed_again)?;
        }
        writeln!(
            f,
            "{:<10} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
            "item", "added", "on hand", "reserved", "consumed", "ready recipe", "open recipe"
        )?;
        for (ingredient, line) in &self.lines {
            writeln!(
                f,
                "{:<10} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
                ingredient.as_str(),
                line.added,
                line.on_hand,
                line.reserved,
                line.consumed,
                line.ready_recipes,
                line.open_recipes
            )?;
        }
        for leak in &self.leaks {
            let status = leak.status.map_or("no record".to_owned(), |status| format!("order {status}"));
            writeln!(f, "LEAK: {} still reserved ({status})", leak.order_id)?;
        }
        if self.problems.is_empty() {
            writeln!(f, "every invariant holds")
        } else {
            for problem in &self.problems {
                writeln!(f, "DIFFERENCE: {problem}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stock::StockLevel;
    use crate::{Bean, Milk, Order, Size, now};

    fn order() -> Order {
        Order { name: "A".into(), size: Size::Medium, bean_type: Bean::Arabica, milk: Milk::Cow, sugar_count: 1 }
    }

    /// Two orders: one ready, one failed; stock and reservations exactly as they should be.
    fn consistent() -> (Vec<OrderRecord>, BTreeMap<String, Reservation>, StockSnapshot) {
        let mut ready = OrderRecord::queued("r", order(), now());
        ready.transition(OrderStatus::Brewing, Some(1), None, now()).expect("brew");
        ready.transition(OrderStatus::Ready, None, None, now()).expect("ready");
        let mut failed = OrderRecord::queued("f", order(), now());
        failed.transition(OrderStatus::Failed, None, Some("jam".into()), now()).expect("fail");
        let items = recipe(&order());
        let reservations = BTreeMap::from([
            ("r".to_owned(), Reservation { items: items.clone(), state: ReservationState::Committed }),
            ("f".to_owned(), Reservation { items: items.clone(), state: ReservationState::Released }),
        ]);
        let levels = Ingredient::ALL
            .iter()
            .map(|&ingredient| {
                let used = items.get(&ingredient).copied().unwrap_or(0);
                (ingredient, StockLevel { on_hand: 1000 - used, reserved: 0, consumed: used, added: 1000, low_at: 0 })
            })
            .collect();
        (vec![ready, failed], reservations, StockSnapshot { levels })
    }

    #[test]
    fn a_consistent_system_has_no_difference() {
        let (records, reservations, stock) = consistent();
        let accounting = check(&records, &reservations, &stock);
        assert!(accounting.problems.is_empty(), "{accounting}");
    }

    #[test]
    fn records_whose_names_were_removed_still_add_up() {
        let (records, reservations, stock) = consistent();
        let records: Vec<_> = records.iter().map(|record| record.without_name(now())).collect();
        let accounting = check(&records, &reservations, &stock);
        assert!(accounting.problems.is_empty(), "{accounting}");
        assert_eq!(accounting.orders, 2, "{accounting}");
    }

    #[test]
    fn a_rolled_back_order_placed_again_is_checked_but_counted_once() {
        let (mut records, mut reservations, stock) = consistent();
        let mut rolled_back = OrderRecord::queued("old", order(), now());
        rolled_back.transition(OrderStatus::Failed, None, Some("could not be queued".into()), now()).expect("fail");
        rolled_back.retried_as = Some("r".into());
        records.push(rolled_back);
        reservations.insert("old".into(), Reservation { items: recipe(&order()), state: ReservationState::Released });
        let accounting = check(&records, &reservations, &stock);
        assert!(accounting.problems.is_empty(), "{accounting}");
        assert_eq!((accounting.orders, accounting.placed_again), (2, 1), "{accounting}");

        reservations.get_mut("old").expect("old").state = ReservationState::Reserved;
        let accounting = check(&records, &reservations, &stock);
        assert!(
            accounting.problems.iter().any(|problem| problem.contains("order old is failed but its stock is Reserved")),
            "{accounting}"
        );
    }

    #[test]
    fn a_stock_commit_applied_twice_is_caught() {
        let (records, reservations, mut stock) = consistent();
        let beans = stock.levels.get_mut(&Ingredient::Arabica).expect("arabica");
        beans.on_hand -= 14;
        beans.consumed += 14;
        let accounting = check(&records, &reservations, &stock);
        assert!(accounting.problems.iter().any(|problem| problem.contains("arabica: consumed 28")), "{accounting}");
    }

    #[test]
    fn an_order_finished_twice_or_a_release_never_done_is_caught() {
        let (mut records, mut reservations, stock) = consistent();
        let extra = records[0].history.last().cloned().expect("entry");
        records[0].history.push(extra);
        reservations.get_mut("f").expect("f").state = ReservationState::Reserved;
        let accounting = check(&records, &reservations, &stock);
        assert!(accounting.problems.iter().any(|problem| problem.contains("order r reached a final state 2 times")), "{accounting}");
        assert!(accounting.problems.iter().any(|problem| problem.contains("order f is failed but its stock is Reserved")), "{accounting}");
    }

    #[test]
    fn stock_reserved_for_no_open_order_is_named_as_a_leak() {
        let (mut records, mut reservations, mut stock) = consistent();
        let mut queued = OrderRecord::queued("q", order(), now());
        queued.queue_sequence = Some(3);
        records.push(queued);
        let items = recipe(&order());
        for id in ["q", "gone"] {
            reservations.insert(id.into(), Reservation { items: items.clone(), state: ReservationState::Reserved });
        }
        for (ingredient, amount) in &items {
            let level = stock.levels.get_mut(ingredient).expect("level");
            level.on_hand -= 2 * amount;
            level.reserved += 2 * amount;
        }
        reservations.get_mut("f").expect("f").state = ReservationState::Reserved;
        let accounting = check(&records, &reservations, &stock);
        let leaks: Vec<(&str, Option<OrderStatus>)> = accounting.leaks.iter().map(|leak| (leak.order_id.as_str(), leak.status)).collect();
        assert_eq!(leaks, [("f", Some(OrderStatus::Failed)), ("gone", None)], "{accounting}");
        assert!(accounting.problems.iter().any(|problem| problem.contains("reserved 28 but open orders' recipes make 14")), "{accounting}");
        assert!(accounting.to_string().contains("LEAK: gone still reserved (no record)"), "{accounting}");
    }

    #[test]
    fn a_consistent_system_has_no_leak() {
        let (records, reservations, stock) = consistent();
        assert!(check(&records, &reservations, &stock).leaks.is_empty());
    }

    #[test]
    fn stock_that_does_not_add_up_is_caught() {
        let (records, reservations, mut stock) = consistent();
        stock.levels.get_mut(&Ingredient::Sugar).expect("sugar").on_hand += 1;
        let accounting = check(&records, &reservations, &stock);
        assert!(accounting.problems.iter().any(|problem| problem.starts_with("sugar: on hand")), "{accounting}");
    }
}
