//! Observing a running system: one order through the web shop, then its traces in every
//! service's Prometheus metrics and JSON log file, and `brewq status` before and after a
//! nats-server dies.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use brewq_protocol::{Ingredient, OrderStatus};
use serde_json::Value;

use crate::harness::{TestSystem, brewq_bin, eventually, free_listen_address, order_json, scrape, sum_of};

const MACHINES: u32 = 2;
/// Orders placed while `brewq status` reads the cluster: rounds of concurrent clients.
const LOAD_ROUNDS: usize = 60;
/// The most rounds of orders sent while waiting for [`STATUS_READS`] reads of status (the
/// default stock holds about 700 small robusta coffees).
const LOAD_ROUNDS_AT_MOST: usize = 150;
/// How many times status is read, at least, while the orders flow.
const STATUS_READS: usize = 3;
const LOAD_CLIENTS: usize = 4;

/// The value of one series (`name` or `name{labels}`) in a Prometheus text page.
fn series(page: &str, wanted: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(wanted)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `(on_hand, reserved)` per ingredient, from the stock manager's gauges.
fn stock_gauges(page: &str) -> BTreeMap<Ingredient, (f64, f64)> {
    Ingredient::ALL
        .iter()
        .filter_map(|ingredient| {
            let label = format!("{{ingredient=\"{}\"}}", ingredient.as_str());
            let on_hand = series(page, &format!("brewq_stock_on_hand{label}"))?;
            let reserved = series(page, &format!("brewq_stock_reserved{label}"))?;
            Some((*ingredient, (on_hand, reserved)))
        })
        .collect()
}

/// Whether a JSON log line was written inside a span naming the order `order_id` by its
/// reference (logs never carry the id itself: it is the customer's key to the order).
fn names_order(line: &Value, order_id: &str) -> bool {
    let reference = brewq_protocol::ids::order_ref(order_id);
    let in_span = |span: &Value| span["order"] == reference.as_str();
    in_span(&line["span"]) || line["spans"].as_array().is_some_and(|spans| spans.iter().any(in_span))
}

/// The log files under `logs` whose JSON lines name `order_id`; panics on a line that is not
/// JSON.
fn files_naming(logs: &Path, order_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(logs).expect("logs folder") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("log readable");
        let lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line in {}: {line}", path.display())))
            .collect();
        if lines.iter().any(|line| names_order(line, order_id)) {
            found.push(path.file_stem().expect("name").to_string_lossy().into_owned());
        }
    }
    found.sort();
    found
}

/// `brewq status --json` against the system in `dir`: what it printed, and whether it said
/// healthy (exit 0) or degraded (its reason on stderr).
async fn status(dir: &Path) -> (Value, Result<(), String>) {
    let dir = dir.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(brewq_bin()).args(["status", "--json", "--data-dir"]).arg(&dir).output().expect("brewq runs")
    })
    .await
    .expect("join");
    let verdict = if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) };
    (serde_json::from_slice(&output.stdout).expect("status --json prints JSON, healthy or not"), verdict)
}

fn servers_up(health: &Value) -> Vec<bool> {
    health["servers"].as_array().expect("servers").iter().map(|server| server["up"] == true).collect()
}

#[tokio::test]
async fn an_order_shows_in_every_services_metrics_and_logs_and_status_sees_a_server_die() {
    let listen = free_listen_address();
    let mut test = TestSystem::start(MACHINES, |config| {
        config.web_listen = Some(listen.clone());
        config.service_env.push(("BREWQ_LOG_FORMAT".into(), "json".into()));
    })
    .await;
    let metrics = test.system.info.metrics_urls.clone();
    let before = test.stock().await;

    let placed = reqwest::Client::new()
        .post(format!("http://{listen}/api/orders"))
        .json(&order_json("Quentin", "large", "arabica", "cow", 1))
        .send()
        .await
        .expect("the shop answers");
    assert_eq!(placed.status(), 201);
    let order_id = placed.json::<Value>().await.expect("JSON")["order_id"].as_str().expect("order id").to_owned();
    test.wait_for(std::slice::from_ref(&order_id), |record| record.status == OrderStatus::Ready, Duration::from_secs(60)).await;

    let controller = scrape(&metrics["controller-1"]).await;
    assert_eq!(series(&controller, "brewq_orders_accepted_total"), Some(1.0), "{controller}");
    assert_eq!(series(&controller, "brewq_order_accept_seconds_count{outcome=\"accepted\"}"), Some(1.0));
    assert_eq!(series(&controller, "brewq_nats_connected{connection=\"controller\"}"), Some(1.0));
    let mut brews = 0.0;
    for machine in 1..=MACHINES {
        brews += sum_of(&scrape(&metrics[&format!("maker-{machine}")]).await, "brewq_brew_seconds_count");
    }
    assert_eq!(brews, 1.0, "one brew time observed across the machines");
    let public = reqwest::get(format!("http://{listen}/metrics")).await.expect("the shop answers").status();
    assert_eq!(public, 404, "the metrics are off the customers' address");
    let web = scrape(&metrics["web-1"]).await;
    let created = "brewq_http_requests_total{method=\"POST\",route=\"/api/orders\",status=\"201\"}";
    assert_eq!(series(&web, created), Some(1.0), "{web}");
    assert!(scrape(&metrics["web-1"]).await.contains("brewq_http_request_seconds_count"));

    // The gauges follow the stock manager's writes: wait for the commit to show, then compare
    // with the stock read through the API (which no one read since the order was placed).
    let arabica_after = before.levels[&Ingredient::Arabica].on_hand as f64 - 21.0;
    let committed = |gauges: &BTreeMap<Ingredient, (f64, f64)>| {
        gauges.get(&Ingredient::Arabica) == Some(&(arabica_after, 0.0)) && gauges.values().all(|(_, reserved)| *reserved == 0.0)
    };
    eventually("the stock gauges to show the commit", Duration::from_secs(30), || {
        let url = metrics["stock-1"].clone();
        async move { committed(&stock_gauges(&scrape(&url).await)) }
    })
    .await;
    let gauges = stock_gauges(&scrape(&metrics["stock-1"]).await);
    let after = test.stock().await;
    let read: BTreeMap<Ingredient, (f64, f64)> =
        after.levels.iter().map(|(ingredient, level)| (*ingredient, (level.on_hand as f64, level.reserved as f64))).collect();
    assert_eq!(gauges, read);

    let logs = test.dir.join("logs");
    let mut naming = Vec::new();
    eventually("the order's reference in every service's log", Duration::from_secs(10), || {
        naming = files_naming(&logs, &order_id);
        let kinds = ["controller-", "stock-", "maker-", "web-"];
        let done = kinds.iter().all(|kind| naming.iter().any(|file| file.starts_with(kind)));
        async move { done }
    })
    .await;
    // Neither the id (the customer's key to the order) nor the customer's name is in any log.
    for entry in std::fs::read_dir(&logs).expect("logs folder") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("log readable");
        assert!(!text.contains(&order_id), "{} carries the order id", path.display());
        assert!(!text.contains("Quentin"), "{} carries the customer's name", path.display());
    }

    let (health, verdict) = status(&test.dir).await;
    assert_eq!(verdict, Ok(()), "{health:#}");
    assert_eq!(servers_up(&health), [true, true, true], "{health:#}");
    assert_eq!(health["machines"]["online"], MACHINES, "{health:#}");
    assert!(health["meta_leader"].is_string() && health["stream"]["leader"].is_string(), "{health:#}");
    assert_eq!(health["dead_letters"], 0);

    // While orders flow, followers trail their leader by an entry or two between reads: a
    // healthy cluster, which status must not call degraded.
    // The orders flow until status has been read a few times meanwhile, however long a read
    // takes on a busy machine (a follower seen behind is read again for up to two seconds).
    let flowing = AtomicBool::new(true);
    let reads_while_flowing = AtomicUsize::new(0);
    let orders = async {
        let mut accepted = Vec::new();
        for round in 0..LOAD_ROUNDS_AT_MOST {
            let payloads: Vec<Value> =
                (0..LOAD_CLIENTS).map(|client| order_json(&format!("Load {round}-{client}"), "small", "robusta", "none", 0)).collect();
            for reply in futures::future::join_all(payloads.iter().map(|payload| test.order(payload))).await {
                accepted.push(reply.order_id.unwrap_or_else(|| panic!("refused under load: {}", reply.message)));
            }
            if round + 1 >= LOAD_ROUNDS && reads_while_flowing.load(Ordering::Relaxed) >= STATUS_READS {
                break;
            }
        }
        flowing.store(false, Ordering::Relaxed);
        accepted
    };
    let watching = async {
        while flowing.load(Ordering::Relaxed) {
            let (health, verdict) = status(&test.dir).await;
            assert_eq!(verdict, Ok(()), "status while orders flow: {health:#}");
            reads_while_flowing.fetch_add(1, Ordering::Relaxed);
        }
    };
    let (accepted, ()) = tokio::join!(orders, watching);
    let reads = reads_while_flowing.load(Ordering::Relaxed);
    assert!(reads >= STATUS_READS, "only {reads} status reads overlapped {} orders", accepted.len());
    test.wait_for(&accepted, |record| record.status == OrderStatus::Ready, Duration::from_secs(120)).await;

    test.system.cluster.kill(2).await;
    eventually("brewq status to show n3 down", Duration::from_secs(60), || {
        let dir = test.dir.clone();
        async move { servers_up(&status(&dir).await.0) == [true, true, false] }
    })
    .await;
    // n3 stays down until restarted below.
    let (health, verdict) = status(&test.dir).await;
    let reason = verdict.expect_err(&format!("a server down is a degraded system: {health:#}"));
    assert!(
        reason.contains("degraded") && reason.contains("server n3 (") && reason.contains("is down") && reason.lines().count() == 1,
        "{reason}"
    );
    assert_eq!(health["servers"][2]["name"], "n3", "a server that is down is named by its place in cluster.json: {health:#}");
    test.system.cluster.restart(2).expect("n3 restarts");
    test.stop().await;
}
