//! The pages and their assets, compiled into the binary: nothing is fetched from elsewhere, so
//! the shop works with no internet.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// `GET /`: the order form with the live waiting time.
pub async fn index() -> Html<&'static str> {
    Html(include_str!("../assets/index.html"))
}

/// `GET /orders/{id}`: the order's own live page (it reads the id from its address).
pub async fn order_page(Path(_order_id): Path<String>) -> Html<&'static str> {
    Html(include_str!("../assets/order.html"))
}

/// `GET /assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "app.js" => (include_str!("../assets/app.js"), "text/javascript; charset=utf-8"),
        "style.css" => (include_str!("../assets/style.css"), "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
