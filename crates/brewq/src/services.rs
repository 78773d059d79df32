//! The service subcommands: connect as the service's role, run its library until Ctrl-C or
//! SIGTERM, and exit. With `--metrics-listen`, each also serves its Prometheus metrics.

use anyhow::Context;
use brewq_launch::Role;
use brewq_runtime::NatsConfig;
use brewq_runtime::connect::home_first;
use tokio_util::sync::CancellationToken;

use crate::args::{ConnectArgs, ControllerArgs, MakerArgs, OfficeArgs, ProvisionArgs, ServiceArgs, WebArgs};
use crate::connect::{connect_once, machine_config, nats_config};
use crate::metrics_server::MetricsServer;

/// How often a service gives back the memory it freed.
const GIVE_BACK_MEMORY_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// What each service starts first thing, before its own work: the token cancelled on the first
/// Ctrl-C or SIGTERM from now on (so that a signal during its start-up stops it cleanly
/// instead of killing it), and, until then, the memory it freed given back every
/// [`GIVE_BACK_MEMORY_EVERY`].
fn start_service() -> CancellationToken {
    let token = CancellationToken::new();
    tokio::spawn(brewq_runtime::memory::give_back_every(GIVE_BACK_MEMORY_EVERY, token.clone()));
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
    let shutdown = start_service();
    anyhow::ensure!(!args.name_scan_every.is_zero(), "--name-scan-every must be more than 0");
    anyhow::ensure!(!args.reconcile_every.is_zero(), "--reconcile-every must be more than 0");
    let metrics = MetricsServer::start(args.service.metrics_listen.as_deref()).await?;
    // A controller still connecting shows its counters at 0 meanwhile.
    brewq_controller::show_counters();
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
    let shutdown = start_service();
    let metrics = MetricsServer::start(args.metrics_listen.as_deref()).await?;
    let client = brewq_runtime::connect(&nats_config(&args.connect, Role::Stock, "stock")?).await?;
    stop_metrics_after(brewq_stock::run(brewq_stock::Config::default(), client, shutdown).await, metrics).await
}

/// `brewq maker --id N`.
pub async fn maker(args: MakerArgs) -> anyhow::Result<()> {
    let shutdown = start_service();
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
    let shutdown = start_service();
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
    let shutdown = start_service();
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
    let chain = match &args.chain_keys {
        Some(folder) => Some(brewq_web::chain::Chain::follow(chain_shops(folder, &args.connect).await?, &shutdown)),
        None => None,
    };
    let config = brewq_web::Config { operator: Some(operator), chain, ..brewq_web::Config::default() };
    stop_metrics_after(brewq_web::admin::run(config, client, listener, shutdown).await, metrics).await
}

/// A connection to the hub for each shop whose operator's creds are in `folder/<n>/`.
async fn chain_shops(folder: &std::path::Path, connect: &crate::args::ConnectArgs) -> anyhow::Result<Vec<(u32, async_nats::Client)>> {
    let mut shops = Vec::new();
    for entry in std::fs::read_dir(folder).with_context(|| format!("reading the shops' creds in {}", folder.display()))? {
        let path = entry?.path();
        let Some(id) = path.file_name().and_then(|name| name.to_str()).and_then(|name| name.parse::<u32>().ok()) else { continue };
        let creds = path.join(format!("{}.creds", Role::Operator.as_str()));
        if !creds.is_file() {
            continue;
        }
        let args = crate::args::ConnectArgs { creds: Some(creds), ..connect.clone() };
        shops.push((id, brewq_runtime::connect(&nats_config(&args, Role::Operator, &format!("chain-office-{id}"))?).await?));
    }
    anyhow::ensure!(!shops.is_empty(), "no shop's operator creds in {} (<n>/operator.creds)", folder.display());
    shops.sort_by_key(|(id, _)| *id);
    Ok(shops)
}

async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (is it in use? choose another with --listen)"))
}

/// `brewq provision`.
pub async fn provision(args: ProvisionArgs) -> anyhow::Result<()> {
    if let Some(shop) = args.shop {
        return provision_shop(args, shop).await;
    }
    let client = connect_once(&args.connect, Role::Provisioner, "provisioner").await?;
    brewq_launch::provision::provision(&client, &brewq_launch::Topology::new(args.replicas)).await?;
    client.drain().await?;
    println!("provisioned");
    Ok(())
}

/// `brewq provision --shop N`: the shop's domain on its own server, then its side on the hub,
/// both as the shop's provisioner.
async fn provision_shop(args: ProvisionArgs, shop: u32) -> anyhow::Result<()> {
    let info = brewq_launch::ClusterInfo::load(&args.connect.data_dir)?;
    let node = info.shops.iter().find(|node| node.id == shop).with_context(|| format!("no shop {shop} in cluster.json"))?;
    let creds = args.connect.data_dir.join("keys/shops").join(shop.to_string()).join("provisioner.creds");
    let creds = Some(args.connect.creds.clone().unwrap_or(creds));
    let shop_urls = if args.connect.nats_url.is_empty() { node.nats_urls.clone() } else { args.connect.nats_url.clone() };
    let tls_ca = args.connect.tls_ca.clone().or(info.tls_ca.clone());
    let on_shop = ConnectArgs { nats_url: shop_urls, creds: creds.clone(), tls_ca: tls_ca.clone(), ..args.connect.clone() };
    let on_hub = ConnectArgs { nats_url: info.nats_urls.clone(), creds, tls_ca, ..args.connect.clone() };
    let shop_client = connect_once(&on_shop, Role::Provisioner, "provisioner").await?;
    let hub = connect_once(&on_hub, Role::Provisioner, "provisioner").await?;
    let topology = brewq_launch::Topology::new(1);
    brewq_launch::chain::provision_shop(&hub, &shop_client, shop, args.replicas, &topology).await?;
    shop_client.drain().await?;
    hub.drain().await?;
    println!("provisioned shop {shop}: its streams and buckets, and its side on the hub");
    Ok(())
}
