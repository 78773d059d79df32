//! Handler tests without sockets: the router from [`crate::app`], driven with `oneshot`, with
//! a NATS client that has no server (the paths tested here must not need one, or must say so).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::{AppState, Config, app};

async fn offline_app() -> axum::Router {
    // Nothing listens on port 1: the client stays disconnected, retrying in the background.
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect("127.0.0.1:1")
        .await
        .expect("a client is returned at once");
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
