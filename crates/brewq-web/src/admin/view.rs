//! What the operator sees: the login page, the dashboard, and its data (once, or live by SSE).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use brewq_protocol::{AuditEntry, DeadLetter, MachineView, QueueView, StockCommand, StockReply, StockSnapshot, subjects};
use futures::Stream;
use serde::Serialize;

use super::{Operator, require};
use crate::AppState;
use crate::error::AppError;

/// Everything on the dashboard.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub operator: String,
    pub machines: Vec<MachineView>,
    pub queue: QueueView,
    pub waiting: u64,
    pub in_flight: u64,
    pub stock: Option<StockSnapshot>,
    pub failed: Vec<DeadLetter>,
    pub audit: Vec<AuditEntry>,
}

/// `GET /admin/login`.
pub async fn login_page() -> Html<&'static str> {
    Html(include_str!("../../assets/admin-login.html"))
}

/// `GET /assets/{file}`: the operator pages' script and the shared style sheet.
pub async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "admin.js" => (include_str!("../../assets/admin.js"), "text/javascript; charset=utf-8"),
        "chain.js" => (include_str!("../../assets/chain.js"), "text/javascript; charset=utf-8"),
        "style.css" => (include_str!("../../assets/style.css"), "text/css; charset=utf-8"),
        _ => return (axum::http::StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `GET /admin`: the dashboard, or the login page for a visitor without a session.
pub async fn dashboard(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match require(&state, &headers, false).await {
        Ok(_) => Html(include_str!("../../assets/admin.html")).into_response(),
        Err(_) => Redirect::to("/admin/login").into_response(),
    }
}

/// `GET /api/admin/state`.
pub async fn state(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Dashboard>, AppError> {
    let (user, operator) = require(&state, &headers, false).await?;
    Ok(Json(read(&state, &operator, user).await))
}

/// `GET /api/admin/events`: the dashboard every second.
pub async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let (user, operator) = require(&state, &headers, false).await?;
    let stream = futures::stream::unfold((state, operator, user, true), |(state, operator, user, first)| async move {
        if !first {
            tokio::select! {
                () = state.shutdown.cancelled() => return None,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let dashboard = read(&state, &operator, user.clone()).await;
        let event = Event::default().event("dashboard").json_data(&dashboard).unwrap_or_default();
        Some((Ok(event), (state, operator, user, false)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

async fn read(state: &AppState, operator: &Operator, user: String) -> Dashboard {
    let snapshot = state.queue.borrow().clone();
    let timeout = Duration::from_secs(3);
    let stock = match brewq_runtime::request::request_json(
        &operator.client,
        &subjects::stock_subject(&StockCommand::Get),
        &StockCommand::Get,
        timeout,
    )
    .await
    {
        Ok(StockReply::Snapshot { stock }) => Some(stock),
        _ => None,
    };
    let jetstream = async_nats::jetstream::new(operator.client.clone());
    let failed = match jetstream.get_key_value(subjects::DEAD_LETTERS_BUCKET).await {
        Ok(store) => brewq_runtime::kv::all_json(&store).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let mut audit: Vec<AuditEntry> = brewq_runtime::jetstream::last_json(&jetstream, subjects::AUDIT_STREAM, 20).await.unwrap_or_default();
    audit.reverse();
    Dashboard {
        operator: user,
        machines: snapshot.machines.clone(),
        queue: snapshot.queue.clone().unwrap_or_default(),
        waiting: snapshot.waiting,
        in_flight: snapshot.in_flight,
        stock,
        failed,
        audit,
    }
}
