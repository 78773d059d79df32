//! Where a command finds its cluster and credentials: flags, then `BREWQ_*` variables, then the
//! data folder of `brewq up`. Credentials are a creds file (a user JWT and its nkey seed): the
//! role's, or a machine's own.

use std::path::PathBuf;

use anyhow::Context;
use brewq_launch::{ClusterInfo, Role, keys::read_creds_file};
use brewq_runtime::{Credentials, NatsConfig};

use crate::args::ConnectArgs;

/// The connection settings of `role` under the connection name `name`.
pub fn nats_config(args: &ConnectArgs, role: Role, name: &str) -> anyhow::Result<NatsConfig> {
    anyhow::ensure!(role != Role::Maker, "a machine connects with its own credential (machine_config)");
    let default = args.data_dir.join("keys").join(format!("{}.creds", role.as_str()));
    config_with(args, default, role.as_str().into(), name)
}

/// The connection settings of machine `machine`: its own creds file, its own inbox.
pub fn machine_config(args: &ConnectArgs, machine: u32) -> anyhow::Result<NatsConfig> {
    let default = args.data_dir.join("keys").join(brewq_launch::keys::MACHINES_DIR).join(format!("{machine}.creds"));
    config_with(args, default, format!("{}.{machine}", Role::Maker.as_str()), &format!("maker-{machine}"))
}

fn config_with(args: &ConnectArgs, default_creds: PathBuf, role: String, name: &str) -> anyhow::Result<NatsConfig> {
    let (urls, tls_ca) = if args.nats_url.is_empty() {
        let info = ClusterInfo::load(&args.data_dir).context("no --nats-url given and no running `brewq up` found")?;
        (info.nats_urls, args.tls_ca.clone().or(info.tls_ca))
    } else {
        (args.nats_url.clone(), args.tls_ca.clone())
    };
    let path = args.creds.clone().unwrap_or(default_creds);
    let creds = read_creds_file(&path).context("no --creds (or BREWQ_CREDS) given, and none in the data folder")?;
    let credentials = Credentials::from_creds(creds).with_context(|| format!("{} is not a creds file", path.display()))?;
    Ok(NatsConfig { urls, credentials, role, name: name.into(), tls_ca })
}

/// Connects as `role`, failing fast (a one-shot command should not wait forever).
pub async fn connect_once(args: &ConnectArgs, role: Role, name: &str) -> anyhow::Result<async_nats::Client> {
    let config = nats_config(args, role, name)?;
    brewq_runtime::connect::options(&config)?
        .connection_timeout(std::time::Duration::from_secs(3))
        .connect(config.urls.as_slice())
        .await
        .with_context(|| format!("connecting to NATS at {}", config.urls.join(",")))
}
