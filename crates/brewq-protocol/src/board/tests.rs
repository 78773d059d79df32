//! The board and the activity from records, with the clock given: no server, no waiting.

use std::time::Duration;

use time::macros::datetime;
use time::{Duration as Span, OffsetDateTime};

use super::*;
use crate::{Bean, Milk, Order, OrderRecord, OrderStatus, Size};

const NOON: OffsetDateTime = datetime!(2026-12-03 12:00:30 UTC);
const READY_FOR: Duration = Duration::from_secs(180);

/// Order `n` (queue sequence `n`) of `name`, accepted at `accepted` and, if `steps` says so,
/// brewing on machine `n % 3 + 1` a minute later and ready a minute after that.
fn record(n: u64, name: &str, accepted: OffsetDateTime, steps: &[OrderStatus]) -> OrderRecord {
    let order = Order { name: name.into(), size: Size::Small, bean_type: Bean::Arabica, milk: Milk::None, sugar_count: 0 };
    let mut record = OrderRecord { queue_sequence: Some(n), ..OrderRecord::queued(&format!("secret-id-{n}"), order, accepted) };
    let machine = Some((n % 3 + 1) as u32);
    for (step, status) in steps.iter().enumerate() {
        record.transition(*status, machine, None, accepted + Span::minutes(step as i64 + 1)).expect("an allowed change");
    }
    record
}

#[test]
fn the_board_shows_brewing_and_recently_ready_orders_by_ticket_and_first_name_only() {
    let mut recent = RecentOrders::new(READY_FOR);
    recent.note(&record(1, "Ada Lovelace", NOON - Span::minutes(1), &[OrderStatus::Brewing]), NOON);
    recent.note(&record(2, "Grace", NOON - Span::minutes(3), &[OrderStatus::Brewing, OrderStatus::Ready]), NOON);
    recent.note(&record(3, "Old", NOON - Span::minutes(10), &[OrderStatus::Brewing, OrderStatus::Ready]), NOON);
    recent.note(&record(4, "Queued", NOON, &[]), NOON);
    recent.note(&record(5, "Cancelled", NOON - Span::minutes(1), &[OrderStatus::Cancelled]), NOON);
    let board = recent.board(NOON);
    assert_eq!(board.brewing, [BoardItem { ticket: 1, name: "Ada".into(), machine: Some(2), since: NOON }]);
    assert_eq!(board.ready, [BoardItem { ticket: 2, name: "Grace".into(), machine: Some(3), since: NOON - Span::minutes(1) }]);
    // Three minutes after it became ready, the order leaves the board.
    assert!(recent.board(NOON + Span::minutes(2)).ready.is_empty());
    let json = serde_json::to_string(&board).expect("serializes");
    assert!(!json.contains("secret-id"), "{json}");
}

#[test]
fn a_record_seen_again_replaces_the_one_kept_and_a_failed_brew_leaves_the_board() {
    let mut recent = RecentOrders::new(READY_FOR);
    let brewing = record(7, "Linus", NOON - Span::minutes(1), &[OrderStatus::Brewing]);
    recent.note(&brewing, NOON);
    recent.note(&brewing, NOON);
    assert_eq!(recent.board(NOON).brewing.len(), 1);
    recent.note(&record(7, "Linus", NOON - Span::minutes(2), &[OrderStatus::Brewing, OrderStatus::Queued]), NOON);
    assert_eq!(recent.board(NOON), BoardView::default());
    recent.forget("secret-id-7");
    assert_eq!(recent.activity(NOON).minutes.iter().map(|minute| minute.accepted).sum::<u64>(), 0);
}

#[test]
fn the_activity_counts_orders_and_waits_per_minute_and_brews_per_machine() {
    let mut recent = RecentOrders::new(READY_FOR);
    // Three orders accepted at 11:50, ready at 11:52 after 2 min; one accepted at 11:58.
    for n in [1, 2, 4] {
        recent.note(&record(n, "A", NOON - Span::minutes(10), &[OrderStatus::Brewing, OrderStatus::Ready]), NOON);
    }
    recent.note(&record(9, "B", NOON - Span::minutes(2), &[]), NOON);
    let activity = recent.activity(NOON);
    assert_eq!(activity.minutes.len(), ACTIVITY_MINUTES);
    assert_eq!(activity.minutes.last().map(|minute| minute.at), Some(datetime!(2026-12-03 12:00 UTC)));
    let at = |minute: OffsetDateTime| activity.minutes.iter().find(|m| m.at == minute).expect("a minute of the hour").clone();
    let accepted = at(datetime!(2026-12-03 11:50 UTC));
    assert_eq!((accepted.accepted, accepted.ready), (3, 0));
    let ready = at(datetime!(2026-12-03 11:52 UTC));
    assert_eq!((ready.ready, ready.wait_p50_seconds, ready.wait_p90_seconds), (3, Some(120.0), Some(120.0)));
    assert_eq!(at(datetime!(2026-12-03 11:58 UTC)).accepted, 1);
    assert_eq!(activity.brews_by_machine, [MachineBrews { machine: 2, brews: 2 }, MachineBrews { machine: 3, brews: 1 }]);
    // An hour later, all of it has left the window, and pruning forgets it.
    let later = NOON + Span::hours(1);
    assert!(recent.activity(later).minutes.iter().all(|minute| minute.accepted == 0 && minute.ready == 0));
    recent.prune(later);
    assert!(recent.orders.is_empty());
}

#[test]
fn a_busy_board_lists_the_oldest_brewing_and_the_newest_ready_and_counts_the_others() {
    let mut recent = RecentOrders::new(READY_FOR);
    let listed = BOARD_MOST_LISTED as u64;
    let at = |n: u64| NOON - Span::seconds(90) + Span::milliseconds(500 * n.min(listed + 30) as i64);
    // Orders 1 to 131 ready half a second apart (the last two at once), and as many brewing.
    for n in 1..=listed + 31 {
        let mut ready = record(n, "Ready", NOON - Span::minutes(3), &[OrderStatus::Brewing, OrderStatus::Ready]);
        ready.history.last_mut().expect("a history").at = at(n);
        recent.note(&ready, NOON);
        let mut brewing = record(200 + n, "Brewing", NOON - Span::minutes(3), &[OrderStatus::Brewing]);
        brewing.history.last_mut().expect("a history").at = at(n);
        recent.note(&brewing, NOON);
    }
    let board = recent.board(NOON);
    let tickets = |items: &[BoardItem]| items.iter().map(|item| item.ticket).collect::<Vec<_>>();
    // The newest first; of two ready at once, the later ticket first.
    assert_eq!(board.more_ready, 31);
    assert_eq!(tickets(&board.ready), (32..=listed + 31).rev().map(crate::ids::ticket).collect::<Vec<_>>());
    // The oldest first; of two brewing since the same time, the earlier ticket first.
    assert_eq!(board.more_brewing, 31);
    assert_eq!(tickets(&board.brewing), (201..=200 + listed).map(crate::ids::ticket).collect::<Vec<_>>());
}

#[test]
fn a_name_is_kept_only_while_its_order_may_be_on_the_board() {
    let mut recent = RecentOrders::new(READY_FOR);
    // Ada left the board before her record was read: her name is not kept at all.
    recent.note(&record(1, "Ada", NOON - Span::minutes(5), &[OrderStatus::Brewing, OrderStatus::Ready]), NOON);
    recent.note(&record(2, "Grace", NOON - Span::minutes(3), &[OrderStatus::Brewing, OrderStatus::Ready]), NOON);
    recent.note(&record(3, "Alan", NOON - Span::minutes(1), &[OrderStatus::Brewing]), NOON);
    recent.note(&record(4, "Queued", NOON, &[]), NOON);
    recent.note(&record(5, "Cancelled", NOON - Span::minutes(1), &[OrderStatus::Cancelled]), NOON);
    let names = |recent: &RecentOrders| {
        let mut names: Vec<String> = recent.orders.values().filter_map(|recent| recent.first_name.as_deref().map(str::to_owned)).collect();
        names.sort();
        names
    };
    assert_eq!(names(&recent), ["Alan", "Grace"]);
    assert_eq!(recent.board(NOON).ready.iter().map(|item| item.name.as_str()).collect::<Vec<_>>(), ["Grace"]);
    // Two minutes on, Grace has been ready for three: the prune forgets her name, not her order.
    let later = NOON + Span::minutes(2);
    recent.prune(later);
    assert_eq!(names(&recent), ["Alan"]);
    let activity = recent.activity(later);
    let counted = activity.minutes.iter().fold((0, 0), |(accepted, ready), minute| (accepted + minute.accepted, ready + minute.ready));
    assert_eq!(counted, (5, 2));
    // A clock set back never shows a ready order without its name.
    assert!(recent.board(NOON).ready.is_empty());
}

#[test]
fn a_first_name_is_one_short_word() {
    assert_eq!(first_name("  Ada King Lovelace "), "Ada");
    assert_eq!(first_name(""), "");
    assert_eq!(first_name(&"x".repeat(40)).len(), 20);
    assert_eq!(percentile(&mut [3.0, 1.0, 2.0, 10.0], 0.9), Some(10.0));
    assert_eq!(percentile(&mut [], 0.5), None);
}
