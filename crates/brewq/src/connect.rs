//! Where a command finds its cluster and credentials: flags, then `BREWQ_*` variables, then the
//! data folder of `brewq up`. The nkey seed comes from a file or from `BREWQ_NKEY_SEED`.

use anyhow::Context;
use brewq_launch::{ClusterInfo, Role, keys::read_seed_file};
use brewq_runtime::{Credentials, NatsConfig};

use crate::args::ConnectArgs;

/// Variable that may hold the nkey seed itself (prefer a file: variables leak more easily).
const SEED_VARIABLE: &str = "BREWQ_NKEY_SEED";

/// The connection settings of `role` under the connection name `name`.
pub fn nats_config(args: &ConnectArgs, role: Role, name: &str) -> anyhow::Result<NatsConfig> {
    let (urls, tls_ca) = if args.nats_url.is_empty() {
        let info = ClusterInfo::load(&args.data_dir).context("no --nats-url given and no running `brewq up` found")?;
        (info.nats_urls, args.tls_ca.clone().or(info.tls_ca))
    } else {
        (args.nats_url.clone(), args.tls_ca.clone())
    };
    let seed = match (&args.seed_file, std::env::var(SEED_VARIABLE)) {
        (Some(path), _) => read_seed_file(path)?,
        (None, Ok(seed)) if !seed.trim().is_empty() => seed.trim().to_owned(),
        _ => read_seed_file(&args.data_dir.join("keys").join(format!("{}.nk", role.as_str())))
            .with_context(|| format!("no --seed-file or {SEED_VARIABLE} given for the {} role", role.as_str()))?,
    };
    Ok(NatsConfig { urls, credentials: Credentials::Nkey(seed), role: role.as_str().into(), name: name.into(), tls_ca })
}

/// Connects as `role`, failing fast (a one-shot command should not wait forever).
pub async fn connect_once(args: &ConnectArgs, role: Role, name: &str) -> anyhow::Result<async_nats::Client> {
    let config = nats_config(args, role, name)?;
    brewq_runtime::connect::options(&config)
        .connection_timeout(std::time::Duration::from_secs(3))
        .connect(config.urls.as_slice())
        .await
        .with_context(|| format!("connecting to NATS at {}", config.urls.join(",")))
}
