//! The chaos run: orders arriving at a steady pace on 3 nodes, 2 controllers, 2 stock managers,
//! 5 machines and a web shop, from customers who retry with an idempotency key beside plain ones
//! who ask once with no key and wait 10 s (over NATS and over HTTP), while, one after the other,
//! a nats-server is killed and later started again, a machine is killed mid-brew, a controller
//! and a stock manager are killed and then started again, a nats-server is cut off the network
//! (its own network namespace, link down; SIGSTOP where namespaces cannot be made) for longer
//! than an election, a nats-server is paused (SIGSTOP) for 20 s, and a nats-server is started
//! again with its data removed (a replaced disk). Each fault waits for the system to serve again
//! before the next. At the end `brewq check` accounts for every order and every gram, the run
//! prints one row of figures per fault (`figures`), and fails on a lost order, an order brewed
//! twice, a stock difference, a plain customer turned away outside the faults, or a fault the
//! system takes more than a minute to recover from.
//!
//! `BREWQ_CHAOS_ORDERS` sets how many orders arrive over the run's planned length (200 by
//! default; RELIABILITY.md has the long form).

mod customers;
mod figures;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use brewq_launch::{Role, ServiceKind};
use brewq_protocol::{MachineHeartbeat, MachineState, subjects};
use tokio_util::sync::CancellationToken;

use crate::harness::{TestSystem, brewq_bin, eventually, free_listen_address};
use crate::lan::Lan;
use customers::{Answer, Kind, Shop};
use figures::Fault;

/// How long the run lasts when every fault recovers as it should: the orders are spread over
/// it. A run that takes longer has more orders.
const PLANNED: Duration = Duration::from_secs(90);
/// Plain orders accepted after a fault's recovery before the next fault.
const CALM: usize = 5;
/// How long a paused server stays stopped.
const PAUSE: Duration = Duration::from_secs(20);
/// How long n3 stays cut off once its peers have dropped their routes to it: longer than an
/// election.
const CUT_OFF: Duration = Duration::from_secs(8);
/// The goal (issue 18): at most this share of a fault's plain orders unserved (refused or
/// unanswered). Printed, not asserted: the share depends on which server the web shop's and
/// the customers' connections happen to be on (RELIABILITY.md).
const UNSERVED_GOAL: f64 = 0.01;
/// What the code holds instead: every fault recovers within this long, so plain customers are
/// turned away only during it (runs measured up to 34 s, for a cut-off server; RELIABILITY.md).
const RECOVERY_BOUND: Duration = Duration::from_secs(60);

fn orders_wanted() -> usize {
    std::env::var("BREWQ_CHAOS_ORDERS").ok().and_then(|value| value.parse().ok()).unwrap_or(200)
}

// Two threads: the customers' pace holds while the faults are made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_keeps_every_invariant_through_a_chaos_run() {
    let wanted = orders_wanted();
    // n3 on a host of its own, to be cut off the network; where namespaces cannot be made,
    // it is frozen instead.
    let island = match Lan::create(1) {
        Ok(lan) => Some(lan),
        Err(why) if std::env::var_os("BREWQ_REQUIRE_NETNS").is_some() => {
            panic!("BREWQ_REQUIRE_NETNS is set and network namespaces cannot be made: {why}")
        }
        Err(why) => {
            eprintln!("chaos: no network namespace ({why}); the partition step freezes n3 with SIGSTOP instead");
            None
        }
    };
    let mut system = start(wanted, island.as_ref()).await;
    let kiosk = system.system.nats_config(Role::Web, "kiosk").expect("a plain customer's connection");
    let shop = Arc::new(Shop::new(system.admin.clone(), kiosk, system.http_url()));
    let stop = CancellationToken::new();
    let arrivals = tokio::spawn(customers::arrive(shop.clone(), PLANNED / wanted.max(1) as u32, stop.clone()));
    let faults = inject_faults(&mut system, &shop, island.as_ref()).await;
    stop.cancel();
    let took = shop.now();
    let sent = arrivals.await.expect("every customer has an answer");
    let outcomes = shop.outcomes();
    assert_eq!(outcomes.len(), sent);
    let accepted: Vec<String> = outcomes
        .iter()
        .filter_map(|outcome| match &outcome.answer {
            Answer::Accepted(order_id) => Some(order_id.clone()),
            _ => None,
        })
        .collect();
    let end = settle(&system, &shop, &accepted).await;
    let rows = figures::rows(&faults, &outcomes, &end.evidence);
    let rate = sent as f64 / took.as_secs_f64();
    println!("{sent} orders sent in {took:.0?} ({rate:.1}/s; planned: {wanted} in {PLANNED:?}), {} accepted\n", accepted.len());
    println!("{}", figures::markdown(&rows));
    let brewed = figures::brewed_unanswered(&outcomes, &end.evidence);
    println!("{brewed} plain orders brewed after no answer, or the web shop's 503 (the answer was lost, not the order)");
    let missed: Vec<String> = rows[..faults.len()]
        .iter()
        .filter(|row| !row.unserved_within(UNSERVED_GOAL))
        .map(|row| format!("{} ({} of {})", row.fault, row.unserved(), row.plain))
        .collect();
    println!("goal, at most {:.0} % of a fault's plain orders unserved, missed by: {missed:?}", 100.0 * UNSERVED_GOAL);
    for line in figures::unserved_by_time(&faults, &outcomes) {
        println!("  {line}");
    }
    println!();
    println!("{}", end.table);

    let refused: Vec<_> =
        outcomes.iter().filter(|outcome| outcome.kind == Kind::Retrying && !matches!(outcome.answer, Answer::Accepted(_))).collect();
    assert!(refused.is_empty(), "customers with an idempotency key refused, or not accepted in 120 s: {refused:?}");
    assert_eq!(accepted.iter().collect::<HashSet<_>>().len(), accepted.len(), "one order per accepted request");
    for row in &rows {
        assert_eq!((row.lost, row.twice, row.stock_difference), (0, 0, 0), "lost, brewed twice, stock difference: {row:?}");
    }
    let unexplained = figures::unexplained(&outcomes, &end.evidence);
    assert!(unexplained.is_empty(), "orders no answer explains (a refused order placed all the same): {unexplained:?}");
    assert!(end.drained, "the work queue did not drain (logs in {})", system.dir.display());
    assert!(end.checked, "brewq check found differences:\n{}", end.table);
    let (outside, during) = rows.split_last().expect("the row of the orders outside the faults");
    assert_eq!(outside.unserved(), 0, "plain customers turned away outside every fault's window: {outside:?}");
    for row in during {
        let recovered = row.recovered_after.is_some_and(|after| after <= RECOVERY_BOUND);
        assert!(recovered, "not served again within {RECOVERY_BOUND:?}: {row:?}");
    }
    system.stop().await;
    drop(island);
}

/// Starts the system of the run, with n3 on the `island` when there is one, and waits for its
/// web shop.
async fn start(wanted: usize, island: Option<&Lan>) -> TestSystem {
    let system = TestSystem::start(5, |config| {
        if let Some(island) = island {
            let outside = brewq_launch::cluster::NodeHost { address: island.gateway.clone(), netns: None };
            let inside =
                brewq_launch::cluster::NodeHost { address: island.addresses[0].clone(), netns: Some(island.namespaces[0].clone()) };
            config.node_hosts = vec![outside.clone(), outside, inside];
        }
        config.controllers = 3;
        config.stock_managers = 3;
        config.brew_scale = 0.02;
        config.fail_rate = 0.1;
        config.web_listen = Some(free_listen_address());
        // Enough of everything for every order, and for a run that takes longer than planned:
        // the run is about faults, not shortages.
        let enough = 4 * wanted as u64;
        config.topology.initial_stock = brewq_protocol::Ingredient::ALL
            .iter()
            .map(|&ingredient| (ingredient, enough * brewq_protocol::stock::default_low_at(ingredient)))
            .collect();
    })
    .await;
    let web_url = system.http_url();
    eventually("the web shop to answer", Duration::from_secs(30), || async {
        reqwest::get(format!("{web_url}/healthz")).await.is_ok_and(|response| response.status().is_success())
    })
    .await;
    system
}

/// How the system stands once the run is over.
struct End {
    /// The work queue emptied.
    drained: bool,
    /// `brewq check` passed, and its output.
    checked: bool,
    table: String,
    evidence: figures::Evidence,
}

/// Waits, bounded, for the `accepted` orders to end and the work queue to drain (a lost order
/// is counted in the figures, not failed on here), then runs `brewq check`.
async fn settle(system: &TestSystem, shop: &Shop, accepted: &[String]) -> End {
    let _ = tokio::time::timeout(Duration::from_secs(300), system.wait_terminal(accepted, Duration::from_secs(600))).await;
    let drained = tokio::time::timeout(Duration::from_secs(120), async {
        while system.queue_depth().await != 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .is_ok();
    let check = |json: bool| {
        let mut command = std::process::Command::new(brewq_bin());
        command.arg("check").args(json.then_some("--json")).arg("--data-dir").arg(&system.dir);
        command.output().expect("brewq check runs")
    };
    let (text, json) = (check(false), check(true));
    let mut table = String::from_utf8_lossy(&text.stdout).into_owned();
    table.push_str(&String::from_utf8_lossy(&text.stderr));
    let accounting: serde_json::Value = serde_json::from_slice(&json.stdout).expect("brewq check --json prints JSON");
    let evidence = figures::gather(system, shop, &accounting).await;
    End { drained, checked: text.status.success(), table, evidence }
}

/// The faults, one after the other; each waits for the system to serve again (and a while more)
/// before the next.
async fn inject_faults(system: &mut TestSystem, shop: &Shop, island: Option<&Lan>) -> Vec<Fault> {
    let mut faults = Vec::new();
    served_a_while(shop).await;

    let injected = shop.now();
    system.system.cluster.kill(1).await;
    faults.push(recovery(system, shop, "`kill -9` of nats-server n2", injected).await);

    let injected = shop.now();
    system.system.cluster.restart(1).expect("n2 restarts");
    faults.push(recovery(system, shop, "n2 started again on its data", injected).await);

    let machine = brewing_machine(system).await;
    let injected = shop.now();
    system.system.kill_service(ServiceKind::Maker(machine)).await;
    faults.push(recovery(system, shop, "`kill -9` of a machine mid-brew", injected).await);

    let injected = shop.now();
    system.system.kill_service(ServiceKind::Controller).await;
    faults.push(recovery(system, shop, "`kill -9` of a controller", injected).await);

    let injected = shop.now();
    system.system.kill_service(ServiceKind::Stock).await;
    faults.push(recovery(system, shop, "`kill -9` of a stock manager", injected).await);

    let injected = shop.now();
    let revived = system.system.revive();
    eprintln!("chaos: restarted {revived:?}");
    faults.push(recovery(system, shop, "the killed machine, controller and stock manager started again", injected).await);

    let injected = shop.now();
    let cut = cut_off_n3(system, island).await;
    faults.push(recovery(system, shop, cut, injected).await);

    let injected = shop.now();
    let node = system.system.cluster.node(0).expect("n1 runs");
    node.signal("STOP").expect("SIGSTOP");
    // The fault lasts this long: it is the scenario, not a wait for an event.
    tokio::time::sleep(PAUSE).await;
    node.signal("CONT").expect("SIGCONT");
    faults.push(recovery(system, shop, "nats-server n1 paused (SIGSTOP) for 20 s", injected).await);

    let injected = shop.now();
    system.system.cluster.replace_disk(1).await.expect("n2 starts again with no data");
    faults.push(recovery(system, shop, "n2 started again with its data removed", injected).await);
    faults
}

/// Waits for the system to recover from the fault `name`, made at `injected` and over now:
/// every running server healthy, a plain order sent from now on accepted, and [`CALM`] more.
async fn recovery(system: &mut TestSystem, shop: &Shop, name: &str, injected: Duration) -> Fault {
    let over = shop.now();
    let (running, names): (Vec<String>, Vec<String>) = {
        let cluster = &mut system.system.cluster;
        let urls = cluster.monitor_urls();
        urls.into_iter()
            .enumerate()
            .filter(|(index, _)| cluster.node(*index).is_some())
            .map(|(index, url)| (url, format!("n{}", index + 1)))
            .unzip()
    };
    let monitor = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("an HTTP client");
    eventually(&format!("every running server healthy after {name}"), Duration::from_secs(120), || async {
        for url in &running {
            let healthy = monitor.get(format!("{url}/healthz")).send().await.is_ok_and(|response| response.status().is_success());
            if !healthy {
                return false;
            }
        }
        true
    })
    .await;
    let healthy = shop.now();
    eventually(&format!("a plain order sent after {name} to be accepted"), Duration::from_secs(60), || {
        let served = shop.plain_accepted_since(over) > 0;
        async move { served }
    })
    .await;
    eprintln!("chaos: {name}: served again after {:.1} s", (shop.now() - injected).as_secs_f64());
    served_a_while(shop).await;
    // One fault at a time: the next comes once every order of this one has its answer, and
    // every server has rejoined its peers (a paused server answers its health check at once,
    // before it finds its routes dead and catches up).
    let calm = shop.now();
    eventually(&format!("every order sent during {name} answered"), Duration::from_secs(150), || {
        let answered = shop.answered_all_sent_before(calm);
        async move { answered }
    })
    .await;
    eventually(&format!("every running server rejoined after {name}"), Duration::from_secs(120), || async {
        rejoined(&monitor, &running, &names).await
    })
    .await;
    Fault { name: name.to_owned(), injected, over, healthy }
}

/// Whether each server of `running` (monitoring URLs; `names`, their names) has a route to
/// every other and knows the JetStream meta leader, which sees every running peer current.
async fn rejoined(monitor: &reqwest::Client, running: &[String], names: &[String]) -> bool {
    for url in running {
        let read = |path: &'static str| async move {
            let response = monitor.get(format!("{url}/{path}")).send().await.ok()?;
            response.json::<serde_json::Value>().await.ok()
        };
        let (Some(routez), Some(jsz)) = (read("routez").await, read("jsz").await) else { return false };
        let peers: std::collections::BTreeSet<&str> =
            routez["routes"].as_array().into_iter().flatten().filter_map(|route| route["remote_name"].as_str()).collect();
        let meta = &jsz["meta_cluster"];
        let replicas = meta["replicas"].as_array().cloned().unwrap_or_default();
        let running_peer =
            |replica: &&serde_json::Value| replica["name"].as_str().is_some_and(|name| names.iter().any(|running| running == name));
        let own = routez["server_name"].as_str().unwrap_or_default();
        let leader = meta["leader"].as_str().unwrap_or_default();
        // Only the leader knows how far its followers are.
        let current =
            leader != own || replicas.iter().filter(running_peer).all(|replica| replica["current"] == true && replica["offline"] != true);
        if !names.iter().all(|name| name == own || peers.contains(name.as_str())) || leader.is_empty() || !current {
            return false;
        }
    }
    true
}

/// Waits until [`CALM`] plain orders sent from now on are accepted.
async fn served_a_while(shop: &Shop) {
    let from = shop.now();
    eventually(&format!("{CALM} plain orders accepted"), Duration::from_secs(60), || {
        let served = shop.plain_accepted_since(from) >= CALM;
        async move { served }
    })
    .await;
}

/// Cuts n3 off the network until its peers drop their routes to it, then for [`CUT_OFF`] more,
/// and joins it again; freezes it for [`CUT_OFF`] where there is no namespace. Returns what it
/// did, for the figures.
async fn cut_off_n3(system: &mut TestSystem, island: Option<&Lan>) -> &'static str {
    match island {
        Some(island) => {
            island.cut(0);
            // Make sure the cut is real: n1 loses its route to n3.
            let monitor = format!("http://{}:{}/routez", island.gateway, system.system.cluster.ports[0].monitor);
            eventually("n1 to lose its route to n3", Duration::from_secs(30), || async {
                let routez: serde_json::Value = match reqwest::get(&monitor).await {
                    Ok(response) => response.json().await.unwrap_or_default(),
                    Err(_) => return false,
                };
                let routes = routez["routes"].as_array().cloned().unwrap_or_default();
                !routes.iter().any(|route| route["remote_name"] == "n3")
            })
            .await;
            eprintln!("chaos: n3 cut off");
            // The fault lasts longer than an election; this sleep is the fault, not a wait.
            tokio::time::sleep(CUT_OFF).await;
            island.heal(0);
            "nats-server n3 cut off the network past an election"
        }
        None => {
            let node = system.system.cluster.node(2).expect("n3 runs");
            node.signal("STOP").expect("SIGSTOP");
            tokio::time::sleep(CUT_OFF).await;
            node.signal("CONT").expect("SIGCONT");
            "nats-server n3 frozen (SIGSTOP) for 8 s, no namespace"
        }
    }
}

/// A machine brewing right now, from the heartbeats.
async fn brewing_machine(system: &TestSystem) -> u32 {
    let store = system.bucket(subjects::MACHINES_BUCKET).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let fleet: Vec<MachineHeartbeat> = brewq_runtime::kv::all_json(&system.admin, &store).await.unwrap_or_default();
        if let Some(machine) = fleet.iter().find(|machine| machine.state == MachineState::Brewing) {
            return machine.id;
        }
        assert!(std::time::Instant::now() < deadline, "no machine brewing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
