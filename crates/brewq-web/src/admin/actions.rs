//! Login, logout and the operator's actions; each action is audited.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::command::Commanded;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brewq_protocol::{AuditEntry, Ingredient, MachineCommand, OrderReply, RejectCode, StockCommand, StockReply, now, subjects};
use brewq_runtime::request::{request_bytes_with_header, request_json};
use serde::Deserialize;

use super::{Operator, require, throttle};
use crate::AppState;
use crate::error::{AppError, not_found};
use crate::limits::refuse;

type Shared = State<Arc<AppState>>;

#[derive(Deserialize)]
pub struct Login {
    user: String,
    password: String,
}

/// `POST /admin/login`: sets the session cookie; a wrong user or password gets the same 401,
/// after the same password check. Too many attempts get 429 with `Retry-After`, before any
/// check (see [`throttle::Throttle`]).
pub async fn login(State(state): Shared, Json(login): Json<Login>) -> Result<Response, AppError> {
    let operator = state.config.operator.clone().ok_or_else(|| AppError::status(StatusCode::NOT_FOUND, "no operator account"))?;
    if login.user.len() > throttle::MAX_USER_BYTES {
        let message = format!("the user name is longer than {} bytes", throttle::MAX_USER_BYTES);
        return Err(AppError::rejected(OrderReply::rejected(RejectCode::Invalid, message, Some("user"))));
    }
    // Every other name shares one bucket: they can never succeed, and a bucket per name would
    // let a flood of names grow the throttle without end.
    let bucket = if login.user == operator.user { operator.user.as_str() } else { throttle::OTHER_NAMES };
    if let Err(wait) = state.throttle.begin(bucket) {
        tracing::warn!(user = login.user, "operator login throttled");
        let message = "too many login attempts; please wait before trying again";
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, Some(wait.as_secs_f64().ceil() as u64), message));
    }
    let (hash, password) = (operator.password_hash.clone(), login.password.clone());
    // Checked whatever the name, so that the answer takes as long for a name that is not the
    // operator's; the permit stays with the check even if the request is dropped.
    let permit = state.throttle.check().await;
    let password_ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        bcrypt::verify(password, &hash).unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    if !(password_ok && login.user == operator.user) {
        tracing::warn!(user = login.user, "operator login refused");
        return Err(AppError::status(StatusCode::UNAUTHORIZED, "wrong user or password"));
    }
    state.throttle.succeeded(bucket);
    tracing::info!(user = login.user, "operator logged in");
    let cookie = operator.sessions.start(&operator.user).await?;
    Ok(([(header::SET_COOKIE, cookie)], Json(serde_json::json!({"status": "success", "user": operator.user}))).into_response())
}

/// `POST /admin/logout`: ends this session, here and in every instance.
pub async fn logout(State(state): Shared, headers: HeaderMap) -> Result<impl IntoResponse, AppError> {
    let operator = state.config.operator.clone().ok_or_else(|| AppError::status(StatusCode::NOT_FOUND, "no operator account"))?;
    operator.sessions.end(&headers).await?;
    Ok(([(header::SET_COOKIE, super::session::clear())], Json(serde_json::json!({"status": "success"}))))
}

/// `POST /admin/logout-everywhere`: ends every session of the operator, on every device.
pub async fn logout_everywhere(State(state): Shared, headers: HeaderMap) -> Result<impl IntoResponse, AppError> {
    let (user, operator) = require(&state, &headers, true).await?;
    operator.sessions.end_all().await?;
    audit(&operator, &user, "logout-everywhere", "every session", None).await;
    Ok(([(header::SET_COOKIE, super::session::clear())], Json(serde_json::json!({"status": "success"}))))
}

/// `POST /api/admin/machines/{id}/{pause|resume|out-of-service}`: the machine's heartbeat after
/// the change, or 202 when no machine of that number runs and the hold is kept for its start.
pub async fn machine(
    State(state): Shared,
    headers: HeaderMap,
    Path((id, action)): Path<(u32, String)>,
) -> Result<axum::response::Response, AppError> {
    let (user, operator) = require(&state, &headers, true).await?;
    let command = MachineCommand::parse(&action).ok_or_else(|| AppError::status(StatusCode::NOT_FOUND, "unknown machine action"))?;
    if id == 0 {
        return Err(AppError::status(StatusCode::NOT_FOUND, "no machine 0: machines are numbered from 1"));
    }
    // One spelling in the audit trail, whichever the URL used.
    let action = command.action_name();
    let sent = super::command::command(&operator.client, id, command).await;
    let failure = match &sent {
        Ok(Commanded::Applied(_)) => None,
        Ok(Commanded::Kept) => Some("kept (machine not running)".to_owned()),
        Err(error) => Some(format!("{error:#}")),
    };
    audit(&operator, &user, action, &format!("machine {id}"), failure).await;
    let sent = sent?;
    Ok(match &sent {
        Commanded::Applied(heartbeat) => Json(serde_json::to_value(heartbeat).unwrap_or_default()).into_response(),
        // Accepted for later: the machine takes the hold up when it starts.
        Commanded::Kept => {
            (StatusCode::ACCEPTED, Json(serde_json::json!({"id": id, "kept": true, "message": sent.describe(id, command)}))).into_response()
        }
    })
}

#[derive(Deserialize)]
pub struct Restock {
    items: BTreeMap<String, u64>,
}

impl Restock {
    /// The items to add, each a known ingredient and more than 0.
    pub(crate) fn items(&self) -> Result<brewq_protocol::stock::Items, AppError> {
        let mut items = brewq_protocol::stock::Items::new();
        for (name, amount) in &self.items {
            let ingredient =
                Ingredient::parse(name).ok_or_else(|| AppError::status(StatusCode::BAD_REQUEST, &format!("unknown ingredient {name}")))?;
            if *amount == 0 {
                return Err(AppError::status(StatusCode::BAD_REQUEST, &format!("amount of {name} must be more than 0")));
            }
            items.insert(ingredient, *amount);
        }
        if items.is_empty() {
            return Err(AppError::status(StatusCode::BAD_REQUEST, "nothing to restock"));
        }
        Ok(items)
    }
}

/// `POST /api/admin/stock/restock` with `{"items": {"arabica": 1000}}`, applied once per
/// `Idempotency-Key` (the page sends the same one when the operator clicks again after an
/// error or an answer that never came).
pub async fn restock(State(state): Shared, headers: HeaderMap, Json(restock): Json<Restock>) -> Result<impl IntoResponse, AppError> {
    let (user, operator) = require(&state, &headers, true).await?;
    let items = restock.items()?;
    let mut target: Vec<String> = items.iter().map(|(ingredient, amount)| format!("{ingredient}={amount}")).collect();
    let request_id = request_id(&headers)?;
    // Audited under its request id: the retries of one restock show as such.
    target.extend(request_id.as_ref().map(|id| format!("(request {id})")));
    let command = StockCommand::Restock { items, request_id };
    let reply: Result<StockReply, _> =
        request_json(&operator.client, &subjects::stock_subject(&command), &command, Duration::from_secs(5)).await;
    let failure = match &reply {
        Ok(StockReply::Snapshot { .. }) => None,
        Ok(StockReply::Refused { message }) => Some(format!("refused: {message}")),
        Ok(other) => Some(format!("stock manager answered {other:?}")),
        Err(error) => Some(error.to_string()),
    };
    audit(&operator, &user, "restock", &target.join(" "), failure).await;
    match reply? {
        StockReply::Snapshot { stock } => Ok(Json(stock)),
        StockReply::Refused { message } => Err(AppError::status(StatusCode::BAD_REQUEST, &message)),
        other => Err(AppError::Unavailable(anyhow::anyhow!("stock manager answered {other:?}"))),
    }
}

/// The request's `Idempotency-Key`, as the id of what it sends (`web-<key>`); 400 naming the
/// header when it is not an id's letters.
pub(crate) fn request_id(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(key) = headers.get("idempotency-key") else { return Ok(None) };
    let id = key.to_str().ok().map(|key| format!("web-{key}")).filter(|id| brewq_protocol::ids::is_order_id(id));
    match id {
        Some(id) => Ok(Some(id)),
        None => Err(AppError::status(StatusCode::BAD_REQUEST, "Idempotency-Key: letters, digits, '-' or '_', at most 60")),
    }
}

/// `POST /api/admin/failed/{id}/{retry|give-up}`.
pub async fn failed(
    State(state): Shared,
    headers: HeaderMap,
    Path((order_id, action)): Path<(String, String)>,
) -> Result<Json<OrderReply>, AppError> {
    let (user, operator) = require(&state, &headers, true).await?;
    // The id goes into a NATS header, where a line break would be refused with a panic.
    if !brewq_protocol::ids::is_order_id(&order_id) {
        return Err(not_found(&order_id));
    }
    let subject = match action.as_str() {
        "retry" => subjects::DEAD_LETTER_RETRY,
        "give-up" => subjects::DEAD_LETTER_GIVE_UP,
        _ => return Err(AppError::status(StatusCode::NOT_FOUND, "unknown action")),
    };
    let header = (subjects::ORDER_ID_HEADER, order_id.as_str());
    let reply: OrderReply =
        request_bytes_with_header(&operator.client, subject, header, order_id.clone().into_bytes(), Duration::from_secs(10)).await?;
    let outcome = (!reply.is_success()).then(|| reply.message.clone());
    audit(&operator, &user, &action, &format!("order {order_id}"), outcome).await;
    if reply.is_success() { Ok(Json(reply)) } else { Err(AppError::rejected(reply)) }
}

/// Writes the action to the audit trail; a failure to write is logged.
pub(crate) async fn audit(operator: &Operator, user: &str, action: &str, target: &str, failure: Option<String>) {
    record(&operator.client, format!("web:{user}"), action, target, failure.unwrap_or_else(|| "ok".into())).await;
}

/// Writes what `who` did to the audit trail, through `client`; a failure to write is logged.
pub(crate) async fn record(client: &async_nats::Client, who: String, action: &str, target: &str, outcome: String) {
    let entry = AuditEntry { at: now(), who, action: action.to_owned(), target: target.to_owned(), outcome };
    let jetstream = async_nats::jetstream::new(client.clone());
    if let Err(error) = brewq_runtime::jetstream::publish_json(&jetstream, subjects::audit_subject(action), &entry).await {
        tracing::error!(error = format!("{error:#}"), action, "an action not recorded in the audit trail");
    }
}
