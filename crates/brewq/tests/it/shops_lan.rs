//! A chain deployed by hand, as DEPLOY.md's "A shop at its own site" runs it, on a network the
//! test makes (see `lan.rs`): the hub's three servers in one network namespace, each shop's
//! server and services in a namespace of its own, all from the files `brewq security init
//! --shops 2 --tls` wrote, provisioned with `brewq provision --shop N`. Then shop 1's link to
//! the hub is cut at the network level (each side drops the other's packets: a blackhole route),
//! while this machine, on the shops' network, plays their customers and staff. Shop 1 takes and
//! brews orders over HTTP and NATS and its operator pages work; shop 2 and the hub's view of it
//! are unaffected; a restock the chain's operator sends from the hub during the cut is applied
//! once when the link returns; and the hub then shows every order shop 1 took, each once, ready.
//! The times are measured and printed, not asserted. `BREWQ_SHOPS_CUT_SECONDS` makes the cut
//! last longer (DEPLOY.md gives the figures of a long one).
//!
//! Making namespaces needs root (or CAP_NET_ADMIN); without it the test says why and skips,
//! unless `BREWQ_REQUIRE_NETNS` is set, which turns the skip into a failure.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use brewq_launch::ClusterInfo;
use brewq_launch::process::Process;
use brewq_protocol::{Ingredient, OrderReply, OrderStatus, StockSnapshot, subjects};
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::harness::{brewq_bin, eventually, nats_server_bin, order_json, until_found};
use crate::lan::{Lan, ip};
use crate::shops::{hub_orders, shop_records, shop_stock};

/// The hub's namespace; shop `n` is in namespace `n`.
const HUB: usize = 0;
/// The shop whose link is cut.
const CUT: u32 = 1;
/// Orders placed at each shop during the cut, over NATS and over HTTP each.
const DURING_CUT: usize = 3;
/// How long the cut lasts at least: `BREWQ_SHOPS_CUT_SECONDS`, by default none (as long as
/// the shops take to serve their orders, a few seconds).
fn cut_at_least() -> Duration {
    let seconds = std::env::var("BREWQ_SHOPS_CUT_SECONDS").ok().and_then(|value| value.parse().ok());
    Duration::from_secs(seconds.unwrap_or(0))
}

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

#[tokio::test]
async fn a_shop_whose_link_is_cut_keeps_serving_and_the_hub_catches_up_once_when_it_returns() {
    let Some(mut chain) = Chain::create("shops_lan") else { return };
    chain.security_init();
    chain.start_servers().await;
    chain.provision().await;
    for shop in [1, 2] {
        chain.start_shop_services(shop, 0.0);
    }
    let info = chain.info();
    let shop_clients = [chain.shop_client(1, "admin").await, chain.shop_client(2, "admin").await];
    let hub_views = [chain.hub_client(1).await, chain.hub_client(2).await];
    let mut taken = serve_before_the_cut(&chain, &shop_clients).await;
    chain.a_shops_credential_opens_no_other_shop().await;
    let arabica_before = shop_stock(&shop_clients[0]).await.levels[&Ingredient::Arabica];

    // The cut: shop 1 no longer reaches the hub, nor the hub it.
    chain.cut(CUT);
    let cut = Instant::now();
    eventually("shop 1's link to drop", Duration::from_secs(30), || async { leaf_links(&chain.http, &info, CUT).await == Some(0) }).await;
    println!("shops_lan: shop 1 saw its link drop {:?} after the cut", cut.elapsed());
    let (ok, text) = chain.brewq(&["stock", "restock", "arabica=100", "--shop", "1"]).await;
    assert!(ok && text.contains("sent to shop 1"), "the chain's operator restocks shop 1 during the cut: {text}");
    chain.hub_sees_shop_one(false).await;
    serve_during_the_cut(&chain, &shop_clients, &mut taken).await;
    // Shop 2, and the hub's view of it, go on as if nothing happened; shop 1 has no restock yet.
    wait_hub_shows(&hub_views[1], &taken[&2], "the hub to show shop 2's orders during the cut").await;
    assert_eq!(shop_stock(&shop_clients[0]).await.levels[&Ingredient::Arabica].added, arabica_before.added, "restocked through a cut link");
    // The fault lasts this long (`BREWQ_SHOPS_CUT_SECONDS`): it is the scenario, not a wait.
    tokio::time::sleep(cut_at_least().saturating_sub(cut.elapsed())).await;
    nothing_crossed_the_cut(&chain, &hub_views[0], &taken[&1][2..]).await;

    // The link back: the restock arrives once, and the hub shows every order of shop 1 once.
    let cut_for = cut.elapsed();
    chain.heal(CUT);
    let healed = Instant::now();
    eventually("shop 1's link to return", Duration::from_secs(60), || async { leaf_links(&chain.http, &info, CUT).await == Some(1) }).await;
    let linked = healed.elapsed();
    restock_arrives_once(&chain, &shop_clients[0], arabica_before.added + 100).await;
    let restocked = healed.elapsed();
    let shop_one = taken[&1].clone();
    wait_hub_shows(&hub_views[0], &shop_one, "the hub to show every order of shop 1").await;
    let caught_up = healed.elapsed();
    let on_hub = hub_order_ids(&hub_views[0]).await;
    assert_eq!(on_hub, shop_one.iter().cloned().collect::<BTreeSet<_>>(), "the hub's orders of shop 1 are the orders it took");
    assert!(hub_order_ids(&hub_views[1]).await.is_disjoint(&on_hub), "the hub shows an order of shop 1 as shop 2's");
    println!(
        "shops_lan: cut {cut_for:?} while shop 1 took {} orders; after the link returned: link up in {linked:?}, restock applied in \
         {restocked:?}, the hub showed all {} of its orders (each once, ready) in {caught_up:?}",
        2 * DURING_CUT,
        shop_one.len()
    );
    chain.hub_finds(&shop_one[shop_one.len() - 1]).await;
    chain.hub_sees_shop_one(true).await;
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
    async fn a_shops_credential_opens_no_other_shop(&self) {
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
    async fn order_over_http(&self, shop: u32, key: &str) -> String {
        let order = order_json(key, "small", "arabica", "none", 0);
        let sent = self.http.post(format!("{}/api/orders", self.web(shop))).header("Idempotency-Key", key).json(&order).send().await;
        let response = sent.expect("the web shop answers");
        assert_eq!(response.status(), 201, "{key} at shop {shop}");
        let reply: OrderReply = response.json().await.expect("json");
        reply.order_id.expect("accepted")
    }

    /// Shop `shop`'s operator logs in to its pages and sees its machines and stock.
    async fn operator_sees_the_shop(&self, shop: u32) {
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
    /// machine command, carried out while the link is up, refused with nothing changed while
    /// it is cut.
    async fn hub_sees_shop_one(&self, up: bool) {
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
            false => assert!(!ok && paused.contains("nothing was changed"), "a machine command during the cut: {paused}"),
        }
    }

    /// `brewq status ORDER_ID` on the hub finds the order of shop 1, ready.
    async fn hub_finds(&self, order_id: &str) {
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

/// Each shop, once ready, takes an order over NATS and one over HTTP; their ids, by shop.
async fn serve_before_the_cut(chain: &Chain, shop_clients: &[async_nats::Client; 2]) -> HashMap<u32, Vec<String>> {
    let mut taken: HashMap<u32, Vec<String>> = HashMap::new();
    for shop in [1, 2] {
        chain.wait_shop_ready(shop).await;
        let ids = taken.entry(shop).or_default();
        ids.push(order_until_accepted(&shop_clients[shop as usize - 1], &format!("Before{shop}")).await);
        ids.push(chain.order_over_http(shop, &format!("web-before-{shop}")).await);
    }
    taken
}

/// The cut is still real at its end: shop 1 has no link, shop 2 has its own, and the hub
/// (`hub_view`, in shop 1's account) has seen none of the orders shop 1 took during the cut.
async fn nothing_crossed_the_cut(chain: &Chain, hub_view: &async_nats::Client, taken_during: &[String]) {
    let info = chain.info();
    assert_eq!(leaf_links(&chain.http, &info, 1).await, Some(0), "shop 1's link came back during the cut");
    assert_eq!(leaf_links(&chain.http, &info, 2).await, Some(1), "shop 2 lost its link");
    let seen = hub_order_ids(hub_view).await;
    assert!(taken_during.iter().all(|id| !seen.contains(id)), "the hub saw an order shop 1 took during the cut");
}

/// Each shop takes [`DURING_CUT`] orders over NATS and as many over HTTP, brews them, and its
/// operator sees it; the ids go to `taken`, by shop.
async fn serve_during_the_cut(chain: &Chain, shop_clients: &[async_nats::Client; 2], taken: &mut HashMap<u32, Vec<String>>) {
    for n in 0..DURING_CUT {
        for shop in [1, 2] {
            let ids = taken.get_mut(&shop).expect("shop");
            ids.push(order_over_nats(&shop_clients[shop as usize - 1], &format!("Cut{shop}n{n}")).await);
            ids.push(chain.order_over_http(shop, &format!("web-cut-{shop}-{n}")).await);
        }
    }
    for shop in [1, 2] {
        wait_ready_in_shop(&shop_clients[shop as usize - 1], shop, &taken[&shop]).await;
        chain.operator_sees_the_shop(shop).await;
    }
}

/// How many links to the hub shop `shop`'s server has (`None` if its monitoring does not answer).
pub(crate) async fn leaf_links(http: &reqwest::Client, info: &ClusterInfo, shop: u32) -> Option<u64> {
    let url = format!("{}/leafz", info.shops[shop as usize - 1].monitor_url);
    let leafz: Value = http.get(url).send().await.ok()?.json().await.ok()?;
    leafz["leafnodes"].as_u64()
}

/// An order on `coffee.web.requests` at the shop `client` is connected to: accepted at the
/// first attempt.
async fn order_over_nats(client: &async_nats::Client, name: &str) -> String {
    let payload = order_json(name, "small", "arabica", "none", 0);
    let reply: OrderReply = brewq_runtime::request::request_json(client, subjects::ORDER_REQUESTS, &payload, Duration::from_secs(10))
        .await
        .expect("the shop's controller answers");
    reply.order_id.unwrap_or_else(|| panic!("{name} refused: {}", reply.message))
}

/// The same, again while the shop's services are starting.
async fn order_until_accepted(client: &async_nats::Client, name: &str) -> String {
    let payload = order_json(name, "small", "arabica", "none", 0);
    until_found(&format!("{name} to be accepted"), Duration::from_secs(60), || async {
        let sent =
            brewq_runtime::request::request_json::<_, OrderReply>(client, subjects::ORDER_REQUESTS, &payload, Duration::from_secs(10));
        sent.await.ok().and_then(|reply| reply.order_id)
    })
    .await
}

/// Waits until every order of `ids` is ready in the shop's own records.
async fn wait_ready_in_shop(client: &async_nats::Client, shop: u32, ids: &[String]) {
    eventually(&format!("shop {shop}'s orders to be ready"), Duration::from_secs(60), || async {
        let records = shop_records(client).await;
        ids.iter().all(|id| records.get(id).is_some_and(|record| record.status == OrderStatus::Ready))
    })
    .await;
}

/// Waits until the hub's view of a shop (`hub`, in the shop's account) shows each of `ids` ready.
async fn wait_hub_shows(hub: &async_nats::Client, ids: &[String], what: &str) {
    // Above the 2-minute cap of the backoff with which nats-server retries a failed source.
    eventually(what, Duration::from_secs(180), || async {
        hub_orders(hub, ids).await.is_some_and(|shown| ids.iter().all(|id| shown.get(id) == Some(&OrderStatus::Ready)))
    })
    .await;
}

/// The ids of every order the hub's view of a shop holds.
pub(crate) async fn hub_order_ids(hub: &async_nats::Client) -> BTreeSet<String> {
    let stream = async_nats::jetstream::new(hub.clone()).get_stream(subjects::CHAIN_STREAM).await.expect("the chain's view");
    let filter = subjects::chain_subject("orders", ">");
    let subjects: Vec<(String, usize)> = stream.info_with_subjects(&filter).await.expect("subjects").try_collect().await.expect("subjects");
    let prefix = subjects::chain_subject("orders", "");
    subjects.into_iter().map(|(subject, _)| subject.trim_start_matches(&prefix).to_owned()).collect()
}

/// Waits until the restock sent during the cut is applied (`added` reaches `added`), then
/// sends an alert level after it and checks, once that arrived, that the restock was applied
/// once.
async fn restock_arrives_once(chain: &Chain, shop: &async_nats::Client, added: u64) {
    eventually("the restock to reach shop 1", Duration::from_secs(120), || async {
        shop_stock(shop).await.levels[&Ingredient::Arabica].added >= added
    })
    .await;
    let (ok, text) = chain.brewq(&["stock", "threshold", "arabica=77", "--shop", "1"]).await;
    assert!(ok, "brewq stock threshold: {text}");
    let after: StockSnapshot = until_found("the alert level to reach shop 1", Duration::from_secs(60), || async {
        Some(shop_stock(shop).await).filter(|stock| stock.levels[&Ingredient::Arabica].low_at == 77)
    })
    .await;
    assert_eq!(after.levels[&Ingredient::Arabica].added, added, "the restock sent during the cut was applied more than once");
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
