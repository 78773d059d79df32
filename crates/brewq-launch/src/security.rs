//! `brewq security init`: everything a cluster needs to run secured, written to one folder:
//! the keys that issue credentials, a creds file per role and per machine, route passwords
//! (`keys/`), the web shop's operator login files, one nats-server
//! config per node, TLS material (`tls/`) when asked, and a `cluster.json` that the `brewq`
//! commands read. With shops, the nodes are a chain's hub, and each shop gets its own leaf
//! node config and account (`keys/shops/<n>/`).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cluster::{ClusterInfo, NodePorts};
use crate::config::{NodeSpec, node_config};
use crate::keys::Keys;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SecurityInit {
    pub nodes: usize,
    /// Where everything is written.
    pub out: PathBuf,
    /// One host name or address per node; all on `127.0.0.1` when empty.
    pub hosts: Vec<String>,
    /// Require TLS on client and route connections.
    pub tls: bool,
    /// JetStream store folder on each host.
    pub store_dir: PathBuf,
    /// Monitoring on the node's own address; on 127.0.0.1 when false.
    pub monitor_on_host: bool,
    /// Machines 1 to this number get a credential each (`keys/machines/<n>.creds`); more are
    /// enrolled later with `brewq machines enroll`.
    pub machines: u32,
    /// Shops of a chain: with any, the nodes are the chain's hub (JetStream domain `hub`, a
    /// port for the shops' leaf nodes), and each shop gets a leaf node config (`shop-<n>.conf`)
    /// and its account's credentials (`keys/shops/<n>/`), `machines` machines each.
    pub shops: u32,
    /// One host name or address per shop; all on `127.0.0.1` when empty.
    pub shop_hosts: Vec<String>,
}

/// Writes the folder; returns what clients need (also written as `cluster.json`).
pub fn init(request: &SecurityInit) -> anyhow::Result<ClusterInfo> {
    check(request)?;
    std::fs::create_dir_all(&request.out).with_context(|| format!("creating {}", request.out.display()))?;
    let out = request.out.canonicalize().context("resolving --out")?;
    let keys = Keys::load_or_create(&out.join("keys"))?;
    keys.ensure_operator_files()?;
    let nodes = node_specs(request);
    let shops = shop_specs(request);
    let all: Vec<NodeSpec> = nodes.iter().chain(&shops).cloned().collect();
    let tls_files = if request.tls { Some(crate::tls::ensure(&out.join("tls"), &all)?) } else { None };
    let accounts = accounts(&keys, request)?;
    let trust = crate::trust::Trust::issue(&keys, &accounts.iter().collect::<Vec<_>>())?;
    for index in 0..nodes.len() {
        let config = node_config(&nodes, index, &keys, &trust, tls_files.as_ref().map(|files| &files[index]))?;
        write_private(&out.join(format!("{}.conf", nodes[index].name)), &config)?;
    }
    let shop_tls = tls_files.as_ref().map(|files| &files[nodes.len()..]);
    for (index, (shop, account)) in shops.iter().zip(&accounts[1..]).enumerate() {
        let spec = leaf_spec(&nodes, shop, account, shop_tls.map(|files| files[index].clone()))?;
        write_private(&out.join(format!("{}.conf", shop.name)), &crate::shops::leaf_config(&spec, &trust.only(account)))?;
    }
    let info = cluster_info(request, &out, &keys, &nodes, &shops);
    info.save(&out)?;
    Ok(info)
}

fn check(request: &SecurityInit) -> anyhow::Result<()> {
    anyhow::ensure!(request.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(
        request.hosts.is_empty() || request.hosts.len() == request.nodes,
        "give one --host per node ({} nodes, {} hosts)",
        request.nodes,
        request.hosts.len()
    );
    anyhow::ensure!(
        request.shop_hosts.is_empty() || request.shop_hosts.len() == request.shops as usize,
        "give one --shop-host per shop ({} shops, {} hosts)",
        request.shops,
        request.shop_hosts.len()
    );
    Ok(())
}

/// `COFFEE`, then each shop's account, each with its machines' credentials.
fn accounts(keys: &Keys, request: &SecurityInit) -> anyhow::Result<Vec<crate::keys::AccountKeys>> {
    let mut accounts = vec![keys.coffee.clone()];
    for shop in 1..=request.shops {
        accounts.push(keys.shop(shop)?);
    }
    for account in &accounts {
        for machine in 1..=request.machines {
            account.ensure_machine(machine)?;
        }
    }
    Ok(accounts)
}

/// What the `brewq` commands read: the hub's (or the cluster's) addresses, and each shop's.
fn cluster_info(request: &SecurityInit, out: &Path, keys: &Keys, nodes: &[NodeSpec], shops: &[NodeSpec]) -> ClusterInfo {
    let scheme = if request.tls { "tls" } else { "nats" };
    ClusterInfo {
        nats_urls: nodes.iter().map(|node| format!("{scheme}://{}:{}", node.host, node.ports.client)).collect(),
        http_url: None,
        office_url: None,
        admin_user: keys.admin_user.clone(),
        admin_password: keys.admin_password.clone(),
        tls_ca: request.tls.then(|| crate::tls::ca_path(&out.join("tls"))),
        ports: nodes.iter().map(|node| node.ports).collect(),
        monitor_urls: nodes.iter().map(|node| format!("http://{}:{}", node.monitor_host(), node.ports.monitor)).collect(),
        metrics_urls: Default::default(),
        shops: shops
            .iter()
            .zip(1..)
            .map(|(shop, id)| crate::cluster::ShopInfo {
                id,
                http_url: None,
                office_url: None,
                nats_urls: vec![format!("{scheme}://{}:{}", shop.host, shop.ports.client)],
                monitor_url: format!("http://{}:{}", shop.monitor_host(), shop.ports.monitor),
            })
            .collect(),
    }
}

/// Standard ports on distinct hosts; on a shared host, consecutive ones. With shops, a port
/// for their leaf nodes and the hub's JetStream domain.
fn node_specs(request: &SecurityInit) -> Vec<NodeSpec> {
    (0..request.nodes)
        .map(|index| {
            let host = request.hosts.get(index).cloned().unwrap_or_else(|| "127.0.0.1".into());
            let offset = port_offset(request, &host, index);
            NodeSpec {
                name: crate::cluster::node_name(index),
                monitor_on_host: request.monitor_on_host,
                host,
                ports: NodePorts {
                    client: 4222 + offset,
                    route: 6222 + offset,
                    monitor: 8222 + offset,
                    leaf: if request.shops > 0 { 7422 + offset } else { 0 },
                },
                store_dir: request.store_dir.join(crate::cluster::node_name(index)),
                domain: (request.shops > 0).then(|| crate::cluster::HUB_DOMAIN.to_owned()),
            }
        })
        .collect()
}

/// Each shop's server, as a node of its own (`shop-<n>`): the standard client and monitoring
/// ports on a host of its own, consecutive ones after the hub's on a shared host.
fn shop_specs(request: &SecurityInit) -> Vec<NodeSpec> {
    (1..=request.shops)
        .map(|shop| {
            let host = request.shop_hosts.get(shop as usize - 1).cloned().unwrap_or_else(|| "127.0.0.1".into());
            let offset = port_offset(request, &host, request.nodes + shop as usize - 1);
            NodeSpec {
                name: crate::shops::domain(shop),
                monitor_on_host: request.monitor_on_host,
                host,
                ports: NodePorts { client: 4222 + offset, route: 0, monitor: 8222 + offset, leaf: 0 },
                store_dir: request.store_dir.join(crate::shops::domain(shop)),
                domain: Some(crate::shops::domain(shop)),
            }
        })
        .collect()
}

/// How far the ports of server `index` (the hub's nodes, then the shops) are moved from the
/// standard ones: not at all on a host of its own, by its place on a shared one.
fn port_offset(request: &SecurityInit, host: &str, index: usize) -> u16 {
    let hosts: Vec<&str> = (0..request.nodes)
        .map(|node| request.hosts.get(node).map_or("127.0.0.1", String::as_str))
        .chain((0..request.shops as usize).map(|shop| request.shop_hosts.get(shop).map_or("127.0.0.1", String::as_str)))
        .collect();
    if hosts.iter().filter(|other| **other == host).count() == 1 { 0 } else { index as u16 }
}

/// Shop `shop`'s leaf node, linked to every hub node's leaf port as its account's `leaf` user.
fn leaf_spec(
    nodes: &[NodeSpec],
    shop: &NodeSpec,
    account: &crate::keys::AccountKeys,
    tls: Option<crate::config::TlsFiles>,
) -> anyhow::Result<crate::shops::LeafSpec> {
    Ok(crate::shops::LeafSpec {
        id: shop.name.trim_start_matches("shop-").parse().context("a shop's number")?,
        host: shop.host.clone(),
        monitor_on_host: shop.monitor_on_host,
        ports: shop.ports,
        store_dir: shop.store_dir.clone(),
        link: account.account_user_creds_file("leaf")?,
        account: account.account.public_key(),
        hub_leaf_urls: nodes.iter().map(|node| format!("nats-leaf://{}:{}", node.host, node.ports.leaf)).collect(),
        hub_ca: tls.as_ref().map(|tls| tls.ca.clone()),
        tls,
    })
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).with_context(|| format!("protecting {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init_in(dir: &Path, monitor_on_host: bool) -> (ClusterInfo, String) {
        let request = SecurityInit {
            nodes: 3,
            out: dir.to_owned(),
            hosts: vec!["10.0.0.11".into(), "10.0.0.12".into(), "10.0.0.13".into()],
            tls: false,
            store_dir: "/var/lib/brewq/nats".into(),
            monitor_on_host,
            machines: 2,
            shops: 0,
            shop_hosts: Vec::new(),
        };
        let info = init(&request).expect("init");
        (info, std::fs::read_to_string(dir.join("n1.conf")).expect("n1.conf"))
    }

    /// The servers' monitoring (no authentication) is on loopback unless asked for on the host.
    #[test]
    fn monitoring_stays_on_loopback_unless_asked_for() {
        let dir = std::env::temp_dir().join(format!("brewq-security-init-{}", std::process::id()));
        let (info, config) = init_in(&dir, false);
        assert!(config.contains("http: \"127.0.0.1:8222\""), "{config}");
        assert!(config.contains("listen: \"10.0.0.11:4222\""), "{config}");
        assert_eq!(info.monitor_urls[0], "http://127.0.0.1:8222");
        let (info, config) = init_in(&dir, true);
        assert!(config.contains("http: \"10.0.0.11:8222\""), "{config}");
        assert_eq!(info.monitor_urls[1], "http://10.0.0.12:8222");
        // Clients are authenticated by JWT: the servers trust the operator and resolve accounts.
        assert!(config.contains("operator: \"eyJ") && config.contains("resolver {\n  type: full"), "{config}");
        assert!(!config.contains("users:"), "no user is written in a config: {config}");
        for machine in [1, 2] {
            assert!(dir.join(format!("keys/machines/{machine}.creds")).is_file(), "machine {machine} enrolled");
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// With shops, the nodes are a hub with a leaf port, and each shop's config links its own
    /// server to every hub node as its account, trusting no other shop's account.
    #[test]
    fn a_chain_gets_a_hub_and_a_leaf_node_config_per_shop() {
        let dir = std::env::temp_dir().join(format!("brewq-security-shops-{}", std::process::id()));
        let request = SecurityInit {
            nodes: 3,
            out: dir.clone(),
            hosts: vec!["10.0.0.11".into(), "10.0.0.12".into(), "10.0.0.13".into()],
            tls: true,
            store_dir: "/var/lib/brewq/nats".into(),
            monitor_on_host: false,
            machines: 1,
            shops: 2,
            shop_hosts: vec!["10.0.1.1".into(), "10.0.2.1".into()],
        };
        let info = init(&request).expect("init");
        let hub = std::fs::read_to_string(dir.join("n2.conf")).expect("n2.conf");
        assert!(hub.contains("domain: \"hub\"") && hub.contains("listen: \"10.0.0.12:7422\"\n  no_advertise: true\n  tls {"), "{hub}");
        let shop = std::fs::read_to_string(dir.join("shop-2.conf")).expect("shop-2.conf");
        assert!(shop.contains("domain: \"shop-2\"") && shop.contains("listen: \"10.0.2.1:4222\""), "{shop}");
        assert!(shop.contains("\"nats-leaf://10.0.0.11:7422\", \"nats-leaf://10.0.0.12:7422\""), "{shop}");
        assert!(shop.contains("keys/shops/2/leaf.creds") && shop.contains("tls: { ca_file:"), "{shop}");
        let other = crate::keys::Keys::load_or_create(&dir.join("keys")).expect("keys").shop(1).expect("shop 1");
        assert!(!shop.contains(&other.account.public_key()), "shop 2's server trusts shop 1's account");
        assert!(hub.contains(&other.account.public_key()), "the hub trusts every shop's account");
        assert_eq!(info.shops[1].nats_urls, vec!["tls://10.0.2.1:4222".to_owned()]);
        assert!(dir.join("keys/shops/2/machines/1.creds").is_file() && dir.join("tls/shop-2-cert.pem").is_file());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// SECURITY.md carries the matrix the configs are generated from, word for word.
    #[test]
    fn security_md_shows_the_generated_permission_matrix() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../SECURITY.md");
        let document = std::fs::read_to_string(&path).expect("SECURITY.md");
        let start = document.find("<!-- matrix:start -->\n").expect("start marker") + "<!-- matrix:start -->\n".len();
        let end = document.find("<!-- matrix:end -->").expect("end marker");
        assert_eq!(
            &document[start..end],
            crate::permissions::matrix_markdown(),
            "SECURITY.md is out of date: paste the output of `brewq security matrix` between the markers"
        );
    }
}
