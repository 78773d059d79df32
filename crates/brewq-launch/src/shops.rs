//! Shops at the edge: each shop is a NATS leaf node with a JetStream domain of its own
//! (`shop-<n>`), linked to the hub as a user of its shop's account (`SHOP-<n>`). Everything a
//! shop needs to serve a customer (its work queue, stock, order records, machines) lives in its
//! domain on its own server, so a shop keeps brewing while its link to the hub is down; and
//! each shop is an account of its own, so no shop's credentials reach another shop's subjects.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cluster::NodePorts;
use crate::keys::{AccountKeys, Keys, Role};
use crate::process::Process;

/// Shop `id`'s certificate for its clients, signed by the CA of `ca` (beside it, made once,
/// as the hub's nodes' are), for `127.0.0.1` and `localhost`.
fn shop_certificate(ca: &Path, id: u32, ports: NodePorts, dir: &Path) -> anyhow::Result<crate::config::TlsFiles> {
    let tls_dir = ca.parent().context("the CA's folder")?;
    let node = crate::config::NodeSpec {
        name: domain(id),
        host: "127.0.0.1".into(),
        monitor_on_host: false,
        ports,
        store_dir: dir.join("jetstream"),
        domain: Some(domain(id)),
    };
    crate::tls::ensure(tls_dir, std::slice::from_ref(&node))?.pop().context("a certificate for the shop")
}

/// The JetStream domain of shop `shop`.
pub fn domain(shop: u32) -> String {
    format!("shop-{shop}")
}

/// One shop's leaf node.
pub struct ShopNode {
    pub id: u32,
    pub keys: AccountKeys,
    bin: PathBuf,
    dir: PathBuf,
    /// Its client and monitoring ports (no route: it is a cluster of one).
    pub ports: NodePorts,
    /// The CA its clients trust, when they must use TLS.
    pub tls_ca: Option<PathBuf>,
    process: Option<Process>,
    /// Where its web shop and its operator pages listen (`host:port`).
    pub web_listen: Option<String>,
    pub office_listen: Option<String>,
}

impl ShopNode {
    /// Writes shop `id`'s config under `<data_dir>/shops/<id>` and starts its server, linked to
    /// the hub's leaf ports (`hub.0`), over TLS when the hub's CA (`hub.1`) is given; then its
    /// own clients must use TLS too, with a certificate from the same CA (made beside it).
    pub fn start(
        bin: &Path,
        data_dir: &Path,
        keys: &Keys,
        id: u32,
        ports: NodePorts,
        hub: (&[String], Option<&Path>),
    ) -> anyhow::Result<ShopNode> {
        let shop_keys = keys.shop(id)?;
        let dir = data_dir.join("shops").join(id.to_string());
        std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
        let trust = crate::trust::Trust::issue(keys, &[&shop_keys])?;
        let tls = match hub.1 {
            Some(ca) => Some(shop_certificate(ca, id, ports, &dir)?),
            None => None,
        };
        let spec = LeafSpec {
            id,
            host: "127.0.0.1".into(),
            monitor_on_host: false,
            ports,
            store_dir: dir.join("jetstream"),
            link: shop_keys.account_user_creds_file("leaf")?,
            account: shop_keys.account.public_key(),
            hub_leaf_urls: hub.0.to_vec(),
            hub_ca: hub.1.map(Path::to_owned),
            tls,
        };
        std::fs::write(dir.join("shop.conf"), leaf_config(&spec, &trust)).context("writing a shop's nats-server config")?;
        let tls_ca = hub.1.map(Path::to_owned);
        let mut node =
            ShopNode { id, keys: shop_keys, bin: bin.to_owned(), dir, ports, tls_ca, process: None, web_listen: None, office_listen: None };
        node.restart()?;
        Ok(node)
    }

    /// The shop's client URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.ports.client)
    }

    /// The shop's monitoring URL.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.monitor)
    }

    /// The shop's server process, while it runs.
    pub fn process(&mut self) -> Option<&mut Process> {
        self.process.as_mut()
    }

    /// Starts the server again if it is not running.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.process.as_mut().is_none_or(Process::has_exited) {
            let config = self.dir.join("shop.conf").display().to_string();
            let log = self.dir.join("logs").join("nats.log");
            let envs = vec![("GOMAXPROCS".to_owned(), "1".to_owned())];
            self.process = Some(Process::spawn(&format!("shop-{}", self.id), &self.bin, &["-c".into(), config], &envs, &log)?);
        }
        Ok(())
    }

    /// Waits until the shop's server answers JetStream requests in its own domain.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let config = brewq_runtime::NatsConfig {
            urls: vec![self.url()],
            credentials: brewq_runtime::Credentials::from_creds(crate::keys::read_creds_file(&self.keys.creds_file(Role::Admin))?)?,
            role: Role::Admin.as_str().into(),
            name: format!("shop-{}-readiness", self.id),
            tls_ca: self.tls_ca.clone(),
        };
        loop {
            let process = self.process.as_mut().context("the shop's server is not running")?;
            anyhow::ensure!(!process.has_exited(), "the server of shop {} exited; see {}", self.id, process.log.display());
            if let Ok(client) =
                brewq_runtime::connect::options(&config)?.connection_timeout(Duration::from_millis(500)).connect(&config.urls[..]).await
            {
                let mut jetstream = async_nats::jetstream::new(client);
                jetstream.set_timeout(Duration::from_millis(500));
                if jetstream.query_account().await.is_ok() {
                    return Ok(());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "shop {}'s server was not ready after {timeout:?}", self.id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server gracefully.
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop(Duration::from_secs(10)).await;
        }
    }
}

/// What a shop's leaf node config says.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub id: u32,
    /// Where its clients reach it: an address (it listens there only) or a host name (every
    /// interface).
    pub host: String,
    /// Whether monitoring listens on `host` too; on 127.0.0.1 only when false.
    pub monitor_on_host: bool,
    /// Client and monitoring ports (no route: a shop is a cluster of one).
    pub ports: NodePorts,
    /// Its JetStream store; the accounts' JWTs are kept beside it, in `jwt/`.
    pub store_dir: PathBuf,
    /// The creds file of its link to the hub: a user of the shop's account.
    pub link: PathBuf,
    /// The shop's account's public key.
    pub account: String,
    /// The hub servers' leaf ports (`nats-leaf://host:port`).
    pub hub_leaf_urls: Vec<String>,
    /// The CA that signed the hub's certificates: the link runs over TLS when given.
    pub hub_ca: Option<PathBuf>,
    /// Its own certificate, when its clients must use TLS.
    pub tls: Option<crate::config::TlsFiles>,
}

/// The config of a shop's leaf node: its own JetStream domain, every write on disk before it
/// is acknowledged, a link to every hub server as the shop account's `leaf` user, and the same
/// trust as the hub (the operator) for its own clients.
pub fn leaf_config(spec: &LeafSpec, trust: &crate::trust::Trust) -> String {
    let urls: Vec<String> = spec.hub_leaf_urls.iter().map(|url| format!("\"{url}\"")).collect();
    let listen = crate::config::listen_host(&spec.host);
    let monitor_listen = if spec.monitor_on_host { listen } else { "127.0.0.1" };
    let link_tls = spec.hub_ca.as_ref().map(|ca| format!(", tls: {{ ca_file: \"{}\" }}", ca.display())).unwrap_or_default();
    let client_tls = spec.tls.as_ref().map(|tls| format!("tls {{\n{}\n}}\n", crate::config::tls_block(tls, false))).unwrap_or_default();
    format!(
        "server_name: \"shop-{id}\"\nlisten: \"{listen}:{client}\"\nhttp: \"{monitor_listen}:{monitor}\"\n\
         ping_interval: \"2s\"\nping_max: 2\n\
         jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n  domain: \"{domain}\"\n}}\n\
         leafnodes {{\n  reconnect: \"1s\"\n  remotes: [\n    {{ urls: [{urls}], credentials: \"{link}\", account: \"{account}\"{link_tls} }}\n  ]\n}}\n\
         {client_tls}{trust}",
        id = spec.id,
        client = spec.ports.client,
        monitor = spec.ports.monitor,
        store = spec.store_dir.display(),
        domain = domain(spec.id),
        urls = urls.join(", "),
        link = spec.link.display(),
        account = spec.account,
        trust = crate::config::trust_block(trust, &spec.store_dir),
    )
}

impl crate::System {
    /// Starts each shop's leaf node, provisions its domain (one replica: a shop is one server)
    /// and starts its services; the web shop of shop 1 on the system's address, the others on
    /// free ports, each listed in `cluster.json`.
    pub(crate) async fn start_shops(&mut self) -> anyhow::Result<()> {
        let hub: Vec<String> = self
            .cluster
            .ports
            .iter()
            .zip(&self.cluster.hosts)
            .map(|(ports, host)| format!("nats-leaf://{}:{}", host.address, ports.leaf))
            .collect();
        let listen = |given: &Option<String>, shop: u32| -> anyhow::Result<Option<String>> {
            Ok(match (given, shop) {
                (Some(listen), 1) => Some(listen.clone()),
                (Some(_), _) => Some(format!("127.0.0.1:{}", crate::cluster::free_service_port()?)),
                (None, _) => None,
            })
        };
        for shop in 1..=self.config.shops {
            let ports = crate::cluster::NodePorts::free()?;
            let link = self.config.shop_links.get(&shop).unwrap_or(&hub);
            let hub_ca = self.cluster.tls_ca.as_deref();
            let mut node = ShopNode::start(&self.config.nats_server_bin, &self.config.data_dir, &self.keys, shop, ports, (link, hub_ca))?;
            node.wait_ready(Duration::from_secs(60)).await?;
            let on_hub = brewq_runtime::NatsConfig {
                urls: self.cluster.urls(),
                tls_ca: self.cluster.tls_ca.clone(),
                ..shop_config(&node, Role::Provisioner)?
            };
            let hub_provisioner = brewq_runtime::connect(&on_hub).await?;
            let provisioner = brewq_runtime::connect(&shop_config(&node, Role::Provisioner)?).await?;
            let topology = crate::Topology { replicas: 1, ..self.config.topology.clone() };
            crate::chain::provision_shop(&hub_provisioner, &provisioner, shop, self.config.topology.replicas, &topology).await?;
            provisioner.drain().await.context("closing the provisioner connection")?;
            hub_provisioner.drain().await.context("closing the provisioner connection")?;
            node.web_listen = listen(&self.config.web_listen, shop)?;
            // The system's address for the operator's pages is the chain's dashboard, on the hub.
            node.office_listen = listen(&self.config.office_listen, shop + 1)?;
            self.shops.push(node);
        }
        let started = brewq_protocol::now();
        for shop in 1..=self.config.shops {
            use crate::ServiceKind::*;
            let mut kinds = vec![Stock, Controller];
            kinds.extend((1..=self.config.machines).map(Maker));
            kinds.extend(self.config.web_listen.as_ref().map(|_| Web));
            kinds.extend(self.config.office_listen.as_ref().map(|_| Office));
            for kind in kinds {
                self.add_service_to(Some(shop), kind)?;
            }
        }
        for node in &self.shops {
            let admin = brewq_runtime::connect(&shop_config(node, Role::Admin)?).await?;
            let config = crate::SystemConfig {
                controllers: 1,
                stock_managers: 1,
                web_listen: node.web_listen.clone(),
                office_listen: node.office_listen.clone(),
                ..self.config.clone()
            };
            let machines: Vec<u32> = (1..=self.config.machines).collect();
            crate::readiness::wait(&admin, &config, &machines, started, Duration::from_secs(60))
                .await
                .map_err(|waiting| anyhow::anyhow!("shop {} not ready after 60 s: {waiting}", node.id))?;
        }
        // The hub's own account keeps the chain operator's sessions and audit trail; the chain's
        // dashboard follows every shop from there.
        if self.config.office_listen.is_some() {
            let provisioner = brewq_runtime::connect(&self.nats_config(Role::Provisioner, "provisioner")?).await?;
            crate::provision::provision(&provisioner, &self.config.topology).await?;
            provisioner.drain().await.context("closing the provisioner connection")?;
            self.add_service_to(None, crate::ServiceKind::Office)?;
            let admin = brewq_runtime::connect(&self.nats_config(Role::Admin, "readiness")?).await?;
            let hub = crate::SystemConfig { controllers: 0, stock_managers: 0, web_listen: None, ..self.config.clone() };
            crate::readiness::wait(&admin, &hub, &[], started, Duration::from_secs(60))
                .await
                .map_err(|waiting| anyhow::anyhow!("the chain's dashboard not ready after 60 s: {waiting}"))?;
        }
        self.info.shops = self
            .shops
            .iter()
            .map(|node| crate::cluster::ShopInfo {
                id: node.id,
                http_url: node.web_listen.as_ref().map(|listen| format!("http://{listen}")),
                office_url: node.office_listen.as_ref().map(|listen| format!("http://{listen}")),
                nats_urls: vec![node.url()],
                monitor_url: node.monitor_url(),
            })
            .collect();
        // The system's own address is the hub's: the chain's dashboard; each shop's web shop is
        // under `shops`.
        self.info.http_url = self.info.office_url.clone();
        Ok(())
    }

    /// How a client of `role` (not a machine) connects to shop `shop`.
    pub fn shop_config(&self, shop: u32, role: Role) -> anyhow::Result<brewq_runtime::NatsConfig> {
        shop_config(self.shops.iter().find(|node| node.id == shop).context("no such shop")?, role)
    }
}

/// How a client of `role` connects to `node`'s shop.
fn shop_config(node: &ShopNode, role: Role) -> anyhow::Result<brewq_runtime::NatsConfig> {
    Ok(brewq_runtime::NatsConfig {
        urls: vec![node.url()],
        credentials: brewq_runtime::Credentials::from_creds(crate::keys::read_creds_file(&node.keys.creds_file(role))?)?,
        role: role.as_str().into(),
        name: format!("shop{}-{}", node.id, role.as_str()),
        tls_ca: node.tls_ca.clone(),
    })
}
