//! Failed orders (dead letters) wait in `coffee-dead-letters` for an operator: retry queues
//! the same coffee again as a new order (reserving its stock again; the stock of the failed
//! one was released when it failed), give up just closes the case. A failed order whose
//! customer's name was removed (long after it failed) cannot be retried: nobody would be
//! called to take the coffee, so the operator gives it up instead.

use brewq_protocol::{DeadLetter, OrderReply, OrderRequest, RejectCode, now};
use serde_json::Value;

use crate::{Controller, to_json};

/// Files a failed order; idempotent.
pub(crate) async fn file(controller: &Controller, order_id: &str, reason: Option<&str>) {
    let letter = DeadLetter { order_id: order_id.to_owned(), reason: reason.unwrap_or("failed").to_owned(), at: now() };
    match brewq_runtime::kv::put_json(&controller.dead_letters, order_id, &letter).await {
        Ok(_) => metrics::counter!("brewq_dead_letters_total").increment(1),
        Err(error) => tracing::error!(
            order = brewq_protocol::ids::order_ref(order_id),
            error = format!("{error:#}"),
            "cannot file the failed order for the operator"
        ),
    }
}

/// Serves a retry request; the payload is the failed order's id.
pub(crate) async fn retry(controller: &Controller, payload: &[u8]) -> Vec<u8> {
    let order_id = String::from_utf8_lossy(payload).trim().to_owned();
    to_json(&retry_order(controller, &order_id).await)
}

async fn retry_order(controller: &Controller, order_id: &str) -> OrderReply {
    let failed = match controller.records.get(order_id).await {
        Ok(Some(record)) => record,
        Ok(None) => return OrderReply::rejected(RejectCode::NotFound, format!("no order {order_id}"), Some("order_id")),
        Err(error) => return unavailable(&error),
    };
    if let Some(new_id) = &failed.retried_as {
        return OrderReply::done(new_id, format!("order {order_id} was already retried as {new_id}"));
    }
    if failed.status != brewq_protocol::OrderStatus::Failed {
        return OrderReply::rejected(RejectCode::Conflict, format!("order {order_id} is {}, not failed", failed.status), None);
    }
    if failed.name_removed_at.is_some() {
        let message = format!("order {order_id} failed too long ago to be retried: its customer's name was removed; give it up instead");
        return OrderReply::rejected(RejectCode::Conflict, message, None);
    }
    // The key makes a repeated retry (a lost reply) the same new order.
    let mut request = OrderRequest::from(&failed.order);
    request.idempotency_key = Some(Value::from(format!("retry-{order_id}")));
    let deadline = std::time::Instant::now() + controller.config.answer_within;
    let reply = crate::accept::place(controller, &request, brewq_runtime::respond::new_order_id(), deadline).await;
    let Some(new_id) = reply.order_id.clone().filter(|_| reply.is_success()) else { return reply };
    if let Err(error) = controller.records.set_retried_as(order_id, &new_id).await {
        return unavailable(&error);
    }
    if let Err(error) = controller.dead_letters.delete(order_id).await {
        tracing::warn!(order = brewq_protocol::ids::order_ref(order_id), %error, "retried order still listed as failed");
    }
    tracing::info!(
        order = brewq_protocol::ids::order_ref(order_id),
        new_order = brewq_protocol::ids::order_ref(&new_id),
        "failed order queued again"
    );
    reply
}

/// Serves a give-up request; the payload is the failed order's id.
pub(crate) async fn give_up(controller: &Controller, payload: &[u8]) -> Vec<u8> {
    let order_id = String::from_utf8_lossy(payload).trim().to_owned();
    let reply = match brewq_runtime::kv::get_json::<DeadLetter>(&controller.dead_letters, &order_id).await {
        Ok(None) => OrderReply::rejected(RejectCode::NotFound, format!("no failed order {order_id} waiting"), Some("order_id")),
        Err(error) => unavailable(&error),
        Ok(Some(_)) => match controller.dead_letters.delete(&order_id).await {
            Ok(()) => {
                tracing::info!(order = brewq_protocol::ids::order_ref(&order_id), "operator gave up on a failed order");
                OrderReply::done(&order_id, format!("gave up on order {order_id}; its stock was released when it failed"))
            }
            Err(error) => unavailable(&error.into()),
        },
    };
    to_json(&reply)
}

fn unavailable(error: &anyhow::Error) -> OrderReply {
    tracing::warn!(error = format!("{error:#}"), "dead-letter action failed");
    OrderReply::rejected(RejectCode::Unavailable, "cannot do that right now; please retry", None)
}
