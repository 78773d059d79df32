//! The stock ledger in KV: one levels document (`levels`) changed by compare-and-swap, and one
//! reservation record per order. Every operation is idempotent per order id.
//!
//! An operation on an order takes two writes: the levels document, then the order's
//! reservation record. The levels write also leaves a marker `in_flight[order_id] = op`, so that
//! a retry after a crash between the two writes knows the levels already hold the change and
//! only finishes the record; the marker is removed once the record is written.

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use brewq_protocol::stock::{Items, StockLevel, StockSnapshot};
use brewq_protocol::{Ingredient, StockReply, now, subjects};
use brewq_runtime::kv::{Change, get_json, modify};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// What an operation does to an order's ingredients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Reserve,
    Commit,
    Release,
}

/// A levels change applied for an order whose record is not written yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InFlight {
    op: Op,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// The `levels` document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LevelsDoc {
    levels: BTreeMap<Ingredient, StockLevel>,
    #[serde(default)]
    in_flight: BTreeMap<String, InFlight>,
}

/// Where an order's reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Reserved,
    Committed,
    Released,
}

/// One order's reservation record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    pub items: Items,
    pub state: ReservationState,
}

/// Handle on the stock bucket; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    store: Arc<Store>,
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
    /// A ledger over the provisioned stock bucket.
    pub fn new(store: Store) -> Self {
        Ledger { store: Arc::new(store) }
    }

    /// Sets aside `items` for `order_id`, all or nothing.
    pub async fn reserve(&self, order_id: &str, items: &Items) -> anyhow::Result<StockReply> {
        if let Some((reservation, _)) = self.reservation(order_id).await? {
            self.settle(order_id, Op::Reserve).await?;
            return Ok(reply_for(reservation.state));
        }
        let short = modify(&self.store, subjects::STOCK_KEY, |doc: Option<LevelsDoc>| {
            let mut doc = doc.unwrap_or_default();
            if doc.in_flight.get(order_id).is_some_and(|pending| pending.op == Op::Reserve) {
                return Ok((Change::Keep, None));
            }
            if let Err(ingredient) = apply(&mut doc.levels, Op::Reserve, items) {
                return Ok((Change::Keep, Some(ingredient)));
            }
            doc.in_flight.insert(order_id.to_owned(), InFlight { op: Op::Reserve, at: now() });
            Ok((Change::Write(doc), None))
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
        modify(&self.store, subjects::STOCK_KEY, |doc: Option<LevelsDoc>| {
            let mut doc = doc.unwrap_or_default();
            match doc.in_flight.get(order_id).map(|pending| pending.op) {
                Some(pending) if pending == op => return Ok((Change::Keep, ())),
                Some(Op::Commit | Op::Release) => anyhow::bail!("order {order_id} is being finished another way"),
                Some(Op::Reserve) | None => {}
            }
            apply(&mut doc.levels, op, &reservation.items)
                .map_err(|ingredient| anyhow::anyhow!("reserved {ingredient} is less than order {order_id} holds"))?;
            doc.in_flight.insert(order_id.to_owned(), InFlight { op, at: now() });
            Ok((Change::Write(doc), ()))
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
        let stock = modify(&self.store, subjects::STOCK_KEY, |doc: Option<LevelsDoc>| {
            let mut doc = doc.unwrap_or_default();
            for (&ingredient, &amount) in items {
                let level = doc.levels.entry(ingredient).or_default();
                level.on_hand += amount;
                level.added += amount;
            }
            let stock = snapshot_of(&doc);
            Ok((Change::Write(doc), stock))
        })
        .await?;
        Ok(StockReply::Snapshot { stock })
    }

    /// The levels as they are now.
    pub async fn snapshot(&self) -> anyhow::Result<StockSnapshot> {
        let doc = get_json::<LevelsDoc>(&self.store, subjects::STOCK_KEY).await?;
        Ok(doc.map(|(doc, _)| snapshot_of(&doc)).unwrap_or_else(|| snapshot_of(&LevelsDoc::default())))
    }

    /// The reservation record of `order_id`, if any.
    pub async fn reservation(&self, order_id: &str) -> anyhow::Result<Option<(Reservation, u64)>> {
        get_json(&self.store, &subjects::reservation_key(order_id))
            .await
            .with_context(|| format!("reading the reservation of {order_id}"))
    }

    /// Removes the in-flight marker of `op` once the record says so.
    async fn settle(&self, order_id: &str, op: Op) -> anyhow::Result<()> {
        modify(&self.store, subjects::STOCK_KEY, |doc: Option<LevelsDoc>| {
            let mut doc = doc.unwrap_or_default();
            if doc.in_flight.get(order_id).is_some_and(|pending| pending.op == op) {
                doc.in_flight.remove(order_id);
                Ok((Change::Write(doc), ()))
            } else {
                Ok((Change::Keep, ()))
            }
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
    StockSnapshot { levels, in_flight: doc.in_flight.len() as u64 }
}

/// The document provisioning writes when the bucket is new: `initial` on hand.
pub fn initial_levels_json(initial: &Items) -> Vec<u8> {
    let mut doc = LevelsDoc::default();
    for &ingredient in Ingredient::ALL {
        let amount = initial.get(&ingredient).copied().unwrap_or(0);
        doc.levels.insert(ingredient, StockLevel { on_hand: amount, added: amount, ..StockLevel::default() });
    }
    // A struct of maps with string keys always serializes.
    serde_json::to_vec(&doc).expect("levels serialize")
}
