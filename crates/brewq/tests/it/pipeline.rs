//! The order pipeline against a real cluster: no oversell, exactly-once accounting under
//! failed brews, a machine or a server killed mid-run, an order its controller queued but never
//! recorded, an instant brew recorded in one write (and its machine's heartbeats), a retry after a rollback, bad input and
//! idempotency.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use brewq_launch::ServiceKind;
use brewq_protocol::stock::{Items, recipe};
use brewq_protocol::{Ingredient, OrderRecord, OrderRequest, OrderStatus, RejectCode, StockCommand, StockReply, subjects};
use futures::StreamExt;
use futures::future::join_all;
use serde_json::{Value, json};

use crate::harness::{TestSystem, eventually, order_json};

fn only(ingredient: Ingredient, amount: u64) -> Items {
    Items::from([(ingredient, amount)])
}

/// Sums the recipes of `records`.
fn consumed_by<'a>(records: impl Iterator<Item = &'a OrderRecord>) -> Items {
    let mut total = Items::new();
    for record in records {
        for (ingredient, amount) in recipe(&record.order) {
            *total.entry(ingredient).or_default() += amount;
        }
    }
    total
}

/// Checks on hand + reserved + consumed = added for every ingredient, nothing left reserved,
/// and consumption equal to `expected`.
async fn assert_stock_settled(system: &TestSystem, expected_consumed: &Items) {
    let stock = system.stock().await;
    for (ingredient, level) in &stock.levels {
        assert_eq!(level.on_hand + level.reserved + level.consumed, level.added, "{ingredient} does not add up: {level:?}");
        assert_eq!(level.reserved, 0, "{ingredient} still reserved: {level:?}");
        let expected = expected_consumed.get(ingredient).copied().unwrap_or(0);
        assert_eq!(level.consumed, expected, "{ingredient} consumed");
    }
}

#[tokio::test]
async fn two_hundred_concurrent_orders_for_stock_of_fifty_accept_exactly_fifty() {
    // Two controllers and two stock managers side by side: the compare-and-swap, not one
    // process, keeps the count.
    let system = TestSystem::start(5, |config| {
        config.topology.initial_stock = only(Ingredient::Arabica, 50 * 14);
        config.controllers = 2;
        config.stock_managers = 2;
    })
    .await;
    let orders = (0..200).map(|index| order_json(&format!("customer {index}"), "medium", "arabica", "none", 0));
    let replies = join_all(orders.map(|order| {
        let system = &system;
        async move { system.order(&order).await }
    }))
    .await;

    let accepted: Vec<String> = replies.iter().filter_map(|reply| reply.order_id.clone()).collect();
    let refused = replies.iter().filter(|reply| reply.code == Some(RejectCode::OutOfStock)).count();
    assert_eq!(accepted.len(), 50, "accepted");
    assert_eq!(
        refused,
        150,
        "refused as out of stock: {:?}",
        replies.iter().find(|reply| reply.code != Some(RejectCode::OutOfStock) && !reply.is_success())
    );
    assert!(replies.iter().filter(|reply| !reply.is_success()).all(|reply| reply.field.as_deref() == Some("arabica")));

    let records = system.wait_terminal(&accepted, Duration::from_secs(60)).await;
    assert!(records.values().all(|record| record.status == OrderStatus::Ready));
    eventually("the work queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    let stock = system.stock().await;
    assert_eq!(stock.levels[&Ingredient::Arabica].on_hand, 0);
    assert_stock_settled(&system, &only(Ingredient::Arabica, 700)).await;
    system.stop().await;
}

#[tokio::test]
async fn with_failing_brews_every_order_ends_once_and_the_stock_adds_up() {
    let system = TestSystem::start(5, |config| {
        config.fail_rate = 0.3;
        config.max_attempts = 2;
    })
    .await;
    let sizes = ["small", "medium", "large"];
    let milks = ["none", "cow", "soy"];
    let orders: Vec<Value> =
        (0..60).map(|index| order_json(&format!("c{index}"), sizes[index % 3], "mixed", milks[index / 3 % 3], (index % 4) as u8)).collect();
    let replies = join_all(orders.iter().map(|order| system.order(order))).await;
    let accepted: Vec<String> = replies.iter().map(|reply| reply.order_id.clone().expect("accepted")).collect();

    let records = system.wait_terminal(&accepted, Duration::from_secs(90)).await;
    let ready: Vec<&OrderRecord> = records.values().filter(|record| record.status == OrderStatus::Ready).collect();
    let failed: Vec<&OrderRecord> = records.values().filter(|record| record.status == OrderStatus::Failed).collect();
    assert_eq!(ready.len() + failed.len(), accepted.len(), "every order ready or failed");
    assert!(!failed.is_empty(), "with a 30% failure rate and 2 attempts, some orders fail");
    for record in &records {
        let terminal = record.1.history.iter().filter(|entry| entry.status.is_terminal()).count();
        assert_eq!(terminal, 1, "order {} ended {terminal} times", record.0);
    }
    for record in &failed {
        assert!(record.reason.as_deref().is_some_and(|reason| reason.contains("attempts")), "{record:?}");
    }
    // Machines ack in the background of the record: wait for the queue to empty, then count.
    eventually("the work queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    assert_stock_settled(&system, &consumed_by(ready.into_iter())).await;
    system.stop().await;
}

#[tokio::test]
async fn a_machine_killed_mid_brew_has_its_order_brewed_by_another_once() {
    let mut system = TestSystem::start(2, |config| config.brew_scale = 0.15).await;
    let reply = system.order(&order_json("Quentin", "medium", "robusta", "cow", 1)).await;
    let order_id = reply.order_id.expect("accepted");
    let brewing =
        system.wait_for(std::slice::from_ref(&order_id), |record| record.status == OrderStatus::Brewing, Duration::from_secs(20)).await;
    let first_machine = brewing[&order_id].machine.expect("brewing machine");

    system.system.kill_service(ServiceKind::Maker(first_machine)).await;

    let done = system.wait_terminal(std::slice::from_ref(&order_id), Duration::from_secs(60)).await;
    let record = &done[&order_id];
    assert_eq!(record.status, OrderStatus::Ready, "{record:?}");
    assert_ne!(record.machine, Some(first_machine), "brewed by another machine");
    let brews: Vec<Option<u32>> =
        record.history.iter().filter(|entry| entry.status == OrderStatus::Brewing).map(|entry| entry.machine).collect();
    assert_eq!(brews.first(), Some(&Some(first_machine)));
    assert_eq!(record.history.iter().filter(|entry| entry.status == OrderStatus::Ready).count(), 1);
    eventually("the work queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    assert_stock_settled(&system, &consumed_by([record].into_iter())).await;
    system.stop().await;
}

#[tokio::test]
async fn a_nats_server_killed_during_orders_loses_no_accepted_order() {
    let mut system = TestSystem::start(3, |_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut accepted = Vec::new();
    for batch in 0..6 {
        if batch == 2 {
            system.system.cluster.kill(0).await;
        }
        let orders: Vec<Value> = (0..10)
            .map(|index| {
                let mut order = order_json(&format!("b{batch}-{index}"), "small", "arabica", "none", 0);
                order["idempotency_key"] = json!(format!("key-{batch}-{index}"));
                order
            })
            .collect();
        let replies = join_all(orders.iter().map(|order| system.order_until_answered(order, deadline))).await;
        for reply in replies {
            assert!(reply.is_success(), "refused: {reply:?}");
            accepted.push(reply.order_id.expect("order id"));
        }
    }
    assert_eq!(accepted.len(), 60);
    let records = system.wait_terminal(&accepted, Duration::from_secs(90)).await;
    assert!(records.values().all(|record| record.status == OrderStatus::Ready), "every accepted order is ready");
    eventually("the work queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    assert_stock_settled(&system, &consumed_by(records.values())).await;
    system.stop().await;
}

#[tokio::test]
async fn every_bad_input_is_refused_naming_the_field_and_nothing_is_reserved() {
    let system = TestSystem::start(1, |_| {}).await;
    let before = system.stock().await;
    let seed = json!({"size":"medium","bean_type":"arabica","name":"Quentin","milk":"free","sugar_count":"2"});
    let mut cases: Vec<(Value, Option<&str>)> = Vec::new();
    for (field, bad) in [
        ("name", json!("")),
        ("name", json!(7)),
        ("name", json!("n".repeat(80))),
        ("size", json!("venti")),
        ("bean_type", json!("decaf")),
        ("bean_type", json!("arabica.>")),
        ("milk", json!("oat")),
        ("sugar_count", json!("4")),
        ("sugar_count", json!(-1)),
        ("sugar_count", json!("lots")),
        ("idempotency_key", json!("has spaces")),
    ] {
        let mut payload = seed.clone();
        payload[field] = bad;
        cases.push((payload, Some(field)));
    }
    for field in ["name", "size", "bean_type", "milk", "sugar_count"] {
        let mut payload = seed.clone();
        payload.as_object_mut().expect("object").remove(field);
        cases.push((payload, Some(field)));
    }
    for (payload, field) in &cases {
        let reply = system.order(payload).await;
        assert_eq!(reply.status, "error", "{payload}");
        assert_eq!(reply.code, Some(RejectCode::Invalid), "{payload}");
        assert_eq!(reply.field.as_deref(), *field, "{payload}: {}", reply.message);
        assert!(!reply.message.is_empty());
    }
    let not_json: brewq_protocol::OrderReply = brewq_runtime::request::request_bytes(
        &system.admin,
        brewq_protocol::subjects::ORDER_REQUESTS,
        b"{not json".to_vec(),
        Duration::from_secs(5),
    )
    .await
    .expect("answered");
    assert_eq!(not_json.code, Some(RejectCode::Invalid));

    assert_eq!(system.stock().await, before, "nothing reserved");
    assert_eq!(system.stream_messages().await, 0, "nothing queued");

    // The original demo's own payload, with its spellings, is accepted.
    let reply = system.order(&seed).await;
    assert!(reply.is_success(), "{reply:?}");
    let record = system.record(reply.order_id.as_deref().expect("id")).await.expect("record");
    let request = OrderRequest::from(&record.order);
    assert_eq!(request.milk, Some(json!("none")));
    system.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_makes_one_order() {
    let system = TestSystem::start(0, |_| {}).await;
    let mut order = order_json("Ada", "large", "robusta", "soy", 3);
    order["idempotency_key"] = json!("2f0c7e1a-retry-me");
    let first = system.order(&order).await;
    let again = join_all((0..5).map(|_| system.order(&order))).await;
    let order_id = first.order_id.clone().expect("accepted");
    for reply in &again {
        assert_eq!(reply.order_id.as_deref(), Some(order_id.as_str()), "{reply:?}");
    }
    let record = system.record(&order_id).await.expect("record");
    let expected = recipe(&record.order);
    let stock = system.stock().await;
    let reserved: BTreeMap<Ingredient, u64> =
        stock.levels.iter().filter(|(_, level)| level.reserved > 0).map(|(ingredient, level)| (*ingredient, level.reserved)).collect();
    assert_eq!(reserved, expected, "reserved once");
    assert_eq!(system.stream_messages().await, 1, "queued once");

    // A new key is a new order.
    order["idempotency_key"] = json!("another-key");
    let other = system.order(&order).await;
    assert_ne!(other.order_id, first.order_id);
    system.stop().await;
}

#[tokio::test]
async fn a_cancelled_order_releases_its_stock_and_is_never_brewed() {
    let mut system = TestSystem::start(0, |_| {}).await;
    let before = system.stock().await;
    let reply = system.order(&order_json("Lin", "small", "arabica", "cow", 2)).await;
    let order_id = reply.order_id.expect("accepted");
    let cancel = |id: String| {
        let admin = system.admin.clone();
        async move {
            brewq_runtime::request::request_bytes::<brewq_protocol::OrderReply>(
                &admin,
                brewq_protocol::subjects::ORDER_CANCEL,
                id.into_bytes(),
                Duration::from_secs(5),
            )
            .await
            .expect("answered")
        }
    };
    assert!(cancel(order_id.clone()).await.is_success());
    assert!(cancel(order_id.clone()).await.is_success(), "cancelling twice is harmless");
    assert_eq!(cancel("no-such-order".into()).await.code, Some(RejectCode::NotFound));
    assert_eq!(system.stock().await, before, "stock released");

    // A machine coming online takes the cancelled order off the queue without brewing it.
    system.system.add_service(ServiceKind::Maker(1)).expect("maker starts");
    eventually("the work queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    let record = system.record(&order_id).await.expect("record");
    assert_eq!(record.status, OrderStatus::Cancelled);
    assert!(record.history.iter().all(|entry| entry.status != OrderStatus::Brewing));
    assert_eq!(system.stock().await, before);

    // A ready order cannot be cancelled.
    let reply = system.order(&order_json("Lin", "small", "arabica", "none", 0)).await;
    let ready_id = reply.order_id.expect("accepted");
    system.wait_terminal(std::slice::from_ref(&ready_id), Duration::from_secs(30)).await;
    assert_eq!(cancel(ready_id).await.code, Some(RejectCode::Conflict));
    system.stop().await;
}

#[tokio::test]
async fn an_order_queued_but_never_recorded_is_recorded_by_its_machine_and_brewed_once() {
    // What a controller leaves when it stops between the PubAck and the record: the order
    // reserved and in the work queue, and no record.
    let system = TestSystem::start(1, |_| {}).await;
    let config = system.system.nats_config(brewq_launch::Role::Controller, "test").expect("controller config");
    let controller = brewq_runtime::connect(&config).await.expect("controller connects");
    let request: OrderRequest = serde_json::from_value(order_json("Quentin", "small", "arabica", "soy", 2)).expect("order request");
    let order = request.validate().expect("valid order");
    let order_id = "unrecorded-1".to_owned();
    let reserve = StockCommand::Reserve { order_id: order_id.clone(), items: recipe(&order) };
    let reserved: StockReply =
        brewq_runtime::request::request_json(&controller, &subjects::stock_subject(&reserve), &reserve, Duration::from_secs(10))
            .await
            .expect("the stock manager answers");
    assert_eq!(reserved, StockReply::Reserved);
    let jetstream = async_nats::jetstream::new(controller.clone());
    let message = async_nats::jetstream::message::PublishMessage::build()
        .message_id(&order_id)
        .header(subjects::ORDER_ID_HEADER, order_id.as_str())
        .payload(serde_json::to_vec(&order).expect("order serializes").into());
    let subject = subjects::order_subject(order.bean_type);
    jetstream.send_publish(subject, message).await.expect("publish").await.expect("PubAck");

    let done = system.wait_terminal(std::slice::from_ref(&order_id), Duration::from_secs(30)).await;
    let record = &done[&order_id];
    assert_eq!(record.status, OrderStatus::Ready, "{record:?}");
    assert_eq!(record.order, order, "the record holds the order the message carried");
    let statuses: Vec<OrderStatus> = record.history.iter().map(|entry| entry.status).collect();
    assert_eq!(statuses, [OrderStatus::Queued, OrderStatus::Brewing, OrderStatus::Ready]);
    eventually("the work queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    assert_stock_settled(&system, &consumed_by([record].into_iter())).await;
    system.stop().await;
}

#[tokio::test]
async fn an_instant_brew_is_recorded_brewing_and_ready_in_one_write() {
    // Brew time 0 (the harness's): the machine records each brew with its outcome. A brew that
    // takes time is recorded brewing first (a_machine_killed_mid_brew_... sees it).
    let system = TestSystem::start(1, |_| {}).await;
    let mut writes = system.bucket(subjects::ORDERS_BUCKET).await.watch(">").await.expect("watch the records");
    let orders: Vec<Value> = (0..20).map(|index| order_json(&format!("i{index}"), "small", "robusta", "none", 0)).collect();
    let replies = join_all(orders.iter().map(|order| system.order(order))).await;
    let accepted: Vec<String> = replies.iter().map(|reply| reply.order_id.clone().expect("accepted")).collect();
    let done = system.wait_terminal(&accepted, Duration::from_secs(30)).await;
    for record in done.values() {
        let steps: Vec<(OrderStatus, Option<u32>)> = record.history.iter().map(|entry| (entry.status, entry.machine)).collect();
        assert_eq!(steps, [(OrderStatus::Queued, None), (OrderStatus::Brewing, Some(1)), (OrderStatus::Ready, Some(1))]);
        assert!(record.history[1].at <= record.history[2].at, "brewing recorded at the brew's start: {record:?}");
        assert_eq!(record.attempts, 1);
    }

    // Every write of those records, as stored: none of them left an order at brewing.
    let mut statuses: BTreeMap<String, Vec<OrderStatus>> = BTreeMap::new();
    let all_ready = |statuses: &BTreeMap<String, Vec<OrderStatus>>| {
        accepted.iter().all(|id| statuses.get(id).is_some_and(|seen| seen.contains(&OrderStatus::Ready)))
    };
    while !all_ready(&statuses) {
        let entry = tokio::time::timeout(Duration::from_secs(10), writes.next()).await;
        let entry = entry.expect("a write of every record").expect("the watch goes on").expect("an entry");
        let record: OrderRecord = serde_json::from_slice(&entry.value).expect("a record");
        statuses.entry(record.id).or_default().push(record.status);
    }
    for (id, seen) in &statuses {
        assert!(!seen.contains(&OrderStatus::Brewing), "order {id} was written brewing on its own: {seen:?}");
    }
    system.stop().await;
}

#[tokio::test]
async fn a_machine_brewing_instant_orders_writes_only_its_regular_heartbeats() {
    // A change is looked at a tenth of the heartbeat interval (2 s) after it is made: an
    // instant brew has begun and ended by then, and shows only in the counters, which go out
    // with the heartbeat every 2 s. The orders come one at a time, each done before the next.
    const ORDERS: u64 = 20;
    let system = TestSystem::start(1, |_| {}).await;
    let machines = system.bucket(subjects::MACHINES_BUCKET).await;
    let mut beats = machines.watch(subjects::machine_key(1)).await.expect("watch the heartbeat");
    let from = brewq_protocol::now();
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    for index in 0..ORDERS {
        pace.tick().await;
        let reply = system.order(&order_json(&format!("h{index}"), "small", "arabica", "none", 0)).await;
        let order_id = reply.order_id.expect("accepted");
        system.wait_terminal(&[order_id], Duration::from_secs(30)).await;
    }
    let until = brewq_protocol::now();
    let (written, after) = heartbeats_written(&mut beats, from, until).await;
    assert_eq!(after.cups, ORDERS, "the machine brewed the orders: {after:?}");
    assert_at_most(written, from, until, 2.0);
    system.stop().await;
}

#[tokio::test]
async fn a_machine_brewing_back_to_back_writes_its_heartbeat_at_most_four_times_an_interval() {
    // Brews of 0.1 s one after the other: each look (a tenth of the 2 s interval after a
    // change) finds another order, but looks closer than a quarter of the interval after the
    // last write wait for that quarter.
    const ORDERS: u64 = 30;
    let system = TestSystem::start(1, |config| config.brew_scale = 0.005).await;
    let machines = system.bucket(subjects::MACHINES_BUCKET).await;
    let mut beats = machines.watch(subjects::machine_key(1)).await.expect("watch the heartbeat");
    let from = brewq_protocol::now();
    let orders: Vec<Value> = (0..ORDERS).map(|index| order_json(&format!("b{index}"), "small", "arabica", "none", 0)).collect();
    let replies = join_all(orders.iter().map(|order| system.order(order))).await;
    let accepted: Vec<String> = replies.iter().map(|reply| reply.order_id.clone().expect("accepted")).collect();
    system.wait_terminal(&accepted, Duration::from_secs(60)).await;
    let until = brewq_protocol::now();
    let (written, after) = heartbeats_written(&mut beats, from, until).await;
    assert_eq!(after.cups, ORDERS, "the machine brewed the orders: {after:?}");
    assert_at_most(written, from, until, 0.5);
    system.stop().await;
}

/// The heartbeats written from `from` to `until`, and the first one after (they come every
/// 2 s).
async fn heartbeats_written(
    beats: &mut async_nats::jetstream::kv::Watch,
    from: time::OffsetDateTime,
    until: time::OffsetDateTime,
) -> (u64, brewq_protocol::MachineHeartbeat) {
    let mut written = 0;
    loop {
        let entry = tokio::time::timeout(Duration::from_secs(10), beats.next()).await;
        let entry = entry.expect("a heartbeat every 2 s").expect("the watch goes on").expect("an entry");
        let beat: brewq_protocol::MachineHeartbeat = serde_json::from_slice(&entry.value).expect("a heartbeat");
        if beat.at > until {
            return (written, beat);
        }
        if beat.at >= from {
            written += 1;
        }
    }
}

/// At most one heartbeat per `seconds` from `from` to `until`, and one more.
fn assert_at_most(written: u64, from: time::OffsetDateTime, until: time::OffsetDateTime, seconds: f64) {
    let took = (until - from).as_seconds_f64();
    let allowed = (took / seconds).ceil() as u64 + 1;
    assert!(written <= allowed, "{written} heartbeats in {took:.2} s, at most {allowed} expected");
}

#[tokio::test]
async fn a_retry_that_finds_its_order_brewed_meanwhile_answers_that_order_and_places_no_other() {
    // Two attempts under one key race (a customer's retry while the first is still under way,
    // as when a server dies): this one looked for a record before the other wrote one, and
    // reserves after the other's order was brewed, its stock committed. The test stands in for
    // the stock manager, to hold that reserve until the other's record is there.
    let system = TestSystem::start(0, |config| config.stock_managers = 0).await;
    let config = system.system.nats_config(brewq_launch::Role::Controller, "test").expect("controller config");
    let jetstream = async_nats::jetstream::new(brewq_runtime::connect(&config).await.expect("controller connects"));
    let config = system.system.nats_config(brewq_launch::Role::Stock, "test").expect("stock config");
    let stock = brewq_runtime::connect(&config).await.expect("stock manager connects");
    let mut commands = stock.queue_subscribe(subjects::STOCK_SUBJECTS, subjects::STOCK_QUEUE.into()).await.expect("subscribe");
    stock.flush().await.expect("flush");

    let mut payload = order_json("Quentin", "small", "arabica", "none", 0);
    payload["idempotency_key"] = json!("key-raced");
    let request: OrderRequest = serde_json::from_value(payload.clone()).expect("order request");
    let order = request.validate().expect("valid");
    let keys = jetstream.get_key_value(subjects::IDEMPOTENCY_BUCKET).await.expect("idempotency bucket");
    let keyed = brewq_protocol::KeyedOrder { order_id: "raced-1".into(), order: order.clone() };
    keys.put("key-raced", serde_json::to_vec(&keyed).expect("key's order").into()).await.expect("key written");
    let records = jetstream.get_key_value(subjects::ORDERS_BUCKET).await.expect("records bucket");
    let at = brewq_protocol::now();
    let mut brewed = OrderRecord { queue_sequence: Some(1), ..OrderRecord::queued("raced-1", order, at) };
    brewed.transition(OrderStatus::Brewing, Some(1), None, at).expect("queued to brewing");
    brewed.transition(OrderStatus::Ready, Some(1), None, at).expect("brewing to ready");

    let mut reserved = Vec::new();
    let reply = {
        let mut placing = std::pin::pin!(system.order(&payload));
        loop {
            tokio::select! {
                reply = placing.as_mut() => break reply,
                Some(message) = commands.next() => {
                    let Ok(StockCommand::Reserve { order_id, .. }) = serde_json::from_slice(&message.payload) else { continue };
                    // The other attempt went through meanwhile: queued, recorded, brewed.
                    let answer = match order_id.as_str() {
                        "raced-1" => {
                            records.put("raced-1", serde_json::to_vec(&brewed).expect("record").into()).await.expect("record written");
                            StockReply::Committed
                        }
                        _ => StockReply::Reserved,
                    };
                    reserved.push(order_id);
                    let reply_to = message.reply.expect("a reply subject");
                    stock.publish(reply_to, serde_json::to_vec(&answer).expect("reply").into()).await.expect("answer");
                }
            }
        }
    };
    assert!(reply.is_success(), "{reply:?}");
    assert_eq!(reply.order_id.as_deref(), Some("raced-1"), "the order the key stands for, not another: {reply:?}");
    assert!(reply.message.ends_with("is ready"), "{reply:?}");
    assert!(reserved.iter().all(|id| id == "raced-1"), "no other order reserved: {reserved:?}");
    let record = system.record("raced-1").await.expect("recorded");
    assert_eq!((record.status, record.retried_as), (OrderStatus::Ready, None));
    let key = keys.get("key-raced").await.expect("read the key").expect("the key stays");
    let keyed: brewq_protocol::KeyedOrder = serde_json::from_slice(&key).expect("key's order");
    assert_eq!(keyed.order_id, "raced-1", "the key still stands for the brewed order");
    assert_eq!(system.queue_depth().await, 0, "nothing else queued");
    system.stop().await;
}

#[tokio::test]
async fn a_retry_whose_stock_was_released_without_a_record_places_the_order_again_under_a_new_id() {
    // What the reconciler leaves when a controller stopped between the reserve and the publish:
    // the key's order has no record and its stock released. A retry with the key finds the
    // stock ended when it reserves, records the old id failed and places the order afresh.
    let system = TestSystem::start(1, |_| {}).await;
    let config = system.system.nats_config(brewq_launch::Role::Controller, "test").expect("controller config");
    let controller = brewq_runtime::connect(&config).await.expect("controller connects");
    let mut payload = order_json("Quentin", "small", "arabica", "none", 0);
    payload["idempotency_key"] = json!("key-released");
    let request: OrderRequest = serde_json::from_value(payload.clone()).expect("order request");
    let order = request.validate().expect("valid");
    let keys =
        async_nats::jetstream::new(controller.clone()).get_key_value(subjects::IDEMPOTENCY_BUCKET).await.expect("idempotency bucket");
    let keyed = brewq_protocol::KeyedOrder { order_id: "released-1".into(), order };
    keys.put("key-released", serde_json::to_vec(&keyed).expect("key's order").into()).await.expect("key written");
    let release = StockCommand::Release { order_id: "released-1".into() };
    let released: StockReply =
        brewq_runtime::request::request_json(&controller, &subjects::stock_subject(&release), &release, Duration::from_secs(10))
            .await
            .expect("the stock manager answers");
    assert_eq!(released, StockReply::Released);

    let reply = system.order(&payload).await;
    assert!(reply.is_success(), "{reply:?}");
    let order_id = reply.order_id.expect("order id");
    assert_ne!(order_id, "released-1", "placed under a new id");
    let old = system.record("released-1").await.expect("the old id is recorded");
    assert!(old.never_queued(), "{old:?}");
    assert_eq!(old.retried_as.as_deref(), Some(order_id.as_str()));
    let done = system.wait_terminal(std::slice::from_ref(&order_id), Duration::from_secs(30)).await;
    assert_eq!(done[&order_id].status, OrderStatus::Ready, "{:?}", done[&order_id]);
    eventually("the work queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    assert_stock_settled(&system, &consumed_by(done.values())).await;
    system.stop().await;
}

#[tokio::test]
async fn a_retry_after_a_rollback_places_the_order_again_under_a_new_id() {
    // What a rollback leaves when the work queue could not take an order (an election longer
    // than the publish deadline): the key's order recorded failed, never queued, its stock
    // released, and its customer told to retry.
    let system = TestSystem::start(1, |_| {}).await;
    let config = system.system.nats_config(brewq_launch::Role::Controller, "test").expect("controller config");
    let jetstream = async_nats::jetstream::new(brewq_runtime::connect(&config).await.expect("controller connects"));
    let mut payload = order_json("Quentin", "small", "arabica", "none", 0);
    payload["idempotency_key"] = json!("key-rolled-back");
    let request: OrderRequest = serde_json::from_value(payload.clone()).expect("order request");
    let order = request.validate().expect("valid");
    let mut rolled_back = OrderRecord::queued("rolled-1", order.clone(), brewq_protocol::now());
    rolled_back.transition(OrderStatus::Failed, None, Some("could not be queued".into()), brewq_protocol::now()).expect("queued to failed");
    let keys = jetstream.get_key_value(subjects::IDEMPOTENCY_BUCKET).await.expect("idempotency bucket");
    let keyed = brewq_protocol::KeyedOrder { order_id: "rolled-1".into(), order };
    keys.put("key-rolled-back", serde_json::to_vec(&keyed).expect("key's order").into()).await.expect("key written");
    let records = jetstream.get_key_value(subjects::ORDERS_BUCKET).await.expect("records bucket");
    records.put("rolled-1", serde_json::to_vec(&rolled_back).expect("record").into()).await.expect("record written");

    let reply = system.order(&payload).await;
    assert!(reply.is_success(), "{reply:?}");
    let order_id = reply.order_id.expect("order id");
    assert_ne!(order_id, "rolled-1", "placed under a new id");
    let again = system.order(&payload).await;
    assert_eq!(again.order_id.as_deref(), Some(order_id.as_str()), "the key now stands for the new order");
    let done = system.wait_terminal(std::slice::from_ref(&order_id), Duration::from_secs(30)).await;
    assert_eq!(done[&order_id].status, OrderStatus::Ready, "{:?}", done[&order_id]);
    let replayed = system.order(&payload).await;
    assert_eq!(replayed.order_id.as_deref(), Some(order_id.as_str()));
    assert!(replayed.message.ends_with("is ready") && replayed.position.is_none() && replayed.eta_seconds.is_none(), "{replayed:?}");
    let old = system.record("rolled-1").await.expect("the rolled-back record stays");
    assert_eq!((old.status, old.retried_as.as_deref()), (OrderStatus::Failed, Some(order_id.as_str())));
    eventually("the work queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    assert_stock_settled(&system, &consumed_by(done.values())).await;
    system.stop().await;
}
