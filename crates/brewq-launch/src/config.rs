//! The nats-server config of each node: JetStream on file storage with `sync_interval: always`,
//! routes authenticated with a password per node (bcrypt-hashed on the accepting side), and
//! clients authenticated by JWT (decentralized authentication): the servers trust brewq's
//! operator, and keep the accounts' JWTs in a resolver of their own, preloaded from the config
//! and updated while they run. Optionally TLS on client and route connections.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;

use crate::cluster::NodePorts;
use crate::keys::Keys;
use crate::trust::Trust;

/// bcrypt cost of the hashed passwords: nats-server checks one per connection, not per message.
const BCRYPT_COST: u32 = 10;

/// One node of the cluster.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// `n1`, `n2`, ...
    pub name: String,
    /// Where the other nodes and the clients reach it.
    pub host: String,
    /// Whether monitoring listens on `host` too; on 127.0.0.1 only when false.
    pub monitor_on_host: bool,
    pub ports: NodePorts,
    /// Its JetStream store; the accounts' JWTs are kept beside it, in `jwt/`.
    pub store_dir: PathBuf,
    /// Its JetStream domain: `hub` on a hub that shops connect to, none otherwise.
    pub domain: Option<String>,
}

/// Certificate files for TLS, as paths the server will read.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The config of `nodes[index]`.
pub fn node_config(nodes: &[NodeSpec], index: usize, keys: &Keys, trust: &Trust, tls: Option<&TlsFiles>) -> anyhow::Result<String> {
    let node = &nodes[index];
    let listen = listen_host(&node.host);
    let monitor_listen = if node.monitor_on_host { listen } else { "127.0.0.1" };
    // Clients are pinged every 2 s, 2 unanswered allowed: a client cut off the network, or
    // a server paused, is noticed within about 6 s, not the default 4 minutes. Routes are
    // pinged every second, one unanswered allowed (`cluster_block`): until a peer drops its
    // routes to a server that stopped answering, it hands that server a share of the
    // requests for a queue group with members there (a request from a client goes to any
    // member, local or not), and what it hands over is lost with it.
    let domain = node.domain.as_ref().map(|domain| format!("  domain: \"{domain}\"\n")).unwrap_or_default();
    let mut config = format!(
        "server_name: \"{name}\"\nlisten: \"{listen}:{client}\"\nhttp: \"{monitor_listen}:{monitor}\"\n\
         ping_interval: \"2s\"\nping_max: 2\n\
         jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n{domain}}}\n",
        name = node.name,
        client = node.ports.client,
        monitor = node.ports.monitor,
        store = node.store_dir.display(),
    );
    if node.ports.leaf != 0 {
        // The shops' leaf nodes connect here, each as a user of its shop's account; over
        // TLS when clients use it. No address of the hub's is advertised to them: a shop links
        // to the addresses its config lists, and no other (the hub's own may be private ones).
        let tls = tls.map(|tls| format!("  tls {{\n{}\n  }}\n", indented(&tls_block(tls, false)))).unwrap_or_default();
        config.push_str(&format!("leafnodes {{\n  listen: \"{listen}:{}\"\n  no_advertise: true\n{tls}}}\n", node.ports.leaf));
    }
    if let Some(tls) = tls {
        config.push_str(&format!("tls {{\n{}\n}}\n", tls_block(tls, false)));
    }
    if nodes.len() > 1 {
        config.push_str(&cluster_block(nodes, index, keys, tls)?);
    }
    config.push_str(&trust_block(trust, &node.store_dir));
    Ok(config)
}

impl NodeSpec {
    /// Where its monitoring is reached.
    pub fn monitor_host(&self) -> &str {
        if self.monitor_on_host { &self.host } else { "127.0.0.1" }
    }
}

/// Binds to the node's own address when it is one, else to every interface.
pub(crate) fn listen_host(host: &str) -> &str {
    if host.parse::<IpAddr>().is_ok() { host } else { "0.0.0.0" }
}

pub(crate) fn tls_block(tls: &TlsFiles, verify: bool) -> String {
    format!(
        "  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: {verify}\n  timeout: 5",
        tls.cert.display(),
        tls.key.display(),
        tls.ca.display()
    )
}

fn cluster_block(nodes: &[NodeSpec], index: usize, keys: &Keys, tls: Option<&TlsFiles>) -> anyhow::Result<String> {
    let node = &nodes[index];
    let own_password = keys.route_password(&node.name)?;
    let hash = bcrypt::hash(own_password, BCRYPT_COST).context("hashing the route password")?;
    let mut routes = Vec::new();
    for peer in nodes.iter().filter(|peer| peer.name != node.name) {
        let password = keys.route_password(&peer.name)?;
        routes.push(format!("    \"nats-route://route:{password}@{}:{}\"", peer.host, peer.ports.route));
    }
    let tls = tls.map(|tls| format!("  tls {{\n{}\n  }}\n", indented(&tls_block(tls, true)))).unwrap_or_default();
    Ok(format!(
        "cluster {{\n  name: \"brewq\"\n  listen: \"{listen}:{route}\"\n  ping_interval: \"1s\"\n  ping_max: 1\n  \
         authorization {{ user: \"route\", password: \"{hash}\", timeout: 2 }}\n{tls}  routes: [\n{routes}\n  ]\n}}\n",
        listen = listen_host(&node.host),
        route = node.ports.route,
        routes = routes.join("\n"),
    ))
}

/// A block's lines indented one level more.
fn indented(block: &str) -> String {
    block.replace("\n  ", "\n    ").replacen("  ", "    ", 1)
}

/// The operator to trust, the system account, and the resolver: the full one, which stores
/// account JWTs in `<store>/jwt`, takes newer ones pushed on `$SYS.REQ.CLAIMS.UPDATE` (a
/// revocation) and compares its store with its peers' every 30 s, so that a server that was
/// down when a machine was revoked learns it from them. The accounts are preloaded; a server
/// keeps the newer of a preloaded JWT and one it stored.
pub(crate) fn trust_block(trust: &Trust, store_dir: &std::path::Path) -> String {
    let preload: Vec<String> = trust.accounts.iter().map(|(account, jwt)| format!("  {account}: \"{jwt}\"")).collect();
    format!(
        "operator: \"{operator}\"\nsystem_account: \"{system}\"\n\
         resolver {{\n  type: full\n  dir: \"{dir}\"\n  allow_delete: false\n  interval: \"30s\"\n  timeout: \"1.9s\"\n}}\n\
         resolver_preload {{\n{preload}\n}}\n",
        operator = trust.operator_jwt,
        system = trust.system_account,
        dir = store_dir.join("jwt").display(),
        preload = preload.join("\n"),
    )
}
