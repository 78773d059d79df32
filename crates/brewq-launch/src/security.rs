//! `brewq security init`: everything a cluster needs to run secured, written to one folder:
//! the keys that issue credentials, a creds file per role and per machine, route passwords
//! (`keys/`), the web shop's operator login files, one nats-server
//! config per node, TLS material (`tls/`) when asked, and a `cluster.json` that the `brewq`
//! commands read.

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
}

/// Writes the folder; returns what clients need (also written as `cluster.json`).
pub fn init(request: &SecurityInit) -> anyhow::Result<ClusterInfo> {
    anyhow::ensure!(request.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!(
        request.hosts.is_empty() || request.hosts.len() == request.nodes,
        "give one --host per node ({} nodes, {} hosts)",
        request.nodes,
        request.hosts.len()
    );
    std::fs::create_dir_all(&request.out).with_context(|| format!("creating {}", request.out.display()))?;
    let out = request.out.canonicalize().context("resolving --out")?;
    let keys = Keys::load_or_create(&out.join("keys"))?;
    keys.ensure_operator_files()?;
    let nodes = node_specs(request);
    let tls_files = if request.tls { Some(crate::tls::ensure(&out.join("tls"), &nodes)?) } else { None };
    for machine in 1..=request.machines {
        keys.ensure_machine(machine)?;
    }
    let trust = crate::trust::Trust::issue(&keys, &[&keys.coffee])?;
    for index in 0..nodes.len() {
        let config = node_config(&nodes, index, &keys, &trust, tls_files.as_ref().map(|files| &files[index]))?;
        let path = out.join(format!("{}.conf", nodes[index].name));
        write_private(&path, &config)?;
    }
    let scheme = if request.tls { "tls" } else { "nats" };
    let info = ClusterInfo {
        nats_urls: nodes.iter().map(|node| format!("{scheme}://{}:{}", node.host, node.ports.client)).collect(),
        http_url: None,
        office_url: None,
        admin_user: keys.admin_user.clone(),
        admin_password: keys.admin_password.clone(),
        tls_ca: request.tls.then(|| crate::tls::ca_path(&out.join("tls"))),
        ports: nodes.iter().map(|node| node.ports).collect(),
        monitor_urls: nodes.iter().map(|node| format!("http://{}:{}", node.monitor_host(), node.ports.monitor)).collect(),
        metrics_urls: Default::default(),
        shops: Vec::new(),
    };
    info.save(&out)?;
    Ok(info)
}

/// Standard ports on distinct hosts; on a shared host, consecutive ones.
fn node_specs(request: &SecurityInit) -> Vec<NodeSpec> {
    (0..request.nodes)
        .map(|index| {
            let host = request.hosts.get(index).cloned().unwrap_or_else(|| "127.0.0.1".into());
            let shared = request.hosts.iter().filter(|other| **other == host).count() != 1;
            let offset = if shared { index as u16 } else { 0 };
            NodeSpec {
                name: crate::cluster::node_name(index),
                monitor_on_host: request.monitor_on_host,
                host,
                ports: NodePorts { client: 4222 + offset, route: 6222 + offset, monitor: 8222 + offset, leaf: 0 },
                store_dir: request.store_dir.join(crate::cluster::node_name(index)),
                domain: None,
            }
        })
        .collect()
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
