//! The stock ledger against a real cluster: duplicate commands for the same orders, racing on
//! two stock managers, change the levels once per order.

use std::time::Duration;

use brewq_launch::Role;
use brewq_protocol::stock::{Items, Reservation, ReservationState};
use brewq_protocol::{Ingredient, StockCommand, StockReply, subjects};
use futures::future::join_all;

use crate::harness::TestSystem;

const COPIES: usize = 6;
const GRAMS: u64 = 10;

async fn send(client: &async_nats::Client, command: StockCommand) -> StockReply {
    brewq_runtime::request::request_json(client, &subjects::stock_subject(&command), &command, Duration::from_secs(20))
        .await
        .expect("a stock manager answers")
}

/// `COPIES` copies of `command` at once.
async fn duplicates(client: &async_nats::Client, command: StockCommand) -> Vec<StockReply> {
    join_all((0..COPIES).map(|_| send(client, command.clone()))).await
}

#[tokio::test]
async fn duplicate_stock_commands_racing_on_two_managers_apply_once() {
    let system = TestSystem::start(0, |config| config.stock_managers = 2).await;
    let connect = |role| {
        let config = system.system.nats_config(role, "test").expect("config");
        async move { brewq_runtime::connect(&config).await.expect("connects") }
    };
    let controller = connect(Role::Controller).await;
    let ids: Vec<String> = (0..60).map(|index| format!("dup{index:03}")).collect();
    let before = system.stock().await.levels[&Ingredient::Arabica];

    let items = Items::from([(Ingredient::Arabica, GRAMS)]);
    // An id that cannot name a record is refused before it can sink a batch.
    let refused = send(&controller, StockCommand::Reserve { order_id: "no such.id".into(), items: items.clone() }).await;
    assert!(matches!(&refused, StockReply::Error { message } if message.contains("not an order id")), "{refused:?}");
    let reserved =
        join_all(ids.iter().map(|id| duplicates(&controller, StockCommand::Reserve { order_id: id.clone(), items: items.clone() }))).await;
    let odd: Vec<&StockReply> = reserved.iter().flatten().filter(|reply| **reply != StockReply::Reserved).collect();
    assert!(odd.is_empty(), "{} of {} duplicate reserves not answered Reserved, first: {:?}", odd.len(), 60 * COPIES, odd.first());
    let stock = system.stock().await.levels[&Ingredient::Arabica];
    assert_eq!(stock.reserved, before.reserved + 60 * GRAMS, "each order reserved once: {stock:?}");

    // 25 committed, 25 released, and 10 with commits and releases racing each other.
    let finish = |index: usize, copy: usize, id: &String| match (index, copy % 2) {
        (0..25, _) | (50.., 0) => StockCommand::Commit { order_id: id.clone() },
        _ => StockCommand::Release { order_id: id.clone() },
    };
    let finished =
        join_all(ids.iter().enumerate().flat_map(|(index, id)| (0..COPIES).map(move |copy| (finish(index, copy, id), index < 50))).map(
            |(command, clean)| {
                let controller = &controller;
                async move { (send(controller, command).await, clean) }
            },
        ))
        .await;
    let failures: Vec<_> = finished.iter().filter(|(reply, clean)| *clean && matches!(reply, StockReply::Error { .. })).collect();
    assert!(failures.is_empty(), "{} uncontested duplicates failed, first: {:?}", failures.len(), failures.first());

    let store = system.bucket(subjects::STOCK_BUCKET).await;
    let mut committed = 0;
    for (index, id) in ids.iter().enumerate() {
        let entry = store.get(subjects::reservation_key(id)).await.expect("read").expect("recorded");
        let record: Reservation = serde_json::from_slice(&entry).expect("reservation");
        let expected = match index {
            0..25 => Some(ReservationState::Committed),
            25..50 => Some(ReservationState::Released),
            _ => None,
        };
        assert!(record.state != ReservationState::Reserved, "{id} left reserved");
        assert!(expected.is_none_or(|state| state == record.state), "{id}: {record:?}");
        committed += u64::from(record.state == ReservationState::Committed);
    }
    let after = system.stock().await.levels[&Ingredient::Arabica];
    assert_eq!(after.reserved, before.reserved, "nothing left reserved: {after:?}");
    assert_eq!(after.consumed, before.consumed + committed * GRAMS, "consumed once per committed order: {after:?}");
    assert_eq!(after.on_hand + after.reserved + after.consumed, after.added);
    system.stop().await;
}

/// Undoing a reserve whose answer never came is safe whichever arrives first: a release of an
/// order with no reservation leaves a released one holding nothing, and the reserve that
/// arrives after it (sent before its controller gave up) sets nothing aside.
#[tokio::test]
async fn a_reserve_arriving_after_its_release_sets_nothing_aside() {
    let system = TestSystem::start(0, |_| {}).await;
    let config = system.system.nats_config(Role::Controller, "test").expect("config");
    let controller = brewq_runtime::connect(&config).await.expect("connects");
    let before = system.stock().await.levels[&Ingredient::Arabica];
    let order_id = "late-reserve".to_owned();

    let released = send(&controller, StockCommand::Release { order_id: order_id.clone() }).await;
    assert_eq!(released, StockReply::Released, "a release of nothing is done, not an error");
    let items = Items::from([(Ingredient::Arabica, GRAMS)]);
    let late = send(&controller, StockCommand::Reserve { order_id: order_id.clone(), items }).await;
    assert_eq!(late, StockReply::Released, "the late reserve finds the order released");
    assert_eq!(send(&controller, StockCommand::Release { order_id: order_id.clone() }).await, StockReply::Released, "again: idempotent");

    let after = system.stock().await.levels[&Ingredient::Arabica];
    assert_eq!((after.on_hand, after.reserved), (before.on_hand, before.reserved), "nothing set aside");
    let store = system.bucket(subjects::STOCK_BUCKET).await;
    let (reservation, _) = brewq_runtime::kv::get_json::<Reservation>(&store, &subjects::reservation_key(&order_id))
        .await
        .expect("read")
        .expect("a released reservation holding nothing");
    assert_eq!((reservation.state, reservation.items.is_empty()), (ReservationState::Released, true));
    system.stop().await;
}
