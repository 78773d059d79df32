//! A whole brewq system on one machine: the cluster, provisioning, and the service processes
//! (controllers, stock managers, machines), started in order, supervised and stopped together.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use brewq_runtime::{Credentials, NatsConfig};

use crate::cluster::{ClusterInfo, NatsCluster, NodeHost, NodePorts, pick_ports};
use crate::keys::{Keys, Role};
use crate::process::Process;
use crate::provision::{Topology, provision};

/// What to run.
#[derive(Debug, Clone)]
pub struct SystemConfig {
    /// The `brewq` binary whose subcommands run the services.
    pub brewq_bin: PathBuf,
    pub nats_server_bin: PathBuf,
    /// Keys, server data, logs and `cluster.json` live here; a restart on it keeps everything.
    pub data_dir: PathBuf,
    pub nodes: usize,
    pub machines: u32,
    pub controllers: usize,
    pub stock_managers: usize,
    /// Multiplies the nominal brew times; 0 brews instantly.
    pub brew_scale: f64,
    /// Chance that a brew fails.
    pub fail_rate: f64,
    /// Brew attempts of one order before it ends failed.
    pub max_attempts: u32,
    pub topology: Topology,
    /// Ports per node; free ones (or those of the last run) when `None`.
    pub ports: Option<Vec<NodePorts>>,
    /// Require TLS on client and route connections.
    pub tls: bool,
    /// Where each node runs; all on 127.0.0.1 when empty.
    pub node_hosts: Vec<NodeHost>,
    /// Where the web shop listens (`host:port`); no web shop when `None`.
    pub web_listen: Option<String>,
    /// Where the operator's pages listen (`host:port`); none when `None`.
    pub office_listen: Option<String>,
    /// Extra environment for every service (e.g. `RUST_LOG`, `BREWQ_LOG_FORMAT`).
    pub service_env: Vec<(String, String)>,
    /// Give each service process a loopback port for its Prometheus metrics (listed in
    /// `cluster.json`).
    pub metrics: bool,
    /// Shops: 1 runs everything on the cluster; more make the cluster a hub and each shop a
    /// leaf node of its own with its services (`machines` machines, a controller, a stock
    /// manager, a web shop and operator pages each).
    pub shops: u32,
    /// The addresses through which a shop reaches the hub's leaf ports, by shop, when not the
    /// hub's own (a link a test can cut).
    pub shop_links: std::collections::BTreeMap<u32, Vec<String>>,
}

impl SystemConfig {
    /// Three nodes, one controller, one stock manager and `machines` machines.
    pub fn new(brewq_bin: &Path, nats_server_bin: &Path, data_dir: &Path, machines: u32) -> Self {
        SystemConfig {
            brewq_bin: brewq_bin.to_owned(),
            nats_server_bin: nats_server_bin.to_owned(),
            data_dir: data_dir.to_owned(),
            nodes: 3,
            machines,
            controllers: 1,
            stock_managers: 1,
            brew_scale: 1.0,
            fail_rate: 0.0,
            max_attempts: 5,
            topology: Topology::new(3),
            ports: None,
            web_listen: None,
            office_listen: None,
            tls: false,
            node_hosts: Vec::new(),
            service_env: Vec::new(),
            metrics: true,
            shops: 1,
            shop_links: Default::default(),
        }
    }
}

/// A kind of service process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Controller,
    Stock,
    /// A machine, by number.
    Maker(u32),
    Web,
    /// The operator's pages.
    Office,
}

impl ServiceKind {
    /// The group of [`ServiceKind::stop_group`] that stops last.
    const LAST_TO_STOP: u8 = 3;

    /// When this kind stops in [`System::stop`]: the groups in turn, from 0.
    fn stop_group(self) -> u8 {
        match self {
            ServiceKind::Web | ServiceKind::Office => 0,
            ServiceKind::Maker(_) => 1,
            ServiceKind::Controller => 2,
            ServiceKind::Stock => Self::LAST_TO_STOP,
        }
    }
}

/// One supervised service.
struct Service {
    kind: ServiceKind,
    /// The shop it serves; `None` on the cluster itself.
    shop: Option<u32>,
    name: String,
    args: Vec<String>,
    process: Option<Process>,
}

/// A running system.
pub struct System {
    pub config: SystemConfig,
    pub keys: Keys,
    pub cluster: NatsCluster,
    pub info: ClusterInfo,
    services: Vec<Service>,
    /// The shops' leaf nodes, when there are several shops.
    pub shops: Vec<crate::shops::ShopNode>,
}

/// Fails, naming the address and its option, when the web shop's or the operator pages'
/// address cannot be listened on (in use, or not an address of this machine), before anything
/// starts: otherwise the system would come up with those pages failing and started again every
/// second, and whatever else listens there answering for them.
fn check_addresses(config: &SystemConfig) -> anyhow::Result<()> {
    for (listen, option) in [(&config.web_listen, "--listen"), (&config.office_listen, "--office-listen")] {
        if let Some(listen) = listen {
            std::net::TcpListener::bind(listen.as_str())
                .with_context(|| format!("cannot listen on {listen} (is it in use? choose another with {option})"))?;
        }
    }
    Ok(())
}

impl System {
    /// Starts the cluster, provisions it, starts every service and writes `cluster.json`.
    pub async fn start(config: SystemConfig) -> anyhow::Result<System> {
        check_addresses(&config)?;
        let data_dir = &config.data_dir.clone();
        std::fs::create_dir_all(data_dir.join("logs")).with_context(|| format!("creating {}", data_dir.display()))?;
        let keys = Keys::load_or_create(&data_dir.join("keys"))?;
        let shop_keys: Vec<crate::keys::AccountKeys> = match config.shops {
            0 | 1 => Vec::new(),
            shops => (1..=shops).map(|shop| keys.shop(shop)).collect::<anyhow::Result<_>>()?,
        };
        let mut accounts = vec![&keys.coffee];
        accounts.extend(shop_keys.iter());
        let previous = ClusterInfo::load(data_dir).ok().map(|info| info.ports);
        let wanted = config.ports.clone().or(previous.filter(|ports| ports.len() == config.nodes && ports_free(ports)));
        // Free ports can be taken by someone else before the servers bind them: try again
        // with others. Ports given (or kept from the last run) are used as they are.
        let attempts = if wanted.is_some() { 1 } else { 3 };
        let mut attempt = 1;
        let cluster = loop {
            let ports = pick_ports(config.nodes, wanted.as_deref(), !shop_keys.is_empty())?;
            let hosts = match config.node_hosts.len() {
                0 => vec![NodeHost::default(); config.nodes],
                _ => config.node_hosts.clone(),
            };
            let mut cluster =
                NatsCluster::start(&config.nats_server_bin, &data_dir.join("nats"), &keys, &accounts, ports, hosts, config.tls)?;
            match cluster.wait_ready(&keys, Duration::from_secs(60)).await {
                Ok(()) => break cluster,
                Err(error) if attempt < attempts => {
                    tracing::warn!(error = format!("{error:#}"), "cluster did not start; trying other ports");
                    cluster.stop().await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        };
        let info = ClusterInfo {
            nats_urls: cluster.urls(),
            http_url: config.web_listen.as_ref().map(|listen| format!("http://{listen}")),
            office_url: config.office_listen.as_ref().map(|listen| format!("http://{listen}")),
            admin_user: keys.admin_user.clone(),
            admin_password: keys.admin_password.clone(),
            tls_ca: cluster.tls_ca.clone(),
            ports: cluster.ports.clone(),
            monitor_urls: cluster.monitor_urls(),
            metrics_urls: Default::default(),
            shops: Vec::new(),
        };
        let mut system = System { config, keys, cluster, info, services: Vec::new(), shops: Vec::new() };
        let started = brewq_protocol::now();
        if shop_keys.is_empty() {
            let provisioner = brewq_runtime::connect(&system.nats_config(Role::Provisioner, "provisioner")?).await?;
            provision(&provisioner, &system.config.topology).await?;
            provisioner.drain().await.context("closing the provisioner connection")?;
            system.start_services()?;
            system.wait_ready(started, Duration::from_secs(60)).await?;
        } else {
            system.start_shops().await?;
        }
        system.info.save(data_dir)?;
        Ok(system)
    }

    /// Waits until the stock managers and controllers answer and every machine has sent a
    /// heartbeat since `since`.
    pub async fn wait_ready(&self, since: time::OffsetDateTime, timeout: Duration) -> anyhow::Result<()> {
        let admin = brewq_runtime::connect(&self.nats_config(Role::Admin, "readiness")?).await?;
        let machines: Vec<u32> = self
            .services
            .iter()
            .filter_map(|service| match service.kind {
                ServiceKind::Maker(id) => Some(id),
                _ => None,
            })
            .collect();
        crate::readiness::wait(&admin, &self.config, &machines, since, timeout).await.map_err(|waiting| {
            anyhow::anyhow!("not ready after {timeout:?}: {waiting} (see the logs in {})", self.config.data_dir.join("logs").display())
        })
    }

    /// How a client of `role` connects to this system (a machine: [`System::machine_config`]).
    pub fn nats_config(&self, role: Role, name: &str) -> anyhow::Result<NatsConfig> {
        anyhow::ensure!(role != Role::Maker, "each machine has its own credential: ask for machine_config");
        Ok(NatsConfig {
            urls: self.cluster.urls(),
            credentials: Credentials::from_creds(self.keys.creds(role)?)?,
            role: role.as_str().into(),
            name: name.into(),
            tls_ca: self.cluster.tls_ca.clone(),
        })
    }

    /// How machine `machine` connects to this system, with its own credential (issued if it
    /// has none).
    pub fn machine_config(&self, machine: u32) -> anyhow::Result<NatsConfig> {
        self.keys.ensure_machine(machine)?;
        let creds = crate::keys::read_creds_file(&self.keys.machine_creds_file(machine))?;
        Ok(NatsConfig {
            urls: self.cluster.urls(),
            credentials: Credentials::from_creds(creds)?,
            role: format!("{}.{machine}", Role::Maker.as_str()),
            name: format!("maker-{machine}"),
            tls_ca: self.cluster.tls_ca.clone(),
        })
    }

    fn start_services(&mut self) -> anyhow::Result<()> {
        let mut wanted = Vec::new();
        wanted.extend((1..=self.config.stock_managers).map(|_| ServiceKind::Stock));
        wanted.extend((1..=self.config.controllers).map(|_| ServiceKind::Controller));
        wanted.extend((1..=self.config.machines).map(ServiceKind::Maker));
        if self.config.web_listen.is_some() {
            wanted.push(ServiceKind::Web);
        }
        if self.config.office_listen.is_some() {
            wanted.push(ServiceKind::Office);
        }
        for kind in wanted {
            self.add_service(kind)?;
        }
        Ok(())
    }

    /// Starts one more service process on the cluster.
    pub fn add_service(&mut self, kind: ServiceKind) -> anyhow::Result<()> {
        self.add_service_to(None, kind)
    }

    /// Starts one more service process for shop `shop` (on the cluster when `None`).
    pub fn add_service_to(&mut self, shop: Option<u32>, kind: ServiceKind) -> anyhow::Result<()> {
        let same_kind = self
            .services
            .iter()
            .filter(|service| service.shop == shop && std::mem::discriminant(&service.kind) == std::mem::discriminant(&kind))
            .count();
        let node = shop.map(|shop| self.shops.iter().find(|node| node.id == shop).context("no such shop")).transpose()?;
        let account = node.map_or(&self.keys.coffee, |node| &node.keys);
        let (web_listen, office_listen) = match node {
            Some(node) => (node.web_listen.clone(), node.office_listen.clone()),
            None => (self.config.web_listen.clone(), self.config.office_listen.clone()),
        };
        let (name, creds, mut args) = match kind {
            ServiceKind::Controller => {
                (format!("controller-{}", same_kind + 1), account.creds_file(Role::Controller), vec!["controller".into()])
            }
            ServiceKind::Stock => {
                (format!("stock-{}", same_kind + 1), account.creds_file(Role::Stock), vec!["stock".into(), "serve".into()])
            }
            ServiceKind::Web => {
                let listen = web_listen.context("no address for the web shop")?;
                (format!("web-{}", same_kind + 1), account.creds_file(Role::Web), vec!["web".into(), "--listen".into(), listen])
            }
            ServiceKind::Office => {
                let listen = office_listen.context("no address for the operator's pages")?;
                self.keys.ensure_operator_files()?;
                let args = vec![
                    "office".into(),
                    "--listen".into(),
                    listen,
                    "--operator-user".into(),
                    self.keys.admin_user.clone(),
                    "--operator-password-hash-file".into(),
                    self.keys.dir().join(crate::keys::OPERATOR_HASH_FILE).display().to_string(),
                ];
                // On a chain's hub: the chain's dashboard, following every shop.
                let args = match (shop, self.config.shops) {
                    (None, 2..) => {
                        [args, vec!["--chain-keys".into(), self.keys.dir().join(crate::keys::SHOPS_DIR).display().to_string()]].concat()
                    }
                    _ => args,
                };
                (format!("office-{}", same_kind + 1), account.creds_file(Role::Operator), args)
            }
            ServiceKind::Maker(id) => (
                format!("maker-{id}"),
                {
                    account.ensure_machine(id)?;
                    account.machine_creds_file(id)
                },
                vec![
                    "maker".into(),
                    "--id".into(),
                    id.to_string(),
                    "--brew-scale".into(),
                    self.config.brew_scale.to_string(),
                    "--fail-rate".into(),
                    self.config.fail_rate.to_string(),
                    "--max-attempts".into(),
                    self.config.max_attempts.to_string(),
                ],
            ),
        };
        // Each instance of a kind has its home server in turn (the first URL, tried first).
        let home = match kind {
            ServiceKind::Maker(id) => id.saturating_sub(1) as usize,
            _ => same_kind,
        };
        let urls = match node {
            Some(node) => vec![node.url()],
            None => brewq_runtime::connect::home_first(self.cluster.urls(), home),
        };
        let name = match shop {
            Some(shop) => format!("shop{shop}-{name}"),
            None => name,
        };
        args.extend(["--nats-url".into(), urls.join(","), "--creds".into(), creds.display().to_string()]);
        if let Some(ca) = &self.cluster.tls_ca {
            args.extend(["--tls-ca".into(), ca.display().to_string()]);
        }
        if self.config.metrics {
            let address = format!("127.0.0.1:{}", self.metrics_port()?);
            self.info.metrics_urls.insert(name.clone(), format!("http://{address}/metrics"));
            args.extend(["--metrics-listen".into(), address]);
        }
        let mut service = Service { kind, shop, name, args, process: None };
        service.process = Some(self.spawn(&service)?);
        self.services.push(service);
        Ok(())
    }

    /// A free port for a service's metrics that no node and no other service was given: a
    /// service started a moment ago may not listen on its port yet, so being free is not enough.
    fn metrics_port(&self) -> anyhow::Result<u16> {
        let taken: std::collections::BTreeSet<u16> = self
            .cluster
            .ports
            .iter()
            .flat_map(|ports| [ports.client, ports.route, ports.monitor])
            .chain(self.info.metrics_urls.values().filter_map(|url| port_of(url)))
            .chain(self.config.web_listen.as_deref().and_then(port_of))
            .chain(self.config.office_listen.as_deref().and_then(port_of))
            .collect();
        for _ in 0..100 {
            let port = crate::cluster::free_service_port()?;
            if !taken.contains(&port) {
                return Ok(port);
            }
        }
        anyhow::bail!("no free port left for a service's metrics")
    }

    fn spawn(&self, service: &Service) -> anyhow::Result<Process> {
        let log = self.config.data_dir.join("logs").join(format!("{}.log", service.name));
        Process::spawn(&service.name, &self.config.brewq_bin, &service.args, &self.config.service_env, &log)
    }

    /// The process of a service, while it runs.
    pub fn service(&mut self, kind: ServiceKind) -> Option<&mut Process> {
        self.services.iter_mut().find(|service| service.kind == kind).and_then(|service| service.process.as_mut())
    }

    /// Kills a service with SIGKILL, as a crash would; it stays down until [`System::revive`].
    pub async fn kill_service(&mut self, kind: ServiceKind) {
        if let Some(service) = self.services.iter_mut().find(|service| service.kind == kind)
            && let Some(process) = service.process.as_mut()
        {
            process.kill().await;
        }
    }

    /// Starts again every service and node that is not running; returns their names.
    pub fn revive(&mut self) -> Vec<String> {
        let mut revived = self.cluster.revive();
        for node in &mut self.shops {
            if node.process().is_some_and(Process::has_exited) && node.restart().is_ok() {
                revived.push(format!("shop-{}", node.id));
            }
        }
        for index in 0..self.services.len() {
            let dead = self.services[index].process.as_mut().is_none_or(Process::has_exited);
            if dead {
                match self.spawn(&self.services[index]) {
                    Ok(process) => {
                        revived.push(self.services[index].name.clone());
                        self.services[index].process = Some(process);
                    }
                    Err(error) => tracing::error!(error = format!("{error:#}"), "cannot restart a service"),
                }
            }
        }
        revived
    }

    /// Stops the services (letting brews finish or hand back), then the servers. The services
    /// stop in groups, every process of a group at once: the web shops (no new orders), then
    /// the machines (none still fetches when another hands its order back, so no machine
    /// takes it only to hand it back in turn), then the controllers and the stock managers,
    /// which record and settle what the machines hand back.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let mut clean = true;
        for group in 0..=ServiceKind::LAST_TO_STOP {
            let stopping = self.services.iter_mut().filter(|service| service.kind.stop_group() == group).filter_map(|service| {
                let name = service.name.clone();
                let process = service.process.as_mut()?;
                Some(async move { (name, process.stop(Duration::from_secs(15)).await) })
            });
            for (name, exited_cleanly) in futures::future::join_all(stopping).await {
                if !exited_cleanly {
                    tracing::warn!(service = name, "service did not exit cleanly");
                    clean = false;
                }
            }
        }
        self.services.clear();
        for node in &mut self.shops {
            node.stop().await;
        }
        self.cluster.stop().await;
        anyhow::ensure!(clean, "some services did not exit cleanly; see the logs in {}", self.config.data_dir.join("logs").display());
        Ok(())
    }
}

fn ports_free(ports: &[NodePorts]) -> bool {
    ports
        .iter()
        .all(|node| [node.client, node.route, node.monitor].iter().all(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()))
}

/// The port of `host:port` or `http://host:port/path`.
fn port_of(address: &str) -> Option<u16> {
    let authority = address.split("://").last()?.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_of_reads_addresses_and_urls() {
        assert_eq!(super::port_of("127.0.0.1:8080"), Some(8080));
        assert_eq!(super::port_of("http://127.0.0.1:23456/metrics"), Some(23456));
        assert_eq!(super::port_of("no port"), None);
    }
}
