//! The service subcommands: connect as the service's role, run its library until Ctrl-C or
//! SIGTERM, and exit. With `--metrics-listen`, each also serves its Prometheus metrics.

use brewq_launch::Role;
use tokio_util::sync::CancellationToken;

use crate::args::{ControllerArgs, MakerArgs, ProvisionArgs, ServiceArgs, WebArgs};
use crate::connect::{connect_once, nats_config};
use crate::metrics_server::MetricsServer;

/// A token cancelled on the first Ctrl-C or SIGTERM from now on: each service takes it first
/// thing, so that a signal during its start-up stops it cleanly instead of killing it.
fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    let signal = brewq_runtime::shutdown_signal();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}

/// Runs a service to its end, then stops its metrics server.
async fn finish(service: anyhow::Result<()>, metrics: MetricsServer) -> anyhow::Result<()> {
    let stopped = metrics.stop().await;
    service.and(stopped)
}

/// `brewq controller`.
pub async fn controller(args: ControllerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    anyhow::ensure!(!args.name_scan_every.is_zero(), "--name-scan-every must be more than 0");
    let metrics = MetricsServer::start(args.service.metrics_listen.as_deref()).await?;
    let client = brewq_runtime::connect(&nats_config(&args.service.connect, Role::Controller, "controller")?).await?;
    let config = brewq_controller::Config {
        names_kept_for: args.names_kept_for,
        name_scan_every: args.name_scan_every,
        ..brewq_controller::Config::default()
    };
    finish(brewq_controller::run(config, client, shutdown).await, metrics).await
}

/// `brewq stock serve`.
pub async fn stock(args: ServiceArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    let metrics = MetricsServer::start(args.metrics_listen.as_deref()).await?;
    let client = brewq_runtime::connect(&nats_config(&args.connect, Role::Stock, "stock")?).await?;
    finish(brewq_stock::run(brewq_stock::Config::default(), client, shutdown).await, metrics).await
}

/// `brewq maker --id N`.
pub async fn maker(args: MakerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    anyhow::ensure!((0.0..=1.0).contains(&args.fail_rate), "--fail-rate must be between 0 and 1");
    anyhow::ensure!(args.brew_scale >= 0.0, "--brew-scale must be 0 or more");
    let name = format!("maker-{}", args.id);
    let metrics = MetricsServer::start(args.metrics_listen.as_deref()).await?;
    let client = brewq_runtime::connect(&nats_config(&args.connect, Role::Maker, &name)?).await?;
    let mut config = brewq_maker::Config::new(args.id);
    config.max_attempts = args.max_attempts;
    let brewer = brewq_maker::SimulatedBrewer { brew_scale: args.brew_scale, fail_rate: args.fail_rate };
    finish(brewq_maker::run(config, brewer, client, shutdown).await, metrics).await
}

/// `brewq web`.
pub async fn web(args: WebArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let shutdown = shutdown_token();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is it in use? choose another with --listen)", args.listen))?;
    // `/metrics` only on `--metrics-listen`, never on the customers' address.
    let metrics = MetricsServer::start(args.metrics_listen.as_deref()).await?;
    let client = brewq_runtime::connect(&nats_config(&args.connect, Role::Web, "web")?).await?;
    let config = brewq_web::Config { operator: operator(&args).await?, ..brewq_web::Config::default() };
    finish(brewq_web::run(config, client, listener, shutdown).await, metrics).await
}

/// The operator's account for the admin pages, if its files are given.
async fn operator(args: &WebArgs) -> anyhow::Result<Option<brewq_web::admin::Operator>> {
    use anyhow::Context;
    let (Some(hash_file), Some(key_file), Some(seed_file)) =
        (&args.operator_password_hash_file, &args.session_key_file, &args.operator_seed_file)
    else {
        tracing::info!("no operator account given: the admin pages are off");
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map(|text| text.trim().to_owned()).with_context(|| format!("reading {}", path.display()))
    };
    let session_key = read(key_file)?.into_bytes();
    anyhow::ensure!(session_key.len() >= 16, "the session key in {} is too short", key_file.display());
    let mut connect = args.connect.clone();
    connect.seed_file = Some(seed_file.clone());
    let client = brewq_runtime::connect(&nats_config(&connect, Role::Operator, "web-operator")?).await?;
    Ok(Some(brewq_web::admin::Operator {
        user: args.operator_user.clone(),
        password_hash: read(hash_file)?,
        session_key,
        client,
    }))
}

/// `brewq provision`.
pub async fn provision(args: ProvisionArgs) -> anyhow::Result<()> {
    let client = connect_once(&args.connect, Role::Provisioner, "provisioner").await?;
    brewq_launch::provision::provision(&client, &brewq_launch::Topology::new(args.replicas)).await?;
    client.drain().await?;
    println!("provisioned");
    Ok(())
}
