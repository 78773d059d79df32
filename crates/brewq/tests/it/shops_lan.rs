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

mod chain;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use brewq_launch::ClusterInfo;
use brewq_protocol::{Ingredient, OrderReply, OrderStatus, StockSnapshot, subjects};
use futures::TryStreamExt;
use serde_json::Value;

use crate::harness::{eventually, order_json, until_found};
use crate::shops::{hub_orders, shop_records, shop_stock};
pub(crate) use chain::Chain;

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
    // The hub has heard of shop 1's stock and machines before the cut (each bucket is sourced
    // on its own, so its orders reaching the hub says nothing of them).
    eventually("the hub to hold shop 1's stock and machines", Duration::from_secs(30), || async {
        let Ok(stream) = async_nats::jetstream::new(hub_views[0].clone()).get_stream(subjects::CHAIN_STREAM).await else { return false };
        let mut held = true;
        for key in [subjects::chain_subject("stock", subjects::STOCK_KEY), subjects::chain_subject("machines", &subjects::machine_key(2))] {
            held &= stream.get_last_raw_message_by_subject(&key).await.is_ok();
        }
        held
    })
    .await;

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
