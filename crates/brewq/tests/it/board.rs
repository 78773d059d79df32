//! The pickup board and the shop's last hour against a real cluster: `GET /api/board` shows
//! brewing and ready orders by ticket and first name, never their ids, and lets a ready order
//! go after the time set, and says it cannot tell rather than show an empty board without a
//! controller; the operator's activity counts the same orders.

use std::time::Duration;

use brewq_launch::ServiceKind;
use brewq_protocol::{ActivityLookup, subjects};
use futures::StreamExt;
use serde_json::Value;

use crate::harness::{TestSystem, free_listen_address, order_json, sse_events, until_found};

async fn board(http: &reqwest::Client, base: &str) -> Value {
    let response = http.get(format!("{base}/api/board")).send().await.expect("HTTP answers");
    if !response.status().is_success() {
        return Value::Null;
    }
    response.json().await.expect("JSON board")
}

/// The item of `column` whose name is `name`, if the board shows one.
fn item(board: &Value, column: &str, name: &str) -> Option<Value> {
    board[column].as_array()?.iter().find(|item| item["name"] == name).cloned()
}

/// A busy shop's board: a hundred ready tickets, the newest first, and how many more, rather
/// than every order of the last minutes (at the peak that was over 2 MB, past a NATS
/// message's limit, and the board could not be read at all), in the API and on the screen
/// (Chromium, in English and in French). Two machines never brew more
/// than a hundred: the brewing column's limit is the unit tests'.
#[tokio::test]
async fn a_busy_board_lists_a_hundred_ready_tickets_and_counts_the_others() {
    let system = TestSystem::start(2, |config| config.web_listen = Some(free_listen_address())).await;
    let (http, base) = (reqwest::Client::new(), system.http_url());
    let listed = brewq_protocol::board::BOARD_MOST_LISTED;
    let orders = (0..listed + 20).map(|n| order_json(&format!("Guest{n} Surname"), "small", "arabica", "none", 0)).collect::<Vec<_>>();
    let replies = futures::stream::iter(&orders).map(|order| system.order(order)).buffer_unordered(16).collect::<Vec<_>>().await;
    let ids: Vec<String> = replies.into_iter().map(|reply| reply.order_id.expect("accepted")).collect();
    let records = system.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert!(records.values().all(|record| record.status == brewq_protocol::OrderStatus::Ready));

    let full = until_found("every order ready on the board", Duration::from_secs(30), || async {
        let board = board(&http, &base).await;
        (board["more_ready"] == 20).then_some(board)
    })
    .await;
    let ready = full["ready"].as_array().expect("a ready column");
    assert_eq!(ready.len(), listed, "{full}");
    assert_eq!(full["more_brewing"], 0);
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let since: Vec<time::OffsetDateTime> =
        ready.iter().map(|item| time::OffsetDateTime::parse(item["since"].as_str().expect("a time"), rfc3339).expect("RFC 3339")).collect();
    assert!(since.windows(2).all(|pair| pair[0] >= pair[1]), "newest first: {since:?}");
    let newest = records.values().max_by_key(|record| (record.ended_at(), record.ticket())).expect("records");
    assert_eq!(ready[0]["ticket"], newest.ticket().expect("a ticket"));
    // The screen lists the hundred and says how many more, in the customer's language, while
    // they are shown (three minutes).
    let shots = crate::browser::run_browser("board-busy.mjs", &[base.clone(), "20".into()]).await;
    crate::browser::assert_screenshots(&shots, &["6-board-busy-en", "6-board-busy-fr"]);
}

#[tokio::test]
async fn the_board_shows_tickets_and_first_names_never_ids_and_lets_ready_orders_go() {
    let system = TestSystem::start(1, |config| {
        config.web_listen = Some(free_listen_address());
        // Long enough a brew (8 s for a large cup) for a board refreshed each second to see it.
        config.brew_scale = 0.2;
        config.service_env.push(("BREWQ_BOARD_READY_FOR".into(), "6s".into()));
    })
    .await;
    let (http, base) = (reqwest::Client::new(), system.http_url());
    let mut ids = Vec::new();
    for (name, size) in [("Ada Lovelace", "large"), ("<img src=x onerror=alert(1)> Eve", "small")] {
        let reply: Value = http
            .post(format!("{base}/api/orders"))
            .json(&order_json(name, size, "arabica", "none", 0))
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("json");
        ids.push(reply["order_id"].as_str().expect("an order id").to_owned());
    }

    let brewing =
        until_found("Ada brewing on the board", Duration::from_secs(30), || async { item(&board(&http, &base).await, "brewing", "Ada") })
            .await;
    assert!(brewing["ticket"].as_u64().is_some_and(|ticket| (1..=999).contains(&ticket)), "{brewing}");
    assert_eq!(brewing["machine"], 1);
    assert!(
        brewing["since"]
            .as_str()
            .is_some_and(|since| time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339).is_ok())
    );
    let ready = until_found("both orders ready on the board", Duration::from_secs(60), || async {
        let board = board(&http, &base).await;
        (item(&board, "ready", "Ada").is_some() && item(&board, "ready", "<img").is_some()).then_some(board)
    })
    .await;
    let shown = ready.to_string();
    for id in &ids {
        assert!(!shown.contains(id.as_str()), "the board shows an order id: {shown}");
    }
    assert_eq!(item(&ready, "ready", "Ada").map(|item| item["ticket"].clone()), Some(brewing["ticket"].clone()));

    until_found("ready orders leaving the board", Duration::from_secs(30), || async {
        let board = board(&http, &base).await;
        board["ready"].as_array().is_some_and(Vec::is_empty).then_some(())
    })
    .await;

    let activity: ActivityLookup =
        brewq_runtime::request::request_bytes(&system.admin, subjects::ACTIVITY_READ, Vec::new(), Duration::from_secs(5))
            .await
            .expect("answers");
    let ActivityLookup::Current { activity } = activity else { panic!("no activity: {activity:?}") };
    assert_eq!(activity.minutes.iter().map(|minute| minute.accepted).sum::<u64>(), 2);
    assert_eq!(activity.minutes.iter().map(|minute| minute.ready).sum::<u64>(), 2);
    assert_eq!(activity.brews_by_machine, [brewq_protocol::board::MachineBrews { machine: 1, brews: 2 }]);

    // Without a controller, the board is unavailable, not empty, and its screens are told.
    let mut system = system;
    system.system.kill_service(ServiceKind::Controller).await;
    until_found("the board unavailable without a controller", Duration::from_secs(30), || async {
        let status = http.get(format!("{base}/api/board")).send().await.expect("HTTP answers").status();
        (status == reqwest::StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    let events = sse_events(http.get(format!("{base}/api/board/events")).send().await.expect("HTTP answers"));
    let first = tokio::time::timeout(Duration::from_secs(10), Box::pin(events).next()).await.expect("an event comes");
    assert_eq!(first.map(|(event, _)| event).as_deref(), Some("unavailable"));
    system.stop().await;
}
