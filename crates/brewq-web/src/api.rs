//! The JSON API: orders (create, read, cancel), queue, stock, machines and health. Every
//! handler is a thin translation between HTTP and the NATS contract.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use brewq_protocol::{
    MachineView, OrderReply, OrderRequest, OrderView, QueueView, StockCommand, StockReply, StockSnapshot, subjects,
};
use brewq_runtime::request::{request_bytes_with_header, request_json};
use serde_json::Value;

use crate::AppState;
use crate::error::{AppError, not_found};

type Shared = State<Arc<AppState>>;

/// `POST /api/orders`: 201 with the order id, position and ETA; 400 naming the field; 409
/// when stock is short; 503 when the back end cannot be reached. The `Idempotency-Key`
/// header makes retries one order.
pub async fn create_order(
    State(state): Shared,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, AppError> {
    let mut request: OrderRequest =
        serde_json::from_slice(&body).map_err(|error| AppError::rejected(OrderReply::unreadable(&error)))?;
    if let Some(key) = headers.get("idempotency-key") {
        let key = key.to_str().unwrap_or("\u{fffd}");
        request.idempotency_key = Some(Value::from(key));
    }
    // Checked here too, so that bad input costs no trip to the back end.
    request.validate().map_err(|error| AppError::rejected(OrderReply::invalid(&error)))?;
    request.idempotency_key().map_err(|error| AppError::rejected(OrderReply::invalid(&error)))?;
    let reply = place(&state, &request).await?;
    if !reply.is_success() {
        return Err(AppError::rejected(reply));
    }
    if let Some(order_id) = &reply.order_id {
        crate::observe::record_order_id(order_id);
        tracing::info!(position = reply.position, eta_seconds = reply.eta_seconds, "order placed");
    }
    Ok((StatusCode::CREATED, Json(reply)))
}

/// Sends the order to the controllers, again while none is there to take it (one restarting,
/// or reconnecting after its server stopped): a request nobody received placed nothing, so
/// sending it again is safe even without an idempotency key. Any other failure is final.
async fn place(state: &AppState, request: &OrderRequest) -> Result<OrderReply, AppError> {
    let deadline = std::time::Instant::now() + state.config.request_timeout;
    let mut waited = false;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match request_json(&state.client, subjects::ORDER_REQUESTS, request, left).await {
            Err(brewq_runtime::request::RequestError::NoResponders { .. }) if left > NO_RESPONDERS_PAUSE * 2 => {
                if !std::mem::replace(&mut waited, true) {
                    tracing::info!("no controller takes orders right now; the order waits for one");
                }
                tokio::time::sleep(NO_RESPONDERS_PAUSE).await;
            }
            other => return Ok(other?),
        }
    }
}

/// The pause before sending again an order that no controller received.
const NO_RESPONDERS_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// `GET /api/orders/{id}`: the order with where it stands now, for whoever holds its id.
pub async fn get_order(State(state): Shared, Path(order_id): Path<String>) -> Result<Json<OrderView>, AppError> {
    let view = crate::queue::order(&state.client, &order_id, state.config.request_timeout).await?;
    Ok(Json(view.ok_or_else(|| not_found(&order_id))?))
}

/// `DELETE /api/orders/{id}`: cancels a queued order (200), 404 unknown, 409 too late.
pub async fn cancel_order(State(state): Shared, Path(order_id): Path<String>) -> Result<Json<OrderReply>, AppError> {
    if !brewq_protocol::ids::is_order_id(&order_id) {
        return Err(not_found(&order_id));
    }
    let header = (subjects::ORDER_ID_HEADER, order_id.as_str());
    let reply: OrderReply =
        request_bytes_with_header(&state.client, subjects::ORDER_CANCEL, header, order_id.clone().into_bytes(), state.config.request_timeout)
            .await?;
    if reply.is_success() { Ok(Json(reply)) } else { Err(AppError::rejected(reply)) }
}

/// `GET /api/queue`: pending orders, machines online, the ETA of an order placed now.
pub async fn queue(State(state): Shared) -> Result<Json<QueueView>, AppError> {
    let figures = state.queue.borrow().clone();
    let queue = figures.fresh_queue().ok_or_else(|| AppError::Unavailable(anyhow::anyhow!("queue figures unavailable")))?;
    Ok(Json(queue.clone()))
}

/// `GET /api/stock`.
pub async fn stock(State(state): Shared) -> Result<Json<StockSnapshot>, AppError> {
    let reply: StockReply =
        request_json(&state.client, &subjects::stock_subject(&StockCommand::Get), &StockCommand::Get, state.config.request_timeout).await?;
    match reply {
        StockReply::Snapshot { stock } => Ok(Json(stock)),
        other => Err(AppError::Unavailable(anyhow::anyhow!("stock manager answered {other:?}"))),
    }
}

/// `GET /api/machines`: every machine that has sent a heartbeat, online or not.
pub async fn machines(State(state): Shared) -> Result<Json<Vec<MachineView>>, AppError> {
    let figures = state.queue.borrow().clone();
    if figures.fresh_queue().is_none() {
        return Err(AppError::Unavailable(anyhow::anyhow!("machine heartbeats unavailable")));
    }
    Ok(Json(figures.machines))
}

/// `GET /healthz`: 200 while connected to NATS, 503 otherwise.
pub async fn healthz(State(state): Shared) -> impl IntoResponse {
    match state.client.connection_state() {
        async_nats::connection::State::Connected => (StatusCode::OK, "ok"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "NATS connection down"),
    }
}
