//! The operator's commands: each connects, does one thing, prints it and exits.

pub mod audit;
pub mod bench;
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
