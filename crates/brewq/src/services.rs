//! The service subcommands: connect as the service's role, run its library until Ctrl-C or
//! SIGTERM, and exit. With `--metrics-listen`, each also serves its Prometheus metrics.

use anyhow::Context;
use brewq_launch::Role;
use brewq_runtime::NatsConfig;
use brewq_runtime::connect::home_first;
use tokio_util::sync::CancellationToken;

use crate::args::{ControllerArgs, MakerArgs, OfficeArgs, ProvisionArgs, ServiceArgs, WebArgs};
use crate::connect::{connect_once, machine_config, nats_config};
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
async fn stop_metrics_after(service: anyhow::Result<()>, metrics: MetricsServer) -> anyhow::Result<()> {
    let stopped = metrics.stop().await;
    service.and(stopped)
}

/// `brewq controller`.
pub async fn controller(args: ControllerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    anyhow::ensure!(!args.name_scan_every.is_zero(), "--name-scan-every must be more than 0");
    anyhow::ensure!(!args.reconcile_every.is_zero(), "--reconcile-every must be more than 0");
    let metrics = MetricsServer::start(args.service.metrics_listen.as_deref()).await?;
    let nats = nats_config(&args.service.connect, Role::Controller, "controller")?;
    // Every controller holds the role's seed, and no one else does: the key of the ids of
    // orders placed without an idempotency key comes from it.
    let seed = nats.credentials.seed().context("the controller's creds file holds no seed")?;
    let order_id_key = brewq_protocol::ids::OrderIdKey::derived_from(seed.as_bytes());
    let client = brewq_runtime::connect(&nats).await?;
    let config = brewq_controller::Config {
        order_id_key,
        names_kept_for: args.names_kept_for,
        name_scan_every: args.name_scan_every,
        reconcile_every: args.reconcile_every,
        leak_after: args.leak_after,
        board_ready_for: args.board_ready_for,
        ..brewq_controller::Config::default()
    };
    stop_metrics_after(brewq_controller::run(config, client, shutdown).await, metrics).await
}

/// `brewq stock serve`.
pub async fn stock(args: ServiceArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    let metrics = MetricsServer::start(args.metrics_listen.as_deref()).await?;
    let client = brewq_runtime::connect(&nats_config(&args.connect, Role::Stock, "stock")?).await?;
    stop_metrics_after(brewq_stock::run(brewq_stock::Config::default(), client, shutdown).await, metrics).await
}

/// `brewq maker --id N`.
pub async fn maker(args: MakerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    anyhow::ensure!((0.0..=1.0).contains(&args.fail_rate), "--fail-rate must be between 0 and 1");
    anyhow::ensure!(args.brew_scale >= 0.0, "--brew-scale must be 0 or more");
    let metrics = MetricsServer::start(args.metrics_listen.as_deref()).await?;
    let client = brewq_runtime::connect(&machine_config(&args.connect, args.id)?).await?;
    let mut config = brewq_maker::Config::new(args.id);
    config.max_attempts = args.max_attempts;
    let brewer = brewq_maker::SimulatedBrewer { brew_scale: args.brew_scale, fail_rate: args.fail_rate };
    stop_metrics_after(brewq_maker::run(config, brewer, client, shutdown).await, metrics).await
}

/// `brewq web`: the shop, with a customer's rights.
pub async fn web(args: WebArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    let listener = bind(&args.listen).await?;
    // `/metrics` only on `--metrics-listen`, never on the customers' address.
    let metrics = MetricsServer::start(args.metrics_listen.as_deref()).await?;
    let config = nats_config(&args.connect, Role::Web, "web")?;
    let client = brewq_runtime::connect(&config).await?;
    // The second connection's home is the next server of the list.
    let second = NatsConfig { urls: home_first(config.urls.clone(), 1), name: "web-second".into(), ..config };
    let another_server = Some(brewq_runtime::connect(&second).await?);
    let config = brewq_web::Config { another_server, ..brewq_web::Config::default() };
    stop_metrics_after(brewq_web::run(config, client, listener, shutdown).await, metrics).await
}

/// `brewq office`: the operator's pages, with the operator role.
pub async fn office(args: OfficeArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_token();
    let password_hash = std::fs::read_to_string(&args.operator_password_hash_file)
        .map(|text| text.trim().to_owned())
        .with_context(|| format!("reading {}", args.operator_password_hash_file.display()))?;
    let listener = bind(&args.listen).await?;
    let metrics = MetricsServer::start(args.metrics_listen.as_deref()).await?;
    let client = brewq_runtime::connect(&nats_config(&args.connect, Role::Operator, "office")?).await?;
    let jetstream = async_nats::jetstream::new(client.clone());
    let Some(store) = brewq_runtime::kv::wait_for_bucket(&jetstream, brewq_protocol::subjects::SESSIONS_BUCKET, &shutdown).await else {
        return stop_metrics_after(Ok(()), metrics).await;
    };
    let sessions = brewq_web::admin::session::Sessions::new(store);
    let operator = brewq_web::admin::Operator {
        user: args.operator_user,
        password_hash,
        sessions,
        client: client.clone(),
        stock_history: Default::default(),
    };
    let config = brewq_web::Config { operator: Some(operator), ..brewq_web::Config::default() };
    stop_metrics_after(brewq_web::admin::run(config, client, listener, shutdown).await, metrics).await
}

async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (is it in use? choose another with --listen)"))
}

/// `brewq provision`.
pub async fn provision(args: ProvisionArgs) -> anyhow::Result<()> {
    let client = connect_once(&args.connect, Role::Provisioner, "provisioner").await?;
    brewq_launch::provision::provision(&client, &brewq_launch::Topology::new(args.replicas)).await?;
    client.drain().await?;
    println!("provisioned");
    Ok(())
}
