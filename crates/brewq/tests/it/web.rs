//! The web shop and the operator's pages over real HTTP against a real cluster: every status
//! code of the API, the live event stream of an order from queued to ready, cancel and
//! idempotency; the operator's login, sessions and actions.

use std::time::Duration;

use brewq_launch::ServiceKind;
use brewq_protocol::Ingredient;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestSystem, eventually, order_json, sse_events, with_web_and_office};

async fn web_system(machines: u32) -> TestSystem {
    TestSystem::start(machines, |config| {
        with_web_and_office(config);
        config.brew_scale = 0.02;
        config.topology.initial_stock.insert(Ingredient::SoyMilk, 0);
    })
    .await
}

async fn post(http: &reqwest::Client, base: &str, order: &Value, key: Option<&str>) -> (StatusCode, Value) {
    let mut request = http.post(format!("{base}/api/orders")).json(order);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("HTTP answers");
    let status = response.status();
    // Read as text first, so that an answer that is not JSON shows what it was.
    let text = response.text().await.expect("a body");
    let reply = serde_json::from_str(&text).unwrap_or_else(|error| panic!("{status} with a body that is not JSON ({error}): {text:?}"));
    (status, reply)
}

#[tokio::test]
async fn the_api_answers_with_the_status_codes_of_the_contract() {
    let mut system = web_system(1).await;
    let (http, base) = (reqwest::Client::new(), system.http_url());

    let (status, reply) = post(&http, &base, &order_json("Quentin", "small", "mixed", "cow", 1), None).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let order_id = reply["order_id"].as_str().expect("id").to_owned();
    assert!(reply["position"].as_u64().is_some() && reply["eta_seconds"].as_u64().is_some(), "{reply}");
    // Beside the ETA, the range the wait most likely falls in, around it.
    let (eta, range) = (reply["eta_seconds"].as_u64().expect("eta"), reply["eta_range_seconds"].as_array().expect("a range"));
    let (low, high) = (range[0].as_u64().expect("low"), range[1].as_u64().expect("high"));
    assert!(low <= eta && eta <= high, "{reply}");

    let (status, reply) =
        post(&http, &base, &json!({"name": "Q", "size": "small", "bean_type": "mixed", "milk": "oat", "sugar_count": 0}), None).await;
    assert_eq!((status, reply["field"].as_str()), (StatusCode::BAD_REQUEST, Some("milk")));

    let (status, reply) = post(&http, &base, &order_json("Soy", "small", "mixed", "soy", 0), None).await;
    assert_eq!((status, reply["code"].as_str(), reply["field"].as_str()), (StatusCode::CONFLICT, Some("out_of_stock"), Some("soy_milk")));

    let order = http.get(format!("{base}/api/orders/{order_id}")).send().await.expect("answers");
    assert_eq!(order.status(), StatusCode::OK);
    let order: Value = order.json().await.expect("json");
    for field in ["id", "name", "size", "bean_type", "milk", "sugar_count", "status", "machine", "history"] {
        assert!(order.get(field).is_some(), "{field} missing from {order}");
    }
    let missing = http.get(format!("{base}/api/orders/unknown-order")).send().await.expect("answers");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let missing = http.delete(format!("{base}/api/orders/unknown-order")).send().await.expect("answers");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The web reads the fleet once a second: wait for it to see the machine.
    eventually("the web to count the machine", Duration::from_secs(10), || async {
        let queue: Value = http.get(format!("{base}/api/queue")).send().await.expect("answers").json().await.expect("json");
        queue["machines_online"] == 1 && queue["eta_seconds"].as_u64().is_some()
    })
    .await;
    // The wait shown before ordering comes with its range, the way a placed order's does.
    let queue: Value = http.get(format!("{base}/api/queue")).send().await.expect("answers").json().await.expect("json");
    let (eta, range) = (queue["eta_seconds"].as_u64().expect("eta"), queue["eta_range_seconds"].as_array().expect("a range"));
    let (low, high) = (range[0].as_u64().expect("low"), range[1].as_u64().expect("high"));
    assert!(low <= eta && eta <= high, "{queue}");
    let stock: Value = http.get(format!("{base}/api/stock")).send().await.expect("answers").json().await.expect("json");
    assert_eq!(stock["levels"]["soy_milk"]["on_hand"], 0);
    let machines: Value = http.get(format!("{base}/api/machines")).send().await.expect("answers").json().await.expect("json");
    assert_eq!(machines[0]["id"], 1);
    assert_eq!(http.get(format!("{base}/healthz")).send().await.expect("answers").status(), StatusCode::OK);

    system.system.kill_service(ServiceKind::Controller).await;
    let (status, reply) = post(&http, &base, &order_json("Late", "small", "mixed", "none", 0), None).await;
    assert_eq!((status, reply["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")));
    system.stop().await;
}

#[tokio::test]
async fn an_order_streams_its_life_from_queued_to_ready() {
    let mut system = web_system(0).await;
    let (http, base) = (reqwest::Client::new(), system.http_url());
    let (status, reply) = post(&http, &base, &order_json("Quentin", "medium", "arabica", "none", 2), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let order_id = reply["order_id"].as_str().expect("id").to_owned();

    let response = http.get(format!("{base}/api/orders/{order_id}/events")).send().await.expect("stream opens");
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = Box::pin(sse_events(response));
    let (name, first) = events.next().await.expect("first event");
    let first: Value = serde_json::from_str(&first).expect("json");
    assert_eq!((name.as_str(), first["status"].as_str()), ("order", Some("queued")));
    assert_eq!(first["position"], 1);

    system.system.add_service(ServiceKind::Maker(1)).expect("a machine starts");
    let mut statuses = vec!["queued".to_owned()];
    let followed = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some((_, data)) = events.next().await {
            let order: Value = serde_json::from_str(&data).expect("json");
            let status = order["status"].as_str().expect("status").to_owned();
            if statuses.last() != Some(&status) {
                statuses.push(status);
            }
            if order["status"] == "ready" {
                assert_eq!(order["machine"], 1);
                return;
            }
        }
    })
    .await;
    assert!(followed.is_ok(), "no ready event; saw {statuses:?}");
    assert_eq!(statuses, ["queued", "brewing", "ready"]);
    assert!(events.next().await.is_none(), "the stream ends after the final state");
    system.stop().await;
}

#[tokio::test]
async fn cancel_and_idempotency_over_http() {
    let system = web_system(0).await;
    let (http, base) = (reqwest::Client::new(), system.http_url());
    let order = order_json("Ada", "large", "robusta", "cow", 0);
    let (first_status, first) = post(&http, &base, &order, Some("same-key-1")).await;
    let (again_status, again) = post(&http, &base, &order, Some("same-key-1")).await;
    assert_eq!((first_status, again_status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first["order_id"], again["order_id"], "one order for one key");
    assert_eq!(system.stream_messages().await, 1);
    let reserved = system.stock().await;
    let (other_status, other) = post(&http, &base, &order_json("Bob", "small", "arabica", "none", 0), Some("same-key-1")).await;
    assert_eq!(other_status, StatusCode::CONFLICT, "the key reused for a different order: {other}");
    assert_eq!(other["field"], "idempotency_key", "{other}");
    assert!(other["message"].as_str().is_some_and(|message| message.contains(first["order_id"].as_str().expect("id"))), "{other}");
    assert_eq!(system.stream_messages().await, 1, "nothing queued for it");
    assert_eq!(system.stock().await.levels, reserved.levels, "nothing reserved for it");

    let order_id = first["order_id"].as_str().expect("id");
    let cancelled = http.delete(format!("{base}/api/orders/{order_id}")).send().await.expect("answers");
    assert_eq!(cancelled.status(), StatusCode::OK);
    let record: Value = http.get(format!("{base}/api/orders/{order_id}")).send().await.expect("answers").json().await.expect("json");
    assert_eq!(record["status"], "cancelled");
    let stock = system.stock().await;
    assert!(stock.levels.values().all(|level| level.reserved == 0), "released: {stock:?}");
    assert_eq!(system.stream_messages().await, 0, "a cancelled order leaves the queue");
    let (status, waiting) = post(&http, &base, &order_json("Grace", "small", "arabica", "none", 0), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let told = waiting["message"].as_str().unwrap_or_default();
    assert!(told.contains("no machine is taking orders"), "with no machine, the customer is told: {waiting}");

    // Where an order stands: the cancelled order ahead of Grace left the queue, so she is
    // first and Hedy second; the operator's `brewq status ID` shows it as the API does.
    let (_, second) = post(&http, &base, &order_json("Hedy", "small", "arabica", "none", 0), None).await;
    let ids = [waiting["order_id"].as_str().expect("id").to_owned(), second["order_id"].as_str().expect("id").to_owned()];
    let api = |id: String| {
        let (http, base) = (http.clone(), base.clone());
        async move { http.get(format!("{base}/api/orders/{id}")).send().await.expect("answers").json::<Value>().await.expect("json") }
    };
    eventually("the API to show Hedy second in the queue", Duration::from_secs(10), || async {
        api(ids[1].clone()).await["position"] == 2
    })
    .await;
    let status = |id: &str, json: bool| {
        let mut command = std::process::Command::new(crate::harness::brewq_bin());
        command.args(["status", id, "--data-dir"]).arg(&system.dir);
        if json {
            command.arg("--json");
        }
        let output = command.output().expect("brewq runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for (place, id) in ids.iter().enumerate() {
        let (shown, from_api): (Value, Value) = (serde_json::from_str(&status(id, true)).expect("json"), api(id.clone()).await);
        assert_eq!(from_api["position"], place + 1, "{from_api}");
        assert_eq!(
            (&shown["position"], &shown["eta_seconds"]),
            (&from_api["position"], &from_api["eta_seconds"]),
            "{shown} against {from_api}"
        );
        let text = status(id, false);
        assert!(text.contains(&format!("position {} in the queue", place + 1)), "{text}");
    }
    system.stop().await;
}

#[tokio::test]
async fn the_admin_side_needs_a_session_and_refuses_wrong_credentials_and_cross_site_actions() {
    let system = web_system(1).await;
    let base = system.office_url();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    // The public shop has no operator side at all.
    for path in ["/admin", "/admin/login", "/api/admin/state", "/assets/admin.js", "/assets/operator.js"] {
        let status = http.get(format!("{}{path}", system.http_url())).send().await.expect("answers").status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} on the shop's address");
    }
    for (method, path) in [
        ("GET", "/api/admin/state"),
        ("GET", "/api/admin/events"),
        ("POST", "/api/admin/machines/1/pause"),
        ("POST", "/api/admin/stock/restock"),
        ("POST", "/api/admin/failed/some-order/retry"),
    ] {
        let request = http.request(method.parse().expect("method"), format!("{base}{path}")).header("X-Brewq-Csrf", "1");
        let status = request.json(&json!({"items": {"sugar": 1}})).send().await.expect("answers").status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} without a session");
    }
    let page = http.get(format!("{base}/admin")).send().await.expect("answers");
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/admin/login");

    let keys = &system.system.keys;
    let login =
        |user: &str, password: &str| http.post(format!("{base}/admin/login")).json(&json!({"user": user, "password": password})).send();
    let wrong_password = login(&keys.admin_user, "guess").await.expect("answers");
    let wrong_user = login("root", &keys.admin_password).await.expect("answers");
    assert_eq!((wrong_password.status(), wrong_user.status()), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    let (a, b): (Value, Value) = (wrong_password.json().await.expect("json"), wrong_user.json().await.expect("json"));
    assert_eq!(a["message"], b["message"], "the refusal does not say which was wrong");

    let good = login(&keys.admin_user, &keys.admin_password).await.expect("answers");
    assert_eq!(good.status(), StatusCode::OK);
    let cookie = good.headers()["set-cookie"].to_str().expect("cookie").to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().expect("pair").to_owned();

    let cross_site = http.post(format!("{base}/api/admin/machines/1/pause")).header("cookie", &session).send().await.expect("answers");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN, "an action without the page's header");
    let foreign = http
        .post(format!("{base}/api/admin/machines/1/pause"))
        .header("cookie", &session)
        .header("X-Brewq-Csrf", "1")
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("answers");
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN, "an action from another origin");

    // An action as the operator page sends it.
    let act = |path: &str| http.post(format!("{base}{path}")).header("cookie", &session).header("X-Brewq-Csrf", "1");
    let paused = act("/api/admin/machines/1/pause").send().await.expect("answers");
    assert_eq!(paused.status(), StatusCode::OK);
    let heartbeat: Value = paused.json().await.expect("json");
    assert_eq!(heartbeat["state"], "paused");
    // Machine 7 has never run: the hold is kept for its start, and the page is told so.
    let held = act("/api/admin/machines/7/out-of-service").send().await.expect("answers");
    assert_eq!(held.status(), StatusCode::ACCEPTED);
    let held: Value = held.json().await.expect("json");
    assert!(held["kept"] == true && held["message"].as_str().is_some_and(|message| message.contains("machine 7 is not running")), "{held}");
    let holds = system.bucket(brewq_protocol::subjects::MACHINE_HOLDS_BUCKET).await;
    let hold = brewq_runtime::kv::get_json::<Value>(&holds, &brewq_protocol::subjects::machine_key(7)).await.expect("read");
    assert_eq!(hold.map(|(hold, _)| hold), Some(json!("out_of_service")));
    let too_much = act("/api/admin/stock/restock").json(&json!({"items": {"arabica": u64::MAX}})).send().await.expect("answers");
    assert_eq!(too_much.status(), StatusCode::BAD_REQUEST, "a restock the stock cannot count");
    let refusal: Value = too_much.json().await.expect("json");
    assert!(refusal["message"].as_str().is_some_and(|message| message.contains("arabica")), "{refusal}");
    // A restock sent again under its Idempotency-Key (its first answer lost) adds once; the
    // next one, under a new key, adds again.
    let restock = |key: &str| act("/api/admin/stock/restock").header("Idempotency-Key", key).json(&json!({"items": {"sugar": 7}})).send();
    let sugar = |stock: Value| stock["levels"]["sugar"]["on_hand"].as_u64().expect("sugar");
    let first = sugar(restock("restock-1").await.expect("answers").json().await.expect("json"));
    let again = sugar(restock("restock-1").await.expect("answers").json().await.expect("json"));
    let next = sugar(restock("restock-2").await.expect("answers").json().await.expect("json"));
    assert_eq!((again, next), (first, first + 7), "one restock, sent twice, then another");
    let malformed = restock("has spaces").await.expect("answers");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(malformed.text().await.expect("body").contains("Idempotency-Key"));
    let dashboard: Value =
        http.get(format!("{base}/api/admin/state")).header("cookie", &session).send().await.expect("answers").json().await.expect("json");
    assert!(
        dashboard["audit"].as_array().expect("audit").iter().any(|entry| entry["who"] == "web:admin" && entry["action"] == "pause"),
        "{dashboard}"
    );
    let audit = dashboard["audit"].as_array().expect("audit");
    let refused = audit
        .iter()
        .find(|entry| entry["action"] == "restock" && entry["target"].as_str().is_some_and(|target| target.starts_with("arabica")))
        .expect("the refused restock audited");
    // The restock sent twice shows twice, under one request id.
    let retried = audit.iter().filter(|entry| entry["target"] == "sugar=7 (request web-restock-1)").count();
    assert_eq!(retried, 2, "{dashboard}");
    assert!(refused["outcome"].as_str().is_some_and(|outcome| outcome.starts_with("refused")), "{refused}");
    system.stop().await;
}

/// Logs in on the operator's pages; the session cookie (`name=value`) on success.
pub(crate) async fn operator_login(http: &reqwest::Client, base: &str, user: &str, password: &str) -> (StatusCode, Option<String>) {
    let response =
        http.post(format!("{base}/admin/login")).json(&json!({"user": user, "password": password})).send().await.expect("answers");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    (response.status(), cookie)
}

#[tokio::test]
async fn operator_sessions_end_at_logout_everywhere_and_logins_are_throttled() {
    let system = web_system(0).await;
    let (base, keys) = (system.office_url(), &system.system.keys);
    let http = reqwest::Client::new();
    let state = |cookie: String| http.get(format!("{base}/api/admin/state")).header("cookie", cookie).send();
    let act = |path: &str, cookie: &str| http.post(format!("{base}{path}")).header("cookie", cookie).header("X-Brewq-Csrf", "1").send();

    // Two devices log in; a made-up token of the right shape is no session.
    let (_, first) = operator_login(&http, &base, &keys.admin_user, &keys.admin_password).await;
    let (_, second) = operator_login(&http, &base, &keys.admin_user, &keys.admin_password).await;
    let (first, second) = (first.expect("a cookie"), second.expect("a cookie"));
    assert_ne!(first, second, "each login has its own token");
    assert_eq!(state(first.clone()).await.expect("answers").status(), StatusCode::OK);
    let forged = format!("brewq_session={}", "ab".repeat(32));
    assert_eq!(state(forged).await.expect("answers").status(), StatusCode::UNAUTHORIZED);
    // The bucket holds no token: a stolen copy of it gives no session.
    let sessions = system.bucket(brewq_protocol::subjects::SESSIONS_BUCKET).await;
    let stored: Vec<String> = futures::TryStreamExt::try_collect(sessions.keys().await.expect("keys")).await.expect("list");
    let token = |cookie: &str| cookie.split_once('=').expect("pair").1.to_owned();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(!stored.contains(&token(&first)) && !stored.contains(&token(&second)), "{stored:?}");

    // A failed order id that cannot be one is a 404, not a panic.
    for id in ["a%0Ab", "a%0Db", "a%20b", "a.b"] {
        let status = act(&format!("/api/admin/failed/{id}/retry"), &first).await.expect("answers").status();
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
    }

    // Logout ends that session at once, server side: the old cookie no longer works.
    assert_eq!(act("/admin/logout", &first).await.expect("answers").status(), StatusCode::OK);
    assert_eq!(state(first.clone()).await.expect("answers").status(), StatusCode::UNAUTHORIZED, "a logged-out cookie");
    assert_eq!(state(second.clone()).await.expect("answers").status(), StatusCode::OK, "the other device stays in");
    let (_, third) = operator_login(&http, &base, &keys.admin_user, &keys.admin_password).await;
    let third = third.expect("a cookie");
    assert_eq!(act("/admin/logout-everywhere", &third).await.expect("answers").status(), StatusCode::OK);
    for cookie in [second, third] {
        assert_eq!(state(cookie).await.expect("answers").status(), StatusCode::UNAUTHORIZED, "after logging out everywhere");
    }

    // A user name too long is refused naming the field, before any password check.
    let too_long =
        http.post(format!("{base}/admin/login")).json(&json!({"user": "a".repeat(65), "password": "x"})).send().await.expect("answers");
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert_eq!(too_long.json::<Value>().await.expect("json")["field"], "user");
    // Every other name shares one throttle: a flood of new names cannot grow it, and the
    // operator's own name keeps its attempts.
    for name in ["mallory", "eve", "trudy"] {
        assert_eq!(operator_login(&http, &base, name, "guess").await.0, StatusCode::UNAUTHORIZED);
    }
    let throttled =
        http.post(format!("{base}/admin/login")).json(&json!({"user": "oscar", "password": "guess"})).send().await.expect("answers");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS, "a new name is in the same bucket");
    assert!(throttled.headers().contains_key("retry-after"));
    assert_eq!(
        operator_login(&http, &base, &keys.admin_user, &keys.admin_password).await.0,
        StatusCode::OK,
        "the operator's own bucket is untouched"
    );
    system.stop().await;
}

/// An order sent while no controller runs (one restarting) is sent again until one takes it,
/// within the shop's deadline: a request nobody received placed nothing, so this is safe
/// without an idempotency key, and the customer gets an answer instead of a 503.
#[tokio::test]
async fn an_order_posted_while_the_controller_restarts_is_placed_once() {
    let mut system = web_system(1).await;
    let (http, base) = (reqwest::Client::new(), system.http_url());
    system.system.kill_service(ServiceKind::Controller).await;
    // Until the servers have dropped the dead controller's subscription, a request could still
    // be routed to it and lost: wait until one (an empty order, refused without side effects
    // by a live controller) finds no one to answer it.
    eventually("the servers to drop the dead controller", Duration::from_secs(10), || async {
        let probe = brewq_runtime::request::request_bytes::<Value>(
            &system.admin,
            brewq_protocol::subjects::ORDER_REQUESTS,
            b"{}".to_vec(),
            Duration::from_secs(1),
        )
        .await;
        matches!(probe, Err(brewq_runtime::request::RequestError::NoResponders { .. }))
    })
    .await;
    let order = order_json("Grace", "small", "arabica", "none", 0);
    let posted = tokio::spawn(async move { post(&http, &base, &order, None).await });
    // No controller for a while: the fault's length, not a wait for an event.
    tokio::time::sleep(Duration::from_secs(2)).await;
    system.system.add_service(ServiceKind::Controller).expect("a controller starts again");
    let (status, reply) = posted.await.expect("the request ends");
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let order_id = reply["order_id"].as_str().expect("id").to_owned();
    let records = system.wait_terminal(&[order_id], Duration::from_secs(60)).await;
    assert_eq!(records.len(), 1);
    let log = std::fs::read_to_string(system.dir.join("logs/web-1.log")).expect("web log");
    assert!(log.contains("the order waits for one"), "the order waited for a controller");
    system.stop().await;
}
