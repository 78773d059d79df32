//! The controller's answer to an order request: the original demo's `status` and `message`, plus the
//! order id, position and ETA on success, or a typed rejection.

use serde::{Deserialize, Serialize};

use crate::{Ingredient, ValidationError};

/// Why an order was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// Bad input; `field` names it.
    Invalid,
    /// Not enough of an ingredient; `field` names the ingredient.
    OutOfStock,
    /// A back-end part could not be reached; retrying later may work.
    Unavailable,
    /// No such order (cancel, status).
    NotFound,
    /// The order is past the point where the action applies (cancel while brewing).
    Conflict,
}

impl RejectCode {
    /// The serialized name (`out_of_stock`), also a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Invalid => "invalid",
            RejectCode::OutOfStock => "out_of_stock",
            RejectCode::Unavailable => "unavailable",
            RejectCode::NotFound => "not_found",
            RejectCode::Conflict => "conflict",
        }
    }
}

/// Reply to [`crate::subjects::ORDER_REQUESTS`] and [`crate::subjects::ORDER_CANCEL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderReply {
    /// `success` or `error`, as in the original demo.
    pub status: String,
    /// For a person.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The order's public ticket (what the pickup screens show), when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u32>,
    /// Orders ahead of this one plus itself, when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// The range the wait most likely falls in, `[low, high]` seconds, beside `eta_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_range_seconds: Option<[u64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<RejectCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl OrderReply {
    /// An accepted order.
    pub fn accepted(order_id: &str, name: &str, position: u64, eta_seconds: u64) -> Self {
        OrderReply {
            status: "success".into(),
            message: format!("Thanks {name}, your order {order_id} is number {position} in the queue"),
            order_id: Some(order_id.into()),
            ticket: None,
            position: Some(position),
            eta_seconds: Some(eta_seconds),
            eta_range_seconds: None,
            code: None,
            field: None,
        }
    }

    /// A success without queue figures (a cancel).
    pub fn done(order_id: &str, message: impl Into<String>) -> Self {
        OrderReply {
            status: "success".into(),
            message: message.into(),
            order_id: Some(order_id.into()),
            ticket: None,
            position: None,
            eta_seconds: None,
            eta_range_seconds: None,
            code: None,
            field: None,
        }
    }

    /// A refusal.
    pub fn rejected(code: RejectCode, message: impl Into<String>, field: Option<&str>) -> Self {
        OrderReply {
            status: "error".into(),
            message: message.into(),
            order_id: None,
            ticket: None,
            position: None,
            eta_seconds: None,
            eta_range_seconds: None,
            code: Some(code),
            field: field.map(str::to_owned),
        }
    }

    /// A payload that is not an order at all (not JSON, or not a JSON object).
    pub fn unreadable(error: &serde_json::Error) -> Self {
        Self::rejected(RejectCode::Invalid, format!("the order must be a JSON object of its fields: {error}"), None)
    }

    /// Bad input, naming the field.
    pub fn invalid(error: &ValidationError) -> Self {
        Self::rejected(RejectCode::Invalid, error.to_string(), Some(error.field))
    }

    /// Not enough of `ingredient`.
    pub fn out_of_stock(ingredient: Ingredient) -> Self {
        Self::rejected(RejectCode::OutOfStock, format!("sorry, we are out of {}", ingredient.label()), Some(ingredient.as_str()))
    }

    /// The same reply, with the order's ticket.
    pub fn with_ticket(mut self, ticket: Option<u32>) -> Self {
        self.ticket = ticket;
        self
    }

    /// True when the order was accepted or the action done.
    pub fn is_success(&self) -> bool {
        self.status == "success"
    }
}
