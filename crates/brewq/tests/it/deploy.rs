//! DEPLOY.md on one machine: three hosts as network namespaces on a test-made network (see
//! `lan.rs`), the configs written by the real `brewq security init --tls --host <address>...`
//! for their addresses, one nats-server per host started from its config, `brewq provision`,
//! and the services spread over the hosts, each run inside its host with `ip netns exec`.
//! Orders flow end to end (the CLI on a host, the web shop over HTTP, whose operator logs in);
//! one host is cut off and orders still flow; it comes back and its server catches up: its
//! replica of the order records holds the same last sequence as the others, and orders flow
//! through it again.
//!
//! Making namespaces needs root (or CAP_NET_ADMIN); without it the test says why and skips,
//! unless `BREWQ_REQUIRE_NETNS` is set, which turns the skip into a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use brewq_launch::ClusterInfo;
use brewq_launch::process::Process;
use brewq_protocol::subjects;
use serde_json::{Value, json};

use crate::harness::{brewq_bin, eventually, nats_server_bin, order_json};
use crate::lan::Lan;

/// The web shop's port, on the first host.
const WEB_PORT: u16 = 8080;
/// The operator pages' port, on the first host.
const OFFICE_PORT: u16 = 8081;
/// The monitoring port `brewq security init` gives each node on a host of its own.
const MONITOR_PORT: u16 = 8222;
/// The host cut off the network: the third.
const CUT: usize = 2;

/// Three hosts with their servers and services. Fields drop in order: the processes go
/// before the network they run in.
struct Deployment {
    processes: Vec<Process>,
    lan: Lan,
    /// `etc/` (the `security init` output), `var/` (server stores), `logs/`.
    dir: PathBuf,
    temp: Option<tempfile::TempDir>,
    http: reqwest::Client,
}

#[tokio::test]
async fn three_hosts_serve_orders_through_one_cut_off_and_it_catches_up() {
    let Some(mut deployment) = Deployment::create() else { return };
    deployment.security_init();
    for host in 0..3 {
        deployment.start_server(host);
    }
    deployment.wait_healthy().await;
    deployment.provision().await;
    deployment.start_services();

    deployment.order_from_cli(1, "before-cut").await;
    deployment.order_over_http("web-before-cut").await;
    deployment.operator_logs_in().await;

    deployment.lan.cut(CUT);
    deployment.wait_route_lost("n3").await;
    deployment.order_from_cli(1, "during-cut").await;
    deployment.order_over_http("web-during-cut").await;
    let written_during_cut = deployment.records_last_sequence(0).await.expect("n1 reports the order records");

    deployment.lan.heal(CUT);
    deployment.wait_caught_up(written_during_cut).await;
    deployment.order_from_cli(CUT, "after-heal").await;
    deployment.operator_sees_every_machine_online().await;
}

impl Deployment {
    /// The network and a folder, or `None` (having said why) where namespaces cannot be made.
    fn create() -> Option<Deployment> {
        let lan = match Lan::create(3) {
            Ok(lan) => lan,
            Err(why) if std::env::var_os("BREWQ_REQUIRE_NETNS").is_none() => {
                // Straight to stderr: the harness keeps `eprintln!` of a passing test to itself.
                let _ = writeln!(std::io::stderr(), "SKIPPED deploy: cannot make network namespaces ({why})");
                return None;
            }
            Err(why) => panic!("BREWQ_REQUIRE_NETNS is set and network namespaces cannot be made: {why}"),
        };
        let temp = tempfile::Builder::new().prefix("brewq-deploy-").tempdir().expect("temp dir");
        let dir = temp.path().to_owned();
        std::fs::create_dir_all(dir.join("logs")).expect("logs folder");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("http client");
        Some(Deployment { processes: Vec::new(), lan, dir, temp: Some(temp), http })
    }

    fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }

    /// `brewq security init` for the hosts' addresses, as DEPLOY.md runs it.
    fn security_init(&self) {
        let mut command = std::process::Command::new(brewq_bin());
        command.args(["security", "init", "--nodes", "3", "--machines", "3", "--tls", "--monitor-on-host", "--out"]).arg(self.etc());
        command.arg("--store-dir").arg(self.dir.join("var"));
        for address in &self.lan.addresses {
            command.args(["--host", address]);
        }
        let output = command.output().expect("brewq security init runs");
        assert!(output.status.success(), "security init: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Starts `program args...` inside host `host`, its output in `logs/<name>.log`.
    fn spawn(&mut self, host: usize, name: &str, program: &Path, args: &[String], envs: &[(String, String)]) {
        let mut command = vec!["netns".to_owned(), "exec".into(), self.lan.namespaces[host].clone(), program.display().to_string()];
        command.extend_from_slice(args);
        let log = self.dir.join("logs").join(format!("{name}.log"));
        let process = Process::spawn(name, Path::new("ip"), &command, envs, &log).expect("process starts");
        self.processes.push(process);
    }

    /// Host `host`'s nats-server, from the config written for it.
    fn start_server(&mut self, host: usize) {
        let config = self.etc().join(format!("n{}.conf", host + 1)).display().to_string();
        let envs = [("GOMAXPROCS".to_owned(), "1".to_owned())];
        self.spawn(host, &format!("n{}", host + 1), &nats_server_bin(), &["-c".into(), config], &envs);
    }

    /// The flags every brewq process on a host gets: the client URLs written in `cluster.json`,
    /// the CA, and the creds file `keys/<creds>.creds` (a role's, or `machines/<id>`).
    fn connect_flags(&self, creds: &str) -> Vec<String> {
        let info = ClusterInfo::load(&self.etc()).expect("cluster.json");
        self.connect_flags_to(creds, &info.nats_urls.join(","))
    }

    /// The same flags with other server URLs.
    fn connect_flags_to(&self, creds: &str, urls: &str) -> Vec<String> {
        let info = ClusterInfo::load(&self.etc()).expect("cluster.json");
        let ca = info.tls_ca.expect("a TLS cluster names its CA");
        let creds = self.etc().join("keys").join(format!("{creds}.creds"));
        vec!["--nats-url".into(), urls.into(), "--tls-ca".into(), path(&ca), "--creds".into(), path(&creds)]
    }

    /// Starts a brewq service on `host`.
    fn start_service(&mut self, host: usize, name: &str, creds: &str, args: &[&str]) {
        let mut args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        args.extend(self.connect_flags(creds));
        let envs = [("RUST_LOG".to_owned(), "info,brewq=debug,async_nats=warn".to_owned())];
        self.spawn(host, name, &brewq_bin(), &args, &envs);
    }

    /// A controller and a machine on every host, a stock manager on the first two, the web shop
    /// on the first.
    fn start_services(&mut self) {
        for host in 0..3 {
            let id = (host + 1).to_string();
            self.start_service(host, &format!("controller-h{id}"), "controller", &["controller"]);
            self.start_service(host, &format!("maker-{id}"), &format!("machines/{id}"), &["maker", "--id", &id, "--brew-scale", "0"]);
        }
        for host in 0..2 {
            self.start_service(host, &format!("stock-h{}", host + 1), "stock", &["stock", "serve"]);
        }
        let listen = format!("{}:{WEB_PORT}", self.lan.addresses[0]);
        self.start_service(0, "web", "web", &["web", "--listen", &listen]);
        let office = format!("{}:{OFFICE_PORT}", self.lan.addresses[0]);
        let hash = path(&self.etc().join("keys/admin.bcrypt"));
        self.start_service(0, "office", "operator", &["office", "--listen", &office, "--operator-password-hash-file", &hash]);
    }

    /// Runs `brewq args...` inside host `host`; `None` when it takes longer than `timeout`.
    async fn brewq_on(&self, host: usize, args: &[String], timeout: Duration) -> Option<Output> {
        let mut command = tokio::process::Command::new("ip");
        command.args(["netns", "exec", &self.lan.namespaces[host]]).arg(brewq_bin()).args(args).kill_on_drop(true);
        tokio::time::timeout(timeout, command.output()).await.ok().map(|output| output.expect("brewq runs"))
    }

    /// GET `http://<host>:8222/<path>` on node `host`'s monitoring port, as JSON.
    async fn monitor(&self, host: usize, path: &str) -> Option<Value> {
        let url = format!("http://{}:{MONITOR_PORT}/{path}", self.lan.addresses[host]);
        let response = self.http.get(url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// Waits until every node answers its health check (JetStream up, meta leader known).
    async fn wait_healthy(&self) {
        for host in 0..3 {
            let what = format!("n{} healthy", host + 1);
            eventually(&what, Duration::from_secs(60), || async move { self.monitor(host, "healthz").await.is_some() }).await;
        }
    }

    /// `brewq provision` from the first host, again until it succeeds (the JetStream meta
    /// group may still be settling).
    async fn provision(&self) {
        let mut args = vec!["provision".to_owned()];
        args.extend(self.connect_flags("provisioner"));
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let output = self.brewq_on(0, &args, Duration::from_secs(30)).await;
            match output {
                Some(output) if output.status.success() => return,
                other => assert!(Instant::now() < deadline, "provision keeps failing: {}", describe(other.as_ref())),
            }
        }
    }

    /// Places an order with `brewq order --wait` on host `host` against that host's own server,
    /// again (same idempotency key) until it ends ready; returns its record.
    async fn order_from_cli(&self, host: usize, key: &str) -> Value {
        let mut args: Vec<String> = ["order", "--name", key, "--size", "small", "--idempotency-key", key, "--wait", "--json"]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
        // Only the host's own server: a customer on that host talks to it.
        args.extend(self.connect_flags_to("admin", &format!("tls://{}:4222", self.lan.addresses[host])));
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            let output = self.brewq_on(host, &args, Duration::from_secs(60)).await;
            if let Some(output) = output.as_ref().filter(|output| output.status.success()) {
                let record: Value = serde_json::from_slice(&output.stdout).expect("the order as JSON");
                assert_eq!(record["status"], "ready", "{record}");
                eprintln!("deploy: order {key} ready at machine {}", record["machine"]);
                return record;
            }
            assert!(Instant::now() < deadline, "order {key} from host {}: {}", host + 1, describe(output.as_ref()));
        }
    }

    /// Places an order through the web shop on the first host (with an idempotency key, again
    /// while it answers 503) and waits until the shop shows it ready.
    async fn order_over_http(&self, key: &str) {
        let base = format!("http://{}:{WEB_PORT}", self.lan.addresses[0]);
        let order = order_json(key, "small", "arabica", "none", 0);
        let deadline = Instant::now() + Duration::from_secs(120);
        let order_id = loop {
            let sent = self.http.post(format!("{base}/api/orders")).header("Idempotency-Key", key).json(&order).send().await;
            if let Ok(response) = sent {
                let status = response.status();
                assert!(status == 201 || status == 503, "{key}: {status}");
                let body: Value = response.json().await.unwrap_or_default();
                if let Some(order_id) = body["order_id"].as_str() {
                    break order_id.to_owned();
                }
            }
            assert!(Instant::now() < deadline, "the shop did not accept {key}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let url = format!("{base}/api/orders/{order_id}");
        eventually(&format!("{key} ready in the shop"), Duration::from_secs(120), || async {
            let shown: Option<Value> = match self.http.get(&url).send().await {
                Ok(response) => response.json().await.ok(),
                Err(_) => None,
            };
            shown.is_some_and(|order| order["status"] == json!("ready"))
        })
        .await;
        eprintln!("deploy: order {key} ready through the web shop");
    }

    /// The operator logs in to the operator's pages with the admin password `security init`
    /// wrote; the shop's own address has no login.
    async fn operator_logs_in(&self) {
        let password = std::fs::read_to_string(self.etc().join("keys/admin.password")).expect("admin password");
        let login = json!({"user": "admin", "password": password.trim()});
        let shop = format!("http://{}:{WEB_PORT}/admin/login", self.lan.addresses[0]);
        let response = self.http.post(shop).json(&login).send().await.expect("the shop answers");
        assert_eq!(response.status(), 404, "no operator login on the shop");
        let office = format!("http://{}:{OFFICE_PORT}", self.lan.addresses[0]);
        eventually("the operator's pages answer", Duration::from_secs(60), || async {
            self.http.get(format!("{office}/healthz")).send().await.is_ok_and(|response| response.status().is_success())
        })
        .await;
        let response = self.http.post(format!("{office}/admin/login")).json(&login).send().await.expect("the operator's pages answer");
        assert_eq!(response.status(), 200, "operator login");
        assert!(response.headers().contains_key("set-cookie"), "a session cookie");
    }

    /// `brewq machines --data-dir <security init output>` from this machine, as an operator
    /// runs it: every server answers through `cluster.json`, and each host's machine is online.
    async fn operator_sees_every_machine_online(&self) {
        let etc = self.etc();
        eventually("three machines online", Duration::from_secs(60), || async {
            let mut command = tokio::process::Command::new(brewq_bin());
            command.args(["machines", "--json", "--data-dir"]).arg(&etc).kill_on_drop(true);
            let Ok(Ok(output)) = tokio::time::timeout(Duration::from_secs(20), command.output()).await else { return false };
            let machines: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap_or_default();
            machines.iter().filter(|machine| machine["online"] == json!(true)).count() == 3
        })
        .await;
    }

    /// Waits until n1 no longer has a route to `node`: the cut is real.
    async fn wait_route_lost(&self, node: &str) {
        eventually(&format!("n1 to lose its route to {node}"), Duration::from_secs(60), || async {
            let routez = self.monitor(0, "routez").await.unwrap_or_default();
            let routes = routez["routes"].as_array().cloned().unwrap_or_default();
            !routes.is_empty() && !routes.iter().any(|route| route["remote_name"] == node)
        })
        .await;
        eprintln!("deploy: {node} cut off");
    }

    /// The last sequence of the order-record stream as node `host` holds it.
    async fn records_last_sequence(&self, host: usize) -> Option<u64> {
        let stream = format!("KV_{}", subjects::ORDERS_BUCKET);
        let jsz = self.monitor(host, "jsz?accounts=true&streams=true").await?;
        let accounts = jsz["account_details"].as_array()?;
        let streams = accounts.iter().filter_map(|account| account["stream_detail"].as_array()).flatten();
        let detail = streams.into_iter().find(|detail| detail["name"] == stream.as_str())?;
        detail["state"]["last_seq"].as_u64()
    }

    /// Waits until the cut-off node holds every record write, including those made while it
    /// was away, and its peers hold no more.
    async fn wait_caught_up(&self, written_during_cut: u64) {
        eventually("the returning node to catch up", Duration::from_secs(90), || async {
            let mut sequences = Vec::new();
            for host in 0..3 {
                sequences.push(self.records_last_sequence(host).await);
            }
            let returning = sequences[CUT].unwrap_or(0);
            let same = returning >= written_during_cut && sequences.iter().all(|sequence| *sequence == Some(returning));
            // What DEPLOY.md checks between two hosts of a rolling upgrade: /healthz answers
            // 200 only once every stream and consumer the server holds is current.
            same && self.monitor(CUT, "healthz").await.is_some()
        })
        .await;
        eprintln!("deploy: n3 caught up");
    }
}

impl Drop for Deployment {
    /// A failed run keeps its folder (configs and every log) and says where.
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(temp) = self.temp.take()
        {
            eprintln!("deployment kept in {}", temp.keep().display());
        }
    }
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

/// What a `brewq` run that did not succeed said.
fn describe(output: Option<&Output>) -> String {
    match output {
        None => "timed out".into(),
        Some(output) => format!("{}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim()),
    }
}
