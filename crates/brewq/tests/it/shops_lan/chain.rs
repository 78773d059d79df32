//! The chain of `shops_lan.rs` and `shops_chaos.rs`, deployed by hand: the hub's three servers
//! in one network namespace, each shop's server and services in one of its own, all from the
//! files `brewq security init --shops 2 --tls` wrote; the processes, the cut of a shop's link
//! (a blackhole route on each side), and the clients and commands the tests use.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use brewq_launch::ClusterInfo;
use brewq_launch::process::Process;
use brewq_protocol::OrderReply;
use serde_json::{Value, json};

use super::leaf_links;
use crate::harness::{brewq_bin, eventually, nats_server_bin, order_json};
use crate::lan::{Lan, ip};

/// The hub's namespace; shop `n` is in namespace `n`.
const HUB: usize = 0;

/// Each shop's web shop and operator pages, on the shop's address.
const WEB_PORT: u16 = 8080;
const OFFICE_PORT: u16 = 8081;

/// The hub and two shops with their processes. Fields drop in order: the processes go before
/// the network they run in.
pub(crate) struct Chain {
    processes: Vec<Process>,
    pub(crate) lan: Lan,
    /// `etc/` (the `security init` output), `var/` (server stores), `logs/`.
    dir: PathBuf,
    temp: Option<tempfile::TempDir>,
    pub(crate) http: reqwest::Client,
}

impl Chain {
    /// The network (the hub and two shops) and a folder, or `None` (having said why, for the
    /// test `test`) where namespaces cannot be made.
    pub(crate) fn create(test: &str) -> Option<Chain> {
        let lan = match Lan::create(3) {
            Ok(lan) => lan,
            Err(why) if std::env::var_os("BREWQ_REQUIRE_NETNS").is_none() => {
                // Straight to stderr: the harness keeps `eprintln!` of a passing test to itself.
                let _ = writeln!(std::io::stderr(), "SKIPPED {test}: cannot make network namespaces ({why})");
                return None;
            }
            Err(why) => panic!("BREWQ_REQUIRE_NETNS is set and network namespaces cannot be made: {why}"),
        };
        let temp = tempfile::Builder::new().prefix("brewq-shops-lan-").tempdir().expect("temp dir");
        let dir = temp.path().to_owned();
        std::fs::create_dir_all(dir.join("logs")).expect("logs folder");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("http client");
        Some(Chain { processes: Vec::new(), lan, dir, temp: Some(temp), http })
    }

    pub(crate) fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }

    pub(crate) fn info(&self) -> ClusterInfo {
        ClusterInfo::load(&self.etc()).expect("cluster.json")
    }

    /// `brewq security init` for a hub of three servers on the hub's address and two shops, as
    /// DEPLOY.md runs it.
    pub(crate) fn security_init(&self) {
        let mut command = std::process::Command::new(brewq_bin());
        command.args(["security", "init", "--nodes", "3", "--machines", "2", "--tls", "--monitor-on-host", "--shops", "2", "--out"]);
        command.arg(self.etc()).arg("--store-dir").arg(self.dir.join("var"));
        for _ in 0..3 {
            command.args(["--host", &self.lan.addresses[HUB]]);
        }
        for shop in [1, 2] {
            command.args(["--shop-host", &self.lan.addresses[shop]]);
        }
        let output = command.output().expect("brewq security init runs");
        assert!(output.status.success(), "security init: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Starts `program args...` inside host `host`, its output in `logs/<name>.log`.
    fn spawn(&mut self, host: usize, name: &str, program: &Path, args: &[String]) {
        let mut command = vec!["netns".to_owned(), "exec".into(), self.lan.namespaces[host].clone(), program.display().to_string()];
        command.extend_from_slice(args);
        let log = self.dir.join("logs").join(format!("{name}.log"));
        let envs = [("GOMAXPROCS".to_owned(), "1".to_owned()), ("RUST_LOG".to_owned(), "info,brewq=debug,async_nats=warn".to_owned())];
        self.processes.push(Process::spawn(name, Path::new("ip"), &command, &envs, &log).expect("process starts"));
    }

    /// The hub's three servers and each shop's, from their configs; waits until every one
    /// answers its health check and each shop is linked to the hub.
    pub(crate) async fn start_servers(&mut self) {
        for node in 1..=3 {
            self.start_hub_server(node);
        }
        for shop in [1, 2] {
            self.start_shop_server(shop);
        }
        let info = self.info();
        let monitors: Vec<String> = info.monitor_urls.iter().chain(info.shops.iter().map(|shop| &shop.monitor_url)).cloned().collect();
        self.wait_healthy(&monitors).await;
        for shop in [1, 2] {
            eventually(&format!("shop {shop}'s link"), Duration::from_secs(60), || async {
                leaf_links(&self.http, &info, shop).await == Some(1)
            })
            .await;
        }
    }

    /// The hub's server `n<node>`, from its config, in the hub's namespace.
    pub(crate) fn start_hub_server(&mut self, node: usize) {
        let config = self.etc().join(format!("n{node}.conf")).display().to_string();
        self.spawn(HUB, &format!("n{node}"), &nats_server_bin(), &["-c".into(), config]);
    }

    /// Shop `shop`'s server, from its config, in the shop's namespace.
    pub(crate) fn start_shop_server(&mut self, shop: u32) {
        let config = self.etc().join(format!("shop-{shop}.conf")).display().to_string();
        self.spawn(shop as usize, &format!("shop-{shop}"), &nats_server_bin(), &["-c".into(), config]);
    }

    /// `kill -9` of the process named `name` (`n2`, `shop-1`...).
    pub(crate) async fn kill(&mut self, name: &str) {
        let index = self.processes.iter().position(|process| process.name == name).expect("a process of that name");
        self.processes.remove(index).kill().await;
    }

    /// Waits until every server of `monitors` (monitoring URLs) answers its health check.
    pub(crate) async fn wait_healthy(&self, monitors: &[String]) {
        for monitor in monitors {
            eventually(&format!("{monitor} healthy"), Duration::from_secs(60), || async {
                self.http.get(format!("{monitor}/healthz")).send().await.is_ok_and(|response| response.status().is_success())
            })
            .await;
        }
    }

    /// `brewq provision --shop N` from this machine (the operator's, which reaches the hub and
    /// the shops), again until it succeeds: the hub's JetStream may still be electing leaders.
    pub(crate) async fn provision(&self) {
        for shop in ["1", "2"] {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let (ok, text) = self.brewq(&["provision", "--shop", shop]).await;
                if ok {
                    break;
                }
                assert!(Instant::now() < deadline, "provision --shop {shop} keeps failing: {text}");
            }
        }
    }

    /// Runs `brewq args... --data-dir <etc>` on this machine: whether it succeeded, and what
    /// it printed (out, then err).
    pub(crate) async fn brewq(&self, args: &[&str]) -> (bool, String) {
        let mut command = tokio::process::Command::new(brewq_bin());
        command.args(args).arg("--data-dir").arg(self.etc()).kill_on_drop(true);
        match tokio::time::timeout(Duration::from_secs(60), command.output()).await {
            Ok(output) => {
                let output = output.expect("brewq runs");
                let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
                (output.status.success(), text)
            }
            Err(_) => (false, "timed out".into()),
        }
    }

    /// The flags a process of shop `shop` gets: its own server, the CA, and the creds file
    /// `keys/shops/<shop>/<creds>.creds` (a role's, or `machines/<id>`).
    pub(crate) fn shop_flags(&self, shop: u32, creds: &str) -> Vec<String> {
        let creds = self.etc().join("keys/shops").join(shop.to_string()).join(format!("{creds}.creds"));
        let url = self.info().shops[shop as usize - 1].nats_urls.join(",");
        vec!["--nats-url".into(), url, "--tls-ca".into(), path(&self.etc().join("tls/ca.pem")), "--creds".into(), path(&creds)]
    }

    /// In shop `shop`'s namespace: a controller, a stock manager, two machines, the web shop
    /// and the operator pages, on the shop's address.
    pub(crate) fn start_shop_services(&mut self, shop: u32, fail_rate: f64) {
        let address = self.lan.addresses[shop as usize].clone();
        let (web, office) = (format!("{address}:{WEB_PORT}"), format!("{address}:{OFFICE_PORT}"));
        let hash = path(&self.etc().join("keys/admin.bcrypt"));
        let mut services: Vec<(String, String, Vec<String>)> = vec![
            ("controller".into(), "controller".into(), vec!["controller".into()]),
            ("stock".into(), "stock".into(), vec!["stock".into(), "serve".into()]),
            ("web".into(), "web".into(), vec!["web".into(), "--listen".into(), web]),
            (
                "office".into(),
                "operator".into(),
                vec!["office".into(), "--listen".into(), office, "--operator-password-hash-file".into(), hash],
            ),
        ];
        for machine in ["1", "2"] {
            let mut args = vec!["maker".into(), "--id".into(), machine.into(), "--brew-scale".into(), "0".into()];
            args.extend(["--fail-rate".into(), fail_rate.to_string()]);
            services.push((format!("maker-{machine}"), format!("machines/{machine}"), args));
        }
        for (name, creds, mut args) in services {
            args.extend(self.shop_flags(shop, &creds));
            self.spawn(shop as usize, &format!("shop{shop}-{name}"), &brewq_bin(), &args);
        }
    }

    /// A client of shop `shop`, on the shop's own server, as a customer's device or its staff
    /// on the shop's network reach it.
    pub(crate) async fn shop_client(&self, shop: u32, role: &str) -> async_nats::Client {
        let info = self.info();
        self.client(info.shops[shop as usize - 1].nats_urls.clone(), shop, role).await
    }

    /// A client of the hub in shop `shop`'s account: the chain's view of that shop.
    pub(crate) async fn hub_client(&self, shop: u32) -> async_nats::Client {
        self.client(self.info().nats_urls, shop, "admin").await
    }

    async fn client(&self, urls: Vec<String>, shop: u32, role: &str) -> async_nats::Client {
        let creds = self.etc().join("keys/shops").join(shop.to_string()).join(format!("{role}.creds"));
        let config = brewq_runtime::NatsConfig {
            urls,
            credentials: brewq_runtime::Credentials::from_creds(brewq_launch::keys::read_creds_file(&creds).expect("creds"))
                .expect("creds"),
            role: role.into(),
            name: format!("shops-lan-{shop}-{role}"),
            tls_ca: Some(self.etc().join("tls/ca.pem")),
        };
        brewq_runtime::connect(&config).await.expect("connects")
    }

    /// Shop 1's web credential is refused by shop 2's server, which trusts only its own account.
    pub(crate) async fn a_shops_credential_opens_no_other_shop(&self) {
        let creds = self.etc().join("keys/shops/1/web.creds");
        let config = brewq_runtime::NatsConfig {
            urls: self.info().shops[1].nats_urls.clone(),
            credentials: brewq_runtime::Credentials::from_creds(brewq_launch::keys::read_creds_file(&creds).expect("creds"))
                .expect("creds"),
            role: "web".into(),
            name: "stranger".into(),
            tls_ca: Some(self.etc().join("tls/ca.pem")),
        };
        let options = brewq_runtime::connect::options(&config).expect("options").connection_timeout(Duration::from_secs(3));
        let refused = options.connect(config.urls.as_slice()).await.expect_err("shop 1's web credential opened shop 2's server");
        assert!(refused.to_string().to_lowercase().contains("authoriz"), "refused for another reason: {refused}");
    }

    /// Waits until shop `shop`'s web shop counts both its machines online.
    pub(crate) async fn wait_shop_ready(&self, shop: u32) {
        let url = format!("{}/api/queue", self.web(shop));
        eventually(&format!("shop {shop}'s machines online"), Duration::from_secs(60), || async {
            let queue: Option<Value> = match self.http.get(&url).send().await {
                Ok(response) => response.json().await.ok(),
                Err(_) => None,
            };
            queue.is_some_and(|queue| queue["machines_online"] == json!(2))
        })
        .await;
    }

    pub(crate) fn web(&self, shop: u32) -> String {
        format!("http://{}:{WEB_PORT}", self.lan.addresses[shop as usize])
    }

    /// Places an order through shop `shop`'s web shop: accepted at the first attempt.
    pub(crate) async fn order_over_http(&self, shop: u32, key: &str) -> String {
        let order = order_json(key, "small", "arabica", "none", 0);
        let sent = self.http.post(format!("{}/api/orders", self.web(shop))).header("Idempotency-Key", key).json(&order).send().await;
        let response = sent.expect("the web shop answers");
        assert_eq!(response.status(), 201, "{key} at shop {shop}");
        let reply: OrderReply = response.json().await.expect("json");
        reply.order_id.expect("accepted")
    }

    /// Shop `shop`'s operator logs in to its pages and sees its machines and stock.
    pub(crate) async fn operator_sees_the_shop(&self, shop: u32) {
        let office = format!("http://{}:{OFFICE_PORT}", self.lan.addresses[shop as usize]);
        let password = std::fs::read_to_string(self.etc().join("keys/admin.password")).expect("admin password");
        let login = json!({"user": "admin", "password": password.trim()});
        let response = self.http.post(format!("{office}/admin/login")).json(&login).send().await.expect("the operator's pages answer");
        assert_eq!(response.status(), 200, "shop {shop}'s operator logs in");
        let cookie = response.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_owned();
        let state = self.http.get(format!("{office}/api/admin/state")).header("cookie", cookie).send().await.expect("answers");
        assert_eq!(state.status(), 200, "shop {shop}'s dashboard");
        let dashboard: Value = state.json().await.expect("json");
        let online = dashboard["machines"].as_array().map_or(0, |machines| machines.iter().filter(|m| m["online"] == json!(true)).count());
        assert!(online == 2 && dashboard["stock"].is_object(), "shop {shop}'s dashboard: {dashboard}");
    }

    /// Cuts shop `shop`'s link to the hub: each side drops what it would send the other.
    pub(crate) fn cut(&self, shop: u32) {
        self.route("add", shop);
    }

    /// Gives shop `shop` its link back.
    pub(crate) fn heal(&self, shop: u32) {
        self.route("del", shop);
    }

    fn route(&self, action: &str, shop: u32) {
        let (hub, shop) = (HUB, shop as usize);
        for (from, to) in [(hub, shop), (shop, hub)] {
            let target = format!("{}/32", self.lan.addresses[to]);
            ip(&["netns", "exec", &self.lan.namespaces[from], "ip", "route", action, "blackhole", &target]).expect("route");
        }
    }

    /// `brewq stock --shop 1` on the hub: live while the link is `up`, as the hub last saw it
    /// while it is cut; `brewq machines --shop 1` (as the hub last saw them); and a
    /// machine command, carried out while the link is up, kept on the hub while it is cut (and
    /// carried out when it returns).
    pub(crate) async fn hub_sees_shop_one(&self, up: bool) {
        let (ok, stock) = self.brewq(&["stock", "--shop", "1"]).await;
        assert!(ok && stock.contains("arabica") && stock.contains("as the hub last saw it") != up, "brewq stock --shop 1: {stock}");
        // Stale while the link is cut (the hub has no heartbeat), online again once it is back.
        let online = if up { "machine  2  online" } else { "machine  2  offline" };
        eventually(&format!("brewq machines --shop 1 to show `{online}`"), Duration::from_secs(30), || async {
            let (ok, machines) = self.brewq(&["machines", "--shop", "1"]).await;
            ok && machines.contains("as the hub last saw it") && machines.contains(online)
        })
        .await;
        let (ok, paused) = self.brewq(&["machines", "pause", "2", "--shop", "1"]).await;
        match up {
            true => assert!(ok && paused.contains("machine 2 of shop 1: paused"), "a machine command with the link up: {paused}"),
            false => assert!(ok && paused.contains("kept on the hub"), "a machine command during the cut: {paused}"),
        }
    }

    /// `brewq status ORDER_ID` on the hub finds the order of shop 1, ready.
    pub(crate) async fn hub_finds(&self, order_id: &str) {
        let (ok, text) = self.brewq(&["status", order_id]).await;
        assert!(ok && text.contains("of shop 1") && text.contains("status: ready"), "brewq status on the hub: {text}");
    }
}

impl Drop for Chain {
    /// A failed run keeps its folder (configs and every log) and says where; so does every run
    /// with `BREWQ_KEEP_TEST_DIRS=1`.
    fn drop(&mut self) {
        let keep = std::thread::panicking() || std::env::var_os("BREWQ_KEEP_TEST_DIRS").is_some_and(|keep| keep == "1");
        if keep && let Some(temp) = self.temp.take() {
            eprintln!("chain kept in {}", temp.keep().display());
        }
    }
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
