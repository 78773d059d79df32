//! Handler tests without sockets: the router from [`crate::app`], driven with `oneshot`, with
//! a NATS client that has no server (the paths tested here must not need one, or must say so).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{AppState, Config, app};

async fn offline_app() -> axum::Router {
    // Nothing listens on port 1: the client stays disconnected, retrying in the background.
    let client =
        async_nats::ConnectOptions::new().retry_on_initial_connect().connect("127.0.0.1:1").await.expect("a client is returned at once");
    let (state, _refresher) = AppState::new(Config::default(), client, CancellationToken::new());
    app(state)
}

async fn send(request: Request<Body>) -> (StatusCode, String) {
    let response = offline_app().await.oneshot(request).await.expect("response");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn post_order(body: &str) -> Request<Body> {
    Request::post("/api/orders").header("content-type", "application/json").body(Body::from(body.to_owned())).expect("request")
}

#[tokio::test]
async fn the_order_page_is_served_with_labelled_fields() {
    let (status, body) = send(Request::get("/").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    for field in ["name", "bean_type", "sugar_count"] {
        assert!(body.contains(&format!("<label for=\"{field}\"")), "no label for {field}");
    }
    assert!(!body.contains("http://") && !body.contains("https://"), "no external resource");
}

#[tokio::test]
async fn assets_have_their_content_types_and_unknown_ones_are_404() {
    let (status, body) = send(Request::get("/assets/app.js").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("EventSource"));
    let (status, _) = send(Request::get("/assets/nope.js").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_order_is_refused_with_400_naming_the_field_before_any_nats_call() {
    let (status, body) = send(post_order(r#"{"name":"Ann","size":"huge","bean_type":"arabica","milk":"none","sugar_count":0}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reply: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(reply["field"], "size");
    assert_eq!(reply["code"], "invalid");

    let (status, body) = send(post_order("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_refused() {
    let request = Request::post("/api/orders")
        .header("idempotency-key", "has spaces")
        .body(Body::from(r#"{"name":"Ann","size":"small","bean_type":"arabica","milk":"none","sugar_count":0}"#))
        .expect("request");
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("idempotency_key"));
}

#[tokio::test]
async fn without_nats_health_and_queue_answer_503() {
    let (status, _) = send(Request::get("/healthz").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = send(Request::get("/api/queue").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("unavailable"));
}

#[tokio::test]
async fn an_id_that_cannot_be_an_order_is_404() {
    let (status, _) = send(Request::get("/api/orders/not%20an%20id").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn the_order_id_of_a_request_is_read_from_order_routes_only() {
    use crate::observe::order_id_in_path;
    assert_eq!(order_id_in_path("/api/orders/{id}/events", "/api/orders/abc/events"), Some("abc"));
    assert_eq!(order_id_in_path("/orders/{id}", "/orders/xyz"), Some("xyz"));
    assert_eq!(order_id_in_path("/api/admin/failed/{id}/{action}", "/api/admin/failed/f1/retry"), Some("f1"));
    assert_eq!(order_id_in_path("/api/orders", "/api/orders"), None);
    assert_eq!(order_id_in_path("/api/stock", "/api/stock"), None);
}

// Bounded under abuse: bodies, deadlines, load shedding, event streams, logins, metric labels.

/// A client for a NATS server that is not there: requests wait for an answer until their
/// deadline.
async fn offline_client() -> async_nats::Client {
    async_nats::ConnectOptions::new().retry_on_initial_connect().connect("127.0.0.1:1").await.expect("a client is returned at once")
}

/// The router with `config`, and its queue refresher, to hold unpolled so that the queue's
/// event streams stay open.
async fn offline_app_with(config: Config) -> (axum::Router, impl std::future::Future<Output = ()>) {
    let (state, refresher) = AppState::new(config, offline_client().await, CancellationToken::new());
    (app(state), refresher)
}

async fn send_to(app: &axum::Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let answer = async {
        let response = app.clone().oneshot(request).await.expect("response");
        let (status, headers) = (response.status(), response.headers().clone());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, headers, serde_json::from_slice(&body).unwrap_or_default())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), answer).await.expect("answered in full within 5 s")
}

const AN_ORDER: &str = r#"{"name":"Ann","size":"small","bean_type":"arabica","milk":"none","sugar_count":0}"#;

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_naming_it_whether_announced_or_not() {
    let (app, _refresher) = offline_app_with(Config::default()).await;
    let large = format!(r#"{{"name":"{}","size":"small","bean_type":"arabica","milk":"none","sugar_count":0}}"#, "A".repeat(5000));
    let announced = Request::post("/api/orders")
        .header("content-type", "application/json")
        .header("content-length", large.len())
        .body(Body::from(large.clone()))
        .expect("request");
    let (status, _, reply) = send_to(&app, announced).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply["message"].as_str().is_some_and(|message| message.contains("4096 bytes")), "{reply}");

    let chunks: Vec<Result<String, std::io::Error>> =
        large.as_bytes().chunks(1000).map(|chunk| Ok(String::from_utf8_lossy(chunk).into_owned())).collect();
    let streamed = Request::post("/api/orders").body(Body::from_stream(futures::stream::iter(chunks))).expect("request");
    let (status, _, reply) = send_to(&app, streamed).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
}

#[tokio::test]
async fn a_request_not_answered_in_time_gets_503_naming_the_deadline() {
    let config = Config {
        request_timeout: std::time::Duration::from_secs(30),
        answer_within: std::time::Duration::from_millis(200),
        ..Config::default()
    };
    let (app, _refresher) = offline_app_with(config).await;
    let (status, _, reply) = send_to(&app, post_order(AN_ORDER)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply["code"], "unavailable");
    assert!(reply["message"].as_str().is_some_and(|message| message.contains("0.2 s")), "{reply}");
}

#[tokio::test]
async fn beyond_the_requests_in_flight_the_next_is_refused_at_once_with_retry_after() {
    let config = Config { request_timeout: std::time::Duration::from_secs(30), max_in_flight: 1, ..Config::default() };
    let (app, _refresher) = offline_app_with(config).await;
    // Waits for a controller that is not there.
    let waiting = tokio::spawn(app.clone().oneshot(post_order(AN_ORDER)));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, headers, reply) = send_to(&app, Request::get("/").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert_eq!(headers.get("retry-after").and_then(|value| value.to_str().ok()), Some("1"));
    waiting.abort();
    let _ = waiting.await;
    let (status, _, _) = send_to(&app, Request::get("/").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK, "the slot is free again");
}

#[tokio::test]
async fn event_streams_outlive_the_deadline_but_are_capped() {
    let config = Config { max_event_streams: 1, answer_within: std::time::Duration::from_millis(200), ..Config::default() };
    let (app, _refresher) = offline_app_with(config).await;
    let events = || Request::get("/api/queue/events").body(Body::empty()).expect("request");
    let open = app.clone().oneshot(events()).await.expect("response");
    assert_eq!(open.status(), StatusCode::OK);
    let mut body = open.into_body();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(next_chunk(&mut body, 1000).await.is_some(), "the first event comes after the deadline");
    assert!(next_chunk(&mut body, 100).await.is_none(), "and the stream is still open, waiting for the next");

    let (status, headers, reply) = send_to(&app, events()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
    assert!(headers.contains_key("retry-after"));
    let (status, _, _) = send_to(&app, Request::get("/").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK, "other requests are not held back");

    drop(body);
    let again = app.clone().oneshot(events()).await.expect("response");
    assert_eq!(again.status(), StatusCode::OK, "a closed stream gives its slot back");
}

/// The next chunk of `body`, or `None` if none comes within `millis` (or it ended).
async fn next_chunk(body: &mut Body, millis: u64) -> Option<axum::body::Bytes> {
    use futures::StreamExt;
    let mut chunks = std::mem::take(body).into_data_stream();
    let chunk = tokio::time::timeout(std::time::Duration::from_millis(millis), chunks.next()).await.ok().flatten();
    *body = Body::from_stream(chunks);
    chunk.and_then(Result::ok)
}

#[tokio::test]
async fn the_shop_serves_no_metrics() {
    let (status, _) = send(Request::get("/metrics").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Every label value of the metrics recorded, as `key=value`.
#[derive(Default)]
struct Labels(std::sync::Mutex<Vec<String>>);

impl Labels {
    fn keep(&self, key: &metrics::Key) {
        let labels = key.labels().map(|label| format!("{}={}", label.key(), label.value()));
        self.0.lock().expect("lock").extend(labels);
    }
}

impl metrics::Recorder for Labels {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        self.keep(key);
        metrics::Counter::noop()
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        self.keep(key);
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        self.keep(key);
        metrics::Histogram::noop()
    }
}

#[tokio::test]
async fn the_method_label_takes_only_known_methods() {
    let labels = Labels::default();
    let _recording = metrics::set_default_local_recorder(&labels);
    for method in ["GET", "BREW", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"] {
        let (status, _) = send(Request::builder().method(method).uri("/").body(Body::empty()).expect("request")).await;
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let labels = labels.0.lock().expect("lock").clone();
    assert!(labels.contains(&"method=GET".to_owned()), "{labels:?}");
    assert!(labels.contains(&"method=other".to_owned()), "{labels:?}");
    assert!(labels.iter().all(|label| !label.contains("BREW") && !label.contains("XXX")), "{labels:?}");
}

#[tokio::test]
async fn the_qr_code_is_the_order_page_on_the_host_asked_and_nothing_else_is_encoded() {
    let order_id = "abcdefghijklmnopqrstuvwxyz";
    let request =
        Request::get(format!("/api/orders/{order_id}/qr")).header("host", "shop.example:8080").body(Body::empty()).expect("request");
    let response = offline_app().await.oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let expected = qrcode::QrCode::with_error_correction_level(format!("http://shop.example:8080/orders/{order_id}"), qrcode::EcLevel::M)
        .expect("a QR code")
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(180, 180)
        .quiet_zone(true)
        .build();
    assert_eq!(String::from_utf8_lossy(&body), expected);

    for (path, host, status) in [
        ("/api/orders/not%20an%20id/qr", "shop.example", StatusCode::NOT_FOUND),
        (&format!("/api/orders/{order_id}/qr"), "evil.example/phish?", StatusCode::BAD_REQUEST),
        (&format!("/api/orders/{order_id}/qr"), "", StatusCode::BAD_REQUEST),
    ] {
        let request = Request::get(path).header("host", host).body(Body::empty()).expect("request");
        assert_eq!(offline_app().await.oneshot(request).await.expect("response").status(), status, "{path} on {host:?}");
    }
}

#[tokio::test]
async fn the_board_page_is_served_in_the_language_asked_and_its_data_waits_for_the_controllers() {
    let request = Request::get("/board").header("accept-language", "fr-FR,fr;q=0.9,en;q=0.5").body(Body::empty()).expect("request");
    let (status, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<html lang=\"fr\">") && body.contains("En préparation"), "{body}");
    let (status, body) = send(Request::get("/board?lang=en").body(Body::empty()).expect("request")).await;
    assert!(status == StatusCode::OK && body.contains("Ready for pickup"));
    // No controller answers here: the board is unavailable, not empty.
    let (status, _) = send(Request::get("/api/board").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
