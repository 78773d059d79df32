//! Cancelling a queued order: the record moves to cancelled, its stock is released, and its
//! message leaves the work queue. A brewing or finished order cannot be cancelled.

use brewq_protocol::{OrderReply, OrderStatus, OrderUpdate, RejectCode, StockCommand, StockReply, UpdateReply, subjects};

use crate::{Controller, to_json};

/// Serves one cancel request; the payload is the order id.
pub(crate) async fn handle(controller: &Controller, payload: &[u8]) -> Vec<u8> {
    let order_id = String::from_utf8_lossy(payload).trim().to_owned();
    let span = tracing::info_span!("cancel", order = brewq_protocol::ids::order_ref(&order_id));
    to_json(&tracing::Instrument::instrument(cancel(controller, &order_id), span).await)
}

async fn cancel(controller: &Controller, order_id: &str) -> OrderReply {
    if order_id.is_empty() {
        return OrderReply::rejected(RejectCode::Invalid, "order id is required", Some("order_id"));
    }
    let update = OrderUpdate {
        order_id: order_id.to_owned(),
        status: OrderStatus::Cancelled,
        machine: None,
        reason: Some("cancelled by the customer".into()),
        order: None,
        brewing_since: None,
    };
    let record = match controller.records.update(&update).await {
        // `Records::update` only records; settling is this function's.
        Ok(UpdateReply::Applied { record } | UpdateReply::Settled { record }) => record,
        Ok(UpdateReply::Refused { record }) => {
            return OrderReply::rejected(
                RejectCode::Conflict,
                format!("order {order_id} is {} and can no longer be cancelled", record.status),
                None,
            );
        }
        Ok(UpdateReply::NotFound) => {
            return OrderReply::rejected(RejectCode::NotFound, format!("no order {order_id}"), Some("order_id"));
        }
        Ok(UpdateReply::Error { message }) => return unavailable(&message),
        Err(error) => return unavailable(&format!("{error:#}")),
    };
    tracing::info!("order cancelled");
    // If this release is lost, the machine that takes the cancelled order off the queue
    // releases it again (releases are idempotent).
    let release = StockCommand::Release { order_id: order_id.to_owned() };
    let released = brewq_runtime::request::stock(&controller.client, &release, controller.config.stock_timeout).await;
    match (released, record.queue_sequence) {
        (Ok(StockReply::Released), Some(sequence)) => take_off_the_queue(controller, sequence).await,
        (Ok(StockReply::Released), None) => {}
        (released, _) => tracing::warn!(?released, "stock of the cancelled order not released yet"),
    }
    OrderReply::done(order_id, format!("order {order_id} is cancelled"))
}

/// Deletes the cancelled order's message, so that it no longer counts in the queue nor costs
/// a machine a fetch. Only once its stock is released: until then, the machine that takes it
/// is what releases it. A machine that already holds it finds the record cancelled.
async fn take_off_the_queue(controller: &Controller, sequence: u64) {
    let stream = controller.jetstream.get_stream_no_info(subjects::ORDERS_STREAM).await;
    let deleted = match stream {
        Ok(stream) => stream.delete_message(sequence).await.map_err(anyhow::Error::from),
        Err(error) => Err(error.into()),
    };
    if let Err(error) = deleted {
        // Already taken by a machine, or the stream is busy: the machine drops it.
        tracing::debug!(error = format!("{error:#}"), sequence, "cancelled order left in the queue");
    }
}

fn unavailable(message: &str) -> OrderReply {
    tracing::warn!(error = message, "cancel failed");
    OrderReply::rejected(RejectCode::Unavailable, "cannot cancel right now; please retry", None)
}
