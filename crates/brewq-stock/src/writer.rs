//! The one writer of the `levels` document per stock manager: it gathers the changes waiting
//! and applies them all in one compare-and-swap (group commit), so concurrent orders do not
//! fight over the one key. Before it runs a batch it reads, after the levels, the reservation
//! record of every order in the batch: an edit sees both, and a marker is forgotten only once
//! the record shows its operation, so an edit never misses both (see ARCHITECTURE.md).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use brewq_protocol::stock::{Reservation, ReservationState, StockLevel};
use brewq_protocol::{Ingredient, now, subjects};
use brewq_runtime::kv::{backoff, get_json, is_retryable};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// What an operation does to an order's ingredients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Op {
    Reserve,
    Commit,
    Release,
}

impl Op {
    /// Whether a reservation record in `state` shows this operation done.
    pub fn recorded_in(self, state: ReservationState) -> bool {
        match self {
            Op::Reserve => true,
            Op::Commit => state == ReservationState::Committed,
            Op::Release => state == ReservationState::Released,
        }
    }
}

/// A levels change applied for an order whose reservation record does not show it yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InFlight {
    pub op: Op,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Written by earlier versions, which kept markers after the record showed them.
    #[serde(default, skip_serializing)]
    settled: bool,
}

impl InFlight {
    pub fn new(op: Op) -> Self {
        InFlight { op, at: now(), settled: false }
    }
}

/// The `levels` document: the levels, and the markers of changes not yet recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LevelsDoc {
    pub levels: BTreeMap<Ingredient, StockLevel>,
    #[serde(default)]
    pub in_flight: BTreeMap<String, InFlight>,
}

/// A change to the levels, applied in place, seeing the order's reservation record as read
/// after the levels. It must leave the document untouched when it fails, and may run again
/// (after a lost compare-and-swap).
pub(crate) type Edit =
    Box<dyn FnMut(&mut LevelsDoc, Option<(&Reservation, u64)>) -> anyhow::Result<Box<dyn Any + Send>> + Send>;

pub(crate) struct Job {
    /// The order whose record the edit needs, if any.
    pub order_id: Option<String>,
    pub edit: Edit,
    /// `None` when nobody waits for the result.
    pub done: Option<oneshot::Sender<anyhow::Result<Box<dyn Any + Send>>>>,
}

/// Most changes applied in one write.
const MAX_BATCH: usize = 512;
/// Gives up a batch after this many lost compare-and-swaps in a row.
const MAX_ATTEMPTS: u32 = 200;
/// How often jobs nobody waits for are written when no other job comes to carry them.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Markers older than this are checked by the sweep.
const SWEEP_AFTER: time::Duration = time::Duration::seconds(30);

/// The levels as last read or written, with their revision.
type Cached = Option<(LevelsDoc, u64)>;

/// Applies queued changes in batches until every sender is dropped.
/// Jobs nobody waits for (dropping markers) do not cost a write of their own: they ride along
/// with the next batch that has a waiting job, or go at the next flush.
pub(crate) async fn write_batches(store: Arc<Store>, mut jobs: mpsc::Receiver<Job>) {
    let mut cached: Cached = None;
    let mut sweep = tokio::time::interval(Duration::from_secs(30));
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut deferred: Vec<Job> = Vec::new();
    loop {
        let (mut batch, woken_by_job) = tokio::select! {
            job = jobs.recv() => match job { Some(job) => (vec![job], true), None => break },
            _ = sweep.tick() => (sweep_markers(&store, &cached).await, false),
            _ = flush.tick() => (Vec::new(), false),
        };
        while woken_by_job && batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if woken_by_job && batch.iter().all(|job| job.done.is_none()) {
            deferred.append(&mut batch);
            continue;
        }
        batch.append(&mut deferred);
        if batch.is_empty() {
            continue;
        }
        match apply_batch(&store, &mut cached, &mut batch).await {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    if let Some(done) = job.done {
                        let _ = done.send(result);
                    }
                }
            }
            Err(error) => {
                let message = format!("{error:#}");
                tracing::warn!(error = message, "stock batch not written");
                for job in batch {
                    if let Some(done) = job.done {
                        let _ = done.send(Err(anyhow::anyhow!("{message}")));
                    }
                }
            }
        }
    }
}

/// One compare-and-swap for the whole batch, retried on a lost race; each job's result.
async fn apply_batch(
    store: &Store,
    cached: &mut Cached,
    batch: &mut [Job],
) -> anyhow::Result<Vec<anyhow::Result<Box<dyn Any + Send>>>> {
    let ids: Vec<String> = batch.iter().filter_map(|job| job.order_id.clone()).collect();
    for attempt in 0..MAX_ATTEMPTS {
        let (mut doc, revision) = match cached.take() {
            Some(cached) => cached,
            None => read_levels(store).await?,
        };
        let records = read_records(store, &ids).await?;
        doc.in_flight.retain(|_, marker| !marker.settled);
        let results: Vec<_> =
            batch.iter_mut().map(|job| (job.edit)(&mut doc, job.order_id.as_ref().and_then(|id| records.get(id)).map(|(record, revision)| (record, *revision)))).collect();
        // A struct of maps with string keys always serializes.
        let bytes = serde_json::to_vec(&doc).expect("levels serialize");
        match store.update(subjects::STOCK_KEY, bytes.into(), revision).await {
            Ok(revision) => {
                crate::ledger::record_levels(&doc.levels);
                *cached = Some((doc, revision));
                return Ok(results);
            }
            Err(error) if is_retryable(&error) => {
                tracing::debug!(attempt, %error, "levels changed under the batch; reading again");
                backoff(attempt).await;
            }
            Err(error) => return Err(error).context("writing the stock levels"),
        }
    }
    anyhow::bail!("gave up writing the stock levels: {MAX_ATTEMPTS} conflicting writes in a row")
}

async fn read_levels(store: &Store) -> anyhow::Result<(LevelsDoc, u64)> {
    get_json(store, subjects::STOCK_KEY)
        .await
        .context("reading the stock levels")?
        .context("the stock levels are missing (has the cluster been provisioned?)")
}

/// The reservation records of the batch's orders with their revisions, read concurrently,
/// after the levels.
async fn read_records(store: &Store, ids: &[String]) -> anyhow::Result<HashMap<String, (Reservation, u64)>> {
    let reads = ids.iter().map(|id| async move {
        let key = subjects::reservation_key(id);
        get_json::<Reservation>(store, &key).await.with_context(|| format!("reading the reservation of {id}"))
    });
    let mut records = HashMap::new();
    for (id, record) in ids.iter().zip(futures::future::join_all(reads).await) {
        if let Some(record) = record? {
            records.insert(id.clone(), record);
        }
    }
    Ok(records)
}

/// Forgets for the old markers whose record shows their operation (their own forget was
/// lost, for example to a crash).
async fn sweep_markers(store: &Store, cached: &Cached) -> Vec<Job> {
    let Some((doc, _)) = cached else { return Vec::new() };
    let oldest = now() - SWEEP_AFTER;
    let mut forgets = Vec::new();
    for (order_id, marker) in doc.in_flight.iter().filter(|(_, marker)| marker.at < oldest) {
        if let Ok(true) = recorded(store, order_id, marker.op).await {
            forgets.push(forget_job(order_id, marker.op));
        }
    }
    forgets
}

/// Whether `order_id`'s reservation record shows `op` done.
pub(crate) async fn recorded(store: &Store, order_id: &str, op: Op) -> anyhow::Result<bool> {
    let record = get_json::<Reservation>(store, &subjects::reservation_key(order_id))
        .await
        .with_context(|| format!("reading the reservation of {order_id}"))?;
    Ok(record.is_some_and(|(record, _)| op.recorded_in(record.state)))
}

/// A job that drops the marker of `op` for `order_id`, for a caller that has seen the record
/// show `op` (records only move forward, so the batch need not read it again).
pub(crate) fn forget_job(order_id: &str, op: Op) -> Job {
    let id = order_id.to_owned();
    Job {
        order_id: None,
        edit: Box::new(move |doc, _| {
            if doc.in_flight.get(&id).is_some_and(|marker| marker.op == op) {
                doc.in_flight.remove(&id);
            }
            Ok(Box::new(()))
        }),
        done: None,
    }
}
