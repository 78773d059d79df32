//! The JSON API: orders (create, read, cancel), queue, stock, machines and health. Every
//! handler is a thin translation between HTTP and the NATS contract.

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use brewq_protocol::{MachineView, OrderReply, OrderRequest, OrderView, QueueView, StockCommand, StockReply, StockSnapshot, subjects};
use brewq_runtime::request::{request_bytes_with_header, request_json};
use serde_json::Value;

use crate::AppState;
use crate::error::{AppError, not_found};

type Shared = State<Arc<AppState>>;

/// `POST /api/orders`: 201 with the order id, position and ETA; 400 naming the field; 409
/// when stock is short; 503 when the back end cannot be reached. The `Idempotency-Key`
/// header makes retries one order.
pub async fn create_order(State(state): Shared, headers: HeaderMap, body: axum::body::Bytes) -> Result<impl IntoResponse, AppError> {
    let mut request: OrderRequest = serde_json::from_slice(&body).map_err(|error| AppError::rejected(OrderReply::unreadable(&error)))?;
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

/// Sends the order to the controllers until one answers for good or the customer's wait is
/// over. The order carries an id of its own (`Brewq-Request-Id`), so that every copy of it is
/// the same order: it goes again every [`SEND_AGAIN_AFTER`] without an answer, in turn through
/// the second connection (to another server) when there is one, and soon after a "no
/// responders" (a request no controller received placed nothing). A server that stops
/// answering then costs a customer a few seconds, not the order: the connection to it is
/// only given up after two pings go unanswered, and what was sent into it is lost. An
/// `unavailable` answer is final only when no copy is left to answer.
async fn place(state: &AppState, request: &OrderRequest) -> Result<OrderReply, AppError> {
    let request_id = brewq_runtime::respond::new_order_id();
    let body = serde_json::to_vec(request).context("serializing the order")?;
    let connections = [Some(&state.client), state.config.another_server.as_ref()];
    let connections: Vec<async_nats::Client> = connections.into_iter().flatten().cloned().collect();
    let deadline = tokio::time::Instant::now() + state.config.request_timeout;
    let mut attempts = tokio::task::JoinSet::new();
    let mut next_send = tokio::time::Instant::now();
    let (mut sent, mut unavailable, mut last_error) = (0, None, None);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next_send), if next_send < deadline => {
                let (client, body, request_id) = (connections[sent % connections.len()].clone(), body.clone(), request_id.clone());
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                attempts.spawn(async move {
                    let header = (subjects::REQUEST_ID_HEADER, request_id.as_str());
                    request_bytes_with_header::<OrderReply>(&client, subjects::ORDER_REQUESTS, header, body, left).await
                });
                if sent == 1 {
                    tracing::info!("no answer yet; the order goes again");
                }
                sent += 1;
                next_send = tokio::time::Instant::now() + SEND_AGAIN_AFTER;
            }
            Some(done) = attempts.join_next() => match done.context("an attempt to place the order")? {
                Ok(reply) if reply.code == Some(brewq_protocol::RejectCode::Unavailable) => unavailable = Some(reply),
                Ok(reply) => return Ok(reply),
                Err(error @ brewq_runtime::request::RequestError::NoResponders { .. }) => {
                    if !matches!(last_error, Some(brewq_runtime::request::RequestError::NoResponders { .. })) {
                        tracing::info!("no controller takes orders right now; the order waits for one");
                    }
                    next_send = next_send.min(tokio::time::Instant::now() + NO_RESPONDERS_PAUSE);
                    last_error = Some(error);
                }
                Err(error) => last_error = Some(error),
            },
            else => break,
        }
    }
    match (unavailable, last_error) {
        (Some(reply), _) => Ok(reply),
        (None, Some(error)) => Err(error.into()),
        (None, None) => Err(AppError::Unavailable(anyhow::anyhow!("no answer to the order"))),
    }
}

/// How long an order waits for its answer before it is sent again.
const SEND_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_millis(2500);

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
    let reply: OrderReply = request_bytes_with_header(
        &state.client,
        subjects::ORDER_CANCEL,
        header,
        order_id.clone().into_bytes(),
        state.config.request_timeout,
    )
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
