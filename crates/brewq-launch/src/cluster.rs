//! A cluster of real `nats-server` processes on loopback: one config file per node (JetStream
//! on file storage with `sync_interval: always`, authenticated routes, JWT users), started,
//! checked ready, killed or restarted one by one (on their data, or with it removed), and
//! described in `cluster.json` (client, monitoring and metrics addresses, admin credentials).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::{NodeSpec, node_config};
use crate::keys::{AccountKeys, Keys, Role};

/// The JetStream domain of a hub's servers, when shops connect to it.
pub const HUB_DOMAIN: &str = "hub";
use crate::process::Process;

/// What every other `brewq` command needs to reach a running system.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub nats_urls: Vec<String>,
    /// The web shop, once it runs; in a chain (`shops`), the hub's address: the chain's
    /// dashboard, each shop's web shop being under `shops`.
    #[serde(default)]
    pub http_url: Option<String>,
    /// The operator's pages, once they run.
    #[serde(default)]
    pub office_url: Option<String>,
    pub admin_user: String,
    pub admin_password: String,
    /// CA certificate clients must trust, when the cluster requires TLS.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Client, route and monitoring port of each node, reused on the next start.
    pub ports: Vec<NodePorts>,
    /// The monitoring endpoint of each node (`http://host:port`, serving `/healthz`, `/varz`,
    /// `/jsz`), in node order.
    #[serde(default)]
    pub monitor_urls: Vec<String>,
    /// Where each service process serves Prometheus metrics (`http://host:port/metrics`), by
    /// process name (`controller-1`, `maker-3`, ...).
    #[serde(default)]
    pub metrics_urls: BTreeMap<String, String>,
    /// The shops, when the cluster is a hub (`brewq up --shops N`): the URLs above are the
    /// hub's (the chain's), these each shop's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shops: Vec<ShopInfo>,
}

/// Where one shop is reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShopInfo {
    pub id: u32,
    /// Its web shop.
    pub http_url: Option<String>,
    /// Its operator pages.
    pub office_url: Option<String>,
    /// Its leaf node.
    pub nats_urls: Vec<String>,
    /// Its leaf node's monitoring.
    pub monitor_url: String,
}

/// The ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePorts {
    pub client: u16,
    pub route: u16,
    pub monitor: u16,
    /// Where the shops' leaf nodes connect, on a hub; 0 when the cluster has no shops.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leaf: u16,
}

fn is_zero(port: &u16) -> bool {
    *port == 0
}

impl ClusterInfo {
    /// A web shop to send orders to: the system's, or in a chain the first shop's.
    pub fn web_shop_url(&self) -> Option<String> {
        match self.shops.first() {
            Some(shop) => shop.http_url.clone(),
            None => self.http_url.clone(),
        }
    }

    /// Reads `<data-dir>/cluster.json`.
    pub fn load(data_dir: &Path) -> anyhow::Result<ClusterInfo> {
        let path = data_dir.join("cluster.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (is `brewq up` running with this --data-dir?)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes `<data-dir>/cluster.json` (mode 0600: it holds the admin password). The file
    /// appears whole or not at all: readers polling for it never see it half written.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = data_dir.join("cluster.json");
        let partial = data_dir.join(".cluster.json.partial");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("writing {}", partial.display()))?;
        // Plain data always serializes.
        file.write_all(&serde_json::to_vec_pretty(self).expect("cluster info serializes"))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))
    }
}

/// Ports for `nodes` nodes: the ones asked for where given, free ones otherwise; with a port
/// for leaf nodes when `leaf`.
pub fn pick_ports(nodes: usize, wanted: Option<&[NodePorts]>, leaf: bool) -> anyhow::Result<Vec<NodePorts>> {
    (0..nodes)
        .map(|index| {
            let mut ports = match wanted.and_then(|wanted| wanted.get(index)) {
                Some(ports) => *ports,
                None => NodePorts::free()?,
            };
            if leaf && ports.leaf == 0 {
                ports.leaf = free_port()?;
            }
            Ok(ports)
        })
        .collect()
}

impl NodePorts {
    /// Free client, route and monitoring ports.
    pub fn free() -> anyhow::Result<NodePorts> {
        Ok(NodePorts { client: free_port()?, route: free_port()?, monitor: free_port()?, leaf: 0 })
    }
}

/// A port for a nats-server that nobody listens on right now. Ports are drawn below the
/// kernel's ephemeral range (32768 and up), so that outgoing connections, which take ports
/// from that range, cannot take one between now and the moment a server binds it.
pub fn free_port() -> anyhow::Result<u16> {
    free_port_in(20_000..27_000)
}

/// A port for a brewq service (metrics, web shop) that nobody listens on right now. Drawn
/// apart from the servers' ports: a service binds its port only once its process runs, and
/// meanwhile another system's free-port check would find a server's port free too.
pub fn free_service_port() -> anyhow::Result<u16> {
    free_port_in(27_000..32_000)
}

fn free_port_in(range: std::ops::Range<u16>) -> anyhow::Result<u16> {
    use rand::Rng;
    for _ in 0..1000 {
        let port = rand::rng().random_range(range.clone());
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port found between {} and {}", range.start, range.end)
}

/// Where one node runs: an address of this machine and, for tests that cut a node off the
/// network, the network namespace it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHost {
    pub address: String,
    pub netns: Option<String>,
}

impl Default for NodeHost {
    fn default() -> Self {
        NodeHost { address: "127.0.0.1".into(), netns: None }
    }
}

/// The running servers of one cluster.
pub struct NatsCluster {
    bin: PathBuf,
    dir: PathBuf,
    /// The node processes; `None` while a node is down.
    nodes: Vec<Option<Process>>,
    pub ports: Vec<NodePorts>,
    pub hosts: Vec<NodeHost>,
    /// The CA clients trust, when TLS is on.
    pub tls_ca: Option<PathBuf>,
}

impl NatsCluster {
    /// Writes the node configs under `dir` (with TLS material in `dir/tls` when `tls`) and
    /// starts every node. The servers trust `accounts` (and the system account); a cluster
    /// whose ports have a leaf port is a hub, with the JetStream domain `hub`.
    pub fn start(
        bin: &Path,
        dir: &Path,
        keys: &Keys,
        accounts: &[&AccountKeys],
        ports: Vec<NodePorts>,
        hosts: Vec<NodeHost>,
        tls: bool,
    ) -> anyhow::Result<NatsCluster> {
        anyhow::ensure!(hosts.len() == ports.len(), "one host per node");
        std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
        let nodes: Vec<NodeSpec> = ports
            .iter()
            .enumerate()
            .map(|(index, ports)| NodeSpec {
                name: node_name(index),
                monitor_on_host: true,
                host: hosts[index].address.clone(),
                ports: *ports,
                store_dir: store_dir(dir, index),
                domain: (ports.leaf != 0).then(|| HUB_DOMAIN.to_owned()),
            })
            .collect();
        let tls_files = if tls { Some(crate::tls::ensure(&dir.join("tls"), &nodes)?) } else { None };
        let trust = crate::trust::Trust::issue(keys, accounts)?;
        for index in 0..nodes.len() {
            let files = tls_files.as_ref().map(|files| &files[index]);
            let config = node_config(&nodes, index, keys, &trust, files)?;
            std::fs::write(config_path(dir, index), config).context("writing a nats-server config")?;
        }
        let tls_ca = tls.then(|| crate::tls::ca_path(&dir.join("tls")));
        let mut cluster = NatsCluster { bin: bin.to_owned(), dir: dir.to_owned(), nodes: Vec::new(), ports, hosts, tls_ca };
        for index in 0..cluster.ports.len() {
            let process = cluster.spawn(index)?;
            cluster.nodes.push(Some(process));
        }
        Ok(cluster)
    }

    /// Client URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        let scheme = if self.tls_ca.is_some() { "tls" } else { "nats" };
        self.ports.iter().zip(&self.hosts).map(|(ports, host)| format!("{scheme}://{}:{}", host.address, ports.client)).collect()
    }

    /// Monitoring URLs of every node.
    pub fn monitor_urls(&self) -> Vec<String> {
        self.ports.iter().zip(&self.hosts).map(|(ports, host)| format!("http://{}:{}", host.address, ports.monitor)).collect()
    }

    /// How many nodes the cluster has, up or down.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// True for a cluster of no nodes.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// The process of node `index`, while it runs.
    pub fn node(&mut self, index: usize) -> Option<&mut Process> {
        self.nodes.get_mut(index).and_then(Option::as_mut)
    }

    /// Kills node `index` with SIGKILL, as a crash would.
    pub async fn kill(&mut self, index: usize) {
        if let Some(mut process) = self.nodes[index].take() {
            process.kill().await;
        }
    }

    /// Starts node `index` again with its config and data.
    pub fn restart(&mut self, index: usize) -> anyhow::Result<()> {
        if self.nodes[index].is_none() {
            self.nodes[index] = Some(self.spawn(index)?);
        }
        Ok(())
    }

    /// Kills node `index`, removes its JetStream data and starts it again with its config, as
    /// a server whose disk was replaced: it must catch up from its peers.
    pub async fn replace_disk(&mut self, index: usize) -> anyhow::Result<()> {
        self.kill(index).await;
        let store = store_dir(&self.dir, index);
        if store.exists() {
            std::fs::remove_dir_all(&store).with_context(|| format!("removing {}", store.display()))?;
        }
        self.restart(index)
    }

    /// Stops every node gracefully.
    pub async fn stop(&mut self) {
        for process in self.nodes.iter_mut().flatten() {
            process.stop(Duration::from_secs(10)).await;
        }
        self.nodes.clear();
    }

    /// Restarts nodes that died by themselves; returns their names.
    pub fn revive(&mut self) -> Vec<String> {
        let mut revived = Vec::new();
        for index in 0..self.nodes.len() {
            let dead = self.nodes[index].as_mut().is_some_and(Process::has_exited);
            if dead {
                self.nodes[index] = None;
                if self.restart(index).is_ok() {
                    revived.push(node_name(index));
                }
            }
        }
        revived
    }

    fn spawn(&self, index: usize) -> anyhow::Result<Process> {
        let config = config_path(&self.dir, index).display().to_string();
        // Three Go servers on a small machine do better with one OS thread each.
        let envs = vec![("GOMAXPROCS".to_owned(), "1".to_owned())];
        let log = self.dir.join("logs").join(format!("{}.log", node_name(index)));
        match &self.hosts[index].netns {
            None => Process::spawn(&node_name(index), &self.bin, &["-c".to_owned(), config], &envs, &log),
            Some(netns) => {
                // `ip netns exec` replaces itself with the server: the process is the server.
                let args = ["netns".into(), "exec".into(), netns.clone(), self.bin.display().to_string(), "-c".into(), config];
                Process::spawn(&node_name(index), Path::new("ip"), &args, &envs, &log)
            }
        }
    }

    /// Waits until every running node accepts connections and JetStream answers; fails at
    /// once if a node exits (a port already in use, a bad config).
    pub async fn wait_ready(&mut self, keys: &Keys, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for index in 0..self.ports.len() {
            let port = self.ports[index].client;
            let address = self.hosts[index].address.clone();
            let Some(process) = self.nodes.get_mut(index).and_then(Option::as_mut) else { continue };
            while tokio::net::TcpStream::connect((address.as_str(), port)).await.is_err() {
                anyhow::ensure!(!process.has_exited(), "nats-server {} exited; see {}", process.name, process.log.display());
                anyhow::ensure!(Instant::now() < deadline, "nothing listens on port {port}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let admin = brewq_runtime::NatsConfig {
            urls: self.urls(),
            credentials: brewq_runtime::Credentials::from_creds(keys.creds(Role::Admin)?)?,
            role: Role::Admin.as_str().into(),
            name: "readiness".into(),
            tls_ca: self.tls_ca.clone(),
        };
        let client = brewq_runtime::connect::options(&admin)?.connect(self.urls()).await.context("connecting to the new cluster")?;
        // Short tries: a request sent before the servers have elected a meta leader gets no
        // answer at all, and waiting out a long timeout for it cost seconds of every start.
        let mut jetstream = async_nats::jetstream::new(client);
        jetstream.set_timeout(Duration::from_millis(500));
        loop {
            match jetstream.query_account().await {
                // A server whose route or monitoring port was taken exits after it opened its
                // client port: JetStream may answer from the others while it is gone.
                Ok(_) => return self.all_running(),
                Err(error) if Instant::now() < deadline => tracing::debug!(%error, "JetStream not ready yet"),
                Err(error) => return Err(error).context("JetStream did not become ready"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl NatsCluster {
    /// An error naming the first node that has exited, if any.
    fn all_running(&mut self) -> anyhow::Result<()> {
        for process in self.nodes.iter_mut().flatten() {
            anyhow::ensure!(!process.has_exited(), "nats-server {} exited; see {}", process.name, process.log.display());
        }
        Ok(())
    }
}

/// The server name brewq gives the node at `index` (0-based) of a cluster, here and in the
/// configs of `brewq security init`: `n1`, `n2`, ...
pub fn node_name(index: usize) -> String {
    format!("n{}", index + 1)
}

/// Where the node at `index` keeps its JetStream data, under the cluster's folder `dir`.
fn store_dir(dir: &Path, index: usize) -> PathBuf {
    dir.join("jetstream").join(node_name(index))
}

fn config_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("{}.conf", node_name(index)))
}
