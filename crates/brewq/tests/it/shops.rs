//! Many shops, one hub: each shop on a leaf node of its own keeps taking and brewing orders,
//! over HTTP and NATS, while the hub is frozen; no shop's credentials reach another shop; and
//! the hub shows every order of every shop once, with its final state, after the link returns.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use brewq_launch::Role;
use brewq_launch::cluster::ShopInfo;
use brewq_protocol::{
    Ingredient, MachineHeartbeat, MachineState, OrderRecord, OrderReply, OrderStatus, StockCommand, StockReply, StockSnapshot, subjects,
};
use time::format_description::well_known::Rfc3339;

use crate::harness::{TestSystem, eventually, order_json, records_where, until_found};

/// A client of `role` in shop `shop`, on the shop's leaf node, or on the hub with `on_hub`.
async fn shop_client(system: &TestSystem, shop: u32, role: Role, on_hub: bool) -> async_nats::Client {
    let mut config = system.system.shop_config(shop, role).expect("shop config");
    if on_hub {
        config.urls = system.system.cluster.urls();
    }
    brewq_runtime::connect(&config).await.expect("connects")
}

async fn order_over_nats(client: &async_nats::Client, name: &str) -> String {
    let reply: OrderReply = brewq_runtime::request::request_json(
        client,
        subjects::ORDER_REQUESTS,
        &order_json(name, "small", "arabica", "none", 0),
        Duration::from_secs(10),
    )
    .await
    .expect("the shop's controller answers");
    reply.order_id.expect("accepted")
}

async fn order_over_http(shop: &ShopInfo, name: &str) -> String {
    let url = format!("{}/api/orders", shop.http_url.as_deref().expect("the shop has a web shop"));
    let response = reqwest::Client::new().post(url).json(&order_json(name, "small", "arabica", "none", 0)).send().await.expect("answers");
    assert!(response.status().is_success(), "{}", response.status());
    let reply: OrderReply = response.json().await.expect("json");
    reply.order_id.expect("accepted")
}

/// The shop's records, read in the shop's own domain.
pub(crate) async fn shop_records(client: &async_nats::Client) -> HashMap<String, OrderRecord> {
    let store = async_nats::jetstream::new(client.clone()).get_key_value(subjects::ORDERS_BUCKET).await.expect("bucket");
    records_where(client, &store, |_| true).await.into_iter().map(|record| (record.id.clone(), record)).collect()
}

/// The orders the hub shows for a shop, from its chain stream (`None` while the hub cannot say).
pub(crate) async fn hub_orders(hub: &async_nats::Client, ids: &[String]) -> Option<HashMap<String, OrderStatus>> {
    let mut jetstream = async_nats::jetstream::new(hub.clone());
    jetstream.set_timeout(Duration::from_secs(1));
    let stream = jetstream.get_stream(subjects::CHAIN_STREAM).await.ok()?;
    let mut shown = HashMap::new();
    for id in ids {
        let Ok(message) = stream.get_last_raw_message_by_subject(&subjects::chain_subject("orders", id)).await else { continue };
        let record: OrderRecord = serde_json::from_slice(&message.payload).ok()?;
        shown.insert(id.clone(), record.status);
    }
    Some(shown)
}

/// How many links to the hub the shop's server has (`None` if its monitoring does not answer).
async fn leaf_links(shop: &ShopInfo) -> Option<u64> {
    let leafz: serde_json::Value = reqwest::get(format!("{}/leafz", shop.monitor_url)).await.ok()?.json().await.ok()?;
    leafz["leafnodes"].as_u64()
}

#[tokio::test]
async fn a_shop_cut_off_from_the_hub_keeps_brewing_and_the_hub_catches_up_once() {
    let mut system = TestSystem::start(2, |config| {
        config.shops = 2;
        crate::harness::with_web_and_office(config);
    })
    .await;
    let shops = system.system.info.shops.clone();
    assert_eq!(shops.len(), 2);
    let one = shop_client(&system, 1, Role::Admin, false).await;
    let two = shop_client(&system, 2, Role::Admin, false).await;

    // Each shop takes orders over NATS and HTTP, and brews them itself.
    let mut placed: HashMap<u32, Vec<String>> = HashMap::new();
    for (shop, client) in [(1, &one), (2, &two)] {
        let ids = placed.entry(shop).or_default();
        ids.push(order_over_nats(client, &format!("Nats{shop}")).await);
        ids.push(order_over_http(&shops[shop as usize - 1], &format!("Http{shop}")).await);
    }
    for (shop, client) in [(1, &one), (2, &two)] {
        let ids = placed[&shop].clone();
        eventually(&format!("shop {shop}'s orders to be ready"), Duration::from_secs(30), || async {
            let records = shop_records(client).await;
            ids.iter().all(|id| records.get(id).is_some_and(|record| record.status == OrderStatus::Ready))
        })
        .await;
    }
    // No shop holds another's orders, and no shop's credential opens another shop.
    assert!(shop_records(&two).await.keys().all(|id| !placed[&1].contains(id)), "shop 2 holds shop 1's orders");
    let mut stranger = system.system.shop_config(1, Role::Web).expect("config");
    stranger.urls = vec![shops[1].nats_urls[0].clone()];
    let refused = brewq_runtime::connect::options(&stranger)
        .expect("creds")
        .connection_timeout(Duration::from_secs(3))
        .connect(stranger.urls.as_slice())
        .await;
    assert!(refused.is_err(), "shop 1's web credential opened shop 2's server");

    // The hub's view of shop 1 shows each order, with its final state.
    let hub = shop_client(&system, 1, Role::Admin, true).await;
    let ids = placed[&1].clone();
    eventually("the hub to show shop 1's orders", Duration::from_secs(30), || async {
        hub_orders(&hub, &ids).await.is_some_and(|shown| ids.iter().all(|id| shown.get(id) == Some(&OrderStatus::Ready)))
    })
    .await;

    // The hub frozen: every shop keeps taking and brewing orders, its pages working.
    for index in 0..system.system.cluster.len() {
        system.system.cluster.node(index).expect("running").signal("STOP").expect("frozen");
    }
    for shop in &shops {
        eventually(&format!("shop {}'s link to the hub to drop", shop.id), Duration::from_secs(30), || async {
            leaf_links(shop).await == Some(0)
        })
        .await;
    }
    let cut = Instant::now();
    let mut during: HashMap<u32, Vec<String>> = HashMap::new();
    for n in 0..3 {
        for (shop, client) in [(1, &one), (2, &two)] {
            let ids = during.entry(shop).or_default();
            ids.push(order_over_nats(client, &format!("Cut{shop}n{n}")).await);
            ids.push(order_over_http(&shops[shop as usize - 1], &format!("Cut{shop}h{n}")).await);
        }
    }
    for (shop, client) in [(1, &one), (2, &two)] {
        let ids = during[&shop].clone();
        eventually(&format!("shop {shop}'s orders to be ready while the hub is frozen"), Duration::from_secs(30), || async {
            let records = shop_records(client).await;
            ids.iter().all(|id| records.get(id).is_some_and(|record| record.status == OrderStatus::Ready))
        })
        .await;
        let office = shops[shop as usize - 1].office_url.clone().expect("operator pages");
        let login = serde_json::json!({"user": system.system.keys.admin_user, "password": system.system.keys.admin_password});
        let response = reqwest::Client::new().post(format!("{office}/admin/login")).json(&login).send().await.expect("answers");
        assert!(response.status().is_success(), "shop {shop}'s operator logs in while the hub is frozen: {}", response.status());
    }

    // The hub back: it shows every order of shop 1 once, with its final state.
    let cut_for = cut.elapsed();
    let thawed = Instant::now();
    for index in 0..system.system.cluster.len() {
        system.system.cluster.node(index).expect("running").signal("CONT").expect("thawed");
    }
    let all: Vec<String> = placed[&1].iter().chain(&during[&1]).cloned().collect();
    let shown = until_found("the hub to show every order of shop 1", Duration::from_secs(90), || async {
        hub_orders(&hub, &all).await.filter(|shown| all.iter().all(|id| shown.get(id) == Some(&OrderStatus::Ready)))
    })
    .await;
    assert_eq!(shown.len(), all.len());
    let stream = async_nats::jetstream::new(hub.clone()).get_stream(subjects::CHAIN_STREAM).await.expect("chain stream");
    let info = stream.get_info().await.expect("info");
    println!(
        "the hub showed the {} orders shop 1 took ({} during a cut of {cut_for:?}) {:?} after it came back; chain stream: {} messages",
        all.len(),
        during[&1].len(),
        thawed.elapsed(),
        info.state.messages
    );
    assert!(leaf_links(&shops[0]).await == Some(1), "shop 1's link is back");
    // `brewq status` on the hub finds an order of any shop.
    let (dir, id) = (system.dir.clone(), during[&1][0].clone());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::harness::brewq_bin()).args(["status", &id, "--data-dir"]).arg(&dir).output().expect("brewq runs")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("of shop 1") && text.contains("status: ready"),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    system.stop().await;
}

/// A TCP link a test can cut: it forwards connections from a port of its own to `target`; cut,
/// it drops the connections it carries and those that come, until restored.
struct Link {
    port: u16,
    open: tokio::sync::watch::Sender<bool>,
}

impl Link {
    async fn to(target: u16) -> Link {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("address").port();
        let (open, _) = tokio::sync::watch::channel(true);
        let state = open.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut watch = state.subscribe();
                if !*watch.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = watch.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Link { port, open }
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn restore(&self) {
        self.open.send_replace(true);
    }
}

pub(crate) async fn shop_stock(client: &async_nats::Client) -> StockSnapshot {
    match brewq_runtime::request::request_json(
        client,
        &subjects::stock_subject(&StockCommand::Get),
        &StockCommand::Get,
        Duration::from_secs(10),
    )
    .await
    .expect("the shop's stock manager answers")
    {
        StockReply::Snapshot { stock } => stock,
        other => panic!("unexpected stock reply {other:?}"),
    }
}

/// `brewq ARGS --data-dir DIR` on the hub, as an operator types it: whether it succeeded, and
/// what it printed (out, then err).
async fn brewq(dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let (dir, args): (_, Vec<String>) = (dir.to_owned(), args.iter().map(|arg| arg.to_string()).collect());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::harness::brewq_bin()).args(&args).arg("--data-dir").arg(&dir).output().expect("brewq runs")
    })
    .await
    .expect("join");
    (output.status.success(), format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

/// `brewq stock ACTION ITEM --shop SHOP` on the hub.
async fn send_to_shop(dir: &std::path::Path, action: &str, item: &str, shop: u32) -> String {
    let (ok, text) = brewq(dir, &["stock", action, item, "--shop", &shop.to_string()]).await;
    assert!(ok, "brewq stock {action}: {text}");
    text
}

/// Machine `id`'s state as shop `client`'s machines bucket has it.
async fn machine_state(client: &async_nats::Client, id: u32) -> Option<MachineState> {
    let store = async_nats::jetstream::new(client.clone()).get_key_value(subjects::MACHINES_BUCKET).await.ok()?;
    let (beat, _) = brewq_runtime::kv::get_json::<MachineHeartbeat>(&store, &subjects::machine_key(id)).await.ok()??;
    Some(beat.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_cut_off_gets_the_chains_restock_once_when_its_link_returns_and_is_seen_and_driven_from_the_hub() {
    // Shop 1 reaches the hub's leaf ports through links the test cuts; shop 2 directly.
    let ports = brewq_launch::cluster::pick_ports(3, None, true).expect("ports");
    let mut links = Vec::new();
    for node in &ports {
        links.push(Link::to(node.leaf).await);
    }
    let through: Vec<String> = links.iter().map(|link| format!("nats-leaf://127.0.0.1:{}", link.port)).collect();
    // Each shop's operator pages: the process that applies the chain's machine commands.
    let system = TestSystem::start(1, |config| {
        config.shops = 2;
        config.ports = Some(ports);
        config.shop_links.insert(1, through);
        crate::harness::with_web_and_office(config);
    })
    .await;
    let shops = system.system.info.shops.clone();
    let one = shop_client(&system, 1, Role::Admin, false).await;
    let two = shop_client(&system, 2, Role::Admin, false).await;
    eventually("shop 1's link to the hub", Duration::from_secs(30), || async { leaf_links(&shops[0]).await == Some(1) }).await;
    let (before_one, before_two) = (shop_stock(&one).await, shop_stock(&two).await);
    // The hub has heard of the shop's stock and machine before the cut.
    let hub = shop_client(&system, 1, Role::Admin, true).await;
    eventually("the hub to hold shop 1's stock and machine", Duration::from_secs(30), || async {
        let Ok(stream) = async_nats::jetstream::new(hub.clone()).get_stream(subjects::CHAIN_STREAM).await else { return false };
        let mut held = true;
        for key in [subjects::chain_subject("stock", subjects::STOCK_KEY), subjects::chain_subject("machines", &subjects::machine_key(1))] {
            held &= stream.get_last_raw_message_by_subject(&key).await.is_ok();
        }
        held
    })
    .await;

    // The link cut, the operator restocks shop 1 from the hub: the hub takes the command, the
    // shop cannot have it yet, and keeps serving.
    for link in &links {
        link.cut();
    }
    eventually("shop 1's link to drop", Duration::from_secs(30), || async { leaf_links(&shops[0]).await == Some(0) }).await;
    let sent = send_to_shop(&system.dir, "restock", "arabica=100", 1).await;
    assert!(sent.contains("sent to shop 1"), "{sent}");
    let during = shop_stock(&one).await;
    assert_eq!(during.levels[&Ingredient::Arabica].on_hand, before_one.levels[&Ingredient::Arabica].on_hand);
    // From the hub, the shop's stock and machines as the hub last saw them; a machine command
    // is kept for the shop, and one valid for a second only will come too late.
    let (ok, text) = brewq(&system.dir, &["stock", "--shop", "1"]).await;
    assert!(ok && text.contains("as the hub last saw it") && text.contains("arabica"), "{text}");
    let (ok, text) = brewq(&system.dir, &["machines", "--shop", "1"]).await;
    assert!(ok && text.contains("as the hub last saw it") && text.contains("machine  1"), "{text}");
    let (ok, text) = brewq(&system.dir, &["machines", "pause", "1", "--shop", "1"]).await;
    assert!(ok && text.contains("kept on the hub"), "a machine command during a cut: {text}");
    let (ok, text) = brewq(&system.dir, &["machines", "out-of-service", "1", "--shop", "1", "--valid-for", "1s", "--json"]).await;
    assert!(ok, "{text}");
    let late: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(late["applied"], false, "{text}");
    let valid_until = time::OffsetDateTime::parse(late["valid_until"].as_str().expect("valid_until"), &Rfc3339).expect("a time");
    assert_eq!(machine_state(&one, 1).await, Some(MachineState::Idle));
    // The link stays cut past the second command's validity.
    let past = (valid_until - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO) + time::Duration::milliseconds(100);
    tokio::time::sleep(past.try_into().expect("a duration")).await;

    // The link back: the restock arrives, once; a later command arrives after it, in order.
    let restored = Instant::now();
    for link in &links {
        link.restore();
    }
    let arabica = before_one.levels[&Ingredient::Arabica].on_hand + 100;
    eventually("the restock to reach shop 1", Duration::from_secs(60), || async {
        shop_stock(&one).await.levels[&Ingredient::Arabica].on_hand == arabica
    })
    .await;
    println!("a restock sent during a cut reached the shop {:?} after the link returned", restored.elapsed());
    send_to_shop(&system.dir, "threshold", "arabica=77", 1).await;
    let after = until_found("the alert level to reach shop 1", Duration::from_secs(30), || async {
        Some(shop_stock(&one).await).filter(|stock| stock.levels[&Ingredient::Arabica].low_at == 77)
    })
    .await;
    assert_eq!(after.levels[&Ingredient::Arabica].on_hand, arabica, "the restock was applied more than once");
    assert_eq!(after.levels[&Ingredient::Arabica].added, before_one.levels[&Ingredient::Arabica].added + 100);
    let (ok, text) = brewq(&system.dir, &["stock", "--shop", "1"]).await;
    assert!(ok && !text.contains("last saw") && text.contains("arabica"), "the shop's stock, live: {text}");

    // The pause sent during the cut is applied; the command that came too late is dropped, and
    // the shop's audit trail says so.
    eventually("shop 1's machine 1 to be paused", Duration::from_secs(30), || async {
        machine_state(&one, 1).await == Some(MachineState::Paused)
    })
    .await;
    let audit = async_nats::jetstream::new(one.clone()).get_stream(subjects::AUDIT_STREAM).await.expect("audit");
    let dropped = until_found("the late command's drop in shop 1's audit", Duration::from_secs(30), || async {
        let message = audit.get_last_raw_message_by_subject(&subjects::audit_subject("out-of-service")).await.ok()?;
        serde_json::from_slice::<brewq_protocol::AuditEntry>(&message.payload).ok()
    })
    .await;
    assert!(dropped.outcome.starts_with("dropped") && dropped.who == "chain", "{dropped:?}");
    assert_eq!(machine_state(&one, 1).await, Some(MachineState::Paused), "the late command was applied");

    // With the link up, the hub's operator resumes a machine of shop 1, and only that one.
    let (ok, text) = brewq(&system.dir, &["machines", "resume", "1", "--shop", "1"]).await;
    assert!(ok && text.contains("machine 1 of shop 1: idle"), "{text}");
    assert_eq!(machine_state(&one, 1).await, Some(MachineState::Idle));
    // Shop 2 was sent nothing and has nothing.
    assert_eq!(machine_state(&two, 1).await, Some(MachineState::Idle), "shop 1's command reached shop 2");
    assert_eq!(shop_stock(&two).await, before_two, "shop 1's commands reached shop 2");
    system.stop().await;
}

/// The chain's dashboard's state, as the logged-in operator with `cookie` gets it.
async fn chain_state(http: &reqwest::Client, office: &str, cookie: &str) -> Vec<serde_json::Value> {
    let response = http.get(format!("{office}/api/chain/state")).header("cookie", cookie).send().await.expect("answers");
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.expect("json")
}

fn shop_of(shops: &[serde_json::Value], id: u32) -> &serde_json::Value {
    shops.iter().find(|shop| shop["id"] == id).expect("the shop is shown")
}

#[tokio::test]
async fn the_chains_dashboard_on_the_hub_shows_every_shop_and_acts_on_one_only() {
    // With TLS: every client of the hub and of each shop, and each shop's link to the hub.
    let system = TestSystem::start(1, |config| {
        config.shops = 2;
        config.tls = true;
        crate::harness::with_web_and_office(config);
    })
    .await;
    let shops = system.system.info.shops.clone();
    for url in shops.iter().flat_map(|shop| &shop.nats_urls) {
        let address = url.strip_prefix("tls://").unwrap_or_else(|| panic!("a shop's server without TLS: {url}"));
        let stream = tokio::net::TcpStream::connect(address).await.expect("the shop's server listens");
        let info = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stream)).next_line().await.expect("reads").expect("INFO");
        assert!(info.contains("\"tls_required\":true"), "{url}: {info}");
    }
    let office = system.office_url();
    assert!(shops.iter().all(|shop| shop.office_url.as_deref() != Some(office.as_str())), "the hub's pages are no shop's");
    assert_eq!(system.system.info.http_url.as_deref(), Some(office.as_str()), "a chain's own address is its dashboard");
    let http = reqwest::Client::new();
    // A stranger gets nothing, and is sent to the login page.
    let stranger = http.get(format!("{office}/api/chain/state")).send().await.expect("answers");
    assert_eq!(stranger.status(), reqwest::StatusCode::UNAUTHORIZED);
    let (status, cookie) =
        crate::web::operator_login(&http, &office, &system.system.keys.admin_user, &system.system.keys.admin_password).await;
    assert!(status.is_success(), "{status}");
    let cookie = cookie.expect("a session");
    let page = http.get(format!("{office}/")).header("cookie", &cookie).send().await.expect("answers");
    assert!(page.url().path() == "/chain" && page.text().await.expect("page").contains("brewq chain"), "/ leads to the chain's page");

    // Every shop shows up, with its machine, its stock and the orders it took.
    let two = shop_client(&system, 2, Role::Admin, false).await;
    let id = order_over_nats(&two, "Chain").await;
    let seen = until_found("the dashboard to show both shops and shop 2's order ready", Duration::from_secs(30), || async {
        let state = chain_state(&http, &office, &cookie).await;
        let ready = state.len() == 2
            && state
                .iter()
                .all(|shop| shop["machines"].as_array().is_some_and(|machines| machines.len() == 1) && shop["stock"].is_object())
            && shop_of(&state, 2)["orders"]["ready"] == 1;
        ready.then_some(state)
    })
    .await;
    assert_eq!(shop_of(&seen, 1)["orders"]["ready"], 0, "shop 2's order {id} counted in shop 1");

    // A restock of shop 2 is kept on the hub and applied there, once; shop 1 is untouched.
    let one = shop_client(&system, 1, Role::Admin, false).await;
    let (before_one, before_two) = (shop_stock(&one).await, shop_stock(&two).await);
    let restock = |shop: u32, body: serde_json::Value| {
        http.post(format!("{office}/api/chain/shops/{shop}/stock/restock"))
            .header("cookie", &cookie)
            .header("x-brewq-csrf", "1")
            .json(&body)
            .send()
    };
    let response = restock(2, serde_json::json!({"items": {"sugar": 40}})).await.expect("answers");
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let sugar = before_two.levels[&Ingredient::Sugar].on_hand + 40;
    eventually("shop 2's sugar restocked", Duration::from_secs(30), || async {
        shop_stock(&two).await.levels[&Ingredient::Sugar].on_hand == sugar
    })
    .await;
    for (shop, body, wanted) in [
        (2, serde_json::json!({"items": {"gold": 1}}), reqwest::StatusCode::BAD_REQUEST),
        (2, serde_json::json!({"items": {"sugar": 0}}), reqwest::StatusCode::BAD_REQUEST),
        (9, serde_json::json!({"items": {"sugar": 1}}), reqwest::StatusCode::NOT_FOUND),
    ] {
        assert_eq!(restock(shop, body.clone()).await.expect("answers").status(), wanted, "restock of shop {shop} with {body}");
    }
    // A key that is not an id's letters is refused, naming the header (the pause of shop 2's
    // machine 1 is not kept: it is idle at the end).
    for path in ["stock/restock", "machines/1/pause"] {
        let malformed = http
            .post(format!("{office}/api/chain/shops/2/{path}"))
            .header("cookie", &cookie)
            .header("x-brewq-csrf", "1")
            .header("Idempotency-Key", "two words")
            .json(&serde_json::json!({"items": {"sugar": 1}}))
            .send()
            .await
            .expect("answers");
        assert_eq!(malformed.status(), reqwest::StatusCode::BAD_REQUEST, "{path}");
        assert!(malformed.text().await.expect("a body").contains("Idempotency-Key"), "{path}");
    }
    // Without the pages' own header, an action is refused (a cross-site form cannot send it).
    let forged = http.post(format!("{office}/api/chain/shops/1/machines/1/pause")).header("cookie", &cookie).send().await.expect("answers");
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);

    // A machine of shop 1 paused from the hub; shop 2's machine 1 goes on.
    let paused = http
        .post(format!("{office}/api/chain/shops/1/machines/1/pause"))
        .header("cookie", &cookie)
        .header("x-brewq-csrf", "1")
        .send()
        .await
        .expect("answers");
    assert!(paused.status().is_success(), "{}", paused.status());
    eventually("the dashboard to show shop 1's machine paused", Duration::from_secs(30), || async {
        shop_of(&chain_state(&http, &office, &cookie).await, 1)["machines"][0]["state"] == "paused"
    })
    .await;
    assert_eq!(machine_state(&two, 1).await, Some(MachineState::Idle));
    assert_eq!(shop_stock(&one).await, before_one, "shop 2's restock reached shop 1");
    system.stop().await;
}
