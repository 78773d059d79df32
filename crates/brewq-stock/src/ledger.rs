//! The stock ledger in KV: one levels document (`levels`) changed by compare-and-swap, and one
//! reservation record per order. Every operation is idempotent per order id.
//!
//! An operation on an order takes two writes: the levels (group-committed by [`crate::writer`]),
//! then the order's reservation record. The levels write leaves a marker
//! `in_flight[order_id] = op`, so that a retry after a crash between the two writes knows the
//! levels already hold the change and only finishes the record. Once the record shows the
//! operation, the marker is dropped in a later batch. An edit sees the marker and the record
//! (read after the levels), so a duplicate request, even one racing the original on another
//! stock manager, never applies a change twice.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use brewq_protocol::stock::{Items, Reservation, ReservationState, StockLevel, StockSnapshot};
use brewq_protocol::{Ingredient, StockReply, subjects};
use brewq_runtime::kv::{Change, get_json, modify};
use tokio::sync::{mpsc, oneshot};

use crate::writer::{Edit, InFlight, Job, LevelsDoc, Op, forget_job, recorded, write_batches};

/// Handle on the stock bucket; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<Store>,
    jobs: mpsc::Sender<Job>,
}

/// What a reserve edit found.
enum Reserving {
    /// Applied now, or by an earlier attempt whose record is not written yet.
    Applied,
    /// The record already exists: nothing to do but answer from it.
    Recorded(ReservationState),
    Short(Ingredient),
}

/// What a commit or release edit found.
enum Finishing {
    /// Applied now, or by an earlier attempt whose record is not written yet; with the record
    /// and its revision as the batch read them.
    Applied(Reservation, u64),
    /// The record already shows it.
    Recorded,
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
    /// when the last clone of the ledger is dropped).
    pub fn new(store: Store) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let store = Arc::new(store);
        let (jobs, queue) = mpsc::channel(1024);
        (Ledger { store: store.clone(), jobs }, write_batches(store, queue))
    }

    /// Applies `edit` to the levels in the next batch, with `order_id`'s record as read after
    /// the levels, and returns its result.
    async fn edit<R: Send + 'static>(
        &self,
        order_id: Option<&str>,
        mut edit: impl FnMut(&mut LevelsDoc, Option<(&Reservation, u64)>) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let (done, result) = oneshot::channel();
        let edit: Edit = Box::new(move |doc, record| edit(doc, record).map(|value| Box::new(value) as Box<dyn Any + Send>));
        let job = Job { order_id: order_id.map(str::to_owned), edit, done: Some(done) };
        self.jobs.send(job).await.map_err(|_| anyhow::anyhow!("the stock writer has stopped"))?;
        let value = result.await.map_err(|_| anyhow::anyhow!("the stock writer has stopped"))??;
        // Each job's result is the value its own edit returned.
        Ok(*value.downcast::<R>().expect("an edit's result has the edit's type"))
    }

    /// Drops the marker of `op` in a later batch, without waiting, once the record shows `op`:
    /// a marker left behind only costs room until the sweep finds it.
    fn forget(&self, order_id: &str, op: Op) {
        let _ = self.jobs.try_send(forget_job(order_id, op));
    }

    /// Sets aside `items` for `order_id`, all or nothing.
    pub async fn reserve(&self, order_id: &str, items: &Items) -> anyhow::Result<StockReply> {
        let (id, wanted) = (order_id.to_owned(), items.clone());
        let found = self
            .edit(Some(order_id), move |doc, record| {
                if let Some((record, _)) = record {
                    return Ok(Reserving::Recorded(record.state));
                }
                // A marker without a record: an earlier attempt reserved and stopped there.
                if doc.in_flight.contains_key(&id) {
                    return Ok(Reserving::Applied);
                }
                if let Err(ingredient) = apply(&mut doc.levels, Op::Reserve, &wanted) {
                    return Ok(Reserving::Short(ingredient));
                }
                doc.in_flight.insert(id.clone(), InFlight::new(Op::Reserve));
                Ok(Reserving::Applied)
            })
            .await?;
        match found {
            Reserving::Short(ingredient) => return Ok(StockReply::OutOfStock { ingredient }),
            Reserving::Recorded(state) => return Ok(reply_for(state)),
            Reserving::Applied => {}
        }
        let state = self.record_reservation(order_id, items).await?;
        self.forget(order_id, Op::Reserve);
        Ok(reply_for(state))
    }

    /// Creates the reservation record; if a duplicate of this request got there first (the
    /// levels hold the change once either way), answers from that record.
    async fn record_reservation(&self, order_id: &str, items: &Items) -> anyhow::Result<ReservationState> {
        let key = subjects::reservation_key(order_id);
        let record = Reservation { items: items.clone(), state: ReservationState::Reserved };
        // Plain data always serializes.
        let bytes = serde_json::to_vec(&record).expect("reservation serializes");
        if self.store.create(&key, bytes.into()).await.is_ok() {
            return Ok(ReservationState::Reserved);
        }
        // Already there, or the create raced another one ("wrong last sequence", 10164): the
        // compare-and-swap loop reads what is there and retries what may be retried.
        modify(&self.store, &key, |existing: Option<Reservation>| match existing {
            Some(existing) => Ok((Change::Keep, existing.state)),
            None => Ok((Change::Write(record.clone()), ReservationState::Reserved)),
        })
        .await
        .with_context(|| format!("recording the reservation of {order_id}"))
    }

    /// The order was brewed: its reservation becomes consumed.
    pub async fn commit(&self, order_id: &str) -> anyhow::Result<StockReply> {
        self.finish(order_id, Op::Commit).await
    }

    /// The order failed or was cancelled: its reservation goes back on hand.
    pub async fn release(&self, order_id: &str) -> anyhow::Result<StockReply> {
        self.finish(order_id, Op::Release).await
    }

    async fn finish(&self, order_id: &str, op: Op) -> anyhow::Result<StockReply> {
        let target = if op == Op::Commit { ReservationState::Committed } else { ReservationState::Released };
        let id = order_id.to_owned();
        let found = self
            .edit(Some(order_id), move |doc, record| {
                let Some((record, revision)) = record else { anyhow::bail!("order {id} has no reservation") };
                if record.state == target {
                    return Ok(Finishing::Recorded);
                }
                if record.state != ReservationState::Reserved {
                    anyhow::bail!("order {id} is already {:?}", record.state);
                }
                match doc.in_flight.get(&id).map(|marker| marker.op) {
                    Some(pending) if pending == op => return Ok(Finishing::Applied(record.clone(), revision)),
                    Some(Op::Commit | Op::Release) => anyhow::bail!("order {id} is being finished another way"),
                    Some(Op::Reserve) | None => {}
                }
                apply(&mut doc.levels, op, &record.items)
                    .map_err(|ingredient| anyhow::anyhow!("reserved {ingredient} is less than order {id} holds"))?;
                doc.in_flight.insert(id.clone(), InFlight::new(op));
                Ok(Finishing::Applied(record.clone(), revision))
            })
            .await?;
        if let Finishing::Applied(record, revision) = found {
            self.record_finish(order_id, Reservation { state: target, ..record }, revision).await?;
        }
        self.forget(order_id, op);
        Ok(reply_for(target))
    }

    /// Writes the finished reservation record: straight over the revision the batch read, or,
    /// if the record moved since (a duplicate of this request), over what is there now.
    async fn record_finish(&self, order_id: &str, finished: Reservation, revision: u64) -> anyhow::Result<()> {
        let key = subjects::reservation_key(order_id);
        // Plain data always serializes.
        let bytes = serde_json::to_vec(&finished).expect("reservation serializes");
        if self.store.update(&key, bytes.into(), revision).await.is_ok() {
            return Ok(());
        }
        modify(&self.store, &key, |existing: Option<Reservation>| {
            let Some(mut record) = existing else { anyhow::bail!("reservation of {order_id} vanished") };
            if record.state == finished.state {
                return Ok((Change::Keep, ()));
            }
            if record.state != ReservationState::Reserved {
                anyhow::bail!("order {order_id} is already {:?}", record.state);
            }
            record.state = finished.state;
            Ok((Change::Write(record), ()))
        })
        .await
    }

    /// Adds `items` to what is on hand.
    pub async fn restock(&self, items: &Items) -> anyhow::Result<StockReply> {
        let items = items.clone();
        let outcome = self
            .edit(None, move |doc, _| {
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
            .edit(None, move |doc, _| {
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
        get_json(&self.store, &subjects::reservation_key(order_id))
            .await
            .with_context(|| format!("reading the reservation of {order_id}"))
    }
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
