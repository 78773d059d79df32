//! Every HTTP request in a span (`method`, `route`, and `order`, the order's reference, when
//! the path or the answer names an order: never the id, which is the customer's capability),
//! one log line when it is answered, and the metrics
//! `brewq_http_requests_total{method,route,status}` and `brewq_http_request_seconds{method,route}`.
//! Every label has a bounded set of values: the method one of [`METHODS`] or `other`, the route
//! the pattern matched or `unmatched`, the status a number.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The middleware: wraps the handler in the request's span, then counts and logs the answer.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!("http", method, route, order = tracing::field::Empty);
    if let Some(order_id) = order_id_in_path(&route, request.uri().path()) {
        span.record("order", brewq_protocol::ids::order_ref(order_id));
    }
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let took = started.elapsed();
    metrics::counter!("brewq_http_requests_total", "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("brewq_http_request_seconds", "method" => method, "route" => route.clone()).record(took.as_secs_f64());
    let millis = took.as_millis() as u64;
    // Health checks come every few seconds: they would drown the lines that matter.
    span.in_scope(|| match route.as_str() {
        "/healthz" => tracing::debug!(status, millis, "answered"),
        _ => tracing::info!(status, millis, "answered"),
    });
    response
}

/// The methods that have a label of their own; any other is `other`.
static METHODS: [Method; 7] = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS];

/// The `method` label: a client may send any token as a method, and each would be a new series.
fn method_label(method: &Method) -> &'static str {
    METHODS.iter().find(|known| *known == method).map_or("other", |known| known.as_str())
}

/// Names the order the request is about, once the handler knows it (a new order's id comes
/// from the controller's answer).
pub fn record_order_id(order_id: &str) {
    tracing::Span::current().record("order", brewq_protocol::ids::order_ref(order_id));
}

/// The `{id}` of the routes about one order.
pub(crate) fn order_id_in_path<'a>(route: &str, path: &'a str) -> Option<&'a str> {
    let prefix = ["/api/orders/{id}", "/orders/{id}", "/api/admin/failed/{id}"].into_iter().find(|prefix| route.starts_with(prefix))?;
    let base = prefix.trim_end_matches("{id}");
    path.strip_prefix(base)?.split('/').next().filter(|id| !id.is_empty())
}
