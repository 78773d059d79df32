//! The stock ledger in KV: one levels document (`levels`) changed by compare-and-swap, and one
//! reservation record per order. Every operation is idempotent per order id.
//!
//! Changes to the levels are group-committed: one writer task per stock manager gathers the
//! changes waiting and applies them all in one compare-and-swap, so concurrent orders do not
//! fight over the one key.
//!
//! An operation on an order takes two writes: the levels document, then the order's
//! reservation record. The levels write also leaves a marker `in_flight[order_id] = op`, so that
//! a retry after a crash between the two writes knows the levels already hold the change and
//! only finishes the record. Once the record is written the marker is kept, marked settled, for
//! ten minutes: a duplicate request that read the record before it changed (a retry racing
//! the original, on another stock manager) still finds the marker and changes nothing.

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use brewq_protocol::stock::{Items, Reservation, ReservationState, StockLevel, StockSnapshot};
use brewq_protocol::{Ingredient, StockReply, now, subjects};
use brewq_runtime::kv::{Change, get_json, modify};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::any::Any;
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// What an operation does to an order's ingredients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Reserve,
    Commit,
    Release,
}

/// The last levels change applied for an order.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InFlight {
    op: Op,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// The order's reservation record says so too.
    #[serde(default)]
    settled: bool,
}

/// How long a settled marker is kept to stop duplicates.
const MARKER_RETENTION: time::Duration = time::Duration::minutes(10);

impl LevelsDoc {
    /// Forgets settled markers older than [`MARKER_RETENTION`].
    fn prune(&mut self) {
        let oldest = now() - MARKER_RETENTION;
        self.in_flight.retain(|_, marker| !marker.settled || marker.at > oldest);
    }
}

/// The `levels` document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LevelsDoc {
    levels: BTreeMap<Ingredient, StockLevel>,
    #[serde(default)]
    in_flight: BTreeMap<String, InFlight>,
}

/// Handle on the stock bucket; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<Store>,
    jobs: mpsc::Sender<Job>,
}

/// A change to the levels, applied in place; it must leave the document untouched when it
/// fails, and may run again (after a lost compare-and-swap).
type Edit = Box<dyn FnMut(&mut LevelsDoc) -> anyhow::Result<Box<dyn Any + Send>> + Send>;

struct Job {
    edit: Edit,
    done: oneshot::Sender<anyhow::Result<Box<dyn Any + Send>>>,
}

/// Most changes applied in one write.
const MAX_BATCH: usize = 512;

/// Applies queued changes in batches, one compare-and-swap per batch, until every [`Ledger`]
/// is dropped.
async fn write_batches(store: Arc<Store>, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let applied = modify(&store, subjects::STOCK_KEY, |doc: Option<LevelsDoc>| {
            let mut doc = doc.unwrap_or_default();
            doc.prune();
            let results: Vec<_> = batch.iter_mut().map(|job| (job.edit)(&mut doc)).collect();
            let levels = doc.levels.clone();
            Ok((Change::Write(doc), (results, levels)))
        })
        .await;
        match applied {
            Ok((results, levels)) => {
                record_levels(&levels);
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.done.send(result);
                }
            }
            Err(error) => {
                let message = format!("{error:#}");
                for job in batch {
                    let _ = job.done.send(Err(anyhow::anyhow!("{message}")));
                }
            }
        }
    }
}

/// The stock as metrics, per ingredient: `brewq_stock_on_hand`, `brewq_stock_reserved`, and
/// `brewq_stock_low` (1 while below its alert level).
fn record_levels(levels: &BTreeMap<Ingredient, StockLevel>) {
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
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        (Ledger { store: store.clone(), jobs }, write_batches(store, queue))
    }

    /// Applies `edit` to the levels in the next batch and returns its result.
    async fn edit<R: Send + 'static>(
        &self,
        mut edit: impl FnMut(&mut LevelsDoc) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let (done, result) = oneshot::channel();
        let edit: Edit = Box::new(move |doc| edit(doc).map(|value| Box::new(value) as Box<dyn Any + Send>));
        self.jobs.send(Job { edit, done }).await.map_err(|_| anyhow::anyhow!("the stock writer has stopped"))?;
        let value = result.await.map_err(|_| anyhow::anyhow!("the stock writer has stopped"))??;
        // Each job's result is the value its own edit returned.
        Ok(*value.downcast::<R>().expect("an edit's result has the edit's type"))
    }

    /// Sets aside `items` for `order_id`, all or nothing.
    pub async fn reserve(&self, order_id: &str, items: &Items) -> anyhow::Result<StockReply> {
        if let Some((reservation, _)) = self.reservation(order_id).await? {
            self.settle(order_id, Op::Reserve).await?;
            return Ok(reply_for(reservation.state));
        }
        let (id, wanted) = (order_id.to_owned(), items.clone());
        let short = self
            .edit(move |doc| {
                // Any marker means this order was reserved already (and maybe finished since).
                if doc.in_flight.contains_key(&id) {
                    return Ok(None);
                }
                if let Err(ingredient) = apply(&mut doc.levels, Op::Reserve, &wanted) {
                    return Ok(Some(ingredient));
                }
                doc.in_flight.insert(id.clone(), InFlight { op: Op::Reserve, at: now(), settled: false });
                Ok(None)
            })
            .await?;
        if let Some(ingredient) = short {
            return Ok(StockReply::OutOfStock { ingredient });
        }
        let record = Reservation { items: items.clone(), state: ReservationState::Reserved };
        modify(&self.store, &subjects::reservation_key(order_id), |existing: Option<Reservation>| {
            Ok((if existing.is_some() { Change::Keep } else { Change::Write(record.clone()) }, ()))
        })
        .await?;
        self.settle(order_id, Op::Reserve).await?;
        Ok(StockReply::Reserved)
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
        let Some((reservation, _)) = self.reservation(order_id).await? else {
            anyhow::bail!("order {order_id} has no reservation");
        };
        if reservation.state == target {
            self.settle(order_id, op).await?;
            return Ok(reply_for(target));
        }
        if reservation.state != ReservationState::Reserved {
            anyhow::bail!("order {order_id} is already {:?}", reservation.state);
        }
        let (id, items) = (order_id.to_owned(), reservation.items.clone());
        self.edit(move |doc| {
            match doc.in_flight.get(&id).map(|pending| pending.op) {
                Some(pending) if pending == op => return Ok(()),
                Some(Op::Commit | Op::Release) => anyhow::bail!("order {id} is being finished another way"),
                Some(Op::Reserve) | None => {}
            }
            apply(&mut doc.levels, op, &items)
                .map_err(|ingredient| anyhow::anyhow!("reserved {ingredient} is less than order {id} holds"))?;
            doc.in_flight.insert(id.clone(), InFlight { op, at: now(), settled: false });
            Ok(())
        })
        .await?;
        modify(&self.store, &subjects::reservation_key(order_id), |existing: Option<Reservation>| {
            let Some(mut record) = existing else { anyhow::bail!("reservation of {order_id} vanished") };
            if record.state == target {
                return Ok((Change::Keep, ()));
            }
            record.state = target;
            Ok((Change::Write(record), ()))
        })
        .await?;
        self.settle(order_id, op).await?;
        Ok(reply_for(target))
    }

    /// Adds `items` to what is on hand.
    pub async fn restock(&self, items: &Items) -> anyhow::Result<StockReply> {
        let items = items.clone();
        let stock = self
            .edit(move |doc| {
                for (&ingredient, &amount) in &items {
                    let level = doc.levels.entry(ingredient).or_default();
                    level.on_hand += amount;
                    level.added += amount;
                }
                Ok(snapshot_of(doc))
            })
            .await?;
        Ok(StockReply::Snapshot { stock })
    }

    /// Sets low-stock alert levels.
    pub async fn threshold(&self, items: &Items) -> anyhow::Result<StockReply> {
        let items = items.clone();
        let stock = self
            .edit(move |doc| {
                for (&ingredient, &amount) in &items {
                    doc.levels.entry(ingredient).or_default().low_at = amount;
                }
                Ok(snapshot_of(doc))
            })
            .await?;
        Ok(StockReply::Snapshot { stock })
    }

    /// The levels as they are now.
    pub async fn snapshot(&self) -> anyhow::Result<StockSnapshot> {
        let doc = get_json::<LevelsDoc>(&self.store, subjects::STOCK_KEY).await?.map(|(doc, _)| doc).unwrap_or_default();
        record_levels(&doc.levels);
        Ok(snapshot_of(&doc))
    }

    /// The reservation record of `order_id`, if any.
    pub async fn reservation(&self, order_id: &str) -> anyhow::Result<Option<(Reservation, u64)>> {
        get_json(&self.store, &subjects::reservation_key(order_id))
            .await
            .with_context(|| format!("reading the reservation of {order_id}"))
    }

    /// Marks the marker of `op` settled once the record says so.
    async fn settle(&self, order_id: &str, op: Op) -> anyhow::Result<()> {
        let id = order_id.to_owned();
        self.edit(move |doc| {
            if let Some(marker) = doc.in_flight.get_mut(&id).filter(|marker| marker.op == op && !marker.settled) {
                marker.settled = true;
                marker.at = now();
            }
            Ok(())
        })
        .await
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
    StockSnapshot { levels, in_flight: doc.in_flight.values().filter(|marker| !marker.settled).count() as u64 }
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
