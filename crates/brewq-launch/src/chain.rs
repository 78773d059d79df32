//! The chain's view on the hub: in each shop's account on the hub, a stream that sources the
//! shop's order records, machines, stock and failed orders from the shop's JetStream domain
//! (`$JS.shop-<n>.API`), so that the hub shows every shop, each order once, its latest state,
//! as soon as the shop's link is up; a shop cut off catches up when its link returns. And the
//! way down: the chain's commands to a shop, kept on the hub and sourced into the shop's domain,
//! so that one sent during a cut arrives, once, when the link returns.

use anyhow::Context;
use async_nats::jetstream::consumer;
use async_nats::jetstream::stream::{self, External, Source, SubjectTransform};
use brewq_protocol::subjects;

/// The hub's stream of shop `shop`'s latest records, machines, stock and failed orders.
pub fn chain_stream(shop: u32, replicas: usize) -> stream::Config {
    let api = format!("$JS.{}.API", crate::shops::domain(shop));
    let sources = subjects::CHAIN_SOURCES
        .iter()
        .map(|(bucket, what)| {
            // Of the stock, the levels only: an order's reservation lives and goes with it.
            let key = if *bucket == subjects::STOCK_BUCKET { subjects::STOCK_KEY } else { ">" };
            Source {
                name: format!("KV_{bucket}"),
                // The external API prefix set by hand: async-nats's `domain` field is refused by
                // strict servers.
                external: Some(External { api_prefix: api.clone(), delivery_prefix: None }),
                subject_transforms: vec![SubjectTransform {
                    source: format!("$KV.{bucket}.{key}"),
                    destination: subjects::chain_subject(what, key),
                }],
                ..Default::default()
            }
        })
        .collect();
    stream::Config {
        name: subjects::CHAIN_STREAM.into(),
        subjects: Vec::new(),
        sources: Some(sources),
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates or updates the chain's stream of shop `shop` on the hub; `client` is a user of the
/// shop's account connected to the hub.
pub async fn provision(client: &async_nats::Client, shop: u32, replicas: usize) -> anyhow::Result<()> {
    let mut jetstream = async_nats::jetstream::new(client.clone());
    jetstream.set_timeout(std::time::Duration::from_secs(1));
    retried(|| jetstream.create_or_update_stream(chain_stream(shop, replicas)))
        .await
        .with_context(|| format!("creating the chain's view of shop {shop} on the hub"))?;
    Ok(())
}

/// The hub's stream of the chain's commands to one shop (in the shop's account on the hub).
pub fn hub_commands_stream(replicas: usize) -> stream::Config {
    stream::Config {
        name: subjects::CHAIN_COMMANDS_STREAM.into(),
        subjects: vec![subjects::CHAIN_COMMANDS.into(), subjects::CHAIN_MACHINE_COMMANDS.into()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        // The operator's command sent again with the same id is stored once.
        duplicate_window: std::time::Duration::from_secs(120),
        ..Default::default()
    }
}

/// The shop's copy of its commands, sourced from the hub's domain.
pub fn shop_commands_stream() -> stream::Config {
    stream::Config {
        name: subjects::SHOP_COMMANDS_STREAM.into(),
        subjects: Vec::new(),
        sources: Some(vec![Source {
            name: subjects::CHAIN_COMMANDS_STREAM.into(),
            external: Some(External { api_prefix: format!("$JS.{}.API", crate::cluster::HUB_DOMAIN), delivery_prefix: None }),
            ..Default::default()
        }]),
        storage: stream::StorageType::File,
        num_replicas: 1,
        ..Default::default()
    }
}

/// A consumer of the shop's commands on `subject`: one at a time, so in order. The stock
/// managers take the stock commands, the shop's operator process the machine commands.
fn shop_commands_consumer(name: &str, subject: &str) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(name.into()),
        filter_subject: subject.into(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: std::time::Duration::from_secs(30),
        max_ack_pending: 1,
        ..Default::default()
    }
}

/// Creates the hub's side of the commands to shop `shop`; `client` is a user of the shop's
/// account connected to the hub.
pub async fn provision_hub_commands(client: &async_nats::Client, shop: u32, replicas: usize) -> anyhow::Result<()> {
    let jetstream = async_nats::jetstream::new(client.clone());
    retried(|| jetstream.create_or_update_stream(hub_commands_stream(replicas)))
        .await
        .with_context(|| format!("creating the commands to shop {shop} on the hub"))?;
    Ok(())
}

/// Creates the shop's side of its commands; `client` is connected to the shop's server.
pub async fn provision_shop_commands(client: &async_nats::Client) -> anyhow::Result<()> {
    let jetstream = async_nats::jetstream::new(client.clone());
    retried(|| jetstream.create_or_update_stream(shop_commands_stream())).await.context("creating the shop's commands")?;
    for (name, subject) in [
        (subjects::SHOP_COMMANDS_CONSUMER, subjects::CHAIN_COMMANDS),
        (subjects::SHOP_MACHINE_COMMANDS_CONSUMER, subjects::CHAIN_MACHINE_COMMANDS),
    ] {
        retried(|| jetstream.create_consumer_on_stream(shop_commands_consumer(name, subject), subjects::SHOP_COMMANDS_STREAM))
            .await
            .with_context(|| format!("creating the consumer {name} of the shop's commands"))?;
    }
    Ok(())
}

/// Provisions shop `shop` of a chain: on the hub (`hub`, a user of the shop's account
/// connected to the hub), the commands down to the shop; in the shop's domain (`shop_client`,
/// connected to the shop's server) `topology` (one replica: a shop is one server) and the
/// shop's copy of the commands; then, once the shop has its buckets, the chain's view of the
/// shop on the hub, with `hub_replicas` replicas. Safe to repeat.
pub async fn provision_shop(
    hub: &async_nats::Client,
    shop_client: &async_nats::Client,
    shop: u32,
    hub_replicas: usize,
    topology: &crate::Topology,
) -> anyhow::Result<()> {
    provision_hub_commands(hub, shop, hub_replicas).await?;
    crate::provision::provision(shop_client, topology).await?;
    provision_shop_commands(shop_client).await?;
    provision(hub, shop, hub_replicas).await
}

/// `attempt`, tried again for up to a minute while the servers elect their leaders.
async fn retried<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(mut attempt: impl FnMut() -> F) -> Result<T, E> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match attempt().await {
            Err(error) if std::time::Instant::now() < deadline => {
                tracing::debug!(%error, "not possible yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            done => return done,
        }
    }
}
