//! Customers' names end to end: with names kept for 1 s after an order ends, the controller
//! removes the name of every ended order (ready, failed, cancelled) from its record and from the
//! record's earlier revisions, keeps the rest of the record, leaves an open order's name alone,
//! and refuses to retry a failed order whose name is gone.

use std::time::Duration;

use brewq_launch::ServiceKind;
use brewq_protocol::record::REMOVED_NAME;
use brewq_protocol::{Bean, Milk, OrderLookup, OrderReply, OrderStatus, RejectCode, Size, subjects};
use futures::StreamExt;

use crate::harness::{TestSystem, order_json};

const WAIT: Duration = Duration::from_secs(60);

async fn place(system: &TestSystem, name: &str) -> String {
    let reply = system.order(&order_json(name, "large", "robusta", "soy", 2)).await;
    reply.order_id.unwrap_or_else(|| panic!("order refused: {}", reply.message))
}

async fn ask(system: &TestSystem, subject: &str, order_id: &str) -> OrderReply {
    brewq_runtime::request::request_bytes(&system.admin, subject, order_id.as_bytes().to_vec(), Duration::from_secs(10))
        .await
        .expect("the controller answers")
}

/// Places an order and cancels it at once: an order that ends with no machine running.
async fn place_and_cancel(system: &TestSystem, name: &str) -> String {
    let order_id = place(system, name).await;
    let reply = ask(system, subjects::ORDER_CANCEL, &order_id).await;
    assert!(reply.is_success(), "cancel: {}", reply.message);
    order_id
}

/// Waits until the records of `order_ids` have no name.
async fn wait_names_removed(system: &TestSystem, order_ids: &[String]) {
    system.wait_for(order_ids, |record| record.name_removed_at.is_some(), WAIT).await;
}

/// Every revision the bucket keeps of one record, as raw bytes.
async fn revisions(system: &TestSystem, order_id: &str) -> Vec<Vec<u8>> {
    let records = system.bucket(subjects::ORDERS_BUCKET).await;
    let history = records.history(order_id).await.expect("history");
    history.map(|entry| entry.expect("revision").value.to_vec()).collect().await
}

#[tokio::test]
async fn names_go_from_ended_orders_and_everything_else_stays() {
    let mut system = TestSystem::start(1, |config| {
        config.service_env.push(("BREWQ_NAMES_KEPT_FOR".into(), "1s".into()));
        config.service_env.push(("BREWQ_NAME_SCAN_EVERY".into(), "1s".into()));
    })
    .await;
    let ready = place(&system, "Ada").await;
    system.wait_terminal(std::slice::from_ref(&ready), WAIT).await;
    stop_machine(&mut system, 1).await;

    // Machine 2 fails every brew, and the order ends failed at its first attempt.
    system.system.config.fail_rate = 1.0;
    system.system.config.max_attempts = 1;
    system.system.add_service(ServiceKind::Maker(2)).expect("machine 2 starts");
    let failed = place(&system, "Fay").await;
    let ended = system.wait_terminal(std::slice::from_ref(&failed), WAIT).await;
    assert_eq!(ended[&failed].status, OrderStatus::Failed);
    stop_machine(&mut system, 2).await;

    // No machine runs from here: an order placed now stays queued.
    let open = place(&system, "Bob").await;
    let cancelled = place_and_cancel(&system, "Cy").await;
    wait_names_removed(&system, &[ready.clone(), failed.clone(), cancelled]).await;
    // An order that ends after that removal has its name removed by a later scan: by then
    // every scan has seen the open order older than the time names are kept.
    let later = place_and_cancel(&system, "Dee").await;
    wait_names_removed(&system, &[later]).await;

    // The work queue keeps an order's message (and its name) only until the order ends.
    assert_eq!(system.stream_messages().await, 1, "only the open order is still in the work queue");
    let kept = system.record(&open).await.expect("open record");
    assert_eq!(
        (kept.status, kept.order.name.as_str(), kept.name_removed_at),
        (OrderStatus::Queued, "Bob", None),
        "an open order keeps its name"
    );

    let record = system.record(&ready).await.expect("ready record");
    assert_eq!(record.order.name, "");
    assert_eq!((record.status, record.machine, record.attempts), (OrderStatus::Ready, Some(1), 1));
    assert_eq!(
        (record.order.size, record.order.bean_type, record.order.milk, record.order.sugar_count),
        (Size::Large, Bean::Robusta, Milk::Soy, 2)
    );
    let statuses: Vec<_> = record.history.iter().map(|entry| entry.status).collect();
    assert_eq!(statuses, [OrderStatus::Queued, OrderStatus::Brewing, OrderStatus::Ready], "the timings stay");
    assert!(record.queue_sequence.is_some() && record.created_at() <= record.ended_at());

    let kept_revisions = revisions(&system, &ready).await;
    assert_eq!(kept_revisions.len(), 1, "the earlier revisions of the record are gone");
    assert!(!String::from_utf8_lossy(&kept_revisions[0]).contains("Ada"), "no revision keeps the name");

    let lookup: OrderLookup =
        brewq_runtime::request::request_bytes(&system.admin, subjects::ORDER_READ, ready.clone().into_bytes(), Duration::from_secs(10))
            .await
            .expect("the controller answers");
    let OrderLookup::Found { order } = lookup else { panic!("order not found: {lookup:?}") };
    assert_eq!(order.record.order.name, REMOVED_NAME, "pages show a mark where the name was");

    let retry = ask(&system, subjects::DEAD_LETTER_RETRY, &failed).await;
    assert_eq!(retry.code, Some(RejectCode::Conflict), "{}", retry.message);
    assert!(retry.message.contains("name was removed"), "{}", retry.message);
    system.stop().await;
}

async fn stop_machine(system: &mut TestSystem, machine: u32) {
    let process = system.system.service(ServiceKind::Maker(machine)).expect("the machine runs");
    assert!(process.stop(Duration::from_secs(15)).await, "machine {machine} stops cleanly");
}
