//! The reconciler end to end, with its bounds cut to seconds: a reservation left by a controller
//! that died mid-accept is named by `brewq check`, then released, counted and audited; one whose
//! order waits unrecorded in the work queue is left for its machine however many passes see it;
//! one whose order ended is settled as its record says.

use std::path::Path;
use std::time::Duration;

use brewq_launch::{Role, ServiceKind};
use brewq_protocol::stock::{Reservation, ReservationState, recipe};
use brewq_protocol::{
    AuditEntry, Order, OrderRecord, OrderRequest, OrderStatus, StockCommand, StockReply, StockSnapshot, audit, now, subjects,
};
use serde_json::Value;

use crate::harness::{TestSystem, brewq_bin, check, eventually, order_json};

const WAIT: Duration = Duration::from_secs(60);

/// A system whose controllers look at the reservations every second, and at a reservation held
/// `leak_after` (a period such as `1s`).
async fn start(machines: u32, leak_after: &str) -> TestSystem {
    TestSystem::start(machines, |config| {
        config.service_env.push(("BREWQ_RECONCILE_EVERY".into(), "1s".into()));
        config.service_env.push(("BREWQ_LEAK_AFTER".into(), leak_after.into()));
    })
    .await
}

/// A connection with the controller's rights: what a controller that dies mid-accept had.
async fn controller(system: &TestSystem) -> async_nats::Client {
    let config = system.system.nats_config(Role::Controller, "test").expect("controller config");
    brewq_runtime::connect(&config).await.expect("controller connects")
}

fn order(name: &str) -> (OrderRequest, Order) {
    let request: OrderRequest = serde_json::from_value(order_json(name, "medium", "arabica", "cow", 1)).expect("order request");
    let order = request.validate().expect("valid order");
    (request, order)
}

/// Reserves the recipe of `order` for `order_id`, as a controller's first step does.
async fn reserve(controller: &async_nats::Client, order_id: &str, order: &Order) {
    let reserve = StockCommand::Reserve { order_id: order_id.to_owned(), items: recipe(order) };
    let header = (subjects::ORDER_ID_HEADER, order_id);
    let subject = subjects::stock_subject(&reserve);
    let reply: StockReply =
        brewq_runtime::request::request_json_with_header(controller, &subject, header, &reserve, Duration::from_secs(10))
            .await
            .expect("the stock manager answers");
    assert_eq!(reply, StockReply::Reserved);
}

/// Where the reservation of `order_id` stands.
async fn reservation(system: &TestSystem, order_id: &str) -> Option<ReservationState> {
    let stock = system.bucket(subjects::STOCK_BUCKET).await;
    let reservation = brewq_runtime::kv::get_json::<Reservation>(&stock, &subjects::reservation_key(order_id)).await.expect("readable");
    reservation.map(|(reservation, _)| reservation.state)
}

async fn wait_reservation(system: &TestSystem, order_id: &str, state: ReservationState) {
    let what = format!("{order_id}'s reservation to be {state:?}");
    eventually(&what, WAIT, || async { reservation(system, order_id).await == Some(state) }).await;
}

fn leaks(report: &Value) -> Vec<(String, Value)> {
    let leaks = report["leaks"].as_array().expect("leaks");
    leaks.iter().map(|leak| (leak["order_id"].as_str().expect("order id").to_owned(), leak["status"].clone())).collect()
}

/// `(on_hand, reserved, consumed)` of each ingredient.
fn levels(stock: &StockSnapshot) -> Vec<(u64, u64, u64)> {
    stock.levels.values().map(|level| (level.on_hand, level.reserved, level.consumed)).collect()
}

/// The reconciler's audit entries.
async fn reconciler_entries(system: &TestSystem) -> Vec<AuditEntry> {
    let jetstream = async_nats::jetstream::new(system.admin.clone());
    let entries: Vec<AuditEntry> =
        brewq_runtime::jetstream::last_json(&jetstream, subjects::AUDIT_STREAM, 100).await.expect("audit trail readable");
    entries.into_iter().filter(|entry| entry.who == audit::RECONCILER).collect()
}

#[tokio::test]
async fn a_reservation_left_by_a_controller_that_died_is_named_then_released() {
    let system = start(1, "8s").await;
    let before = system.stock().await;
    let controller = controller(&system).await;
    let (_, leaked) = order("Lea");
    reserve(&controller, "leak-1", &leaked).await;

    let (report, passed) = check(&system.dir).await;
    assert!(!passed, "a leak is a difference: {report}");
    assert_eq!(leaks(&report), [("leak-1".to_owned(), Value::Null)], "{report}");

    wait_reservation(&system, "leak-1", ReservationState::Released).await;
    assert_eq!(levels(&system.stock().await), levels(&before), "the stock is back where it was");
    // The reconciler audits a release after it is applied (and after counting it): wait for it.
    let target = format!("order {}", brewq_protocol::ids::order_ref("leak-1"));
    eventually("the reconciler's release in the audit trail", WAIT, || async {
        let entries = reconciler_entries(&system).await;
        entries.iter().any(|entry| entry.action == "reconcile-release" && entry.target == target && entry.outcome == "ok")
    })
    .await;
    let (report, passed) = check(&system.dir).await;
    assert!(passed && leaks(&report).is_empty(), "{report}");
    let metrics = reqwest::get(&system.system.info.metrics_urls["controller-1"]).await.expect("metrics").text().await.expect("page");
    assert!(metrics.contains("brewq_stock_reconciled_total{action=\"release\"} 1\n"), "{metrics}");

    let status = status(&system.dir).await;
    assert_eq!(status["reconciled"]["released"], 1, "{status}");
    assert_eq!(status["reconciled"]["last"]["target"], target.as_str(), "{status}");
    system.stop().await;
}

/// `brewq status --json` on the system in `dir`, healthy or not.
async fn status(dir: &Path) -> Value {
    let dir = dir.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(brewq_bin()).args(["status", "--json", "--data-dir"]).arg(&dir).output().expect("brewq runs")
    })
    .await
    .expect("join");
    serde_json::from_slice(&output.stdout).expect("status --json prints JSON")
}

/// Passes of the controller that saw a reservation held too long and left it, from its log.
fn passes_leaving_one(dir: &Path) -> usize {
    let log = std::fs::read_to_string(dir.join("logs").join("controller-1.log")).unwrap_or_default();
    log.lines().filter(|line| line.contains("reservations held too long") && line.contains("left=1")).count()
}

#[tokio::test]
async fn an_order_waiting_unrecorded_in_the_queue_keeps_its_stock_until_it_is_brewed() {
    // No machine: the order waits in the work queue, as after a controller died between the
    // PubAck and the record while every machine was paused.
    let mut system = start(0, "1s").await;
    let controller = controller(&system).await;
    let (_, queued) = order("Quinn");
    let order_id = "queued-unrecorded-1".to_owned();
    reserve(&controller, &order_id, &queued).await;
    let message = async_nats::jetstream::message::PublishMessage::build()
        .message_id(&order_id)
        .header(subjects::ORDER_ID_HEADER, order_id.as_str())
        .payload(serde_json::to_vec(&queued).expect("order serializes").into());
    let jetstream = async_nats::jetstream::new(controller.clone());
    jetstream.send_publish(subjects::order_subject(queued.bean_type), message).await.expect("publish").await.expect("PubAck");

    eventually("three reconciler passes that leave the order alone", WAIT, || async { passes_leaving_one(&system.dir) >= 3 }).await;
    assert_eq!(reservation(&system, &order_id).await, Some(ReservationState::Reserved));
    assert!(system.record(&order_id).await.is_none(), "nobody recorded the order");

    system.system.add_service(ServiceKind::Maker(1)).expect("machine 1 starts");
    let done = system.wait_terminal(std::slice::from_ref(&order_id), WAIT).await;
    assert_eq!(done[&order_id].status, OrderStatus::Ready);
    wait_reservation(&system, &order_id, ReservationState::Committed).await;
    let (report, passed) = check(&system.dir).await;
    assert!(passed, "{report}");
    assert!(reconciler_entries(&system).await.is_empty(), "the reconciler did nothing");
    system.stop().await;
}

/// Writes the record of an order that went from queued to `end`, as a controller would.
async fn record_ended(controller: &async_nats::Client, order_id: &str, order: Order, end: OrderStatus) {
    let mut record = OrderRecord::queued(order_id, order, now());
    if end == OrderStatus::Ready {
        record.transition(OrderStatus::Brewing, Some(1), None, now()).expect("brewing");
    }
    record.transition(end, None, None, now()).expect("ends");
    let records = async_nats::jetstream::new(controller.clone()).get_key_value(subjects::ORDERS_BUCKET).await.expect("records");
    brewq_runtime::kv::put_json(&records, order_id, &record).await.expect("record written");
}

#[tokio::test]
async fn a_reservation_whose_order_ended_is_settled_as_its_record_says() {
    // What a machine leaves when it dies after the record and before the settle.
    let system = start(0, "1s").await;
    let controller = controller(&system).await;
    let ends = [("ended-cancelled", OrderStatus::Cancelled), ("ended-failed", OrderStatus::Failed), ("ended-ready", OrderStatus::Ready)];
    for (order_id, end) in ends {
        let (_, ended) = order(order_id);
        // Recorded first, so that no pass sees the reservation without its record.
        record_ended(&controller, order_id, ended.clone(), end).await;
        reserve(&controller, order_id, &ended).await;
    }

    wait_reservation(&system, "ended-cancelled", ReservationState::Released).await;
    wait_reservation(&system, "ended-failed", ReservationState::Released).await;
    wait_reservation(&system, "ended-ready", ReservationState::Committed).await;
    let (report, passed) = check(&system.dir).await;
    assert!(passed, "{report}");
    let mut actions: Vec<(String, String)> =
        reconciler_entries(&system).await.into_iter().map(|entry| (entry.target, entry.action)).collect();
    actions.sort();
    let mut expected: Vec<(String, String)> = ends
        .iter()
        .map(|(order_id, end)| {
            let action = if *end == OrderStatus::Ready { "reconcile-commit" } else { "reconcile-release" };
            (format!("order {}", brewq_protocol::ids::order_ref(order_id)), action.to_owned())
        })
        .collect();
    expected.sort();
    assert_eq!(actions, expected, "one entry per settlement");
    system.stop().await;
}
