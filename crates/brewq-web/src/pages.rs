//! The pages and their assets, compiled into the binary: nothing is fetched from elsewhere, so
//! the shop works with no internet. Each page is rendered in the visitor's language
//! ([`crate::i18n`]).

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::i18n::{LangQuery, page};

/// `GET /`: the order form with the live waiting time.
pub async fn index(Query(query): Query<LangQuery>, headers: HeaderMap) -> Response {
    page(include_str!("../assets/index.html"), query.lang.as_deref(), &headers)
}

/// `GET /orders/{id}`: the order's own live page (it reads the id from its address).
pub async fn order_page(Path(_order_id): Path<String>, Query(query): Query<LangQuery>, headers: HeaderMap) -> Response {
    page(include_str!("../assets/order.html"), query.lang.as_deref(), &headers)
}

/// `GET /board`: the pickup board, for a wall screen.
pub async fn board(Query(query): Query<LangQuery>, headers: HeaderMap) -> Response {
    page(include_str!("../assets/board.html"), query.lang.as_deref(), &headers)
}

/// `GET /assets/{file}`: the shop's scripts and the style sheet.
pub async fn asset(Path(file): Path<String>) -> Response {
    let body = match file.as_str() {
        "app.js" => include_str!("../assets/app.js"),
        "board.js" => include_str!("../assets/board.js"),
        _ => return shared_asset(&file),
    };
    script(body)
}

/// The assets every page uses, the operator's too.
pub fn shared_asset(file: &str) -> Response {
    match file {
        "i18n.js" => script(include_str!("../assets/i18n.js")),
        "style.css" => asset_response(include_str!("../assets/style.css"), "text/css; charset=utf-8"),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// A script, served as one.
pub fn script(body: &'static str) -> Response {
    asset_response(body, "text/javascript; charset=utf-8")
}

fn asset_response(body: &'static str, content_type: &'static str) -> Response {
    let headers = [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")];
    (headers, body).into_response()
}
