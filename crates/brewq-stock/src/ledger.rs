//! The stock ledger in KV: one levels document (`levels`) changed by compare-and-swap, and one
//! reservation record per order. Every operation is idempotent per order id.
//!
//! An operation on an order changes the levels and the order's reservation record together, in
//! one atomic batch of the group commit ([`crate::writer`]), each write expecting the revision
//! it was read at. An edit sees the record as of the levels it applies to, so a duplicate
//! request, even one racing the original on another stock manager, finds the record its
//! original wrote (or loses the compare-and-swap and reads again), and never applies a change
//! twice.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use brewq_protocol::stock::{Items, Reservation, ReservationState, StockLevel, StockSnapshot};
use brewq_protocol::{Ingredient, StockReply, subjects};
use brewq_runtime::kv::get_json;
use tokio::sync::{mpsc, oneshot};

use crate::writer::{Edit, Job, LevelsDoc, Op, Slot, recorded, write_batches};

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
    /// the next batch, and returns its result.
    async fn edit<R: Send + 'static>(
        &self,
        order_id: Option<&str>,
        expects_no_record: bool,
        mut edit: impl FnMut(&mut LevelsDoc, &mut Slot) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        if let Some(order_id) = order_id
            && !valid_order_id(order_id)
        {
            anyhow::bail!("{order_id:?} is not an order id: letters, digits, '-', '_' or '=', at most 64");
        }
        let (done, result) = oneshot::channel();
        let edit: Edit = Box::new(move |doc, slot| edit(doc, slot).map(|value| Box::new(value) as Box<dyn Any + Send>));
        let job = Job { order_id: order_id.map(str::to_owned), expects_no_record, edit, done: Some(done) };
        self.jobs.send(job).await.map_err(|_| anyhow::anyhow!("the stock writer has stopped"))?;
        let value = result.await.map_err(|_| anyhow::anyhow!("the stock writer has stopped"))??;
        // Each job's result is the value its own edit returned.
        Ok(*value.downcast::<R>().expect("an edit's result has the edit's type"))
    }

    /// Sets aside `items` for `order_id`, all or nothing.
    pub async fn reserve(&self, order_id: &str, items: &Items) -> anyhow::Result<StockReply> {
        let (id, wanted) = (order_id.to_owned(), items.clone());
        self.edit(Some(order_id), true, move |doc, slot| {
            // Recorded by an earlier request: answer from the record.
            if let Some(record) = slot.record() {
                return Ok(reply_for(record.state));
            }
            // A marker without a record: an earlier version reserved and stopped there.
            if !doc.in_flight.contains_key(&id)
                && let Err(ingredient) = apply(&mut doc.levels, Op::Reserve, &wanted)
            {
                return Ok(StockReply::OutOfStock { ingredient });
            }
            doc.in_flight.remove(&id);
            slot.set(Reservation { items: wanted.clone(), state: ReservationState::Reserved });
            Ok(StockReply::Reserved)
        })
        .await
    }

    /// The order was brewed: its reservation becomes consumed.
    pub async fn commit(&self, order_id: &str) -> anyhow::Result<StockReply> {
        self.finish(order_id, Op::Commit).await
    }

    /// The order failed or was cancelled: its reservation goes back on hand. An order with no
    /// reservation gets a released one holding nothing: a reserve of it that arrives later
    /// (sent before a timeout made its controller give up on it) then finds it released and
    /// sets nothing aside, so undoing a reserve whose outcome is unknown is always safe.
    pub async fn release(&self, order_id: &str) -> anyhow::Result<StockReply> {
        self.finish(order_id, Op::Release).await
    }

    async fn finish(&self, order_id: &str, op: Op) -> anyhow::Result<StockReply> {
        let target = if op == Op::Commit { ReservationState::Committed } else { ReservationState::Released };
        let id = order_id.to_owned();
        self.edit(Some(order_id), false, move |doc, slot| {
            if slot.record().is_none() && op == Op::Release && !doc.in_flight.contains_key(&id) {
                slot.set(Reservation { items: Items::new(), state: ReservationState::Released });
                return Ok(());
            }
            let Some(record) = slot.record().cloned() else { anyhow::bail!("order {id} has no reservation") };
            let marker = doc.in_flight.get(&id).map(|marker| marker.op);
            if record.state == target {
                if marker == Some(op) {
                    doc.in_flight.remove(&id);
                }
                return Ok(());
            }
            if record.state != ReservationState::Reserved {
                anyhow::bail!("order {id} is already {:?}", record.state);
            }
            match marker {
                // An earlier version applied it to the levels and stopped before the record.
                Some(pending) if pending == op => {}
                Some(Op::Commit | Op::Release) => anyhow::bail!("order {id} is being finished another way"),
                Some(Op::Reserve) | None => apply(&mut doc.levels, op, &record.items)
                    .map_err(|ingredient| anyhow::anyhow!("reserved {ingredient} is less than order {id} holds"))?,
            }
            doc.in_flight.remove(&id);
            slot.set(Reservation { state: target, ..record });
            Ok(())
        })
        .await?;
        Ok(reply_for(target))
    }

    /// Adds `items` to what is on hand.
    pub async fn restock(&self, items: &Items) -> anyhow::Result<StockReply> {
        let items = items.clone();
        let outcome = self
            .edit(None, false, move |doc, _: &mut Slot| {
                // Every line is checked before any is applied: a restock is all or nothing.
                for (&ingredient, &amount) in &items {
                    let level = doc.levels.get(&ingredient).copied().unwrap_or_default();
                    if level.added.checked_add(amount).is_none() {
                        return Ok(Err(format!(
                            "{ingredient}: restocking {amount} would take the total ever added past {}, the most the stock can count",
                            u64::MAX
                        )));
                    }
                }
                for (&ingredient, &amount) in &items {
                    let level = doc.levels.entry(ingredient).or_default();
                    level.on_hand += amount;
                    level.added += amount;
                }
                Ok(Ok(snapshot_of(doc)))
            })
            .await?;
        Ok(match outcome {
            Ok(stock) => StockReply::Snapshot { stock },
            Err(message) => StockReply::Refused { message },
        })
    }

    /// Sets low-stock alert levels.
    pub async fn threshold(&self, items: &Items) -> anyhow::Result<StockReply> {
        let items = items.clone();
        let stock = self
            .edit(None, false, move |doc, _: &mut Slot| {
                for (&ingredient, &amount) in &items {
                    doc.levels.entry(ingredient).or_default().low_at = amount;
                }
                Ok(snapshot_of(doc))
            })
            .await?;
        Ok(StockReply::Snapshot { stock })
    }

    /// The levels as they are now. `in_flight` counts the changes whose reservation record
    /// does not show them yet (a marker whose record does is only waiting to be dropped).
    pub async fn snapshot(&self) -> anyhow::Result<StockSnapshot> {
        let doc = get_json::<LevelsDoc>(&self.store, subjects::STOCK_KEY).await?.map(|(doc, _)| doc).unwrap_or_default();
        let reads = doc.in_flight.iter().map(|(order_id, marker)| recorded(&self.store, order_id, marker.op));
        let mut half_done = 0;
        for shown in futures::future::join_all(reads).await {
            half_done += u64::from(!shown?);
        }
        record_levels(&doc.levels);
        Ok(StockSnapshot { in_flight: half_done, ..snapshot_of(&doc) })
    }

    /// The reservation record of `order_id`, if any.
    pub async fn reservation(&self, order_id: &str) -> anyhow::Result<Option<(Reservation, u64)>> {
        get_json(&self.store, &subjects::reservation_key(order_id)).await.with_context(|| format!("reading the reservation of {order_id}"))
    }
}

/// Whether `order_id` can name a reservation record: one key token, as the controllers make
/// them (a refused write would sink the whole batch it rides in).
fn valid_order_id(order_id: &str) -> bool {
    (1..=64).contains(&order_id.len()) && order_id.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_=".contains(&byte))
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
    StockSnapshot { levels, in_flight: doc.in_flight.len() as u64 }
}

/// The document provisioning writes when the bucket is new: `initial` on hand.
pub fn initial_levels_json(initial: &Items) -> Vec<u8> {
    let mut doc = LevelsDoc::default();
    for &ingredient in Ingredient::ALL {
        let amount = initial.get(&ingredient).copied().unwrap_or(0);
        let low_at = brewq_protocol::stock::default_low_at(ingredient);
        doc.levels.insert(ingredient, StockLevel { on_hand: amount, added: amount, low_at, ..StockLevel::default() });
    }
    // A struct of maps with string keys always serializes.
    serde_json::to_vec(&doc).expect("levels serialize")
}
