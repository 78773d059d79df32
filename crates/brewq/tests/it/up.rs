//! The real binaries, as a user runs them: `brewq up`, then `brewq order --wait` and the other
//! commands against it (the order's id found in every service's log, `brewq status`), then
//! SIGTERM stops everything cleanly; a terminal's Ctrl-C hands a brewing order back; a
//! SIGTERM during the start-up stops everything once it is up; and an address in use is
//! refused before anything starts.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::{brewq_bin, eventually, nats_server_bin, web_and_office_addresses};

fn brewq(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(brewq_bin()).args(args).arg("--data-dir").arg(data_dir).output().expect("brewq runs")
}

/// The kinds of service (`controller`, `maker`, ...) whose log files under `logs` contain
/// `text`, as `grep -l` would find them.
fn services_naming(logs: &std::path::Path, text: &str) -> Vec<String> {
    let mut kinds: Vec<String> = std::fs::read_dir(logs)
        .expect("logs folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|log| log.contains(text)))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.split('-').next()?.to_owned()))
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

#[tokio::test]
async fn brewq_up_serves_an_order_from_the_cli_and_stops_cleanly_on_sigterm() {
    let folder = tempfile::Builder::new().prefix("brewq-up-").tempdir().expect("temp dir");
    let data_dir = folder.path().to_owned();
    let output = data_dir.with_extension("out");
    let (listen, office) = web_and_office_addresses();
    let args = [
        "--log-format",
        "json",
        "--machines",
        "2",
        "--brew-scale",
        "0",
        "--fail-rate",
        "0",
        "--listen",
        &listen,
        "--office-listen",
        &office,
    ];
    let mut up = start_in_terminal(&data_dir, &args, &output).await;
    let cluster_json = data_dir.join("cluster.json");
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(&cluster_json).expect("read")).expect("json");
    assert_eq!(info["nats_urls"].as_array().map(Vec::len), Some(3));
    assert!(info["admin_password"].as_str().is_some_and(|password| !password.is_empty()));
    assert_eq!(info["http_url"].as_str(), Some(format!("http://{listen}").as_str()));
    assert_eq!(info["monitor_urls"].as_array().map(Vec::len), Some(3));
    let metrics_urls = info["metrics_urls"].as_object().expect("metrics_urls");
    let services: Vec<&str> = metrics_urls.keys().map(String::as_str).collect();
    // One controller and one stock manager per server.
    let expected =
        ["controller-1", "controller-2", "controller-3", "maker-1", "maker-2", "office-1", "stock-1", "stock-2", "stock-3", "web-1"];
    assert_eq!(services, expected);
    let page = reqwest::get(format!("http://{listen}/")).await.expect("the shop answers");
    assert!(page.text().await.expect("page").contains("Order my coffee"));
    assert_eq!(info["office_url"].as_str(), Some(format!("http://{office}").as_str()));
    let login = reqwest::get(format!("http://{office}/admin/login")).await.expect("the operator's pages answer");
    assert!(login.text().await.expect("page").contains("operator login"));

    let dir = data_dir.clone();
    let order = tokio::task::spawn_blocking(move || {
        brewq(&["order", "--name", "Quentin", "--size", "big", "--milk", "soja", "--sugar", "2", "--wait", "--json"], &dir)
    })
    .await
    .expect("join");
    let dir = data_dir.clone();
    assert!(order.status.success(), "brewq order failed: {}", String::from_utf8_lossy(&order.stderr));
    let record: serde_json::Value = serde_json::from_slice(&order.stdout).expect("order --json prints JSON only");
    assert_eq!(record["status"], "ready");
    assert_eq!(record["size"], "large");
    assert_eq!(record["milk"], "soy");
    let id = record["id"].as_str().expect("id").to_owned();

    // The customer follows the order on the shop: the web's log names it too.
    let followed = reqwest::get(format!("http://{listen}/api/orders/{id}")).await.expect("the shop answers");
    assert_eq!(followed.status(), 200);
    let logs = data_dir.join("logs");
    // Logs name an order by its reference, never by its id (the customer's key to it).
    let reference = brewq_protocol::ids::order_ref(&id);
    eventually("the order's reference in the log of every service", Duration::from_secs(10), || {
        let naming = services_naming(&logs, &reference);
        async move { naming == ["controller", "maker", "stock", "web"] }
    })
    .await;
    // One of the three controllers accepted it, once.
    let mut accepted = 0.0;
    for controller in ["controller-1", "controller-2", "controller-3"] {
        let page = crate::harness::scrape(metrics_urls[controller].as_str().expect("url")).await;
        let shown = page.lines().any(|line| line.starts_with("brewq_orders_accepted_total "));
        assert!(shown, "the counter is shown from the start: {controller}");
        accepted += crate::harness::sum_of(&page, "brewq_orders_accepted_total");
    }
    assert_eq!(accepted, 1.0, "the order was accepted once");

    let health = brewq(&["status", "--json"], &dir);
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
    let health: serde_json::Value = serde_json::from_slice(&health.stdout).expect("status JSON");
    assert_eq!(health["servers"].as_array().map(|servers| servers.iter().filter(|server| server["up"] == true).count()), Some(3));
    assert_eq!(health["machines"]["online"], 2);

    let status = brewq(&["status", &id, "--json"], &dir);
    assert!(status.status.success());
    let shown: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(shown["id"], id.as_str());

    let stock = brewq(&["stock", "--json"], &dir);
    let levels: serde_json::Value = serde_json::from_slice(&stock.stdout).expect("stock JSON");
    assert_eq!(levels["levels"]["robusta"]["consumed"], 0);
    assert_eq!(levels["levels"]["arabica"]["consumed"], 21);

    let machines = brewq(&["machines", "--json"], &dir);
    let fleet: Vec<serde_json::Value> = serde_json::from_slice(&machines.stdout).expect("machines JSON");
    assert_eq!(fleet.iter().filter(|machine| machine["online"] == true).count(), 2);

    for sugar in ["9", "-1"] {
        let refused = brewq(&["order", "--name", "Bob", "--sugar", sugar], &dir);
        assert!(!refused.status.success());
        let reason = String::from_utf8_lossy(&refused.stderr);
        assert!(reason.contains("sugar_count") && reason.lines().count() == 1, "--sugar {sugar}: {reason}");
    }

    // The benchmark against the same system, through NATS as fast as it goes and through HTTP
    // at a rate: every order accepted and brewed, the raw figures measured (the bare pipeline
    // paced at the run's rate too: 1 s at 20 orders/s), and the invariants still hold after it.
    for (via, rate) in [("nats", None), ("http", Some("20"))] {
        let mut args = vec!["bench", "--orders", "40", "--clients", "4", "--raw-seconds", "1", "--via", via, "--json"];
        args.extend(rate.map(|rate| ["--rate", rate]).into_iter().flatten());
        let bench = brewq(&args, &dir);
        assert!(bench.status.success(), "brewq bench --via {via}: {}", String::from_utf8_lossy(&bench.stderr));
        let report: serde_json::Value = serde_json::from_slice(&bench.stdout).expect("bench --json prints JSON only");
        assert_eq!((report["accepted"].as_u64(), report["ready"].as_u64()), (Some(40), Some(40)), "{report}");
        assert_eq!(report["errors"], serde_json::json!({}), "{report}");
        assert!(report["acceptance"]["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{report}");
        // The servers' own counters: each order's message in the work queue, taken once and
        // acked once (the counters are read after the last order ended), and log entries.
        let replicated = &report["replicated"];
        let stored = |stream: &str| {
            replicated["stored_by_stream"].as_array().into_iter().flatten().find(|pair| pair[0] == stream).and_then(|pair| pair[1].as_u64())
        };
        assert_eq!(stored(brewq_protocol::subjects::ORDERS_STREAM), Some(40), "{report}");
        assert!(replicated["deliveries"].as_u64().is_some_and(|count| count >= 40), "{report}");
        assert!(replicated["entries"]["streams"].as_u64().is_some_and(|count| count > 0), "{report}");
        assert!(replicated["proposals_per_order"].as_f64().is_some_and(|count| count > 3.0), "{report}");
        // Each service's memory, from its own metrics: both machines, one controller.
        let memory = |service: &str| report["memory"].as_array().into_iter().flatten().find(|kind| kind["service"] == service).cloned();
        let machines = memory("maker").expect("the machines' memory");
        assert_eq!(machines["processes"], 2, "{report}");
        let controller = memory("controller").expect("the controller's memory");
        let (resident, highest) = (controller["resident_max_mib"].as_f64(), controller["highest_mib"].as_f64());
        assert!(resident.zip(highest).is_some_and(|(resident, highest)| resident > 1.0 && highest >= resident), "{report}");
        for raw in ["jetstream_publish", "work_queue_take", "kv_compare_and_swap", "bare_pipeline", "bare_pipeline_one_connection"] {
            assert!(report["raw"][raw]["per_second"].as_f64().is_some_and(|rate| rate > 0.0), "{report}");
        }
        let paced = &report["raw"]["bare_pipeline_at_rate"];
        match rate {
            None => assert!(paced.is_null(), "{report}"),
            Some(_) => {
                for latency in ["acceptance", "order_to_ready"] {
                    assert_eq!(paced[latency]["count"].as_u64(), Some(20), "{report}");
                    assert!(paced[latency]["p99_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{report}");
                }
            }
        }
    }
    let streams = brewq(&["check", "--json"], &dir);
    assert!(streams.status.success(), "brewq check after the benchmark: {}", String::from_utf8_lossy(&streams.stdout));

    let pid = up.id().expect("pid").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let exit = tokio::time::timeout(Duration::from_secs(60), up.wait()).await.expect("stops in time").expect("exit");
    assert!(exit.success(), "brewq up exited with {exit}");
}

/// A `brewq up` of a test. Dropped while it still runs (the test failed), it is stopped with
/// SIGTERM, so that it stops its servers and services: killed, it would leave them running, in
/// process groups of their own.
struct Up(tokio::process::Child);

impl std::ops::Deref for Up {
    type Target = tokio::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Up {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let Some(pid) = self.0.id() else { return };
        if !std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().is_ok_and(|status| status.success()) {
            return;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while matches!(self.0.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[tokio::test]
async fn brewq_up_refuses_an_address_in_use_before_it_starts_anything() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = taken.local_addr().expect("its address").to_string();
    let folder = tempfile::Builder::new().prefix("brewq-up-").tempdir().expect("temp dir");
    let output = folder.path().with_extension("out");
    let (_, office) = web_and_office_addresses();
    let mut up = spawn_in_terminal(folder.path(), &["--listen", &address, "--office-listen", &office], &output);
    let mut exited = None;
    eventually("brewq up to give up", Duration::from_secs(60), || {
        exited = exited.or_else(|| up.try_wait().expect("status"));
        let done = exited.is_some();
        async move { done }
    })
    .await;
    let stderr = std::fs::read_to_string(&output).unwrap_or_default();
    assert!(exited.is_some_and(|status| !status.success()), "brewq up must fail: {stderr}");
    assert!(stderr.contains(&format!("cannot listen on {address}")) && stderr.contains("--listen"), "{stderr}");
    assert!(!folder.path().join("nats").exists(), "no server was started");
    assert!(!folder.path().join("cluster.json").exists(), "nothing says the system is up");
    let _ = std::fs::remove_file(&output);
}

/// Launches `brewq up` on `data_dir` as a shell in a terminal does: the leader of a process
/// group of its own, the group a Ctrl-C signals; its stderr goes to `output`.
fn spawn_in_terminal(data_dir: &std::path::Path, args: &[&str], output: &std::path::Path) -> Up {
    Up(tokio::process::Command::new(brewq_bin())
        .arg("up")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("NATS_SERVER_BIN", nats_server_bin())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(output).expect("output file"))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("brewq up starts"))
}

/// Starts `brewq up` on `data_dir` with [`spawn_in_terminal`]. Returns once `cluster.json` is
/// written.
async fn start_in_terminal(data_dir: &std::path::Path, args: &[&str], output: &std::path::Path) -> Up {
    let mut up = spawn_in_terminal(data_dir, args, output);
    let cluster_json = data_dir.join("cluster.json");
    let _ = std::fs::remove_file(&cluster_json);
    let mut exited = None;
    eventually("cluster.json", Duration::from_secs(120), || {
        exited = exited.or_else(|| up.try_wait().expect("status"));
        let ready = cluster_json.is_file() || exited.is_some();
        async move { ready }
    })
    .await;
    assert!(exited.is_none(), "brewq up exited early ({exited:?}): {}", std::fs::read_to_string(output).unwrap_or_default());
    up
}

fn order_status(data_dir: &std::path::Path, id: &str) -> serde_json::Value {
    let shown = brewq(&["status", id, "--json"], data_dir);
    assert!(shown.status.success(), "brewq status {id}: {}", String::from_utf8_lossy(&shown.stderr));
    serde_json::from_slice(&shown.stdout).expect("status JSON")
}

#[tokio::test]
async fn ctrl_c_in_the_terminal_hands_the_brewing_order_back_before_the_servers_stop() {
    let folder = tempfile::Builder::new().prefix("brewq-ctrl-c-").tempdir().expect("temp dir");
    let data_dir = folder.path().to_owned();
    let output = data_dir.with_extension("out");
    let (listen, office) = web_and_office_addresses();
    // Brews of 20 s: the order is still brewing when Ctrl-C comes. Three machines: the two
    // idle ones are stopping too, and none of them may take the order handed back.
    let args = ["--machines", "3", "--brew-scale", "1", "--fail-rate", "0", "--listen", &listen, "--office-listen", &office];
    let mut up = start_in_terminal(&data_dir, &args, &output).await;
    let placed = brewq(&["order", "--name", "Ada", "--size", "small", "--json"], &data_dir);
    assert!(placed.status.success(), "brewq order: {}", String::from_utf8_lossy(&placed.stderr));
    let reply: serde_json::Value = serde_json::from_slice(&placed.stdout).expect("order JSON");
    let id = reply["order_id"].as_str().expect("order id").to_owned();
    eventually("the order to be brewing", Duration::from_secs(60), || {
        let brewing = order_status(&data_dir, &id)["status"] == "brewing";
        async move { brewing }
    })
    .await;

    // Ctrl-C: the terminal signals the whole foreground process group.
    let group = format!("-{}", up.id().expect("pid"));
    assert!(std::process::Command::new("kill").args(["-INT", "--", &group]).status().expect("kill").success());
    let exit = tokio::time::timeout(Duration::from_secs(60), up.wait()).await.expect("stops in time").expect("exit");
    assert!(exit.success(), "brewq up exited with {exit}");

    // Started again, the order's history shows its machine handed it back as it stopped, and
    // no other machine brewing it meanwhile (each such brew would count as an attempt).
    let stopped_at = time::OffsetDateTime::now_utc();
    let mut again = start_in_terminal(&data_dir, &args, &output).await;
    let record = order_status(&data_dir, &id);
    let history = record["history"].as_array().expect("history");
    let handed_back = history
        .iter()
        .any(|entry| entry["status"] == "queued" && entry["reason"].as_str().is_some_and(|reason| reason.contains("mid-brew")));
    assert!(handed_back, "the brewing order was not handed back at Ctrl-C: {record:#}");
    let before_the_restart = |entry: &&serde_json::Value| {
        let at = entry["at"].as_str().expect("at");
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).expect("RFC 3339") < stopped_at
    };
    let brews = history.iter().filter(before_the_restart).filter(|entry| entry["status"] == "brewing").count();
    assert_eq!(brews, 1, "brewed by more than one machine as the system stopped: {record:#}");
    assert!(std::process::Command::new("kill").args(["-TERM", &again.id().expect("pid").to_string()]).status().expect("kill").success());
    let exit = tokio::time::timeout(Duration::from_secs(60), again.wait()).await.expect("stops in time").expect("exit");
    assert!(exit.success(), "brewq up exited with {exit}");
}

/// The processes whose command line names `data_dir`: the servers (their config) and the
/// services (their seed file) of a `brewq up` on it, and `brewq up` itself.
fn processes_naming(data_dir: &std::path::Path) -> Vec<String> {
    let needle = data_dir.to_str().expect("UTF-8 path");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(needle))
        .collect()
}

#[tokio::test]
async fn a_stop_during_the_start_up_stops_everything_once_it_is_up() {
    let folder = tempfile::Builder::new().prefix("brewq-early-stop-").tempdir().expect("temp dir");
    let data_dir = folder.path().to_owned();
    let output = data_dir.with_extension("out");
    let (listen, office) = web_and_office_addresses();
    let mut up =
        spawn_in_terminal(&data_dir, &["--machines", "2", "--brew-scale", "0", "--listen", &listen, "--office-listen", &office], &output);
    let said = || std::fs::read_to_string(&output).unwrap_or_default();
    eventually("the servers to run", Duration::from_secs(30), || {
        let running = processes_naming(&data_dir).iter().any(|cmdline| cmdline.contains("nats-server"));
        async move { running }
    })
    .await;
    assert!(!data_dir.join("cluster.json").exists(), "already up: {}", said());

    // SIGTERM while the servers and services start: brewq up finishes starting them, then
    // stops them in order, and leaves nothing running (killed by it, brewq up left the
    // servers running, in process groups of their own).
    assert!(std::process::Command::new("kill").args(["-TERM", &up.id().expect("pid").to_string()]).status().expect("kill").success());
    let exit = tokio::time::timeout(Duration::from_secs(120), up.wait()).await.expect("stops in time").expect("exit");
    assert!(exit.success(), "brewq up exited with {exit}: {}", said());
    assert!(said().contains("stopping as soon as everything has started"), "{}", said());
    assert!(said().contains("stopped; orders and stock are kept"), "{}", said());
    assert!(data_dir.join("cluster.json").is_file(), "the system never came up: {}", said());
    let left = processes_naming(&data_dir);
    assert!(left.is_empty(), "still running after brewq up stopped: {left:#?}");
}
