//! The stock ledger in KV: one levels document (`levels`) changed by compare-and-swap, and one
//! reservation record per order. Every operation is idempotent per order id.
//!
//! An operation on an order changes the levels and the order's reservation record together, in
//! one atomic batch of the group commit ([`crate::writer`]), each write expecting the revision
//! it was read at. An edit sees the record as of the levels it applies to, so a duplicate
//! request, even one racing the original on another stock manager, finds the record its
//! original wrote (or loses the compare-and-swap and reads again), and never applies a change
//! twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use brewq_protocol::stock::{Items, LevelsDoc, Reservation, ReservationState, StockLevel, StockSnapshot};
use brewq_protocol::{Ingredient, StockCommand, StockReply, subjects};
use brewq_runtime::kv::get_json;
use tokio::sync::{mpsc, oneshot};

use crate::writer::{Job, Op, RecordInBatch, write_batches};

/// Handle on the stock bucket; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<Store>,
    jobs: mpsc::Sender<Job>,
}

/// The stock as metrics, per ingredient: `brewq_stock_on_hand`, `brewq_stock_reserved`, and
/// `brewq_stock_low` (1 while below its alert level).
pub(crate) fn record_levels(levels: &BTreeMap<Ingredient, StockLevel>) {
    for (ingredient, level) in levels {
        let name = ingredient.as_str();
        metrics::gauge!("brewq_stock_on_hand", "ingredient" => name).set(level.on_hand as f64);
        metrics::gauge!("brewq_stock_reserved", "ingredient" => name).set(level.reserved as f64);
        metrics::gauge!("brewq_stock_low", "ingredient" => name).set(f64::from(u8::from(level.is_low())));
    }
}

/// The levels after applying `op` with `items`, or the ingredient that runs short.
fn apply(levels: &mut BTreeMap<Ingredient, StockLevel>, op: Op, items: &Items) -> Result<(), Ingredient> {
    for (&ingredient, &amount) in items {
        let level = levels.entry(ingredient).or_default();
        let source = match op {
            Op::Reserve => level.on_hand,
            Op::Commit | Op::Release => level.reserved,
        };
        if source < amount {
            return Err(ingredient);
        }
    }
    for (&ingredient, &amount) in items {
        let level = levels.entry(ingredient).or_default();
        match op {
            Op::Reserve => {
                level.on_hand -= amount;
                level.reserved += amount;
            }
            Op::Commit => {
                level.reserved -= amount;
                level.consumed += amount;
            }
            Op::Release => {
                level.reserved -= amount;
                level.on_hand += amount;
            }
        }
    }
    Ok(())
}

impl Ledger {
    /// A ledger over the provisioned stock bucket, and its writer task (to spawn; it ends
    /// when the last clone of the ledger is dropped). `client` sends the writer's batches.
    pub fn new(store: Store, client: async_nats::Client) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let store = Arc::new(store);
        let (jobs, queue) = mpsc::channel(1024);
        (Ledger { store: store.clone(), jobs }, write_batches(store, client, queue))
    }

    /// Applies `edit` to the levels and to `order_id`'s record (as read after the levels) in
    /// the next batch, and returns its answer.
    async fn edit(
        &self,
        order_id: Option<&str>,
        expects_no_record: bool,
        edit: impl FnMut(&mut LevelsDoc, &mut RecordInBatch) -> anyhow::Result<StockReply> + Send + 'static,
    ) -> anyhow::Result<StockReply> {
        if let Some(order_id) = order_id
            && !brewq_protocol::ids::is_order_id(order_id)
        {
            // A refused key would sink the whole batch it rides in.
            anyhow::bail!("{order_id:?} is not an order id: letters, digits, '-' or '_', at most 64");
        }
        let (done, result) = oneshot::channel();
        let job = Job { order_id: order_id.map(str::to_owned), expects_no_record, edit: Box::new(edit), done };
        self.jobs.send(job).await.map_err(|_| anyhow::anyhow!("the stock writer has stopped"))?;
        result.await.map_err(|_| anyhow::anyhow!("the stock writer has stopped"))?
    }

    /// Sets aside `items` for `order_id`, all or nothing.
    pub async fn reserve(&self, order_id: &str, items: &Items) -> anyhow::Result<StockReply> {
        let items = items.clone();
        self.edit(Some(order_id), true, move |doc, slot| Ok(reserve(doc, slot, &items))).await
    }

    /// The order was brewed: its reservation becomes consumed.
    pub async fn commit(&self, order_id: &str) -> anyhow::Result<StockReply> {
        let id = order_id.to_owned();
        self.edit(Some(order_id), false, move |doc, slot| end_reservation(doc, slot, &id, Op::Commit)).await
    }

    /// The order failed or was cancelled: its reservation goes back on hand. An order with no
    /// reservation gets a released one holding nothing: a reserve of it that arrives later
    /// (sent before a timeout made its controller give up on it) then finds it released and
    /// sets nothing aside, so undoing a reserve whose outcome is unknown is always safe.
    pub async fn release(&self, order_id: &str) -> anyhow::Result<StockReply> {
        let id = order_id.to_owned();
        self.edit(Some(order_id), false, move |doc, slot| end_reservation(doc, slot, &id, Op::Release)).await
    }

    /// Adds `items` to what is on hand, once per `request_id` among the last ones remembered.
    pub async fn restock(&self, items: &Items, request_id: Option<&str>) -> anyhow::Result<StockReply> {
        if let Some(id) = request_id
            && !brewq_protocol::ids::is_order_id(id)
        {
            let message = format!("request_id {id:?}: letters, digits, '-' or '_', at most 64");
            return Ok(StockReply::Refused { message });
        }
        let (items, request_id) = (items.clone(), request_id.map(str::to_owned));
        self.edit(None, false, move |doc, _: &mut RecordInBatch| Ok(restock_once(doc, &items, request_id.as_deref()))).await
    }

    /// Sets low-stock alert levels.
    pub async fn threshold(&self, items: &Items) -> anyhow::Result<StockReply> {
        let items = items.clone();
        self.edit(None, false, move |doc, _: &mut RecordInBatch| Ok(threshold(doc, &items))).await
    }

    /// Applies the chain's command numbered `sequence` in the shop's commands stream, once: a
    /// command at or before the last one applied changes nothing.
    pub async fn apply_chain_command(&self, sequence: u64, command: StockCommand) -> anyhow::Result<StockReply> {
        self.edit(None, false, move |doc, _: &mut RecordInBatch| Ok(chain_command(doc, sequence, &command))).await
    }

    /// The levels as they are now.
    pub async fn snapshot(&self) -> anyhow::Result<StockSnapshot> {
        let doc = get_json::<LevelsDoc>(&self.store, subjects::STOCK_KEY).await?.map(|(doc, _)| doc).unwrap_or_default();
        record_levels(&doc.levels);
        Ok(snapshot_of(&doc))
    }

    /// The reservation record of `order_id`, if any.
    pub async fn reservation(&self, order_id: &str) -> anyhow::Result<Option<(Reservation, u64)>> {
        get_json(&self.store, &subjects::reservation_key(order_id)).await.with_context(|| format!("reading the reservation of {order_id}"))
    }
}

/// A reserve: answered from the record of an earlier request if there is one, else the
/// ingredients taken from what is on hand and the record written, or the one that runs short.
fn reserve(doc: &mut LevelsDoc, slot: &mut RecordInBatch, items: &Items) -> StockReply {
    if let Some(record) = slot.record() {
        return reply_for(record.state);
    }
    if let Err(ingredient) = apply(&mut doc.levels, Op::Reserve, items) {
        return StockReply::OutOfStock { ingredient };
    }
    slot.set(Reservation { items: items.clone(), state: ReservationState::Reserved });
    StockReply::Reserved
}

/// A commit or a release of `id`'s reservation: done once, answered the same when repeated,
/// refused when the reservation already ended the other way. A release with no reservation
/// leaves a released one holding nothing.
fn end_reservation(doc: &mut LevelsDoc, slot: &mut RecordInBatch, id: &str, op: Op) -> anyhow::Result<StockReply> {
    let target = if op == Op::Commit { ReservationState::Committed } else { ReservationState::Released };
    let Some(record) = slot.record().cloned() else {
        anyhow::ensure!(op == Op::Release, "order {id} has no reservation");
        slot.set(Reservation { items: Items::new(), state: ReservationState::Released });
        return Ok(StockReply::Released);
    };
    if record.state == target {
        return Ok(reply_for(target));
    }
    anyhow::ensure!(record.state == ReservationState::Reserved, "order {id} is already {:?}", record.state);
    apply(&mut doc.levels, op, &record.items)
        .map_err(|ingredient| anyhow::anyhow!("reserved {ingredient} is less than order {id} holds"))?;
    slot.set(Reservation { state: target, ..record });
    Ok(reply_for(target))
}

/// A restock with `request_id`: applied unless one with that id already was (it is then
/// answered with the levels as they are), the id remembered with the restock it applied.
fn restock_once(doc: &mut LevelsDoc, items: &Items, request_id: Option<&str>) -> StockReply {
    let Some(id) = request_id else { return restock(doc, items) };
    if doc.restocks.iter().any(|done| done == id) {
        return StockReply::Snapshot { stock: snapshot_of(doc) };
    }
    let reply = restock(doc, items);
    if matches!(reply, StockReply::Snapshot { .. }) {
        doc.restocks.push_back(id.to_owned());
        while doc.restocks.len() > brewq_protocol::stock::RESTOCKS_REMEMBERED {
            doc.restocks.pop_front();
        }
    }
    reply
}

/// A restock: every line checked before any is applied, all or nothing.
fn restock(doc: &mut LevelsDoc, items: &Items) -> StockReply {
    for (&ingredient, &amount) in items {
        let level = doc.levels.get(&ingredient).copied().unwrap_or_default();
        if level.added.checked_add(amount).is_none() {
            let message = format!(
                "{ingredient}: restocking {amount} would take the total ever added past {}, the most the stock can count",
                u64::MAX
            );
            return StockReply::Refused { message };
        }
    }
    for (&ingredient, &amount) in items {
        let level = doc.levels.entry(ingredient).or_default();
        level.on_hand += amount;
        level.added += amount;
    }
    StockReply::Snapshot { stock: snapshot_of(doc) }
}

/// New low-stock alert levels.
fn threshold(doc: &mut LevelsDoc, items: &Items) -> StockReply {
    for (&ingredient, &amount) in items {
        doc.levels.entry(ingredient).or_default().low_at = amount;
    }
    StockReply::Snapshot { stock: snapshot_of(doc) }
}

/// The chain's command numbered `sequence`, applied unless it (or a later one) already was; a
/// refused one counts as applied too, so that it is not offered again for ever.
fn chain_command(doc: &mut LevelsDoc, sequence: u64, command: &StockCommand) -> StockReply {
    if sequence <= doc.chain_applied {
        return StockReply::Snapshot { stock: snapshot_of(doc) };
    }
    let reply = match command {
        StockCommand::Restock { items, .. } => restock(doc, items),
        StockCommand::Threshold { items } => threshold(doc, items),
        other => StockReply::Refused { message: format!("the chain sends a shop restocks and alert levels, not {}", other.op()) },
    };
    doc.chain_applied = sequence;
    reply
}

fn reply_for(state: ReservationState) -> StockReply {
    match state {
        ReservationState::Reserved => StockReply::Reserved,
        ReservationState::Committed => StockReply::Committed,
        ReservationState::Released => StockReply::Released,
    }
}

fn snapshot_of(doc: &LevelsDoc) -> StockSnapshot {
    let mut levels = doc.levels.clone();
    for &ingredient in Ingredient::ALL {
        levels.entry(ingredient).or_default();
    }
    StockSnapshot { levels }
}

#[cfg(test)]
mod tests {
    use brewq_protocol::Ingredient::{Arabica, CowMilk};

    use super::*;

    fn doc(arabica: u64, milk: u64) -> LevelsDoc {
        let mut doc = LevelsDoc::default();
        for (ingredient, amount) in [(Arabica, arabica), (CowMilk, milk)] {
            doc.levels.insert(ingredient, StockLevel { on_hand: amount, added: amount, ..StockLevel::default() });
        }
        doc
    }

    fn items(arabica: u64, milk: u64) -> Items {
        [(Arabica, arabica), (CowMilk, milk)].into_iter().collect()
    }

    fn holds(doc: &LevelsDoc) -> bool {
        doc.levels.values().all(|level| level.on_hand + level.reserved + level.consumed == level.added)
    }

    #[test]
    fn a_command_of_the_chain_is_applied_once_however_often_it_comes() {
        let mut stock = doc(10, 100);
        let restock = StockCommand::Restock { items: items(5, 0), request_id: None };
        assert!(matches!(chain_command(&mut stock, 1, &restock), StockReply::Snapshot { .. }));
        assert_eq!((stock.levels[&Arabica].on_hand, stock.chain_applied), (15, 1));
        // Delivered again (the ack was lost), or an older one late: nothing changes.
        chain_command(&mut stock, 1, &restock);
        assert_eq!(stock.levels[&Arabica].on_hand, 15);
        // The next one is applied; one refused still counts as done.
        chain_command(&mut stock, 2, &restock);
        assert_eq!(stock.levels[&Arabica].on_hand, 20);
        let reserve = StockCommand::Reserve { order_id: "o1".into(), items: items(1, 0) };
        assert!(matches!(chain_command(&mut stock, 3, &reserve), StockReply::Refused { .. }));
        assert_eq!((stock.levels[&Arabica].on_hand, stock.chain_applied), (20, 3));
        assert!(holds(&stock));
    }

    #[test]
    fn a_reserve_takes_every_line_or_none() {
        let mut stock = doc(10, 100);
        let mut slot = RecordInBatch::default();
        assert_eq!(reserve(&mut stock, &mut slot, &items(8, 150)), StockReply::OutOfStock { ingredient: CowMilk });
        assert_eq!(stock.levels[&Arabica].on_hand, 10, "the arabica line is not taken when the milk runs short");
        assert!(slot.record().is_none());
        assert_eq!(reserve(&mut stock, &mut slot, &items(8, 50)), StockReply::Reserved);
        assert_eq!((stock.levels[&Arabica].on_hand, stock.levels[&Arabica].reserved), (2, 8));
        assert_eq!(slot.record().map(|record| record.state), Some(ReservationState::Reserved));
        assert!(holds(&stock));
    }

    #[test]
    fn a_repeated_reserve_is_answered_from_the_record_and_takes_nothing_more() {
        let mut stock = doc(10, 100);
        let mut slot = RecordInBatch::default();
        reserve(&mut stock, &mut slot, &items(4, 0));
        let before = stock.clone();
        assert_eq!(reserve(&mut stock, &mut slot, &items(4, 0)), StockReply::Reserved);
        assert_eq!(stock.levels, before.levels);
        // A reserve of an order already released (its controller gave up on it) sets nothing aside.
        let mut released = RecordInBatch::holding(Some(Reservation { items: Items::new(), state: ReservationState::Released }), 7);
        assert_eq!(reserve(&mut stock, &mut released, &items(4, 0)), StockReply::Released);
        assert_eq!(stock.levels, before.levels);
    }

    #[test]
    fn commit_and_release_happen_once_and_never_both() {
        let mut stock = doc(10, 100);
        let mut slot = RecordInBatch::default();
        reserve(&mut stock, &mut slot, &items(4, 30));
        assert_eq!(end_reservation(&mut stock, &mut slot, "o1", Op::Commit).expect("commit"), StockReply::Committed);
        assert_eq!(end_reservation(&mut stock, &mut slot, "o1", Op::Commit).expect("commit again"), StockReply::Committed);
        assert_eq!((stock.levels[&Arabica].reserved, stock.levels[&Arabica].consumed), (0, 4), "consumed once");
        let refused = end_reservation(&mut stock, &mut slot, "o1", Op::Release).expect_err("release after commit");
        assert!(refused.to_string().contains("already Committed"), "{refused}");
        assert_eq!(stock.levels[&Arabica].on_hand, 6);
        assert!(holds(&stock));
    }

    #[test]
    fn a_release_gives_back_what_was_reserved_and_one_with_no_reservation_leaves_a_released_one() {
        let mut stock = doc(10, 100);
        let mut slot = RecordInBatch::default();
        reserve(&mut stock, &mut slot, &items(4, 30));
        assert_eq!(end_reservation(&mut stock, &mut slot, "o1", Op::Release).expect("release"), StockReply::Released);
        assert_eq!(stock.levels, doc(10, 100).levels);
        let mut never_reserved = RecordInBatch::default();
        assert_eq!(end_reservation(&mut stock, &mut never_reserved, "o2", Op::Release).expect("release"), StockReply::Released);
        assert_eq!(never_reserved.record().map(|record| (record.state, record.items.is_empty())), Some((ReservationState::Released, true)));
        assert!(end_reservation(&mut stock, &mut RecordInBatch::default(), "o3", Op::Commit).is_err(), "a commit needs a reservation");
    }

    #[test]
    fn a_reservation_larger_than_the_reserved_level_is_refused_not_wrapped() {
        let mut stock = doc(10, 100);
        let mut slot = RecordInBatch::holding(Some(Reservation { items: items(5, 0), state: ReservationState::Reserved }), 3);
        let refused = end_reservation(&mut stock, &mut slot, "o1", Op::Commit).expect_err("nothing is reserved in the levels");
        assert!(refused.to_string().contains("arabica"), "{refused}");
        assert_eq!(stock.levels, doc(10, 100).levels);
    }

    #[test]
    fn a_restock_sent_again_under_its_request_id_is_applied_once() {
        let mut stock = doc(10, 100);
        assert!(matches!(restock_once(&mut stock, &items(5, 0), Some("r1")), StockReply::Snapshot { .. }));
        assert!(matches!(restock_once(&mut stock, &items(5, 0), Some("r1")), StockReply::Snapshot { .. }));
        assert_eq!(stock.levels[&Arabica].on_hand, 15, "the retry of r1 added nothing");
        restock_once(&mut stock, &items(5, 0), Some("r2"));
        restock_once(&mut stock, &items(5, 0), None);
        restock_once(&mut stock, &items(5, 0), None);
        assert_eq!(stock.levels[&Arabica].on_hand, 30, "another id, and restocks with none, each count");
        // A refused restock is not remembered: corrected and sent again, it applies.
        assert!(matches!(restock_once(&mut stock, &items(0, u64::MAX), Some("r3")), StockReply::Refused { .. }));
        assert!(!stock.restocks.contains(&"r3".to_owned()));
        // The memory is bounded: the oldest id goes first.
        for n in 0..brewq_protocol::stock::RESTOCKS_REMEMBERED {
            restock_once(&mut stock, &items(0, 1), Some(&format!("many-{n}")));
        }
        assert_eq!(stock.restocks.len(), brewq_protocol::stock::RESTOCKS_REMEMBERED);
        assert!(!stock.restocks.contains(&"r1".to_owned()));
        assert!(holds(&stock));
    }

    #[test]
    fn a_restock_that_would_overflow_changes_nothing() {
        let mut stock = doc(10, 100);
        let reply = restock(&mut stock, &items(5, u64::MAX));
        assert!(matches!(reply, StockReply::Refused { ref message } if message.contains("cow_milk")), "{reply:?}");
        assert_eq!(stock.levels, doc(10, 100).levels, "the arabica line is not added alone");
        assert!(matches!(restock(&mut stock, &items(5, 5)), StockReply::Snapshot { .. }));
        assert_eq!((stock.levels[&Arabica].on_hand, stock.levels[&Arabica].added), (15, 15));
    }
}
