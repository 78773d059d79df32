//! The operator's commands: each connects, does one thing, prints it and exits.

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

/// Binds a provisioned bucket, saying what is missing if it is not there.
async fn bucket(client: &async_nats::Client, name: &str) -> anyhow::Result<async_nats::jetstream::kv::Store> {
    use anyhow::Context;
    async_nats::jetstream::new(client.clone())
        .get_key_value(name)
        .await
        .with_context(|| format!("bucket {name} not found (has the cluster been provisioned?)"))
}
