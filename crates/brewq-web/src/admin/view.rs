//! What the operator sees: the login page, the dashboard, and its data (once, or live by SSE).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use brewq_protocol::{
    Activity, ActivityLookup, AuditEntry, BoardView, DeadLetter, Ingredient, MachineView, QueueView, StockCommand, StockReply,
    StockSnapshot, subjects,
};
use futures::Stream;
use serde::Serialize;

use super::history::StockSample;
use super::{Operator, require};
use crate::AppState;
use crate::error::AppError;
use crate::i18n::{LangQuery, page};

/// Everything on the dashboard.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub operator: String,
    pub machines: Vec<MachineView>,
    pub queue: QueueView,
    pub waiting: u64,
    pub in_flight: u64,
    pub stock: Option<StockSnapshot>,
    pub failed: Vec<FailedOrder>,
    pub audit: Vec<AuditEntry>,
    /// Each ingredient's unit (`g`, `ml`, `lumps`).
    pub units: BTreeMap<&'static str, &'static str>,
    /// The pickup board: the ticket each machine is brewing.
    pub board: Option<BoardView>,
    /// The last hour, from the controllers; `None` when they cannot tell now.
    pub activity: Option<Activity>,
    pub stock_history: Vec<StockSample>,
}

/// A failed order as the dashboard shows it: by its reference (as in the logs), the id kept
/// for the actions on it only.
#[derive(Debug, Serialize)]
pub struct FailedOrder {
    #[serde(flatten)]
    pub letter: DeadLetter,
    pub reference: String,
}

/// `GET /admin/login`.
pub async fn login_page(Query(query): Query<LangQuery>, headers: HeaderMap) -> Response {
    page(include_str!("../../assets/admin-login.html"), query.lang.as_deref(), &headers)
}

/// `GET /assets/{file}`: the operator pages' script and the shared style sheet.
pub async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match file.as_str() {
        "operator.js" => crate::pages::script(include_str!("../../assets/operator.js")),
        "admin.js" => crate::pages::script(include_str!("../../assets/admin.js")),
        "chain.js" => crate::pages::script(include_str!("../../assets/chain.js")),
        _ => crate::pages::shared_asset(&file),
    }
}

/// `GET /admin`: the dashboard, or the login page for a visitor without a session.
pub async fn dashboard(State(state): State<Arc<AppState>>, Query(query): Query<LangQuery>, headers: HeaderMap) -> Response {
    match require(&state, &headers, false).await {
        Ok(_) => page(include_str!("../../assets/admin.html"), query.lang.as_deref(), &headers),
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
    let failed: Vec<DeadLetter> = match jetstream.get_key_value(subjects::DEAD_LETTERS_BUCKET).await {
        Ok(store) => brewq_runtime::kv::all_json(&operator.client, &store).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let failed =
        failed.into_iter().map(|letter| FailedOrder { reference: brewq_protocol::ids::order_ref(&letter.order_id), letter }).collect();
    let mut audit: Vec<AuditEntry> = brewq_runtime::jetstream::last_json(&jetstream, subjects::AUDIT_STREAM, 20).await.unwrap_or_default();
    audit.reverse();
    let activity = match brewq_runtime::request::request_bytes(&operator.client, subjects::ACTIVITY_READ, Vec::new(), timeout).await {
        Ok(ActivityLookup::Current { activity }) => Some(activity),
        _ => None,
    };
    Dashboard {
        units: Ingredient::ALL.iter().map(|item| (item.as_str(), item.unit())).collect(),
        board: state.board.borrow().clone(),
        activity,
        stock_history: operator.stock_history.samples(),
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
