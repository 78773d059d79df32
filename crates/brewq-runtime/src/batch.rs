//! Atomic batches of KV writes (JetStream atomic publish, on a bucket whose stream allows it):
//! several keys written together, each over the revision it expects, all or none stored. And
//! [`GroupWriter`], which sends the compare-and-swaps waiting at one moment as one batch.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

/// One write of a batch: `key` of the bucket, stored only if its last revision is `expected`
/// (0: the key has never been written).
#[derive(Debug, Clone)]
pub struct KvWrite {
    pub key: String,
    pub value: Vec<u8>,
    pub expected: u64,
}

/// Why a batch was not confirmed.
#[derive(Debug)]
pub enum BatchFailure {
    /// A key had moved (another writer got there first), the server did not get the batch
    /// whole or had too many in flight: nothing was stored. Or the cluster did not answer in
    /// time, and all of it may have been. Either way: read again, then retry.
    Lost(String),
    /// Refused for another reason (atomic batches not allowed on the bucket, say), or an
    /// acknowledgement that does not add up.
    Other(anyhow::Error),
}

/// How long a batch's commit waits for the server: under the 3 s its callers' callers wait.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Most writes in one batch (the server takes up to 1,000 messages).
pub const MAX_WRITES: usize = 512;

/// Writes `writes` to `store`'s bucket in one atomic batch, in order; the revision of the last.
/// The writes before it have the revisions just below, one each.
pub async fn write_atomically(store: &Store, client: &async_nats::Client, mut writes: Vec<KvWrite>) -> Result<u64, BatchFailure> {
    let Some(last) = writes.pop() else { return Err(BatchFailure::Other(anyhow::anyhow!("an empty batch"))) };
    let count = writes.len() + 1;
    let prefix = store.put_prefix.as_deref().unwrap_or(&store.prefix);
    let batch_id = nuid::next().to_string();
    let headers = |sequence: usize, write: &KvWrite| {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Batch-Id", batch_id.as_str());
        headers.insert("Nats-Batch-Sequence", sequence.to_string().as_str());
        headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, write.expected.to_string().as_str());
        headers
    };
    for (index, write) in writes.into_iter().enumerate() {
        let sent = client.publish_with_headers(format!("{prefix}{}", write.key), headers(index + 1, &write), write.value.into()).await;
        sent.map_err(|error| BatchFailure::Lost(format!("sending the batch: {error}")))?;
    }
    let mut commit_headers = headers(count, &last);
    commit_headers.insert("Nats-Batch-Commit", "1");
    let commit = client.request_with_headers(format!("{prefix}{}", last.key), commit_headers, last.value.into());
    let reply = tokio::time::timeout(COMMIT_TIMEOUT, commit)
        .await
        .map_err(|_| BatchFailure::Lost("no answer to the batch's commit".into()))?
        .map_err(|error| BatchFailure::Lost(format!("committing the batch: {error}")))?;
    acknowledged(&reply.payload, count)
}

/// The revision of a batch's last message, from the server's answer to its commit.
fn acknowledged(payload: &[u8], count: usize) -> Result<u64, BatchFailure> {
    #[derive(Deserialize)]
    struct Ack {
        #[serde(default)]
        seq: u64,
        #[serde(default)]
        count: u64,
        error: Option<ApiError>,
    }
    #[derive(Deserialize)]
    struct ApiError {
        err_code: u64,
        #[serde(default)]
        description: String,
    }
    let ack: Ack = serde_json::from_slice(payload)
        .map_err(|error| BatchFailure::Other(anyhow::anyhow!("unreadable batch acknowledgement: {error}")))?;
    match ack.error {
        None if ack.count == count as u64 => Ok(ack.seq),
        None => Err(BatchFailure::Other(anyhow::anyhow!("the batch stored {} of {count} messages", ack.count))),
        // Wrong last sequence, a write still in flight, a batch not received whole, too many
        // batches in flight: nothing was stored.
        Some(error) if [10071, 10164, 10176, 10210].contains(&error.err_code) => Err(BatchFailure::Lost(error.description)),
        Some(error) => Err(BatchFailure::Other(anyhow::anyhow!("{} (JetStream error {})", error.description, error.err_code))),
    }
}

/// Batches sent at once by a [`GroupWriter`]; a write that comes meanwhile waits for the next.
const IN_FLIGHT: usize = 4;

/// Compare-and-swaps on one bucket, each sent at once when the writer is idle and, when
/// several wait, together in one atomic batch: fewer replicated writes for the same work.
/// A batch that is refused (one key had moved, and the batch is all or nothing) is sent again
/// one write at a time, so each caller gets the answer its own write would have had.
#[derive(Clone)]
pub struct GroupWriter {
    queue: mpsc::Sender<Pending>,
}

struct Pending {
    write: KvWrite,
    done: oneshot::Sender<anyhow::Result<u64>>,
}

impl GroupWriter {
    /// A writer for `store`'s bucket, and its task (to spawn; it ends when the last clone of
    /// the writer is dropped). The bucket's stream must allow atomic publish.
    pub fn new(store: Store, client: async_nats::Client) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (queue, pending) = mpsc::channel(1024);
        (GroupWriter { queue }, run(store, client, pending))
    }

    /// Writes `value` under `key` if its last revision is `expected` (0: never written); the
    /// new revision. An error is a lost race as well as a cluster that did not answer in time,
    /// after which the write may have landed: read the key again before deciding.
    pub async fn write(&self, key: &str, value: Vec<u8>, expected: u64) -> anyhow::Result<u64> {
        let (done, result) = oneshot::channel();
        let write = KvWrite { key: key.to_owned(), value, expected };
        self.queue.send(Pending { write, done }).await.map_err(|_| anyhow::anyhow!("the group writer has stopped"))?;
        result.await.map_err(|_| anyhow::anyhow!("the group writer has stopped"))?
    }
}

async fn run(store: Store, client: async_nats::Client, mut queue: mpsc::Receiver<Pending>) {
    let mut in_flight = FuturesUnordered::new();
    let mut next: Vec<Pending> = Vec::new();
    loop {
        tokio::select! {
            pending = queue.recv(), if in_flight.len() < IN_FLIGHT => match pending {
                Some(pending) => next.push(pending),
                None => break,
            },
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
        if !next.is_empty() && in_flight.len() < IN_FLIGHT {
            gather(&mut queue, &mut next);
            let (batch, rest) = one_per_key(std::mem::take(&mut next));
            next = rest;
            in_flight.push(send(&store, &client, batch));
        }
    }
    while in_flight.next().await.is_some() {}
    for pending in next {
        let _ = pending.done.send(Err(anyhow::anyhow!("the group writer has stopped")));
    }
}

/// Adds what waits in the queue to `next`, up to a batch.
fn gather(queue: &mut mpsc::Receiver<Pending>, next: &mut Vec<Pending>) {
    while next.len() < MAX_WRITES {
        match queue.try_recv() {
            Ok(pending) => next.push(pending),
            Err(_) => break,
        }
    }
}

/// The first write of each key (a batch holds one write per key), and the rest for later.
fn one_per_key(pending: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let mut keys = std::collections::HashSet::new();
    pending.into_iter().partition(|pending| keys.insert(pending.write.key.clone()))
}

async fn send(store: &Store, client: &async_nats::Client, batch: Vec<Pending>) {
    if let [_] = batch.as_slice() {
        let pending = batch.into_iter().next().expect("one write");
        let written = alone(store, &pending.write).await;
        let _ = pending.done.send(written);
        return;
    }
    let writes = batch.iter().map(|pending| pending.write.clone()).collect::<Vec<_>>();
    let count = writes.len() as u64;
    match write_atomically(store, client, writes).await {
        Ok(last) => {
            for (index, pending) in batch.into_iter().enumerate() {
                let _ = pending.done.send(Ok(last + 1 - count + index as u64));
            }
        }
        Err(failure) => {
            tracing::debug!(?failure, writes = count, "batch refused; sending its writes one at a time");
            let alone = batch.into_iter().map(|pending| async move {
                let written = alone(store, &pending.write).await;
                let _ = pending.done.send(written);
            });
            futures::future::join_all(alone).await;
        }
    }
}

/// One compare-and-swap on its own.
async fn alone(store: &Store, write: &KvWrite) -> anyhow::Result<u64> {
    let value = write.value.clone().into();
    let written = match write.expected {
        0 => store.create(&write.key, value).await.map_err(anyhow::Error::from),
        expected => store.update(&write.key, value, expected).await.map_err(anyhow::Error::from),
    };
    written.with_context(|| format!("writing {}", write.key))
}
