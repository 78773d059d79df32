//! Plain customers through the loss of one server: requests on `coffee.web.requests` and
//! `POST /api/orders` with no idempotency key, each waiting 10 s for its answer, as `nats req`
//! or a kiosk sends them, while one server of three is killed or paused. Nothing a refused or unanswered order
//! started is left behind, and every accepted order is brewed once: `brewq check` passes. How
//! many were served is printed, not asserted (it depends on how fast elections run on the
//! machine); the chaos run measures it fault by fault (RELIABILITY.md).

use std::time::Duration;

use brewq_protocol::{OrderReply, subjects};
use futures::future::join_all;

use crate::harness::{TestSystem, brewq_bin, eventually, order_json, scrape, sum_of};

/// Orders sent, one every [`SPACING`]; the fault comes after [`FAULT_AFTER`] of them.
const ORDERS: usize = 60;
const SPACING: Duration = Duration::from_millis(50);
const FAULT_AFTER: usize = 15;
/// How long a plain customer waits for an answer.
const PATIENCE: Duration = Duration::from_secs(10);

/// How a plain customer's order ended.
#[derive(Debug, Default)]
struct Outcomes {
    accepted: Vec<String>,
    refused: Vec<String>,
    /// The channel of each order with no answer in time.
    timed_out: Vec<&'static str>,
}

/// Sends the orders, one every [`SPACING`], each on its own, in turn over NATS and over HTTP
/// to the web shop at `web_url`; `fault` runs after the [`FAULT_AFTER`]th is sent.
async fn plain_customers(client: &async_nats::Client, web_url: &str, fault: impl std::future::Future<Output = ()>) -> Outcomes {
    let http = reqwest::Client::new();
    let sends = (0..ORDERS).map(|index| {
        let order = order_json(&format!("plain {index}"), "small", "arabica", "none", 0);
        let (client, http, orders_url) = (client.clone(), http.clone(), format!("{web_url}/api/orders"));
        async move {
            tokio::time::sleep(SPACING * index as u32).await;
            let reply = if index % 2 == 0 {
                brewq_runtime::request::request_json::<_, OrderReply>(&client, subjects::ORDER_REQUESTS, &order, PATIENCE).await.ok()
            } else {
                let response = http.post(orders_url).json(&order).timeout(PATIENCE).send().await.ok();
                match response {
                    Some(response) => response.json::<OrderReply>().await.ok(),
                    None => None,
                }
            };
            (if index % 2 == 0 { "NATS" } else { "HTTP" }, reply)
        }
    });
    let fault = async {
        tokio::time::sleep(SPACING * FAULT_AFTER as u32).await;
        fault.await;
    };
    let (replies, ()) = tokio::join!(join_all(sends), fault);
    let mut outcomes = Outcomes::default();
    for (channel, reply) in replies {
        match reply {
            Some(reply) if reply.is_success() => outcomes.accepted.push(reply.order_id.expect("an accepted order has an id")),
            Some(reply) => outcomes.refused.push(format!("{channel} {:?}: {}", reply.code, reply.message)),
            None => outcomes.timed_out.push(channel),
        }
    }
    println!(
        "plain customers: {} sent, {} accepted, {} refused, {} timed out {:?}; refusals: {:?}",
        ORDERS,
        outcomes.accepted.len(),
        outcomes.refused.len(),
        outcomes.timed_out.len(),
        outcomes.timed_out,
        outcomes.refused
    );
    outcomes
}

/// A system laid out as `brewq up` lays it out: a controller and a stock manager with each
/// server as home, and the web shop, whose main connection's home is the first server (the
/// one the tests stop) and its second connection's the next.
async fn system_as_up() -> TestSystem {
    TestSystem::start(3, |config| {
        config.controllers = 3;
        config.stock_managers = 3;
        config.web_listen = Some(crate::harness::free_listen_address());
    })
    .await
}

/// Every accepted order is brewed, the queue drains and `brewq check` passes: no order lost,
/// none brewed twice, no stock held by an order that is not open.
async fn assert_nothing_lost_or_left(system: &TestSystem, outcomes: &Outcomes) {
    let records = system.wait_terminal(&outcomes.accepted, Duration::from_secs(120)).await;
    assert!(records.values().all(|record| record.status == brewq_protocol::OrderStatus::Ready), "every accepted order is brewed");
    eventually("the work queue to drain", Duration::from_secs(60), || async { system.queue_depth().await == 0 }).await;
    // A server back from a fault may still be catching up: a check that cannot read (no
    // table) is run again; one that reads and finds a difference fails the test.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let check =
            std::process::Command::new(brewq_bin()).args(["check", "--data-dir"]).arg(&system.dir).output().expect("brewq check runs");
        let (table, errors) = (String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
        if check.status.success() {
            return;
        }
        assert!(table.trim().is_empty() && std::time::Instant::now() < deadline, "brewq check found differences:\n{table}\n{errors}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The NATS customers' connection, to the servers the fault spares: what is measured is how
/// the services ride out the fault, not how soon one client notices that its own server
/// stopped (requests sent into a paused server's socket are lost with it, whatever the
/// services do). The web shop's main connection is on the faulted server: it sends each
/// order again through its second one.
async fn customer(system: &TestSystem) -> async_nats::Client {
    let mut config = system.system.nats_config(brewq_launch::Role::Admin, "customers").expect("admin config");
    config.urls.remove(0);
    brewq_runtime::connect(&config).await.expect("customers connect")
}

#[tokio::test]
async fn plain_customers_are_served_through_a_killed_server_and_nothing_is_left_reserved() {
    let mut system = system_as_up().await;
    let (client, web_url) = (customer(&system).await, system.http_url());
    let outcomes = plain_customers(&client, &web_url, system.system.cluster.kill(0)).await;
    assert_nothing_lost_or_left(&system, &outcomes).await;
    system.stop().await;
}

/// How long the paused server stays stopped: longer than an election, shorter than a
/// customer's patience would make it harmless.
const PAUSE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn plain_customers_are_served_through_a_server_paused_for_20_s() {
    let mut system = system_as_up().await;
    let (client, web_url) = (customer(&system).await, system.http_url());
    let node = system.system.cluster.node(0).expect("node 0");
    let pause = async {
        node.signal("STOP").expect("SIGSTOP");
        // The fault lasts this long: it is the scenario, not a wait for an event.
        tokio::time::sleep(PAUSE).await;
        node.signal("CONT").expect("SIGCONT");
    };
    let outcomes = plain_customers(&client, &web_url, pause).await;
    assert_nothing_lost_or_left(&system, &outcomes).await;
    system.stop().await;
}

/// A controller that stops answering (stopped, its connection still open) is handed its share
/// of the order requests until its server gives it up: the other controllers, standing by,
/// take each of those over, and every plain customer is served. When it wakes, what it was
/// handed is the same orders (a keyless order's id comes from its request), not new ones.
/// The requests are sent through each server in turn: a server hands a request to a member of
/// the queue group connected to it first, so whichever server the stopped controller is on,
/// it is handed some.
#[tokio::test]
async fn the_orders_a_stopped_controller_was_handed_are_taken_over_and_placed_once() {
    let mut system = TestSystem::start(2, |config| config.controllers = 3).await;
    let mut through = Vec::new();
    for url in system.system.cluster.urls() {
        let config = brewq_runtime::NatsConfig {
            urls: vec![url],
            ..system.system.nats_config(brewq_launch::Role::Admin, "customer").expect("config")
        };
        through.push(brewq_runtime::connect(&config).await.expect("connects"));
    }
    let answers = ["brewq_orders_accepted_total", "brewq_orders_refused_total"];
    let answered_before = metric_total(&system, &["controller-1"], &answers).await;
    let controller = system.system.service(brewq_launch::ServiceKind::Controller).expect("a controller");
    controller.signal("STOP").expect("SIGSTOP");
    // Sent within a second and a half: the server pings the stopped controller every 2 s and
    // gives it up after two unanswered, so it is handed about a third of them.
    let sends = (0..30u32).map(|index| {
        let client = through[index as usize % through.len()].clone();
        let order = order_json(&format!("handed {index}"), "small", "arabica", "none", 0);
        async move {
            tokio::time::sleep(SPACING * index).await;
            brewq_runtime::request::request_json::<_, OrderReply>(&client, subjects::ORDER_REQUESTS, &order, PATIENCE).await
        }
    });
    let replies = join_all(sends).await;
    let controller = system.system.service(brewq_launch::ServiceKind::Controller).expect("a controller");
    controller.signal("CONT").expect("SIGCONT");
    let accepted: Vec<String> =
        replies.iter().filter_map(|reply| reply.as_ref().ok().filter(|reply| reply.is_success())?.order_id.clone()).collect();
    let unserved: Vec<String> =
        replies.iter().filter(|reply| !reply.as_ref().is_ok_and(OrderReply::is_success)).map(|reply| format!("{reply:?}")).collect();
    assert!(unserved.is_empty(), "every plain customer is served: {unserved:?}");

    // The requests taken over are those the stopped controller was handed; woken, it places
    // each of them too (or finds it brewed already) and answers.
    let taken_over = taken_over_requests(&system);
    println!("{} plain orders, {} taken over from the stopped controller", accepted.len(), taken_over.len());
    assert!(!taken_over.is_empty(), "the stopped controller was handed some of the orders");
    eventually("the woken controller to answer what it was handed", Duration::from_secs(30), || async {
        metric_total(&system, &["controller-1"], &answers).await >= answered_before + taken_over.len() as f64
    })
    .await;
    assert_nothing_lost_or_left(&system, &Outcomes { accepted: accepted.clone(), ..Outcomes::default() }).await;
    let keys = system.bucket(subjects::ORDERS_BUCKET).await.keys().await.expect("keys");
    let records: Vec<String> = futures::TryStreamExt::try_collect(keys).await.expect("record keys");
    assert_eq!(records.len(), accepted.len(), "one order per customer: {records:?}");
    system.stop().await;
}

/// The sum of some counters (every label) over some services' metrics.
async fn metric_total(system: &TestSystem, services: &[&str], names: &[&str]) -> f64 {
    let mut total = 0.0;
    for service in services {
        let page = scrape(&system.system.info.metrics_urls[*service]).await;
        total += names.iter().map(|name| sum_of(&page, name)).sum::<f64>();
    }
    total
}

/// The order requests the controllers took over from one another, by reference, from their
/// logs.
fn taken_over_requests(system: &TestSystem) -> std::collections::BTreeSet<String> {
    let mut requests = std::collections::BTreeSet::new();
    for controller in ["controller-1", "controller-2", "controller-3"] {
        let log = std::fs::read_to_string(system.dir.join("logs").join(format!("{controller}.log"))).unwrap_or_default();
        for line in log.lines().filter(|line| line.contains("taking it over")) {
            let reference = line.split("taken_over=\"").nth(1).and_then(|rest| rest.split('"').next());
            requests.extend(reference.map(str::to_owned));
        }
    }
    requests
}

/// A reserve whose answer never comes (the stock manager stopped, its requests waiting in its
/// socket) is rolled back: the order is recorded failed and its stock released, so the late
/// reserve, when the stock manager wakes, sets nothing aside for good; and the customer's
/// retry with the same key places the order again under a new id, brewed once.
#[tokio::test]
async fn a_reserve_never_answered_is_rolled_back_and_the_retry_places_the_order_again() {
    let mut system = TestSystem::start(1, |_| {}).await;
    let mut order = order_json("Hedy", "small", "arabica", "none", 0);
    order["idempotency_key"] = serde_json::json!("never-answered-1");
    let stock = system.system.service(brewq_launch::ServiceKind::Stock).expect("a stock manager");
    stock.signal("STOP").expect("SIGSTOP");
    let client = system.admin.clone();
    let first = async { brewq_runtime::request::request_json::<_, OrderReply>(&client, subjects::ORDER_REQUESTS, &order, PATIENCE).await };
    let wake = async {
        // The stock manager stays stopped past the controller's deadline for the order.
        tokio::time::sleep(Duration::from_secs(12)).await;
        stock.signal("CONT").expect("SIGCONT");
    };
    let (first, ()) = tokio::join!(first, wake);
    // Refused, or no answer within the customer's patience (the rollback comes first).
    assert!(first.as_ref().map_or(true, |reply| !reply.is_success()), "{first:?}");

    let again = system.order_until_answered(&order, std::time::Instant::now() + Duration::from_secs(60)).await;
    assert!(again.is_success(), "the retry is placed: {again:?}");
    let order_id = again.order_id.expect("id");
    let records = system.wait_terminal(std::slice::from_ref(&order_id), Duration::from_secs(60)).await;
    assert_eq!(records[&order_id].status, brewq_protocol::OrderStatus::Ready);
    // The first attempt finishes its rollback once the stock manager answers again (it keeps
    // trying for 30 s, past the customer's patience): then nothing is left reserved.
    eventually("the first attempt's stock to be released", Duration::from_secs(40), || async {
        system.stock().await.levels.values().map(|level| level.reserved).sum::<u64>() == 0
    })
    .await;
    let outcomes = Outcomes { accepted: vec![order_id], ..Outcomes::default() };
    assert_nothing_lost_or_left(&system, &outcomes).await;
    system.stop().await;
}
