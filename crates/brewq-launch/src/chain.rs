//! The chain's view on the hub: in each shop's account on the hub, a stream that sources the
//! shop's order records, machines, stock and failed orders from the shop's JetStream domain
//! (`$JS.shop-<n>.API`), so that the hub shows every shop, each order once, its latest state,
//! as soon as the shop's link is up; a shop cut off catches up when its link returns.

use anyhow::Context;
use async_nats::jetstream::stream::{self, External, Source, SubjectTransform};
use brewq_protocol::subjects;

/// The hub's stream of shop `shop`'s latest records, machines, stock and failed orders.
pub fn chain_stream(shop: u32, replicas: usize) -> stream::Config {
    let api = format!("$JS.{}.API", crate::shops::domain(shop));
    let sources = subjects::CHAIN_SOURCES
        .iter()
        .map(|(bucket, what)| Source {
            name: format!("KV_{bucket}"),
            // The external API prefix set by hand: async-nats's `domain` field is refused by
            // strict servers.
            external: Some(External { api_prefix: api.clone(), delivery_prefix: None }),
            subject_transforms: vec![SubjectTransform {
                source: format!("$KV.{bucket}.>"),
                destination: format!("{}.>", subjects::chain_subject(what, "").trim_end_matches('.')),
            }],
            ..Default::default()
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
    let config = chain_stream(shop, replicas);
    // Retried while the hub is still electing its leaders, as provisioning is.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match jetstream.create_or_update_stream(config.clone()).await {
            Ok(_) => return Ok(()),
            Err(error) if std::time::Instant::now() < deadline => {
                tracing::debug!(%error, "the chain's view cannot be created yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(error) => return Err(error).with_context(|| format!("creating the chain's view of shop {shop} on the hub")),
        }
    }
}
