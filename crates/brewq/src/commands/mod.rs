//! The operator's commands: each connects, does one thing, prints it and exits.

pub mod audit;
pub mod bench;
pub mod chain;
pub mod check;
pub mod failed;
pub mod health;
pub mod machines;
pub mod order;
pub mod rush;
pub mod security;
pub mod status;
pub mod stock;

use brewq_launch::Role;

use crate::args::ClientArgs;

/// Connects as the operator's admin role.
async fn admin(args: &ClientArgs) -> anyhow::Result<async_nats::Client> {
    crate::connect::connect_once(&args.connect, Role::Admin, "brewq-cli").await
}

/// The keys of a system whose trust folder (the keys that issue credentials) is in
/// `<data_dir>/keys`.
fn trusted_keys(data_dir: &std::path::Path) -> anyhow::Result<brewq_launch::Keys> {
    let keys_dir = data_dir.join("keys");
    anyhow::ensure!(
        keys_dir.join(brewq_launch::keys::TRUST_DIR).is_dir(),
        "{} holds no trust folder: run this where `brewq security init` or `brewq up` wrote the keys (--data-dir)",
        keys_dir.display()
    );
    brewq_launch::Keys::load_or_create(&keys_dir)
}

/// The account of shop `shop`, or the cluster's own (`COFFEE`) when `None`.
fn account_of(keys: &brewq_launch::Keys, shop: Option<u32>) -> anyhow::Result<brewq_launch::keys::AccountKeys> {
    match shop {
        Some(shop) => keys.shop(shop),
        None => Ok(keys.coffee.clone()),
    }
}

/// Gives an account's new JWT to every running server that trusts it: the cluster's, and for a
/// shop's account, the shop's leaf node too. Returns the servers that stored it, and how many
/// were asked.
async fn push_account(
    keys: &brewq_launch::Keys,
    connect: &crate::args::ConnectArgs,
    shop: Option<u32>,
    account_jwt: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<(Vec<String>, usize)> {
    use anyhow::Context;
    let info = brewq_launch::ClusterInfo::load(&connect.data_dir)?;
    let urls = if connect.nats_url.is_empty() { info.nats_urls.clone() } else { connect.nats_url.clone() };
    let tls_ca = connect.tls_ca.clone().or(info.tls_ca.clone());
    let servers = info.ports.len().max(1);
    let mut stored = brewq_launch::trust::push(&urls, tls_ca.as_deref(), keys, account_jwt, servers, timeout).await?;
    let mut asked = servers;
    if let Some(shop) = shop {
        let node = info.shops.iter().find(|node| node.id == shop).with_context(|| format!("no shop {shop} in cluster.json"))?;
        stored.extend(brewq_launch::trust::push(&node.nats_urls, tls_ca.as_deref(), keys, account_jwt, 1, timeout).await?);
        asked += 1;
    }
    Ok((stored, asked))
}

/// Binds a provisioned bucket, saying what is missing if it is not there.
async fn bucket(client: &async_nats::Client, name: &str) -> anyhow::Result<async_nats::jetstream::kv::Store> {
    use anyhow::Context;
    async_nats::jetstream::new(client.clone())
        .get_key_value(name)
        .await
        .with_context(|| format!("bucket {name} not found (has the cluster been provisioned?)"))
}

/// Who the CLI acts as in the audit trail.
fn operator() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "admin".into()))
}

/// Records an operator action in the audit trail; a failure to record is reported, not fatal.
async fn audit(client: &async_nats::Client, action: &str, target: &str, outcome: &str) {
    let entry = brewq_protocol::AuditEntry {
        at: brewq_protocol::now(),
        who: operator(),
        action: action.to_owned(),
        target: target.to_owned(),
        outcome: outcome.to_owned(),
    };
    let jetstream = async_nats::jetstream::new(client.clone());
    let subject = brewq_protocol::subjects::audit_subject(action);
    if let Err(error) = brewq_runtime::jetstream::publish_json(&jetstream, subject, &entry).await {
        eprintln!("warning: the action was not recorded in the audit trail: {error:#}");
    }
}
