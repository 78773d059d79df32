//! The command line: one clap struct per subcommand. Flags also read `BREWQ_*` variables.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

/// Where `brewq up` keeps a system, and where the other commands look for it.
pub const DEFAULT_DATA_DIR: &str = ".brewq";

/// brewq: a fault-tolerant ordering system for a fleet of coffee machines, on NATS.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Log lines as text or JSON (on stderr).
    #[arg(long, global = true, value_enum, default_value = "text", env = "BREWQ_LOG_FORMAT")]
    pub log_format: LogFormatArg,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for brewq_runtime::telemetry::LogFormat {
    fn from(format: LogFormatArg) -> Self {
        match format {
            LogFormatArg::Text => brewq_runtime::telemetry::LogFormat::Text,
            LogFormatArg::Json => brewq_runtime::telemetry::LogFormat::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole system here: a 3-node NATS cluster, the services and 5 machines.
    Up(UpArgs),
    /// Run a controller: takes orders, records their life.
    Controller(ControllerArgs),
    /// Show the stock, restock it, or (with `serve`) run a stock manager.
    Stock(StockArgs),
    /// Run one coffee machine.
    Maker(MakerArgs),
    /// Run the web shop (pages and JSON API), with a customer's rights.
    Web(WebArgs),
    /// Run the operator's pages (dashboard, actions, login) on an address of their own.
    Office(OfficeArgs),
    /// Create or update the streams and buckets on a cluster.
    Provision(ProvisionArgs),
    /// Place an order.
    Order(OrderArgs),
    /// Show an order, or without an id the health of the whole system.
    Status(ShowStatusArgs),
    /// Cancel a queued order.
    Cancel(StatusArgs),
    /// List the machines, or pause, resume or take one out of service.
    Machines(MachinesArgs),
    /// List failed orders, or retry or give up one.
    Failed(FailedArgs),
    /// Show the audit trail of operator actions.
    Audit(AuditArgs),
    /// Prove the invariants: every order, reservation and ingredient accounted for.
    Check(ClientArgs),
    /// Place a rush of orders and report how right the ETA was.
    Rush(RushArgs),
    /// Measure how fast orders go, next to the raw NATS figures of the same cluster.
    Bench(BenchArgs),
    /// Generate a secured cluster's configuration, or show the permission matrix.
    #[command(subcommand)]
    Security(SecurityCommand),
}

impl Command {
    /// Long-running services use every core; one-shot commands a single thread.
    pub fn runs_services(&self) -> bool {
        matches!(self, Command::Up(_) | Command::Controller(_) | Command::Maker(_) | Command::Web(_) | Command::Office(_))
            || matches!(self, Command::Stock(StockArgs { action: Some(StockAction::Serve(_)), .. }))
    }

    /// A coffee machine handles one order at a time: one thread serves it with fewer context
    /// switches than a pool. The other services take concurrent requests.
    pub fn runs_on_one_thread(&self) -> bool {
        matches!(self, Command::Maker(_)) || !self.runs_services()
    }

    /// Services log what they do; `up` (whose services log to files) and one-shot commands
    /// only warnings.
    pub fn default_log_filter(&self) -> &'static str {
        match self {
            Command::Up(_) => "warn",
            _ if self.runs_services() => "info,async_nats=warn",
            _ => "warn",
        }
    }
}

/// Where the system is: a data folder written by `brewq up`, or explicit URLs.
#[derive(Debug, Clone, ClapArgs)]
pub struct ConnectArgs {
    /// Folder of a `brewq up` system (its `cluster.json` and `keys/`).
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "BREWQ_DATA_DIR")]
    pub data_dir: PathBuf,
    /// NATS server URLs, comma-separated (default: those in `<data-dir>/cluster.json`).
    #[arg(long, env = "BREWQ_NATS_URL", value_delimiter = ',')]
    pub nats_url: Vec<String>,
    /// This role's (or this machine's) creds file: its user JWT and nkey seed (default:
    /// `<data-dir>/keys/<role>.creds`, a machine's `<data-dir>/keys/machines/<id>.creds`).
    #[arg(long, env = "BREWQ_CREDS")]
    pub creds: Option<PathBuf>,
    /// CA certificate to trust, when the cluster requires TLS (default: from `cluster.json`).
    #[arg(long, env = "BREWQ_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

/// Options of every service.
#[derive(Debug, Clone, ClapArgs)]
pub struct ServiceArgs {
    /// Serve Prometheus metrics on this address (`host:port`, path `/metrics`); off when absent.
    #[arg(long, env = "BREWQ_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `brewq controller`.
#[derive(Debug, Clone, ClapArgs)]
pub struct ControllerArgs {
    /// How long a customer's name stays on the record of an order that ended (ready, failed,
    /// cancelled), as a number and a unit: `30d`, `12h`, `90m`, `45s`.
    #[arg(long, default_value = "30d", value_parser = parse_period, env = "BREWQ_NAMES_KEPT_FOR")]
    pub names_kept_for: std::time::Duration,
    /// How often the records are scanned for names to remove (and once at start).
    #[arg(long, default_value = "5m", value_parser = parse_period, env = "BREWQ_NAME_SCAN_EVERY")]
    pub name_scan_every: std::time::Duration,
    /// How often the reservations are scanned for stock held for no open order (and once at start).
    #[arg(long, default_value = "30s", value_parser = parse_period, env = "BREWQ_RECONCILE_EVERY")]
    pub reconcile_every: std::time::Duration,
    /// How long a reservation may stay reserved before its order is looked at: settled as its
    /// record says, or released when the order has no record and is not in the work queue.
    #[arg(long, default_value = "60s", value_parser = parse_period, env = "BREWQ_LEAK_AFTER")]
    pub leak_after: std::time::Duration,
    /// How long a ready order stays in the pickup board's "ready" column (`/board`).
    #[arg(long, default_value = "3m", value_parser = parse_period, env = "BREWQ_BOARD_READY_FOR")]
    pub board_ready_for: std::time::Duration,
    #[command(flatten)]
    pub service: ServiceArgs,
}

/// A period as a whole number and a unit: `d`, `h`, `m` or `s`.
fn parse_period(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let unit = match text.chars().last() {
        Some('d') => 24 * 3600,
        Some('h') => 3600,
        Some('m') => 60,
        Some('s') => 1,
        _ => return Err("expected a number and a unit: 30d, 12h, 90m or 45s".into()),
    };
    let count: u64 =
        text[..text.len() - 1].parse().map_err(|_| format!("{text:?} is not a whole number and a unit (30d, 12h, 90m, 45s)"))?;
    count.checked_mul(unit).map(std::time::Duration::from_secs).ok_or_else(|| format!("{text:?} is too long"))
}

#[derive(Debug, Clone, ClapArgs)]
pub struct MakerArgs {
    /// This machine's number, unique in the fleet.
    #[arg(long, env = "BREWQ_MACHINE_ID")]
    pub id: u32,
    /// Multiplies the nominal brew times (20/30/40 s by size); 0 brews instantly.
    #[arg(long, default_value_t = 1.0, env = "BREWQ_BREW_SCALE")]
    pub brew_scale: f64,
    /// Chance, from 0 to 1, that a brew fails.
    #[arg(long, default_value_t = 0.0, env = "BREWQ_FAIL_RATE")]
    pub fail_rate: f64,
    /// Brew attempts of one order before it ends failed (a delivery handed back by a paused
    /// or stopping machine is not an attempt).
    #[arg(long, default_value_t = 5)]
    pub max_attempts: i64,
    /// Serve Prometheus metrics on this address (`host:port`, path `/metrics`); off when absent.
    #[arg(long, env = "BREWQ_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct WebArgs {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BREWQ_LISTEN")]
    pub listen: String,
    /// Serve Prometheus metrics on this address (`host:port`, path `/metrics`); off when absent
    /// (never on the shop's own address, which customers reach).
    #[arg(long, env = "BREWQ_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `brewq office`: connects with the operator role (its seed in `--seed-file`).
#[derive(Debug, Clone, ClapArgs)]
pub struct OfficeArgs {
    /// Address to serve the operator's pages on; keep it off the customers' network.
    #[arg(long, default_value = "127.0.0.1:8081", env = "BREWQ_OFFICE_LISTEN")]
    pub listen: String,
    /// The operator's user name.
    #[arg(long, default_value = "admin", env = "BREWQ_OPERATOR_USER")]
    pub operator_user: String,
    /// File holding the bcrypt hash of the operator's password.
    #[arg(long, env = "BREWQ_OPERATOR_PASSWORD_HASH_FILE")]
    pub operator_password_hash_file: PathBuf,
    /// On a chain's hub: the folder of the shops' creds (`<n>/operator.creds` for shop n); the
    /// pages then show every shop at `/chain` and act on one.
    #[arg(long, env = "BREWQ_CHAIN_KEYS")]
    pub chain_keys: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (`host:port`, path `/metrics`); off when absent.
    #[arg(long, env = "BREWQ_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct ProvisionArgs {
    /// Copies of each stream and bucket (with `--shop`, of the shop's streams on the hub).
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// A shop of a chain (`security init --shops`), with its own provisioner credential: its
    /// streams and buckets on its own server (one copy; `--nats-url`, default: the shop's in
    /// `cluster.json`), then its side on the hub (the commands down to it, the chain's view of it).
    #[arg(long)]
    pub shop: Option<u32>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct UpArgs {
    /// Where keys, server data and logs live; running again on it keeps orders and stock.
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "BREWQ_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Number of coffee machines (of each shop, with `--shops`).
    #[arg(long, default_value_t = 5)]
    pub machines: u32,
    /// Shops: with more than one, the cluster is the chain's hub and each shop runs on a leaf
    /// node of its own (its own JetStream domain, its services, its web shop and operator
    /// pages), and keeps brewing while its link to the hub is down.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub shops: u32,
    /// Controllers; one per server when not given (each with its server as home).
    #[arg(long)]
    pub controllers: Option<usize>,
    /// Stock managers; one per server when not given.
    #[arg(long)]
    pub stock_managers: Option<usize>,
    /// Multiplies the nominal brew times (20/30/40 s by size); 0 brews instantly.
    #[arg(long, default_value_t = 1.0)]
    pub brew_scale: f64,
    /// Chance, from 0 to 1, that a brew fails (the order is retried on another machine).
    #[arg(long, default_value_t = 0.1)]
    pub fail_rate: f64,
    /// HTTP address of the web shop.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// HTTP address of the operator's pages.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub office_listen: String,
    /// Require TLS on client and route connections (certificates made in `<data-dir>/nats/tls`).
    #[arg(long)]
    pub tls: bool,
    /// Client ports of the three NATS servers, comma-separated (default: free ones).
    #[arg(long, value_delimiter = ',')]
    pub nats_ports: Vec<u16>,
}

/// Options of the operator's commands.
#[derive(Debug, Clone, ClapArgs)]
pub struct ClientArgs {
    /// Print JSON only, in the shapes of the HTTP API.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct OrderArgs {
    /// The customer's name.
    #[arg(long)]
    pub name: String,
    /// small, medium or large.
    #[arg(long, default_value = "medium")]
    pub size: String,
    /// arabica, robusta or mixed.
    #[arg(long = "bean", default_value = "arabica")]
    pub bean_type: String,
    /// none, cow or soy.
    #[arg(long, default_value = "none")]
    pub milk: String,
    /// Lumps of sugar, 0 to 3.
    #[arg(long = "sugar", default_value = "0", allow_negative_numbers = true)]
    pub sugar_count: String,
    /// Makes retries of this command one order.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Follow the order until it is ready, failed or cancelled.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SecurityCommand {
    /// Write node configs, credentials, passwords (and TLS material) for a cluster.
    Init {
        /// Number of nats-server nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Folder to write into (kept private: it holds every secret).
        #[arg(long)]
        out: PathBuf,
        /// Host name or address of each node, in order (default: all on 127.0.0.1).
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Require TLS on client and route connections.
        #[arg(long)]
        tls: bool,
        /// JetStream store folder on each host.
        #[arg(long, default_value = "/var/lib/brewq/nats")]
        store_dir: PathBuf,
        /// Serve each server's monitoring (plain HTTP, no authentication) on the node's own
        /// address; without it, on 127.0.0.1 only. Firewall it to the operator and Prometheus.
        #[arg(long)]
        monitor_on_host: bool,
        /// Issue a credential to machines 1 to N (`keys/machines/<n>.creds`); enroll more
        /// later with `brewq machines enroll`.
        #[arg(long, default_value_t = 1)]
        machines: u32,
        /// Shops of a chain: the nodes become its hub (a leaf node port, 7422, and the
        /// JetStream domain `hub`), and each shop gets a leaf node config (`shop-<n>.conf`) and
        /// its own account's credentials (`keys/shops/<n>/`, with `--machines` machines).
        #[arg(long, default_value_t = 0)]
        shops: u32,
        /// Host name or address of each shop's server, in order (default: all on 127.0.0.1).
        #[arg(long = "shop-host")]
        shop_hosts: Vec<String>,
    },
    /// Print the permission matrix (role, pub/sub, subject) as Markdown.
    Matrix,
    /// Issue the account's JWT again (the roles' permissions of this version, the revocations
    /// kept) and give it to every running server: no restart.
    Push {
        /// How long to wait for every server to confirm.
        #[arg(long, default_value = "10s", value_parser = parse_period)]
        timeout: std::time::Duration,
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

#[derive(Debug, Clone, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MachinesArgs {
    #[command(subcommand)]
    pub action: Option<MachineAction>,
    /// A shop of the chain, from the hub, as the hub last saw it (`brewq up --shops`).
    #[arg(long)]
    pub shop: Option<u32>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MachineAction {
    /// Finish the current brew, then take no new order.
    Pause(MachineTarget),
    /// Take orders again.
    Resume(MachineTarget),
    /// Hand the current order to another machine at once; take no new order.
    OutOfService(MachineTarget),
    /// Issue a new machine's credential: writes its creds file (needs `<data-dir>/keys/trust`).
    Enroll(EnrollArgs),
    /// Cut a machine off: its credential is refused from now on and its connection closed, on
    /// every server, while they run; the orders it held go to other machines.
    Revoke(RevokeArgs),
}

#[derive(Debug, Clone, ClapArgs)]
pub struct EnrollArgs {
    /// The machine's number, unique in the fleet.
    pub id: u32,
    /// Where to write the creds file (default: `<data-dir>/keys/machines/<id>.creds`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The shop the machine belongs to (with `brewq up --shops`).
    #[arg(long)]
    pub shop: Option<u32>,
    /// Folder of the system's `keys/` (and `cluster.json`).
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "BREWQ_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct RevokeArgs {
    /// The machine's number.
    pub id: u32,
    /// The shop the machine belongs to (with `brewq up --shops`).
    #[arg(long)]
    pub shop: Option<u32>,
    /// How long to wait for every server to confirm.
    #[arg(long, default_value = "10s", value_parser = parse_period)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct MachineTarget {
    /// The machine's number.
    pub id: u32,
    /// A shop of the chain, from the hub (`brewq up --shops`): the command is kept on the hub
    /// and applied in the shop once, as soon as its link is up.
    #[arg(long)]
    pub shop: Option<u32>,
    /// With --shop: how long the command may wait for the shop's link; one that reaches the shop
    /// later is dropped there (and the drop audited).
    #[arg(long, default_value = "15m", value_parser = parse_period)]
    pub valid_for: std::time::Duration,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FailedArgs {
    #[command(subcommand)]
    pub action: Option<FailedAction>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum FailedAction {
    /// Queue the same coffee again as a new order (its stock is reserved again).
    Retry(StatusArgs),
    /// Close the case (its stock was released when it failed).
    GiveUp(StatusArgs),
}

#[derive(Debug, Clone, ClapArgs)]
pub struct AuditArgs {
    /// How many of the latest entries.
    #[arg(long, default_value_t = 50)]
    pub last: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct RushArgs {
    /// Orders to place, of mixed sizes.
    #[arg(long, default_value_t = 60)]
    pub orders: usize,
    /// How long to wait for them all to end.
    #[arg(long, default_value_t = 600)]
    pub timeout_seconds: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct BenchArgs {
    /// Orders to send (every size, bean, milk and sugar in turn); stock is topped up first.
    #[arg(long, default_value_t = 5000)]
    pub orders: usize,
    /// Concurrent clients (orders waiting for their answer at once).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Orders per second; as fast as the clients go when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Send through NATS (`coffee.web.requests`) or the web shop's HTTP API.
    #[arg(long, value_enum, default_value = "nats")]
    pub via: crate::commands::bench::Via,
    /// The web shop for `--via http` (default: `http_url` of cluster.json).
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds to measure each raw NATS figure for; 0 skips them.
    #[arg(long, default_value_t = 3)]
    pub raw_seconds: u64,
    /// How long to wait for the accepted orders to be brewed.
    #[arg(long, default_value_t = 300)]
    pub timeout_seconds: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct ShowStatusArgs {
    /// An order id; without one, the health of the whole system (servers, JetStream leaders,
    /// machines, queue, stock alerts, failed orders).
    pub id: Option<String>,
    /// Monitoring URLs of the servers, comma-separated (default: those in `cluster.json`).
    #[arg(long, value_delimiter = ',', env = "BREWQ_MONITOR_URL")]
    pub monitor_url: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, ClapArgs)]
pub struct StatusArgs {
    /// The order id.
    pub id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, ClapArgs)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StockArgs {
    #[command(subcommand)]
    pub action: Option<StockAction>,
    /// A shop of the chain, from the hub, over its link, or as the hub last saw it (`brewq up --shops`).
    #[arg(long)]
    pub shop: Option<u32>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Clone, Subcommand)]
pub enum StockAction {
    /// Add to what is on hand: `brewq stock restock arabica=1000 sugar=200`.
    Restock {
        /// INGREDIENT=AMOUNT pairs (arabica, robusta, mixed, cow_milk, soy_milk, sugar).
        #[arg(required = true)]
        items: Vec<String>,
        /// A shop of the chain, from the hub: applied there once, when its link is up.
        #[arg(long)]
        shop: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set low-stock alert levels: `brewq stock threshold arabica=500`.
    Threshold {
        /// INGREDIENT=AMOUNT pairs.
        #[arg(required = true)]
        items: Vec<String>,
        /// A shop of the chain, from the hub: applied there once, when its link is up.
        #[arg(long)]
        shop: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run a stock manager.
    Serve(ServiceArgs),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_period_is_a_whole_number_and_a_unit() {
        assert_eq!(super::parse_period("30d"), Ok(Duration::from_secs(30 * 24 * 3600)));
        assert_eq!(super::parse_period("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(super::parse_period("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(super::parse_period(" 1s "), Ok(Duration::from_secs(1)));
        for wrong in ["30", "d", "1.5h", "-1d", "3w", "", "99999999999999999d"] {
            assert!(super::parse_period(wrong).is_err(), "{wrong:?}");
        }
    }
}
