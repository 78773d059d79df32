//! `brewq up`: the whole system on this machine, supervised until Ctrl-C. Finds a recent
//! enough `nats-server`, starts everything through [`brewq_launch::System`], restarts what
//! dies, and stops it all cleanly.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use brewq_launch::cluster::NodePorts;
use brewq_launch::{System, SystemConfig};
use tokio::signal::unix;

use crate::args::{DEFAULT_DATA_DIR, LogFormatArg, UpArgs};

/// The oldest nats-server brewq runs on: 2.12 brought atomic batch publish (ARCHITECTURE.md,
/// Cross-cutting concerns).
const MIN_NATS_VERSION: (u32, u32) = (2, 12);

/// Runs the system until Ctrl-C or SIGTERM.
pub async fn run(args: UpArgs, log_format: LogFormatArg) -> anyhow::Result<()> {
    anyhow::ensure!((0.0..=1.0).contains(&args.fail_rate), "--fail-rate must be between 0 and 1");
    anyhow::ensure!(args.brew_scale >= 0.0, "--brew-scale must be 0 or more");
    anyhow::ensure!(args.nats_ports.is_empty() || args.nats_ports.len() == 3, "--nats-ports takes 3 ports");
    let nats_server = find_nats_server()?;
    let exe = std::env::current_exe().context("locating the brewq binary")?;
    let mut config = SystemConfig::new(&exe, &nats_server, &args.data_dir, args.machines);
    // One controller and one stock manager on each server: a server that stops answering
    // takes only its own with it, and the others' servers hand requests to theirs at once.
    config.controllers = args.controllers.unwrap_or(config.nodes);
    config.stock_managers = args.stock_managers.unwrap_or(config.nodes);
    anyhow::ensure!(config.controllers >= 1 && config.stock_managers >= 1, "--controllers and --stock-managers take 1 or more");
    config.brew_scale = args.brew_scale;
    config.fail_rate = args.fail_rate;
    config.web_listen = Some(args.listen.clone());
    config.office_listen = Some(args.office_listen.clone());
    config.tls = args.tls;
    config.shops = args.shops;
    if let LogFormatArg::Json = log_format {
        config.service_env.push(("BREWQ_LOG_FORMAT".into(), "json".into()));
    }
    if !args.nats_ports.is_empty() {
        let ports: anyhow::Result<Vec<NodePorts>> =
            args.nats_ports.iter().map(|&client| Ok(NodePorts { client, ..NodePorts::free()? })).collect();
        config.ports = Some(ports?);
    }
    // Listening before anything starts: a stop asked for during the start-up then stops the
    // system in order once it is up, rather than killing brewq up and leaving its children,
    // in process groups of their own, running.
    let stop = stop_asked();
    tokio::pin!(stop);
    // Ctrl-C in the terminal reaches brewq up alone, which stops everything in order.
    brewq_launch::process::own_process_groups();
    eprintln!("starting a 3-node NATS cluster and the services in {} ...", args.data_dir.display());
    let (mut system, stopping) = start(config, stop.as_mut()).await?;
    if !stopping {
        print_banner(&system, &args.data_dir);
        supervise(&mut system, stop).await;
    }
    eprintln!("stopping ...");
    system.stop().await?;
    eprintln!("stopped; orders and stock are kept in {}", args.data_dir.display());
    Ok(())
}

fn print_banner(system: &System, data_dir: &Path) {
    match system.config.shops {
        1 => println!("brewq is up: {} machine(s)", system.config.machines),
        shops => println!("brewq is up: {shops} shops of {} machine(s), each on a leaf node of the hub", system.config.machines),
    }
    if let (Some(url), 1) = (&system.info.http_url, system.config.shops) {
        println!("  open:   {url}");
        println!("  pickup board: {url}/board");
    }
    match (&system.info.office_url, system.config.shops) {
        (Some(url), 1) => println!("  operator: {url}/admin"),
        (Some(url), _) => println!("  chain:  {url}/chain (every shop, from the hub)"),
        (None, _) => {}
    }
    println!("  NATS:   {}", system.info.nats_urls.join(","));
    println!("  admin:  user {} (password in {})", system.info.admin_user, data_dir.join("cluster.json").display());
    println!("  logs:   {} (JSON lines with --log-format json)", data_dir.join("logs").display());
    println!("  metrics: /metrics of each service, listed under metrics_urls in cluster.json");
    println!("  monitor: {}", system.info.monitor_urls.join(","));
    for shop in &system.info.shops {
        let web = shop.http_url.as_deref().unwrap_or("-");
        let office = shop.office_url.as_deref().map(|url| format!("{url}/admin")).unwrap_or_else(|| "-".into());
        println!("  shop {}: {web}  operator: {office}  NATS: {}", shop.id, shop.nats_urls.join(","));
    }
    // The commands to try name the data folder unless it is the default the CLI looks in.
    let folder = match data_dir == Path::new(DEFAULT_DATA_DIR) {
        true => String::new(),
        false => format!(" --data-dir {}", data_dir.display()),
    };
    println!("  health: brewq status{folder}");
    // A chain's hub takes no order: its shops do.
    match system.info.shops.first().and_then(|shop| shop.http_url.as_deref()) {
        Some(web) => println!("try: an order at shop 1's web shop, {web}"),
        None => println!("try, in another terminal:  brewq order --name Quentin --size medium --bean arabica --wait{folder}"),
    }
    println!("Ctrl-C stops everything.");
}

/// Completes on Ctrl-C, SIGTERM, or SIGHUP (the terminal closed: the children, in groups of
/// their own, would not hear of it), listening from this call on.
fn stop_asked() -> impl Future<Output = ()> {
    let signal = brewq_runtime::shutdown_signal();
    let mut hangup = unix::signal(unix::SignalKind::hangup()).ok();
    async move {
        let hung_up = async {
            match hangup.as_mut() {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = signal => {}
            _ = hung_up => {}
        }
    }
}

/// Starts the system. A stop asked for meanwhile waits until it is up (whether one was is
/// returned with it): a start abandoned half-way kills what it has started rather than stop it
/// in order, so only a second stop abandons it.
async fn start(config: SystemConfig, stop: Pin<&mut impl Future<Output = ()>>) -> anyhow::Result<(System, bool)> {
    let start = System::start(config);
    tokio::pin!(start);
    tokio::select! {
        started = &mut start => return Ok((started?, false)),
        () = stop => {}
    }
    eprintln!("stopping as soon as everything has started (again to abandon the start-up) ...");
    let again = stop_asked();
    tokio::select! {
        started = &mut start => Ok((started?, true)),
        () = again => anyhow::bail!("start-up abandoned: what had started was killed"),
    }
}

/// Restarts whatever dies, until `stop`.
async fn supervise(system: &mut System, mut stop: Pin<&mut impl Future<Output = ()>>) {
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                for name in system.revive() {
                    tracing::warn!(process = name, "process had stopped; restarted it");
                }
            }
        }
    }
}

/// `NATS_SERVER_BIN`, else `nats-server` on PATH, else the one `scripts/` installs in
/// `.tools/`, each only if recent enough.
fn find_nats_server() -> anyhow::Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        candidates.push(path.into());
    }
    if let Some(paths) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&paths).map(|dir| dir.join("nats-server")));
    }
    let here = std::env::current_exe().ok();
    let here = here.as_deref().or(Some(Path::new(".")));
    candidates.extend(here.into_iter().flat_map(Path::ancestors).map(|dir| dir.join(".tools/nats-server/bin/nats-server")));
    candidates
        .into_iter()
        .find(|path| path.is_file() && version_of(path).is_some_and(|version| version >= MIN_NATS_VERSION))
        .context("no nats-server 2.12 or newer found: run scripts/up.sh, or set NATS_SERVER_BIN")
}

fn version_of(path: &Path) -> Option<(u32, u32)> {
    let output = std::process::Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.split_whitespace().find_map(|word| word.strip_prefix('v'))?;
    let mut numbers = version.split('.').map(|part| part.parse::<u32>().ok());
    Some((numbers.next()??, numbers.next()??))
}
