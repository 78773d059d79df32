//! The JetStream topology, created or updated in one step by the provisioner: the work-queue
//! stream `coffee-orders` and its consumer `coffeeMakers`, and the KV buckets, all replicated.
//! Services only bind to what is here; none of them may create it.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, consumer, stream};
use brewq_protocol::stock::Items;
use brewq_protocol::{Ingredient, subjects};

/// What to create, and how.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Copies of every stream and bucket (3 on a 3-node cluster).
    pub replicas: usize,
    /// How long a delivered order may go without an ack or an in-progress before JetStream
    /// offers it to another machine. Machines send in-progress well within it.
    pub ack_wait: Duration,
    /// Stock on hand when the stock bucket is first created.
    pub initial_stock: Items,
}

impl Topology {
    /// The defaults for a cluster of `replicas` nodes.
    pub fn new(replicas: usize) -> Self {
        Topology { replicas, ack_wait: Duration::from_secs(30), initial_stock: default_stock() }
    }
}

/// A well-stocked coffee corner: a few hundred coffees of each kind.
pub fn default_stock() -> Items {
    Ingredient::ALL
        .iter()
        .map(|&ingredient| {
            let amount = match ingredient {
                Ingredient::Arabica | Ingredient::Robusta | Ingredient::Mixed => 5_000,
                Ingredient::CowMilk | Ingredient::SoyMilk => 20_000,
                Ingredient::Sugar => 1_000,
            };
            (ingredient, amount)
        })
        .collect()
}

/// Creates or updates everything, retrying while the cluster is still forming (a new cluster
/// answers "no suitable peers" until every node has joined); safe to run on every start.
pub async fn provision(client: &async_nats::Client, topology: &Topology) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match provision_once(client, topology).await {
            Ok(()) => return Ok(()),
            Err(error) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = format!("{error:#}"), "provisioning not possible yet; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// Creates or updates a stream beside the provisioned ones (`brewq bench`'s scratch streams),
/// asking again while the meta leader places no replica ("no suitable peers"): in a cluster's
/// first seconds its routes are still settling, and a peer between two routes counts as
/// offline for a moment.
pub async fn create_scratch_stream(jetstream: &jetstream::Context, config: stream::Config) -> anyhow::Result<stream::Info> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match jetstream.create_or_update_stream(config.clone()).await {
            Err(error) if unplaced(&error) && std::time::Instant::now() < deadline => {
                tracing::debug!(stream = config.name, %error, "no replica placed yet; asking again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            result => return result.with_context(|| format!("creating the {} stream", config.name)),
        }
    }
}

/// Whether a stream was refused because no peer could take a replica.
fn unplaced(error: &jetstream::context::CreateStreamError) -> bool {
    matches!(error.kind(), jetstream::context::CreateStreamErrorKind::JetStream(inner) if inner.error_code() == jetstream::ErrorCode::CLUSTER_NO_PEERS)
}

/// Versions of an order record kept: its history of statuses is in the record itself.
const ORDERS_HISTORY: i64 = 8;

async fn provision_once(client: &async_nats::Client, topology: &Topology) -> anyhow::Result<()> {
    // Short tries, as in `NatsCluster::wait_ready`: right after a restart a stream has no
    // leader for a few seconds, and a request to it is not answered at all.
    let mut jetstream = jetstream::new(client.clone());
    jetstream.set_timeout(Duration::from_secs(1));
    let stream = jetstream.create_or_update_stream(orders_stream(topology)).await.context("creating the coffee-orders stream")?;
    tracing::debug!(stream = stream.config.name, "stream ready");
    let stream = jetstream.get_stream(subjects::ORDERS_STREAM).await.context("binding coffee-orders")?;
    let consumer_config = makers_consumer(topology);
    if stream.create_consumer(consumer_config.clone()).await.is_err() {
        stream.update_consumer(consumer_config).await.context("creating the coffeeMakers consumer")?;
    }
    let day = Duration::from_secs(24 * 3600);
    // Direct gets are for the buckets read whole (`brewq_runtime::kv::scan_entries`) and those
    // read from any replica (`subjects::READ_ANY_REPLICA`).
    for (bucket, history, max_age, direct) in [
        (subjects::VALUES_BUCKET, 1, Duration::ZERO, true),
        (subjects::ORDERS_BUCKET, ORDERS_HISTORY, Duration::ZERO, true),
        (subjects::IDEMPOTENCY_BUCKET, 1, day, false),
        (subjects::STOCK_BUCKET, 1, Duration::ZERO, true),
        (subjects::MACHINES_BUCKET, 1, Duration::from_secs(3600), true),
        (subjects::MACHINE_HOLDS_BUCKET, 1, Duration::ZERO, true),
        (subjects::DEAD_LETTERS_BUCKET, 1, Duration::ZERO, true),
        (subjects::SESSIONS_BUCKET, 1, brewq_protocol::SESSION_LIFETIME, false),
    ] {
        jetstream
            .create_or_update_stream(kv_stream(bucket, topology.replicas, history, max_age, direct))
            .await
            .with_context(|| format!("creating the {bucket} bucket"))?;
    }
    jetstream.create_or_update_stream(audit_stream(topology)).await.context("creating the coffee-audit stream")?;
    seed_stock(&jetstream, &topology.initial_stock).await
}

/// Every operator action, kept for 90 days.
fn audit_stream(topology: &Topology) -> stream::Config {
    stream::Config {
        name: subjects::AUDIT_STREAM.into(),
        subjects: vec![subjects::AUDIT_SUBJECTS.into()],
        storage: stream::StorageType::File,
        num_replicas: topology.replicas,
        max_age: Duration::from_secs(90 * 24 * 3600),
        max_messages: 1_000_000,
        ..Default::default()
    }
}

/// The work queue: each order is kept until one machine acks it. The dedup window drops a
/// republished order id (a controller retrying after a lost PubAck).
fn orders_stream(topology: &Topology) -> stream::Config {
    stream::Config {
        name: subjects::ORDERS_STREAM.into(),
        subjects: vec![subjects::ORDERS_SUBJECTS.into()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: topology.replicas,
        duplicate_window: Duration::from_secs(120),
        discard: stream::DiscardPolicy::New,
        max_messages: 100_000,
        ..Default::default()
    }
}

/// What `brewq bench` measures raw JetStream on: the orders stream's settings (R3, file, dedup
/// window), without the work-queue retention, so nothing consumes it.
pub fn bench_stream(replicas: usize) -> stream::Config {
    stream::Config { retention: stream::RetentionPolicy::Limits, discard: stream::DiscardPolicy::Old, ..bench_queue_stream(replicas) }
}

/// What `brewq bench` measures raw takes from a work queue on: the work queue's own settings.
pub fn bench_queue_stream(replicas: usize) -> stream::Config {
    stream::Config {
        name: subjects::BENCH_STREAM.into(),
        subjects: vec![subjects::BENCH_SUBJECTS.into()],
        ..orders_stream(&Topology::new(replicas))
    }
}

/// The consumer of [`bench_queue_stream`]: the machines' consumer's settings.
pub fn bench_queue_consumer(replicas: usize) -> consumer::pull::Config {
    consumer::pull::Config { durable_name: Some(subjects::BENCH_CONSUMER.into()), ..makers_consumer(&Topology::new(replicas)) }
}

/// What `brewq bench` measures a raw compare-and-swap on: the stock bucket's settings.
pub fn bench_bucket(replicas: usize) -> stream::Config {
    kv_stream(subjects::BENCH_BUCKET, replicas, 1, Duration::ZERO, true)
}

/// What `brewq bench` writes the bare pipeline's records to: the order records' settings.
pub fn bench_records_bucket(replicas: usize) -> stream::Config {
    kv_stream(subjects::BENCH_BUCKET, replicas, ORDERS_HISTORY, Duration::ZERO, true)
}

/// Machines pull one order at a time. Deliveries are unlimited: the machines count attempts
/// themselves and end an order failed after their maximum, so an order is never stranded
/// when the machine holding its last attempt dies.
fn makers_consumer(topology: &Topology) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(subjects::MAKERS_CONSUMER.into()),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait: topology.ack_wait,
        max_deliver: -1,
        max_ack_pending: 1_000,
        num_replicas: topology.replicas,
        ..Default::default()
    }
}

/// A KV bucket's stream, as async-nats would make it, but with direct gets off where nothing
/// needs them (brewq reads single keys from the leader, but in `subjects::READ_ANY_REPLICA`).
fn kv_stream(bucket: &str, replicas: usize, history: i64, max_age: Duration, direct: bool) -> stream::Config {
    stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: history,
        max_age,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: direct,
        discard: stream::DiscardPolicy::New,
        // The stock manager writes the levels and the reservation records in one batch; the
        // controller sends the order records' writes that wait at once in one batch.
        allow_atomic_publish: [subjects::STOCK_BUCKET, subjects::ORDERS_BUCKET].contains(&bucket),
        ..Default::default()
    }
}

/// Writes the initial stock, only if the bucket has none yet.
async fn seed_stock(jetstream: &jetstream::Context, initial: &Items) -> anyhow::Result<()> {
    let store = jetstream.get_key_value(subjects::STOCK_BUCKET).await.context("binding the stock bucket")?;
    // A struct of maps with string keys always serializes.
    let document = serde_json::to_vec(&brewq_protocol::stock::LevelsDoc::initial(initial)).expect("levels serialize");
    match store.create(subjects::STOCK_KEY, document.into()).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).context("writing the initial stock"),
    }
}
