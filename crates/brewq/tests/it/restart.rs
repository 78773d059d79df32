//! Everything stopped and started again on the same data folder: orders and stock intact, and
//! orders that were waiting get brewed.

use std::time::Duration;

use brewq_launch::ServiceKind;
use brewq_protocol::OrderStatus;

use crate::harness::{TestSystem, eventually, order_json};

#[tokio::test]
async fn a_restart_on_the_same_data_folder_keeps_orders_and_stock() {
    let folder = tempfile::Builder::new().prefix("brewq-restart-").tempdir().expect("temp dir");
    let mut first = TestSystem::start_in(folder.path(), 1, |_| {}).await;
    let mut ready = Vec::new();
    for index in 0..3 {
        let reply = first.order(&order_json(&format!("r{index}"), "medium", "arabica", "cow", 1)).await;
        ready.push(reply.order_id.expect("accepted"));
    }
    first.wait_terminal(&ready, Duration::from_secs(30)).await;
    first.system.kill_service(ServiceKind::Maker(1)).await;
    let mut waiting = Vec::new();
    for index in 0..2 {
        let reply = first.order(&order_json(&format!("w{index}"), "large", "robusta", "soy", 0)).await;
        waiting.push(reply.order_id.expect("accepted"));
    }
    let stock_before = first.stock().await;
    first.stop().await;

    let second = TestSystem::start_in(folder.path(), 2, |_| {}).await;
    for id in &ready {
        assert_eq!(second.record(id).await.expect("kept").status, OrderStatus::Ready);
    }
    let records = second.wait_terminal(&waiting, Duration::from_secs(60)).await;
    assert!(records.values().all(|record| record.status == OrderStatus::Ready));
    eventually("the work queue to drain", Duration::from_secs(30), || async { second.queue_depth().await == 0 }).await;
    let stock_after = second.stock().await;
    for (ingredient, before) in &stock_before.levels {
        let after = &stock_after.levels[ingredient];
        assert_eq!(after.added, before.added, "{ingredient}");
        assert_eq!(after.consumed, before.consumed + before.reserved, "{ingredient}: the waiting orders consumed what they reserved");
        assert_eq!(after.reserved, 0, "{ingredient}");
    }
    second.stop().await;
}
