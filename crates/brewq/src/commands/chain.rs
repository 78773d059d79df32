//! The operator's commands on one shop of a chain, from the hub (`--shop N`): a connection to
//! the hub in the shop's account, and the chain's view of the shop as the hub last saw it.

use anyhow::Context;
use brewq_protocol::subjects;
use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::args::ClientArgs;

/// Connects to the hub as the admin of shop `shop`'s account: plain requests reach the shop
/// over its link while it is up; the chain's view of the shop is on the hub itself.
pub async fn shop_admin(args: &ClientArgs, shop: u32) -> anyhow::Result<async_nats::Client> {
    let creds = admin_creds(&args.connect, shop);
    anyhow::ensure!(
        args.connect.creds.is_some() || creds.is_file(),
        "no shop {shop}: {} does not exist (is this a chain's hub, started with --shops?)",
        creds.display()
    );
    let connect = crate::args::ConnectArgs { creds: Some(args.connect.creds.clone().unwrap_or(creds)), ..args.connect.clone() };
    crate::connect::connect_once(&connect, brewq_launch::Role::Admin, "brewq-cli").await
}

/// Where `brewq up --shops` keeps the admin creds of shop `shop`'s account.
pub fn admin_creds(connect: &crate::args::ConnectArgs, shop: u32) -> std::path::PathBuf {
    let file = format!("{}.creds", brewq_launch::Role::Admin.as_str());
    connect.data_dir.join("keys").join(brewq_launch::keys::SHOPS_DIR).join(shop.to_string()).join(file)
}

/// The last value the hub holds of the shop's `what` (`stock`, `machines`, `orders`...) under
/// `key`, with the time the shop wrote it; `None` if the hub never saw one.
pub async fn last<T: DeserializeOwned>(client: &async_nats::Client, what: &str, key: &str) -> anyhow::Result<Option<(T, OffsetDateTime)>> {
    let stream = view(client).await?;
    let Ok(message) = stream.get_last_raw_message_by_subject(&subjects::chain_subject(what, key)).await else { return Ok(None) };
    if message.payload.is_empty() {
        // Deleted in the shop.
        return Ok(None);
    }
    let value = serde_json::from_slice(&message.payload).with_context(|| format!("the hub's copy of the shop's {what} {key}"))?;
    Ok(Some((value, message.time)))
}

/// Every value the hub holds of the shop's `what`, with the time each was written.
pub async fn all<T: DeserializeOwned>(client: &async_nats::Client, what: &str) -> anyhow::Result<Vec<(T, OffsetDateTime)>> {
    let stream = view(client).await?;
    let filter = subjects::chain_subject(what, ">");
    let counts: Vec<(String, usize)> = stream.info_with_subjects(&filter).await?.try_collect().await?;
    let mut values = Vec::new();
    for (subject, _) in counts {
        let message = stream.get_last_raw_message_by_subject(&subject).await.with_context(|| format!("reading {subject} on the hub"))?;
        if message.payload.is_empty() {
            continue;
        }
        values.push((serde_json::from_slice(&message.payload).with_context(|| format!("the hub's copy of {subject}"))?, message.time));
    }
    Ok(values)
}

async fn view(client: &async_nats::Client) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    async_nats::jetstream::new(client.clone())
        .get_stream(subjects::CHAIN_STREAM)
        .await
        .context("the hub's view of the shop (is this a chain's hub?)")
}

/// "12 s ago", for a value the hub holds.
pub fn age(at: OffsetDateTime) -> String {
    let seconds = (OffsetDateTime::now_utc() - at).whole_seconds().max(0);
    match seconds {
        0..=119 => format!("{seconds} s ago"),
        120..=7199 => format!("{} min ago", seconds / 60),
        _ => format!("{} h ago", seconds / 3600),
    }
}
