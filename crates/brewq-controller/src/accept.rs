//! Accepting an order: validate, give it an id (the same one for a retried idempotency key),
//! reserve its ingredients, put it in the work queue and wait for the PubAck, record it with
//! its place in the queue, reply.
//! Every step is idempotent per order id, so a retry resumes where a failed attempt stopped.

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::message::PublishMessage;
use brewq_protocol::stock::recipe;
use brewq_protocol::{
    KeyedOrder, Order, OrderRecord, OrderReply, OrderRequest, OrderStatus, RejectCode, StockCommand, StockReply, now,
    subjects,
};
use brewq_runtime::kv::{Change, modify};
use brewq_runtime::request::request_json_with_header;

use crate::{Controller, to_json};

/// Serves one order request; always produces a reply.
pub(crate) async fn handle(controller: &Controller, payload: &[u8]) -> Vec<u8> {
    let started = Instant::now();
    let reply = match serde_json::from_slice::<OrderRequest>(payload) {
        Ok(request) => place(controller, &request).await,
        Err(error) => OrderReply::unreadable(&error),
    };
    count(&reply, started.elapsed());
    to_json(&reply)
}

/// `brewq_orders_accepted_total`, `brewq_orders_refused_total{reason}` and the time taken to
/// answer, `brewq_order_accept_seconds{outcome}`.
fn count(reply: &OrderReply, took: Duration) {
    let outcome = match reply.code {
        None if reply.is_success() => "accepted",
        None => "error",
        Some(code) => code.as_str(),
    };
    if outcome == "accepted" {
        metrics::counter!("brewq_orders_accepted_total").increment(1);
    } else {
        metrics::counter!("brewq_orders_refused_total", "reason" => outcome).increment(1);
    }
    metrics::histogram!("brewq_order_accept_seconds", "outcome" => outcome).record(took.as_secs_f64());
}

/// The time one step of accepting an order took, `brewq_order_step_seconds{step}`: reserve,
/// publish, record.
fn step_took(step: &'static str, started: Instant) {
    metrics::histogram!("brewq_order_step_seconds", "step" => step).record(started.elapsed().as_secs_f64());
}

/// Validates and places an order; always a reply.
pub(crate) async fn place(controller: &Controller, request: &OrderRequest) -> OrderReply {
    let order = match request.validate() {
        Ok(order) => order,
        Err(error) => return OrderReply::invalid(&error),
    };
    let key = match request.idempotency_key() {
        Ok(key) => key,
        Err(error) => return OrderReply::invalid(&error),
    };
    let order_id = match &key {
        Some(key) => match order_id_for_key(controller, key, &order, None).await {
            Ok(Ok(order_id)) => order_id,
            Ok(Err(first)) => return key_reused(key, &first),
            Err(error) => return unavailable(&error),
        },
        None => brewq_runtime::respond::new_order_id(),
    };
    place_with_id(controller, &order_id, order, key.as_deref()).await
}

/// Places the order `order_id`. With an idempotency `key`, the id may have been used before,
/// so an earlier attempt is looked for first.
async fn place_with_id(controller: &Controller, order_id: &str, order: Order, key: Option<&str>) -> OrderReply {
    use tracing::Instrument;
    let span = tracing::info_span!("order", order = brewq_protocol::ids::order_ref(order_id));
    if let Some(key) = key {
        match resume(controller, order_id).instrument(span.clone()).await {
            Earlier::None => {}
            Earlier::Reply(reply) => return reply,
            Earlier::RolledBack => return Box::pin(place_again(controller, key, order_id, order)).await,
        }
    }
    place_new(controller, order_id, order).instrument(span).await
}

/// An earlier attempt with this idempotency key was rolled back, and its customer told to
/// retry: this retry places the order afresh, under a new id that the key stands for from now
/// on (the rolled-back order points to it).
async fn place_again(controller: &Controller, key: &str, old_id: &str, order: Order) -> OrderReply {
    let new_id = match order_id_for_key(controller, key, &order, Some(old_id)).await {
        Ok(Ok(new_id)) => new_id,
        Ok(Err(first)) => return key_reused(key, &first),
        Err(error) => return unavailable(&error),
    };
    if let Err(error) = controller.records.set_retried_as(old_id, &new_id).await {
        tracing::warn!(order = brewq_protocol::ids::order_ref(old_id), error = format!("{error:#}"), "cannot link the rolled-back order to its retry");
    }
    tracing::info!(order = brewq_protocol::ids::order_ref(old_id), retried_as = brewq_protocol::ids::order_ref(&new_id), "rolled-back order placed again");
    place_with_id(controller, &new_id, order, Some(key)).await
}

/// Reserves, queues and records a new order; always a reply.
async fn place_new(controller: &Controller, order_id: &str, order: Order) -> OrderReply {
    let reserve = StockCommand::Reserve { order_id: order_id.to_owned(), items: recipe(&order) };
    let (subject, header) = (subjects::stock_subject(&reserve), (subjects::ORDER_ID_HEADER, order_id));
    let started = Instant::now();
    let reserved = request_json_with_header(&controller.client, &subject, header, &reserve, controller.config.stock_timeout).await;
    step_took("reserve", started);
    match reserved {
        Ok(StockReply::Reserved) => {}
        Ok(StockReply::OutOfStock { ingredient }) => {
            tracing::info!(%ingredient, "order refused: out of stock");
            return OrderReply::out_of_stock(ingredient);
        }
        Ok(other) => return unavailable(&anyhow::anyhow!("stock manager answered {other:?}")),
        Err(error) => return unavailable(&error.into()),
    }
    queue(controller, order_id, order, true).await
}

/// What an earlier attempt under the same order id left.
enum Earlier {
    /// Nothing: the order is new.
    None,
    /// The reply for the order it recorded.
    Reply(OrderReply),
    /// A rollback: the order never reached the queue, and ended failed with its stock released.
    RolledBack,
}

/// Looks for an earlier attempt under `order_id`, finishing it if it stopped half-way.
async fn resume(controller: &Controller, order_id: &str) -> Earlier {
    match controller.records.get(order_id).await {
        Ok(Some(record)) if record.never_queued() => Earlier::RolledBack,
        // Recorded before it was queued, by an earlier version that wrote the record first:
        // publishing again is safe (the stream drops a duplicate id; a machine drops an order
        // already done).
        Ok(Some(record)) if record.status == OrderStatus::Queued && record.queue_sequence.is_none() => {
            Earlier::Reply(queue(controller, order_id, record.order, false).await)
        }
        Ok(Some(record)) => Earlier::Reply(accepted(controller, &record, false)),
        Ok(None) => Earlier::None,
        Err(error) => Earlier::Reply(unavailable(&error)),
    }
}

/// Puts a reserved order in the work queue, then records it with its place in the queue, and
/// replies; rolls it back when it cannot be queued. Queued before it is recorded, the record
/// is written once: if this controller stops in between, the machine that takes the order
/// records it (the order travels in the message).
async fn queue(controller: &Controller, order_id: &str, order: Order, new: bool) -> OrderReply {
    let started = Instant::now();
    let published = publish(controller, order_id, &order).await;
    step_took("publish", started);
    let sequence = match published {
        Ok(sequence) => sequence,
        Err(error) => {
            roll_back(controller, order_id, &order).await;
            return unavailable(&error);
        }
    };
    let record = OrderRecord { queue_sequence: Some(sequence), ..OrderRecord::queued(order_id, order, now()) };
    let started = Instant::now();
    let created = controller.records.create(record.clone()).await;
    step_took("record", started);
    let record = match created {
        Ok(record) => record,
        Err(error) => {
            // The order is safe in the queue: it is accepted, and its machine records it.
            tracing::warn!(error = format!("{error:#}"), "order queued but not recorded; its machine will record it");
            record
        }
    };
    tracing::info!(size = %record.order.size, bean = %record.order.bean_type, "order queued");
    accepted(controller, &record, new)
}

/// The order id an idempotency key stands for: the first one stored for it, or a new one if
/// none is, or if the one stored is `replacing` (an order rolled back before it was queued).
/// `Err` holds the id of a different order the key was first used for.
async fn order_id_for_key(
    controller: &Controller,
    key: &str,
    order: &Order,
    replacing: Option<&str>,
) -> anyhow::Result<Result<String, String>> {
    let placed = KeyedOrder::Placed { order_id: brewq_runtime::respond::new_order_id(), order: order.clone() };
    modify(&controller.idempotency, key, |existing: Option<KeyedOrder>| match existing {
        Some(first) if Some(first.order_id()) != replacing => match first.is_for(order) {
            true => Ok((Change::Keep, Ok(first.order_id().to_owned()))),
            false => Ok((Change::Keep, Err(first.order_id().to_owned()))),
        },
        _ => Ok((Change::Write(placed.clone()), Ok(placed.order_id().to_owned()))),
    })
    .await
    .context("looking up the idempotency key")
}

/// The refusal of an idempotency key already used for another order: nothing is placed.
fn key_reused(key: &str, first: &str) -> OrderReply {
    tracing::info!(order = brewq_protocol::ids::order_ref(first), "idempotency key reused for a different order");
    let message = format!("idempotency key {key:?} was already used for a different order ({first}); use a new key for a new order");
    OrderReply::rejected(RejectCode::Conflict, message, Some("idempotency_key"))
}

/// Puts the order in the work queue, retrying until the PubAck or the deadline. The order id
/// is the `Nats-Msg-Id`, so a retry whose first attempt landed is dropped by the stream.
async fn publish(controller: &Controller, order_id: &str, order: &Order) -> anyhow::Result<u64> {
    // Our own order type always serializes.
    let payload = serde_json::to_vec(&OrderRequest::from(order)).expect("order serializes");
    let subject = subjects::order_subject(order.bean_type);
    let deadline = Instant::now() + controller.config.publish_timeout;
    loop {
        let message = PublishMessage::build()
            .message_id(order_id)
            .header(subjects::ORDER_ID_HEADER, order_id)
            .payload(payload.clone().into());
        let attempt = async {
            let ack = controller.jetstream.send_publish(subject.clone(), message).await?;
            ack.await.map_err(anyhow::Error::from)
        };
        match attempt.await {
            Ok(ack) => {
                tracing::debug!(sequence = ack.sequence, duplicate = ack.duplicate, "order in the stream");
                return Ok(ack.sequence);
            }
            Err(error) if Instant::now() < deadline => {
                tracing::warn!(error = format!("{error:#}"), "publishing the order failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error.context("putting the order in the work queue")),
        }
    }
}

/// How long a rollback keeps trying.
const ROLL_BACK_FOR: Duration = Duration::from_secs(30);

/// The order could not be queued: it ends failed and its stock goes back. If the publish did
/// land after all, the machine that takes it finds it failed and only releases, again.
async fn roll_back(controller: &Controller, order_id: &str, order: &Order) {
    // The cluster may be electing a leader: keep trying for a while.
    let deadline = Instant::now() + ROLL_BACK_FOR;
    loop {
        match controller.records.fail_unqueued(order_id, order, "could not be queued").await {
            Ok(true) => break,
            // Recorded by a machine (the publish landed after all): it goes on.
            Ok(false) => return,
            Err(error) if Instant::now() < deadline => {
                tracing::warn!(error = format!("{error:#}"), "cannot mark the unqueued order failed yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => {
                // No record: a retry with the same idempotency key queues it again.
                tracing::error!(error = format!("{error:#}"), "cannot mark the unqueued order failed");
                return;
            }
        }
    }
    // No message carries this order, so no machine will release its stock: keep trying.
    let release = StockCommand::Release { order_id: order_id.to_owned() };
    loop {
        let subject = subjects::stock_subject(&release);
        let header = (subjects::ORDER_ID_HEADER, order_id);
        let released: Result<StockReply, _> =
            request_json_with_header(&controller.client, &subject, header, &release, controller.config.stock_timeout).await;
        match released {
            Ok(StockReply::Released) => return,
            other if Instant::now() < deadline => {
                tracing::warn!(?other, "cannot release the stock of an unqueued order yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => {
                tracing::error!(?other, "cannot release the stock of an unqueued order; `brewq check` will show it reserved");
                return;
            }
        }
    }
}

/// The success reply; `new` says whether this order just joined the queue (not a retry).
fn accepted(controller: &Controller, record: &OrderRecord, new: bool) -> OrderReply {
    let position = if new { controller.queue.admit() } else { controller.queue.pending().max(1) };
    let eta = controller.queue.eta(position, record.order.size);
    let mut reply = OrderReply::accepted(&record.id, &record.order.name, position, eta.as_secs()).with_ticket(record.ticket());
    if record.status != OrderStatus::Queued {
        // Past the queue: no place in it, and `GET /api/orders/{id}` has its progress.
        reply.message = format!("Order {} is {}", record.id, record.status);
        (reply.position, reply.eta_seconds) = (None, None);
    } else if controller.queue.no_machine_taking_orders() {
        reply.message.push_str("; no machine is taking orders right now, so it waits until one is back");
    }
    reply
}

fn unavailable(error: &anyhow::Error) -> OrderReply {
    tracing::warn!(error = format!("{error:#}"), "order not taken: back end unavailable");
    OrderReply::rejected(RejectCode::Unavailable, "the coffee shop cannot take orders right now; please retry", None)
}
