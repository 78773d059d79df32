//! The operator's actions end to end on a real cluster: pause and resume, out of service,
//! restock, retry and give up of failed orders (stock exact to the unit), and the audit trail.

use std::time::Duration;

use brewq_launch::ServiceKind;
use brewq_protocol::{
    DeadLetter, Ingredient, MachineCommand, MachineHeartbeat, MachineState, OrderReply, OrderStatus, RejectCode, StockCommand, StockReply,
    subjects,
};
use futures::future::join_all;

use crate::harness::{TestSystem, brewq_bin, eventually, order_json};

async fn command(system: &TestSystem, machine: u32, command: MachineCommand) -> MachineHeartbeat {
    brewq_runtime::request::request_json(&system.admin, &subjects::machine_control(machine), &command, Duration::from_secs(5))
        .await
        .expect("the machine answers")
}

async fn place(system: &TestSystem, count: usize, prefix: &str) -> Vec<String> {
    let orders: Vec<_> = (0..count).map(|index| order_json(&format!("{prefix}{index}"), "small", "arabica", "none", 0)).collect();
    join_all(orders.iter().map(|order| system.order(order))).await.into_iter().map(|reply| reply.order_id.expect("accepted")).collect()
}

/// Runs the real CLI against the test system's folder; returns stdout.
fn cli(system: &TestSystem, args: &[&str]) -> String {
    let output = std::process::Command::new(brewq_bin()).args(args).arg("--data-dir").arg(&system.dir).output().expect("brewq runs");
    assert!(output.status.success(), "brewq {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn a_paused_machine_takes_no_new_order_until_resumed() {
    let system = TestSystem::start(2, |_| {}).await;
    let paused: MachineHeartbeat = serde_json::from_str(&cli(&system, &["machines", "pause", "1", "--json"])).expect("json");
    assert_eq!(paused.state, MachineState::Paused);
    eventually("brewq status to count one machine taking orders", Duration::from_secs(30), || {
        let health: serde_json::Value = serde_json::from_str(&cli(&system, &["status", "--json"])).expect("json");
        async move { health["machines"]["taking_orders"] == 1 && health["machines"]["online"] == 2 }
    })
    .await;
    let first = place(&system, 12, "p").await;
    let records = system.wait_terminal(&first, Duration::from_secs(60)).await;
    assert!(
        records.values().all(|record| record.status == OrderStatus::Ready && record.machine == Some(2)),
        "machine 1 brewed while paused"
    );

    // A paused machine that restarts (a crash, a power cut) is still paused.
    let mut system = system;
    system.system.kill_service(ServiceKind::Maker(1)).await;
    let killed = brewq_protocol::now();
    assert_eq!(system.system.revive(), ["maker-1"]);
    assert_eq!(first_beat_after(&system, killed).await, MachineState::Paused, "the pause outlives a restart");
    let after_restart = place(&system, 6, "q").await;
    let records = system.wait_terminal(&after_restart, Duration::from_secs(60)).await;
    assert!(records.values().all(|record| record.machine == Some(2)), "machine 1 brewed after restarting paused");

    assert_eq!(command(&system, 1, MachineCommand::Resume).await.state, MachineState::Idle);
    assert_eq!(cli(&system, &["machines", "pause", "2"]).trim(), "machine 2: paused", "the state in words");
    let second = place(&system, 6, "r").await;
    let records = system.wait_terminal(&second, Duration::from_secs(60)).await;
    assert!(records.values().all(|record| record.machine == Some(1)), "machine 1 takes orders again after resume");

    // A hold for a machine that is not running is kept, and the machine starts under it; a
    // resume while it is down lifts it.
    let after_hold = [
        ("out-of-service", "(out of service) is kept", Some("(held: out of service)"), MachineState::OutOfService),
        ("resume", "it has no hold now", None, MachineState::Idle),
    ];
    for (action, kept, listed_as, state) in after_hold {
        system.system.kill_service(ServiceKind::Maker(1)).await;
        let killed = brewq_protocol::now();
        eventually("machine 1's commands to have no listener", Duration::from_secs(30), || async {
            let request = system.admin.request(subjects::machine_control(1), "{}".into()).await;
            request.is_err_and(|error| error.kind() == async_nats::RequestErrorKind::NoResponders)
        })
        .await;
        let reply: serde_json::Value = serde_json::from_str(&cli(&system, &["machines", action, "1", "--json"])).expect("json");
        assert_eq!(reply["kept"], true, "{reply}");
        let said = cli(&system, &["machines", action, "1"]);
        assert!(said.contains("machine 1 is not running") && said.contains(kept), "{said}");
        let listed = cli(&system, &["machines"]);
        let machine_1 = listed.lines().find(|line| line.starts_with("machine  1")).expect("machine 1 is listed");
        match listed_as {
            Some(hold) => assert!(machine_1.contains(hold), "{listed}"),
            None => assert!(!machine_1.contains("(held"), "{listed}"),
        }
        let fleet: Vec<serde_json::Value> = serde_json::from_str(&cli(&system, &["machines", "--json"])).expect("json");
        let held = fleet.iter().find(|machine| machine["id"] == 1).map(|machine| machine["hold"].clone());
        let expected = listed_as.map(|_| serde_json::json!("out_of_service")).unwrap_or(serde_json::Value::Null);
        assert_eq!(held, Some(expected), "the hold in `brewq machines --json`: {fleet:?}");
        assert_eq!(system.system.revive(), ["maker-1"]);
        assert_eq!(first_beat_after(&system, killed).await, state, "machine 1 after `{action}` while it was down");
    }

    let audit: Vec<serde_json::Value> = serde_json::from_str(&cli(&system, &["audit", "--json"])).expect("json");
    let pause = audit.iter().find(|entry| entry["action"] == "pause").expect("the pause is in the audit trail");
    assert_eq!(pause["target"], "machine 1");
    assert!(pause["who"].as_str().is_some_and(|who| who.starts_with("cli:")));
    let kept = audit.iter().find(|entry| entry["action"] == "out-of-service").expect("the kept hold is in the audit trail");
    assert_eq!(kept["outcome"], "kept (machine not running)");
    system.stop().await;
}

/// The state in machine 1's first heartbeat sent after `since`.
async fn first_beat_after(system: &TestSystem, since: time::OffsetDateTime) -> MachineState {
    let heartbeats = system.bucket(subjects::MACHINES_BUCKET).await;
    let last_beat = || async {
        let read = brewq_runtime::kv::get_json::<MachineHeartbeat>(&heartbeats, &subjects::machine_key(1)).await;
        read.expect("read").map(|(beat, _)| beat).filter(|beat| beat.at > since)
    };
    eventually("a heartbeat from the restarted machine 1", Duration::from_secs(30), || async { last_beat().await.is_some() }).await;
    last_beat().await.expect("a heartbeat").state
}

#[tokio::test]
async fn an_out_of_service_machine_hands_its_order_to_another_once() {
    let system = TestSystem::start(2, |config| config.brew_scale = 0.3).await;
    let order_id = place(&system, 1, "o").await.remove(0);
    let brewing =
        system.wait_for(std::slice::from_ref(&order_id), |record| record.status == OrderStatus::Brewing, Duration::from_secs(20)).await;
    let first = brewing[&order_id].machine.expect("a machine");
    assert_eq!(command(&system, first, MachineCommand::OutOfService).await.state, MachineState::OutOfService);

    let done = system.wait_terminal(std::slice::from_ref(&order_id), Duration::from_secs(60)).await;
    let record = &done[&order_id];
    assert_eq!(record.status, OrderStatus::Ready);
    assert_ne!(record.machine, Some(first), "brewed elsewhere");
    assert_eq!(record.history.iter().filter(|entry| entry.status == OrderStatus::Ready).count(), 1);
    eventually("the queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    let stock = system.stock().await;
    assert_eq!(stock.levels[&Ingredient::Arabica].consumed, 7, "consumed once");
    assert_eq!(stock.levels[&Ingredient::Arabica].reserved, 0);
    system.stop().await;
}

#[tokio::test]
async fn restocking_lets_a_refused_order_through() {
    let system = TestSystem::start(1, |config| {
        config.topology.initial_stock.insert(Ingredient::SoyMilk, 0);
    })
    .await;
    let order = order_json("Soy", "medium", "mixed", "soy", 1);
    let refused = system.order(&order).await;
    assert_eq!((refused.code, refused.field.as_deref()), (Some(RejectCode::OutOfStock), Some("soy_milk")));
    let stock: serde_json::Value = serde_json::from_str(&cli(&system, &["stock", "restock", "soy_milk=1000", "--json"])).expect("json");
    assert_eq!(stock["levels"]["soy_milk"]["on_hand"], 1000);
    let accepted = system.order(&order).await;
    let order_id = accepted.order_id.expect("accepted after the restock");
    system.wait_terminal(&[order_id], Duration::from_secs(30)).await;
    system.stop().await;
}

#[tokio::test]
async fn retry_and_give_up_of_failed_orders_keep_the_stock_exact() {
    let mut system = TestSystem::start(1, |config| {
        config.fail_rate = 1.0;
        config.max_attempts = 1;
    })
    .await;
    let failed = place(&system, 2, "f").await;
    let records = system.wait_terminal(&failed, Duration::from_secs(60)).await;
    assert!(records.values().all(|record| record.status == OrderStatus::Failed));
    eventually("the queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    let before = system.stock().await;
    assert!(before.levels.values().all(|level| level.reserved == 0 && level.consumed == 0), "failed orders released their stock");
    let dead: Vec<DeadLetter> = serde_json::from_str(&cli(&system, &["failed", "--json"])).expect("json");
    assert_eq!(dead.len(), 2);

    // A working machine replaces the broken one.
    system.system.kill_service(ServiceKind::Maker(1)).await;
    system.system.config.fail_rate = 0.0;
    system.system.add_service(ServiceKind::Maker(2)).expect("a machine starts");

    let retried: OrderReply = serde_json::from_str(&cli(&system, &["failed", "retry", &failed[0], "--json"])).expect("json");
    let new_id = retried.order_id.expect("a new order");
    assert_ne!(new_id, failed[0]);
    let again: OrderReply = serde_json::from_str(&cli(&system, &["failed", "retry", &failed[0], "--json"])).expect("json");
    assert_eq!(again.order_id.as_deref(), Some(new_id.as_str()), "retrying twice is one new order");
    cli(&system, &["failed", "give-up", &failed[1]]);
    let dead: Vec<DeadLetter> = serde_json::from_str(&cli(&system, &["failed", "--json"])).expect("json");
    assert!(dead.is_empty(), "{dead:?}");

    let done = system.wait_terminal(std::slice::from_ref(&new_id), Duration::from_secs(60)).await;
    assert_eq!(done[&new_id].status, OrderStatus::Ready);
    assert_eq!(system.record(&failed[0]).await.expect("record").retried_as.as_deref(), Some(new_id.as_str()));
    eventually("the queue to drain", Duration::from_secs(30), || async { system.queue_depth().await == 0 }).await;
    let after = system.stock().await;
    for (ingredient, level) in &after.levels {
        let expected = if *ingredient == Ingredient::Arabica { 7 } else { 0 };
        assert_eq!((level.consumed, level.reserved), (expected, 0), "{ingredient}");
        assert_eq!(level.on_hand + level.consumed, level.added, "{ingredient}");
    }
    let restock = StockCommand::Restock { items: [(Ingredient::Sugar, 1)].into(), request_id: None };
    let reply: StockReply =
        brewq_runtime::request::request_json(&system.admin, &subjects::stock_subject(&restock), &restock, Duration::from_secs(5))
            .await
            .expect("answers");
    assert!(matches!(reply, StockReply::Snapshot { .. }));

    // A restock the stock cannot count is refused whole, naming the ingredient: no line of it
    // applied, no level wrapped around.
    let before = system.stock().await;
    let too_much = format!("arabica={}", u64::MAX);
    let output = std::process::Command::new(brewq_bin())
        .args(["stock", "restock", "sugar=5", &too_much, "--data-dir"])
        .arg(&system.dir)
        .output()
        .expect("brewq runs");
    let reason = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && reason.contains("arabica") && reason.contains("restocking"), "{reason}");
    assert_eq!(system.stock().await.levels, before.levels, "nothing restocked");
    system.stop().await;
}
