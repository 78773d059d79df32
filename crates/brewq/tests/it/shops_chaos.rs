//! The chain's fault sequence: the hand-deployed chain of `shops_lan.rs` (a hub of three
//! servers and two shops, each in network namespaces of its own), customers ordering at both
//! shops at a steady pace over NATS and HTTP, and one fault after the other: shop 1's link to
//! the hub cut (until shop 1 has taken a few orders without it), a hub server killed, the whole
//! hub killed, and shop 1's own server killed (`kill -9`, each started again from its data once
//! the other shops have taken a few orders). Each fault waits for both shops to serve again and
//! for the hub to show every order taken before it ended before the next. At the end every
//! accepted order has ended in one state at its shop, `brewq check` passes for each shop, and
//! the hub shows every order of each shop once, with the shop's final state. One row of figures
//! is printed per fault (times measured, not asserted); the run fails on a lost or doubled
//! order, a stock difference, a customer turned away by a shop whose own server was running, or
//! a fault the chain does not recover from (shops serving within a minute, the hub caught up
//! within three).
//!
//! Why not in `chaos.rs`: the chaos run measures how one shop on a 3-node cluster survives the
//! loss of servers, processes and links. In a chain, a shop's orders never touch the hub, so
//! the same faults on the hub would measure nothing about serving customers; and a shop's own
//! server is one server, whose loss stops that shop. This sequence measures what a chain adds:
//! that the hub's faults and a cut link cost the shops nothing, and how fast the hub catches up.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brewq_protocol::{OrderReply, OrderStatus, subjects};
use tokio_util::sync::CancellationToken;

use crate::harness::{brewq_bin, eventually, order_json};
use crate::shops::{hub_orders, shop_records};
use crate::shops_lan::{Chain, hub_order_ids, leaf_links};

/// A customer arrives at each shop this often.
const PACE: Duration = Duration::from_millis(300);
/// Orders each shop accepts after a fault's recovery (and during a fault that lasts "a while")
/// before going on.
const CALM: usize = 5;
/// How long the shops may take to serve again after a fault before the run fails: a bound on
/// liveness, far above what is measured (printed per fault).
const SERVED_WITHIN: Duration = Duration::from_secs(60);
/// How long the hub may take to catch up after a fault before the run fails: above the 2-minute
/// cap of the backoff with which nats-server retries a source that failed.
const CAUGHT_UP_WITHIN: Duration = Duration::from_secs(180);
/// The shops of the chain.
const SHOPS: [u32; 2] = [1, 2];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Nats,
    Http,
}

/// One order a customer placed: where, how, when it was sent and answered (from the start of
/// the run), and its id when accepted.
#[derive(Debug, Clone)]
struct Outcome {
    shop: u32,
    via: Via,
    sent: Duration,
    answered: Duration,
    order_id: Option<String>,
}

/// The customers of both shops, and what became of each of their orders.
struct Customers {
    start: Instant,
    outcomes: Mutex<Vec<Outcome>>,
    /// A customer's connection (the web role) to each shop's own server, by shop.
    kiosks: Vec<async_nats::Client>,
    webs: Vec<String>,
    http: reqwest::Client,
}

/// One fault: when it was made and over, when both shops served again, and when the hub had
/// caught up with every order taken before it was over.
struct Fault {
    name: &'static str,
    injected: Duration,
    over: Duration,
    served: Duration,
    caught_up: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_keeps_its_shops_serving_through_hub_and_link_faults_and_the_hub_catches_up() {
    let Some(mut chain) = Chain::create("shops_chaos") else { return };
    chain.security_init();
    chain.start_servers().await;
    chain.provision().await;
    for shop in SHOPS {
        chain.start_shop_services(shop, 0.1);
        chain.wait_shop_ready(shop).await;
    }
    let customers = Arc::new(Customers::new(&chain).await);
    let stop = CancellationToken::new();
    let arrivals = tokio::spawn(arrive(customers.clone(), stop.clone()));
    let faults = inject_faults(&mut chain, &customers).await;
    stop.cancel();
    arrivals.await.expect("every customer has an answer");
    let outcomes = customers.outcomes.lock().expect("outcomes").clone();
    print_rows(&faults, &outcomes);
    for shop in SHOPS {
        every_order_ended_once(&chain, &outcomes, shop).await;
    }
    let own_server_down = faults.iter().find(|fault| fault.name.starts_with("`kill -9` of shop 1's server")).expect("that fault");
    let turned_away: Vec<&Outcome> = outcomes
        .iter()
        .filter(|outcome| outcome.order_id.is_none())
        .filter(|outcome| !(outcome.shop == 1 && overlaps(outcome, own_server_down)))
        .collect();
    assert!(turned_away.is_empty(), "customers turned away by a shop whose own server ran: {turned_away:?}");
}

impl Customers {
    async fn new(chain: &Chain) -> Customers {
        let mut kiosks = Vec::new();
        for shop in SHOPS {
            kiosks.push(chain.shop_client(shop, "web").await);
        }
        Customers {
            start: Instant::now(),
            outcomes: Mutex::new(Vec::new()),
            kiosks,
            webs: SHOPS.iter().map(|&shop| chain.web(shop)).collect(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("http client"),
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// One plain customer: asks once, with no idempotency key, and takes the answer it gets.
    async fn place(self: Arc<Self>, shop: u32, via: Via, number: usize) {
        let sent = self.now();
        let order = order_json(&format!("Chain{shop}n{number}"), "small", "arabica", "none", 0);
        let order_id = match via {
            Via::Nats => {
                let kiosk = &self.kiosks[shop as usize - 1];
                let reply =
                    brewq_runtime::request::request_json::<_, OrderReply>(kiosk, subjects::ORDER_REQUESTS, &order, Duration::from_secs(10));
                reply.await.ok().and_then(|reply| reply.order_id)
            }
            Via::Http => {
                let url = format!("{}/api/orders", self.webs[shop as usize - 1]);
                match self.http.post(url).json(&order).send().await {
                    Ok(response) if response.status() == 201 => response.json::<OrderReply>().await.ok().and_then(|reply| reply.order_id),
                    _ => None,
                }
            }
        };
        let outcome = Outcome { shop, via, sent, answered: self.now(), order_id };
        self.outcomes.lock().expect("outcomes").push(outcome);
    }

    /// Orders of `shop` sent from `from` on (over `via` when given) that were accepted.
    fn accepted_since(&self, shop: u32, via: Option<Via>, from: Duration) -> usize {
        let outcomes = self.outcomes.lock().expect("outcomes");
        let wanted = |outcome: &&Outcome| outcome.shop == shop && outcome.sent >= from && via.is_none_or(|via| outcome.via == via);
        outcomes.iter().filter(wanted).filter(|outcome| outcome.order_id.is_some()).count()
    }

    /// The ids of the orders of `shop` sent before `until` and accepted.
    fn accepted_before(&self, shop: u32, until: Duration) -> Vec<String> {
        let outcomes = self.outcomes.lock().expect("outcomes");
        outcomes
            .iter()
            .filter(|outcome| outcome.shop == shop && outcome.sent < until)
            .filter_map(|outcome| outcome.order_id.clone())
            .collect()
    }
}

/// A customer at each shop every [`PACE`], by NATS and by HTTP in turn, until `stop`; returns
/// once every one of them has an answer.
async fn arrive(customers: Arc<Customers>, stop: CancellationToken) {
    let mut customers_ordering = tokio::task::JoinSet::new();
    let mut pace = tokio::time::interval(PACE);
    for number in 0.. {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = pace.tick() => {}
        }
        let via = if number % 2 == 0 { Via::Nats } else { Via::Http };
        for shop in SHOPS {
            customers_ordering.spawn(customers.clone().place(shop, via, number));
        }
    }
    while customers_ordering.join_next().await.is_some() {}
}

/// The faults, one after the other, each followed by its recovery.
async fn inject_faults(chain: &mut Chain, customers: &Customers) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut watch = HubWatch::new(chain).await;
    accepted_a_while(customers, &SHOPS).await;

    let injected = customers.now();
    chain.cut(1);
    let info = chain.info();
    eventually("shop 1's link to drop", Duration::from_secs(30), || async { leaf_links(&chain.http, &info, 1).await == Some(0) }).await;
    accepted_a_while(customers, &[1]).await;
    chain.heal(1);
    faults.push(recovery(chain, customers, &mut watch, "shop 1's link to the hub cut", injected).await);

    let injected = customers.now();
    chain.kill("n2").await;
    accepted_a_while(customers, &SHOPS).await;
    chain.start_hub_server(2);
    faults.push(recovery(chain, customers, &mut watch, "`kill -9` of hub server n2, started again", injected).await);

    let injected = customers.now();
    for node in ["n1", "n2", "n3"] {
        chain.kill(node).await;
    }
    accepted_a_while(customers, &SHOPS).await;
    for node in 1..=3 {
        chain.start_hub_server(node);
    }
    faults.push(recovery(chain, customers, &mut watch, "`kill -9` of the hub's three servers, started again", injected).await);

    let injected = customers.now();
    chain.kill("shop-1").await;
    accepted_a_while(customers, &[2]).await;
    chain.start_shop_server(1);
    faults.push(recovery(chain, customers, &mut watch, "`kill -9` of shop 1's server, started again", injected).await);
    faults
}

/// Waits until each of `shops` has accepted [`CALM`] orders sent from now on.
async fn accepted_a_while(customers: &Customers, shops: &[u32]) {
    let from = customers.now();
    eventually(&format!("{CALM} orders accepted at shops {shops:?}"), Duration::from_secs(60), || {
        let served = shops.iter().all(|&shop| customers.accepted_since(shop, None, from) >= CALM);
        async move { served }
    })
    .await;
}

/// Waits for the chain to recover from the fault `name`, made at `injected` and over now: both
/// shops serving over NATS and HTTP, every server healthy, the hub showing every order taken
/// before now, each in its shop's final state; then [`CALM`] more orders at each shop.
async fn recovery(chain: &Chain, customers: &Customers, watch: &mut HubWatch, name: &'static str, injected: Duration) -> Fault {
    let over = customers.now();
    eventually(&format!("both shops serving after {name}"), SERVED_WITHIN, || {
        let served =
            SHOPS.iter().all(|&shop| [Via::Nats, Via::Http].iter().all(|&via| customers.accepted_since(shop, Some(via), over) > 0));
        async move { served }
    })
    .await;
    let served = customers.now();
    let info = chain.info();
    let monitors: Vec<String> = info.monitor_urls.iter().chain(info.shops.iter().map(|shop| &shop.monitor_url)).cloned().collect();
    chain.wait_healthy(&monitors).await;
    let deadline = Instant::now() + CAUGHT_UP_WITHIN;
    while !watch.caught_up(customers, over).await {
        assert!(Instant::now() < deadline, "the hub did not catch up after {name}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let caught_up = customers.now();
    eprintln!("shops_chaos: {name}: served again after {:.1?}, hub caught up after {:.1?}", served - over, caught_up - over);
    accepted_a_while(customers, &SHOPS).await;
    Fault { name, injected, over, served, caught_up }
}

/// The hub's view of each shop, against the shop's own records.
struct HubWatch {
    /// By shop: a client of the shop's own server and one of the hub in the shop's account.
    clients: Vec<(async_nats::Client, async_nats::Client)>,
    /// Orders the hub showed in their shop's final state.
    confirmed: HashSet<String>,
}

impl HubWatch {
    async fn new(chain: &Chain) -> HubWatch {
        let mut clients = Vec::new();
        for shop in SHOPS {
            clients.push((chain.shop_client(shop, "admin").await, chain.hub_client(shop).await));
        }
        HubWatch { clients, confirmed: HashSet::new() }
    }

    /// Whether the hub shows every order accepted before `until`, each in its shop's final state.
    async fn caught_up(&mut self, customers: &Customers, until: Duration) -> bool {
        for (shop, (at_shop, at_hub)) in SHOPS.iter().zip(&self.clients) {
            let pending: Vec<String> =
                customers.accepted_before(*shop, until).into_iter().filter(|id| !self.confirmed.contains(id)).collect();
            if pending.is_empty() {
                continue;
            }
            let records = shop_records(at_shop).await;
            let Some(shown) = hub_orders(at_hub, &pending).await else { return false };
            for id in pending {
                let finished = records.get(&id).map(|record| record.status).filter(|status| status.is_terminal());
                if finished.is_some() && shown.get(&id) == finished.as_ref() {
                    self.confirmed.insert(id);
                }
            }
        }
        SHOPS.iter().all(|&shop| customers.accepted_before(shop, until).iter().all(|id| self.confirmed.contains(id)))
    }
}

/// Every order `shop` accepted ended there in one final state, `brewq check` finds its stock
/// accounted for, and the hub shows exactly the shop's orders, each in the shop's final state.
async fn every_order_ended_once(chain: &Chain, outcomes: &[Outcome], shop: u32) {
    let accepted: Vec<String> =
        outcomes.iter().filter(|outcome| outcome.shop == shop).filter_map(|outcome| outcome.order_id.clone()).collect();
    assert_eq!(accepted.iter().collect::<HashSet<_>>().len(), accepted.len(), "one order per accepted request at shop {shop}");
    let at_shop = chain.shop_client(shop, "admin").await;
    eventually(&format!("every order of shop {shop} to end"), Duration::from_secs(120), || async {
        let records = shop_records(&at_shop).await;
        accepted.iter().all(|id| records.get(id).is_some_and(|record| record.status.is_terminal()))
    })
    .await;
    let mut args = vec!["check".to_owned()];
    args.extend(chain.shop_flags(shop, "admin"));
    let output = std::process::Command::new(brewq_bin()).args(&args).arg("--data-dir").arg(chain.etc()).output().expect("brewq check runs");
    assert!(
        output.status.success(),
        "brewq check at shop {shop}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let hub = chain.hub_client(shop).await;
    eventually(&format!("the hub to show exactly shop {shop}'s orders, in their final states"), Duration::from_secs(120), || async {
        let records = shop_records(&at_shop).await;
        let ids: Vec<String> = records.keys().cloned().collect();
        let same_ids = hub_order_ids(&hub).await == ids.iter().cloned().collect();
        let shown = hub_orders(&hub, &ids).await.unwrap_or_default();
        same_ids && records.iter().all(|(id, record)| shown.get(id) == Some(&record.status))
    })
    .await;
    let statuses = shop_records(&at_shop).await.into_values().map(|record| record.status).collect::<Vec<OrderStatus>>();
    let ready = statuses.iter().filter(|status| **status == OrderStatus::Ready).count();
    println!("shops_chaos: shop {shop}: {} orders recorded ({ready} ready), every one shown once on the hub", statuses.len());
}

/// Whether `outcome`'s order was in flight at any time between the fault's start and both
/// shops serving again.
fn overlaps(outcome: &Outcome, fault: &Fault) -> bool {
    outcome.sent <= fault.served && outcome.answered >= fault.injected
}

/// One row per fault: orders in flight during it at each shop (accepted, turned away), and how
/// long the shops took to serve again and the hub to catch up after it was over.
fn print_rows(faults: &[Fault], outcomes: &[Outcome]) {
    println!(
        "| fault | lasted | shop 1: accepted / turned away | shop 2: accepted / turned away | served again after | hub caught up after |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for fault in faults {
        let count = |shop: u32| {
            let during: Vec<&Outcome> = outcomes.iter().filter(|outcome| outcome.shop == shop && overlaps(outcome, fault)).collect();
            let accepted = during.iter().filter(|outcome| outcome.order_id.is_some()).count();
            format!("{accepted} / {}", during.len() - accepted)
        };
        println!(
            "| {} | {:.1?} | {} | {} | {:.1?} | {:.1?} |",
            fault.name,
            fault.over - fault.injected,
            count(1),
            count(2),
            fault.served - fault.over,
            fault.caught_up - fault.over
        );
    }
    let sent = outcomes.len();
    let accepted = outcomes.iter().filter(|outcome| outcome.order_id.is_some()).count();
    println!("shops_chaos: {sent} orders sent at the two shops, {accepted} accepted");
}
