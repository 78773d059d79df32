//! Each machine its own identity: a machine's credential is held to its own subjects and to
//! the orders it brews, and an operator revokes or enrolls a machine during a rush, with no
//! server restarted and no other credential touched.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use brewq_launch::ServiceKind;
use brewq_protocol::{OrderRecord, OrderStatus, OrderUpdate, UpdateReply, subjects};
use serde_json::Value;

use crate::harness::{TestSystem, brewq_bin, eventually, order_json, records_where, until_found};
use crate::security::RoleClient;

/// Within how long a revoked machine must be cut off, and an enrolled one take an order.
const WITHIN: Duration = Duration::from_secs(5);

async fn machine(system: &TestSystem, id: u32) -> RoleClient {
    RoleClient::connect_with(system.system.machine_config(id).expect("machine config")).await
}

async fn update(client: &async_nats::Client, subject: &str, order_id: &str, status: OrderStatus, claimed: u32) -> UpdateReply {
    let update = OrderUpdate { order_id: order_id.into(), status, machine: Some(claimed), reason: None, order: None, brewing_since: None };
    brewq_runtime::request::request_json(client, subject, &update, Duration::from_secs(5)).await.expect("the controllers answer")
}

#[tokio::test]
async fn a_machine_is_held_to_its_own_subjects_and_to_the_orders_it_brews() {
    let system = TestSystem::start(0, |_| {}).await;
    let mut two = machine(&system, 2).await;
    let three = machine(&system, 3).await;

    // Machine 2 may write its own heartbeat, and nothing of machine 3's.
    let heartbeats = async_nats::jetstream::new(two.client.clone()).get_key_value(subjects::MACHINES_BUCKET).await.expect("bind");
    heartbeats.put(subjects::machine_key(2), "{}".into()).await.expect("machine 2 writes its own heartbeat");
    let mut failures = Vec::new();
    for (action, subject) in [
        ("pub", format!("$KV.{}.{}", subjects::MACHINES_BUCKET, subjects::machine_key(3))),
        ("pub", format!("$KV.{}.{}", subjects::MACHINE_HOLDS_BUCKET, subjects::machine_key(3))),
        ("pub", subjects::order_updates_from(3)),
        ("sub", subjects::machine_control(3)),
        ("sub", format!("{}.>", subjects::machine_inbox_prefix(3))),
        ("sub", "_INBOX_maker.>".to_owned()),
    ] {
        let refused = match action {
            "pub" => two.publish_refused(&subject).await,
            _ => two.subscribe_refused(&subject).await,
        };
        if !refused {
            failures.push(format!("machine 2 may {action} {subject}"));
        }
    }
    assert!(failures.is_empty(), "not refused: {failures:#?}");

    // Machine 3 takes an order from the work queue and starts brewing it.
    let reply = system.order(&order_json("Ada", "small", "arabica", "none", 0)).await;
    let order_id = reply.order_id.expect("accepted");
    let queue = async_nats::jetstream::new(three.client.clone());
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        queue.get_consumer_from_stream(subjects::MAKERS_CONSUMER, subjects::ORDERS_STREAM).await.expect("bind");
    let mut batch = consumer.fetch().max_messages(1).expires(Duration::from_secs(5)).messages().await.expect("fetch");
    let delivery = futures::StreamExt::next(&mut batch).await.expect("an order").expect("delivered");
    let brewing = update(&three.client, &subjects::order_updates_from(3), &order_id, OrderStatus::Brewing, 3).await;
    assert!(matches!(brewing, UpdateReply::Applied { .. }), "{brewing:?}");

    // Machine 2, even claiming to be machine 3 in the payload, cannot end it.
    for status in [OrderStatus::Ready, OrderStatus::Failed, OrderStatus::Queued] {
        let refused = update(&two.client, &subjects::order_updates_from(2), &order_id, status, 3).await;
        assert!(matches!(refused, UpdateReply::Refused { .. }), "machine 2 moved machine 3's order to {status}: {refused:?}");
    }
    let record = system.record(&order_id).await.expect("recorded");
    assert_eq!((record.status, record.machine), (OrderStatus::Brewing, Some(3)));

    // Machine 3 ends its own brew.
    let ready = update(&three.client, &subjects::order_updates_from(3), &order_id, OrderStatus::Ready, 3).await;
    assert!(matches!(ready, UpdateReply::Settled { .. }), "{ready:?}");
    delivery.double_ack().await.expect("acked");
    let record = system.record(&order_id).await.expect("recorded");
    assert_eq!((record.status, record.machine), (OrderStatus::Ready, Some(3)));

    // The account's JWT issued again and given to the running servers: the machines keep
    // their rights, and a machine enrolled twice is refused.
    let (output, pushed) = brewq_command(&system.dir, &["security", "push"]).await;
    assert!(pushed && output.contains("on 3 of 3 server(s)"), "{output}");
    let mut three = three;
    assert!(three.publish_refused(&subjects::order_updates_from(2)).await, "machine 3's rights changed");
    let heartbeat = heartbeats.put(subjects::machine_key(2), "{}".into()).await;
    assert!(heartbeat.is_ok(), "machine 2 lost its rights: {heartbeat:?}");
    let (output, enrolled) = brewq_command(&system.dir, &["machines", "enroll", "2"]).await;
    assert!(!enrolled && output.contains("enrolled already"), "{output}");
    system.stop().await;
}

/// `brewq <args> --data-dir <dir>`, its output, and whether it succeeded.
async fn brewq_command(dir: &Path, args: &[&str]) -> (String, bool) {
    let (dir, args): (_, Vec<String>) = (dir.to_owned(), args.iter().map(|arg| (*arg).to_owned()).collect());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(brewq_bin()).args(&args).arg("--data-dir").arg(&dir).output().expect("brewq runs")
    })
    .await
    .expect("join");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (text, output.status.success())
}

/// The connections named `name` on every server: `(open, closed with their reasons)`.
async fn connections_named(system: &TestSystem, name: &str) -> (usize, Vec<String>) {
    let (mut open, mut reasons) = (0, Vec::new());
    for url in system.system.cluster.monitor_urls() {
        for (state, closed) in [("open", false), ("closed", true)] {
            let Ok(response) = reqwest::get(format!("{url}/connz?state={state}&limit=1024")).await else { continue };
            let connz: Value = response.json().await.unwrap_or_default();
            for connection in connz["connections"].as_array().into_iter().flatten().filter(|c| c["name"] == name) {
                match closed {
                    false => open += 1,
                    true => reasons.push(connection["reason"].as_str().unwrap_or_default().to_owned()),
                }
            }
        }
    }
    (open, reasons)
}

fn server_pids(system: &mut TestSystem) -> Vec<Option<u32>> {
    (0..system.system.cluster.len()).map(|index| system.system.cluster.node(index).and_then(|process| process.pid())).collect()
}

/// When each machine started a brew, from the records.
fn brews_by_machine(records: &HashMap<String, OrderRecord>) -> HashMap<u32, Vec<time::OffsetDateTime>> {
    let mut brews: HashMap<u32, Vec<time::OffsetDateTime>> = HashMap::new();
    for record in records.values() {
        for entry in record.history.iter().filter(|entry| entry.status == OrderStatus::Brewing) {
            brews.entry(entry.machine.expect("a brew names its machine")).or_default().push(entry.at);
        }
    }
    brews
}

#[tokio::test]
async fn a_machine_revoked_during_a_rush_is_cut_off_and_one_enrolled_takes_orders_within_seconds() {
    // Brews of a second: four machines take four orders a second, and the rush queues more.
    let mut system = TestSystem::start(4, |config| config.brew_scale = 0.05).await;
    let pids_before = server_pids(&mut system);
    let admin = system.admin.clone();
    let rush = tokio::spawn(async move {
        let mut ids = Vec::new();
        for n in 0..80 {
            let reply = crate::harness::order_until_answered(
                &admin,
                &order_json(&format!("Rush{n}"), "small", "arabica", "none", 0),
                Instant::now() + Duration::from_secs(30),
            )
            .await;
            ids.push(reply.order_id.expect("accepted"));
            tokio::time::sleep(Duration::from_millis(125)).await;
        }
        ids
    });

    // Machine 2 brewing: it is cut off.
    let records = system.bucket(subjects::ORDERS_BUCKET).await;
    let held = until_found("machine 2 to brew an order", Duration::from_secs(30), || async {
        let brewing =
            records_where(&system.admin, &records, |record| record.status == OrderStatus::Brewing && record.machine == Some(2)).await;
        brewing.into_iter().next().map(|record| record.id)
    })
    .await;
    let revoked_at = brewq_protocol::now();
    let started = Instant::now();
    let (output, revoked) = brewq_command(&system.dir, &["machines", "revoke", "2"]).await;
    assert!(revoked && output.contains("revoked on 3 of 3 server(s)"), "{output}");
    eventually("machine 2's connection to be closed as revoked", WITHIN.saturating_sub(started.elapsed()), || async {
        let (open, reasons) = connections_named(&system, "maker-2").await;
        open == 0 && reasons.iter().any(|reason| reason == "Credentials Revoked")
    })
    .await;
    let cut_off = started.elapsed();

    // A new machine, enrolled and started mid-rush, takes orders within seconds.
    let (output, enrolled) = brewq_command(&system.dir, &["machines", "enroll", "5"]).await;
    assert!(enrolled && output.contains("machine 5 enrolled"), "{output}");
    let started = Instant::now();
    system.system.add_service(ServiceKind::Maker(5)).expect("machine 5 starts");
    eventually("machine 5 to take an order", WITHIN, || async {
        !records_where(&system.admin, &records, |record| record.history.iter().any(|entry| entry.machine == Some(5))).await.is_empty()
    })
    .await;
    let first_order = started.elapsed();

    let ids = rush.await.expect("the rush");
    let ended = system.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert!(ended.values().all(|record| record.status == OrderStatus::Ready), "every order ready");
    // The order machine 2 held was brewed again elsewhere, and made ready once.
    let record = &ended[&held];
    let ready: Vec<_> = record.history.iter().filter(|entry| entry.status == OrderStatus::Ready).collect();
    assert_eq!(ready.len(), 1, "{record:?}");
    assert!(ready[0].machine.is_some_and(|machine| machine != 2), "{record:?}");
    let brews = brews_by_machine(&ended);
    let after = |machine: u32| brews.get(&machine).into_iter().flatten().filter(|at| **at > revoked_at).count();
    assert_eq!(after(2), 0, "machine 2 brewed after its revocation");
    for machine in [1, 3, 4, 5] {
        assert!(after(machine) > 0, "machine {machine} brewed nothing after the revocation: {brews:?}");
    }
    let (report, passed) = crate::harness::check(&system.dir).await;
    assert!(passed, "the invariants hold, the stock exact: {report}");
    assert_eq!(server_pids(&mut system), pids_before, "no server restarted");
    println!("machine 2 cut off {cut_off:?} after its revocation; machine 5's first order {first_order:?} after it started");
    system.stop().await;
}
