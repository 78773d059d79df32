//! One error type for every handler, turned into a status code and a JSON body in the shape of
//! the NATS replies (`status`, `message`, `code`, `field`). 5xx bodies stay generic; the
//! details go to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brewq_protocol::{OrderReply, RejectCode};

/// What went wrong with a request.
#[derive(Debug)]
pub enum AppError {
    /// A typed refusal from the back end (or the web's own validation).
    Rejected(Box<OrderReply>),
    /// NATS or a service could not be reached.
    Unavailable(anyhow::Error),
    /// Any other status, with a message for the client (401, 403, 404 of the admin side).
    Status(StatusCode, String),
}

impl AppError {
    /// A typed refusal.
    pub fn rejected(reply: OrderReply) -> Self {
        AppError::Rejected(Box::new(reply))
    }

    /// An error with this status and message.
    pub fn status(status: StatusCode, message: &str) -> Self {
        AppError::Status(status, message.to_owned())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> Self {
        AppError::Unavailable(error)
    }
}

impl From<brewq_runtime::request::RequestError> for AppError {
    fn from(error: brewq_runtime::request::RequestError) -> Self {
        AppError::Unavailable(error.into())
    }
}

/// The HTTP status of a refusal.
pub fn status_of(code: Option<RejectCode>) -> StatusCode {
    match code {
        Some(RejectCode::Invalid) => StatusCode::BAD_REQUEST,
        Some(RejectCode::OutOfStock | RejectCode::Conflict) => StatusCode::CONFLICT,
        Some(RejectCode::NotFound) => StatusCode::NOT_FOUND,
        Some(RejectCode::Unavailable) | None => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Rejected(reply) => (status_of(reply.code), Json(*reply)).into_response(),
            AppError::Status(status, message) => (status, Json(serde_json::json!({"status": "error", "message": message}))).into_response(),
            AppError::Unavailable(error) => {
                tracing::warn!(error = format!("{error:#}"), "back end unavailable");
                let reply =
                    OrderReply::rejected(RejectCode::Unavailable, "the coffee shop cannot be reached right now; please retry", None);
                (StatusCode::SERVICE_UNAVAILABLE, Json(reply)).into_response()
            }
        }
    }
}

/// A 404 for an order id nobody knows.
pub fn not_found(order_id: &str) -> AppError {
    AppError::rejected(OrderReply::rejected(RejectCode::NotFound, format!("no order {order_id}"), Some("order_id")))
}
