//! The one writer of the stock per stock manager: it gathers the changes waiting and applies
//! them all in one atomic batch (group commit), the `levels` document by compare-and-swap and,
//! with it, the reservation record of every order the batch changes, each over the revision it
//! was read at (or expecting none). Each edit sees its order's record as of the levels it
//! applies to: read after them, kept from the writer's own last batch, or, for a reserve,
//! assumed absent and checked by the write. The whole batch is stored or none of it, so the
//! levels and the records never disagree (see ARCHITECTURE.md).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use async_nats::jetstream::kv::{Operation, Store};
use brewq_protocol::stock::{LevelsDoc, Reservation, ReservationState};
use brewq_protocol::{StockReply, subjects};
use brewq_runtime::batch::{BatchFailure, KvWrite, write_atomically};
use brewq_runtime::kv::{backoff, get_json, is_retryable};
use tokio::sync::{mpsc, oneshot};

/// What an operation does to an order's ingredients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Reserve,
    Commit,
    Release,
}

/// An order's reservation record as a batch sees it: read after the levels, then changed by
/// the batch's edits in turn, so a second edit for the same order sees what the first did.
#[derive(Debug, Default)]
pub(crate) struct RecordInBatch {
    record: Option<Reservation>,
    /// The revision its write expects: the record's as read or kept, 0 when none was ever
    /// written (or none was read, for a reserve).
    revision: u64,
    changed: bool,
}

impl RecordInBatch {
    /// A slot holding `record`, read at `revision`.
    pub fn holding(record: Option<Reservation>, revision: u64) -> RecordInBatch {
        RecordInBatch { record, revision, changed: false }
    }

    pub fn record(&self) -> Option<&Reservation> {
        self.record.as_ref()
    }

    /// Writes `record` with the levels, in the same atomic batch.
    pub fn set(&mut self, record: Reservation) {
        self.record = Some(record);
        self.changed = true;
    }
}

/// A change to the levels and to the order's reservation record, applied in place, and the
/// answer to its caller. It must leave both untouched when it fails, and may run again (after
/// a lost compare-and-swap).
pub(crate) type Edit = Box<dyn FnMut(&mut LevelsDoc, &mut RecordInBatch) -> anyhow::Result<StockReply> + Send>;

pub(crate) struct Job {
    /// The order whose record the edit needs, if any.
    pub order_id: Option<String>,
    /// A reserve: its order has no record yet, unless this is a duplicate. The record is not
    /// read first; its write expects none, and a batch that finds one after all reads every
    /// record and runs again.
    pub expects_no_record: bool,
    pub edit: Edit,
    pub done: oneshot::Sender<anyhow::Result<StockReply>>,
}

/// Most changes applied in one write: each writes at most one record, and the levels take one
/// more place in the batch.
const MAX_BATCH: usize = brewq_runtime::batch::MAX_WRITES - 1;
/// Gives up a batch after this many lost compare-and-swaps in a row.
const MAX_ATTEMPTS: u32 = 200;
/// Open reservations remembered at once; past it, the memory starts afresh (they are read).
const MAX_KNOWN_OPEN: usize = 20_000;

/// What the writer knows without reading: the levels as it last read or wrote them, with their
/// revision, and the reservation records it has written since that are still reserved, with
/// theirs. Every record is written with the levels, so the compare-and-swap on the levels tells
/// whether another writer came in between; a lost one forgets it all.
#[derive(Default)]
struct WriterCache {
    levels: Option<(LevelsDoc, u64)>,
    open: HashMap<String, (Reservation, u64)>,
}

/// Applies queued changes in batches until every sender is dropped.
pub(crate) async fn write_batches(store: Arc<Store>, client: async_nats::Client, mut jobs: mpsc::Receiver<Job>) {
    let mut known = WriterCache::default();
    while let Some(job) = jobs.recv().await {
        let mut batch = vec![job];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match apply_batch(&store, &client, &mut known, &mut batch).await {
            Ok(results) => {
                for (job, result) in batch.into_iter().zip(results) {
                    let _ = job.done.send(result);
                }
            }
            Err(error) => {
                let message = format!("{error:#}");
                tracing::warn!(error = message, "stock batch not written");
                for job in batch {
                    let _ = job.done.send(Err(anyhow::anyhow!("{message}")));
                }
            }
        }
    }
}

/// One atomic write for the whole batch, retried on a lost race; each job's result.
async fn apply_batch(
    store: &Store,
    client: &async_nats::Client,
    known: &mut WriterCache,
    batch: &mut [Job],
) -> anyhow::Result<Vec<anyhow::Result<StockReply>>> {
    // After a lost write, every record is read: a reserve may have met a duplicate.
    let mut read_all = false;
    for attempt in 0..MAX_ATTEMPTS {
        let (mut doc, revision) = match known.levels.take() {
            Some(levels) => levels,
            None => {
                known.open.clear();
                read_levels(store).await?
            }
        };
        let unknown: Vec<&str> = batch
            .iter()
            .filter(|job| read_all || !job.expects_no_record)
            .filter_map(|job| job.order_id.as_deref())
            .filter(|id| !known.open.contains_key(*id))
            .collect();
        let mut slots = read_records(store, &unknown).await?;
        for id in batch.iter().filter_map(|job| job.order_id.as_deref()) {
            if let Some((record, revision)) = known.open.get(id) {
                slots.insert(id.to_owned(), RecordInBatch::holding(Some(record.clone()), *revision));
            }
        }
        let mut results = Vec::with_capacity(batch.len());
        for job in batch.iter_mut() {
            // An edit of the levels alone (a restock) gets a slot of its own, written nowhere.
            let mut unwritten = RecordInBatch::default();
            let slot = match &job.order_id {
                Some(id) => slots.entry(id.clone()).or_default(),
                None => &mut unwritten,
            };
            results.push((job.edit)(&mut doc, slot));
        }
        let written: Vec<(String, Reservation, u64)> =
            slots.into_iter().filter_map(|(id, slot)| Some((id, slot.record.filter(|_| slot.changed)?, slot.revision))).collect();
        let records = written.iter().map(|(id, record, revision)| KvWrite {
            key: subjects::reservation_key(id),
            // Plain data always serializes.
            value: serde_json::to_vec(record).expect("reservation serializes"),
            expected: *revision,
        });
        // A struct of maps with string keys always serializes.
        let bytes = serde_json::to_vec(&doc).expect("levels serialize");
        match write(store, client, bytes, revision, records.collect()).await {
            Ok(revision) => {
                crate::ledger::record_levels(&doc.levels);
                remember(known, written, revision);
                known.levels = Some((doc, revision));
                return Ok(results);
            }
            Err(BatchFailure::Lost(reason)) => {
                metrics::counter!("brewq_stock_batch_retries_total").increment(1);
                tracing::debug!(attempt, reason, "stock changed under the batch; reading again");
                read_all = true;
                backoff(attempt).await;
            }
            Err(BatchFailure::Other(error)) => return Err(error.context("writing the stock levels")),
        }
    }
    anyhow::bail!("gave up writing the stock levels: {MAX_ATTEMPTS} conflicting writes in a row")
}

/// Notes the records a batch wrote: those still reserved with their revisions, the others
/// forgotten. The server stores a batch's messages one after the other, the levels last at
/// `revision`; were it not so, a kept revision would only make the next write of that record
/// fail and be read again.
fn remember(known: &mut WriterCache, written: Vec<(String, Reservation, u64)>, revision: u64) {
    if known.open.len() >= MAX_KNOWN_OPEN {
        known.open.clear();
    }
    let first = revision - written.len() as u64;
    for (index, (id, record, _)) in written.into_iter().enumerate() {
        match record.state {
            ReservationState::Reserved => known.open.insert(id, (record, first + index as u64)),
            _ => known.open.remove(&id),
        };
    }
}

/// Writes the levels over `revision` and, in the same atomic batch, the reservation records,
/// each over the revision it was read at; the levels' new revision.
async fn write(
    store: &Store,
    client: &async_nats::Client,
    levels: Vec<u8>,
    revision: u64,
    mut records: Vec<KvWrite>,
) -> Result<u64, BatchFailure> {
    if records.is_empty() {
        return store.update(subjects::STOCK_KEY, levels.into(), revision).await.map_err(|error| match is_retryable(&error) {
            true => BatchFailure::Lost(error.to_string()),
            false => BatchFailure::Other(error.into()),
        });
    }
    // The levels go last: the batch's revision is theirs.
    records.push(KvWrite { key: subjects::STOCK_KEY.to_owned(), value: levels, expected: revision });
    write_atomically(store, client, records).await
}

async fn read_levels(store: &Store) -> anyhow::Result<(LevelsDoc, u64)> {
    get_json(store, subjects::STOCK_KEY)
        .await
        .context("reading the stock levels")?
        .context("the stock levels are missing (has the cluster been provisioned?)")
}

/// The reservation records of the batch's orders with their revisions, read concurrently,
/// after the levels. A deleted record reads as none, with the revision its write must expect.
async fn read_records(store: &Store, ids: &[&str]) -> anyhow::Result<HashMap<String, RecordInBatch>> {
    let reads = ids.iter().map(|id| async move {
        let key = subjects::reservation_key(id);
        brewq_runtime::kv::entry(store, &key).await.with_context(|| format!("reading the reservation of {id}"))
    });
    let mut slots = HashMap::new();
    for (id, entry) in ids.iter().zip(futures::future::join_all(reads).await) {
        let Some(entry) = entry? else { continue };
        let record = match entry.operation {
            Operation::Put => Some(serde_json::from_slice(&entry.value).with_context(|| format!("decoding the reservation of {id}"))?),
            Operation::Delete | Operation::Purge => None,
        };
        slots.insert((*id).to_owned(), RecordInBatch::holding(record, entry.revision));
    }
    Ok(slots)
}
