//! Accepting an order: validate, give it an id (the same one for a retried idempotency key),
//! reserve its ingredients, put it in the work queue and wait for the PubAck, record it with
//! its place in the queue, reply.
//! Every step is idempotent per order id, so a retry resumes where a failed attempt stopped;
//! and the controller retries each step itself, on the same order id, until its deadline
//! (`Config::answer_within`, inside the caller's own), so that an election of the cluster
//! costs time, not the order. A step whose outcome stays unknown is undone before the answer
//! (ARCHITECTURE.md, "Accepting an order when an outcome is unknown").

use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::message::PublishMessage;
use brewq_protocol::ids::RequestRef;
use brewq_protocol::stock::recipe;
use brewq_protocol::{
    KeyedOrder, Order, OrderRecord, OrderReply, OrderRequest, OrderStatus, RejectCode, StockCommand, StockReply, now, subjects,
};
use brewq_runtime::kv::{Change, modify};

use crate::{Controller, to_json};

/// Serves one order request, `came` when it did; always produces a reply. Without an
/// idempotency key, the order's id comes from the request (`request`, its reference), so
/// that a controller standing by for it places the same order ([`crate::standby`]).
pub(crate) async fn handle(controller: &Controller, payload: &[u8], request: &RequestRef, came: Instant) -> Vec<u8> {
    let started = Instant::now();
    let keyless_id = controller.config.order_id_key.order_id(request);
    let deadline = came + controller.config.answer_within;
    let reply = match serde_json::from_slice::<OrderRequest>(payload) {
        Ok(request) => place(controller, &request, keyless_id, deadline).await,
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

/// Validates and places an order, under `keyless_id` if it has no idempotency key; always a
/// reply, by `deadline`.
pub(crate) async fn place(controller: &Controller, request: &OrderRequest, keyless_id: String, deadline: Instant) -> OrderReply {
    let order = match request.validate() {
        Ok(order) => order,
        Err(error) => return OrderReply::invalid(&error),
    };
    let key = match request.idempotency_key() {
        Ok(key) => key,
        Err(error) => return OrderReply::invalid(&error),
    };
    let order_id = match &key {
        Some(key) => match until(deadline, || order_id_for_key(controller, key, &order, None)).await {
            Ok(Ok(order_id)) => order_id,
            Ok(Err(first)) => return key_reused(key, &first),
            Err(error) => return unavailable(&error),
        },
        None => keyless_id,
    };
    place_with_id(controller, &order_id, order, key.as_deref(), deadline).await
}

/// Tries `step` again while it fails and `deadline` is ahead (an election of the cluster
/// makes reads and writes fail for a few seconds); its last error after that.
async fn until<T, F, Fut>(deadline: Instant, mut step: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() + RETRY_PAUSE < deadline => {
                tracing::debug!(error = format!("{error:#}"), "step failed; trying again");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The pause between two tries of a step.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// Places the order `order_id`. With an idempotency `key`, the id may have been used before,
/// so an earlier attempt is looked for first.
async fn place_with_id(controller: &Controller, order_id: &str, order: Order, key: Option<&str>, deadline: Instant) -> OrderReply {
    use tracing::Instrument;
    let span = tracing::info_span!("order", order = brewq_protocol::ids::order_ref(order_id));
    if let Some(key) = key {
        match resume(controller, order_id, deadline).instrument(span.clone()).await {
            PreviousAttempt::None => {}
            PreviousAttempt::Reply(reply) => return reply,
            PreviousAttempt::RolledBack => return Box::pin(place_again(controller, key, order_id, order, deadline)).await,
        }
    }
    place_new(controller, order_id, order, key, deadline).instrument(span).await
}

/// An earlier attempt with this idempotency key was rolled back, and its customer told to
/// retry: this retry places the order afresh, under a new id that the key stands for from now
/// on (the rolled-back order points to it).
async fn place_again(controller: &Controller, key: &str, old_id: &str, order: Order, deadline: Instant) -> OrderReply {
    let new_id = match until(deadline, || order_id_for_key(controller, key, &order, Some(old_id))).await {
        Ok(Ok(new_id)) => new_id,
        Ok(Err(first)) => return key_reused(key, &first),
        Err(error) => return unavailable(&error),
    };
    if let Err(error) = controller.records.set_retried_as(old_id, &new_id).await {
        tracing::warn!(
            order = brewq_protocol::ids::order_ref(old_id),
            error = format!("{error:#}"),
            "cannot link the rolled-back order to its retry"
        );
    }
    tracing::info!(
        order = brewq_protocol::ids::order_ref(old_id),
        retried_as = brewq_protocol::ids::order_ref(&new_id),
        "rolled-back order placed again"
    );
    place_with_id(controller, &new_id, order, Some(key), deadline).await
}

/// Reserves, queues and records a new order; always a reply.
async fn place_new(controller: &Controller, order_id: &str, order: Order, key: Option<&str>, deadline: Instant) -> OrderReply {
    let started = Instant::now();
    let reserved = reserve(controller, order_id, &order, deadline).await;
    step_took("reserve", started);
    match reserved {
        Reserved::Yes => queue_and_record(controller, order_id, order, true, deadline).await,
        Reserved::OutOfStock(ingredient) => {
            tracing::info!(%ingredient, "order refused: out of stock");
            OrderReply::out_of_stock(ingredient)
        }
        // The stock of this id has ended already: another attempt under it either went
        // through (it was brewed, failed or cancelled since this one looked for a record: its
        // record answers) or was undone. With a key, an undone order is placed again under a
        // new id, as after any rollback; the rollback writes "failed" only where no record is,
        // so it never undoes an order that went through. Without a key, the id comes from the
        // request, and an undone copy of it is the end (nobody can ask again).
        Reserved::No(error) => {
            if key.is_some() {
                roll_back(controller, order_id, &order).await;
            }
            match (resume(controller, order_id, deadline).await, key) {
                (PreviousAttempt::Reply(reply), _) => reply,
                (PreviousAttempt::RolledBack, Some(key)) => Box::pin(place_again(controller, key, order_id, order, deadline)).await,
                (PreviousAttempt::None | PreviousAttempt::RolledBack, _) => unavailable(&error),
            }
        }
        Reserved::Unknown(error) => {
            // The stock manager may have set the stock aside after all, or may still. The
            // order is rolled back, not only released: another attempt under the same id (a
            // retry with the same key, on another controller) finds it failed and stops,
            // rather than queueing an order whose stock is gone. A late reserve finds the
            // released reservation and sets nothing aside.
            tracing::warn!(error = format!("{error:#}"), "no answer to the reserve in time; undoing it");
            metrics::counter!("brewq_order_steps_undone_total", "step" => "reserve").increment(1);
            roll_back(controller, order_id, &order).await;
            unavailable(&error)
        }
    }
}

/// What came of reserving an order's ingredients.
enum Reserved {
    Yes,
    OutOfStock(brewq_protocol::Ingredient),
    /// Nothing is set aside, for sure.
    No(anyhow::Error),
    /// No answer in time: something may be set aside.
    Unknown(anyhow::Error),
}

/// Asks the stock managers to set the order's ingredients aside, again (on the same order id,
/// so a repeat is answered from the first) until a definite answer or the deadline.
async fn reserve(controller: &Controller, order_id: &str, order: &Order, deadline: Instant) -> Reserved {
    let reserve = StockCommand::Reserve { order_id: order_id.to_owned(), items: recipe(order) };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = controller.config.stock_timeout.min(RESERVE_TRY).min(left).max(RETRY_PAUSE);
        let error = match brewq_runtime::request::stock(&controller.client, &reserve, timeout).await {
            Ok(StockReply::Reserved) => return Reserved::Yes,
            Ok(StockReply::OutOfStock { ingredient }) => return Reserved::OutOfStock(ingredient),
            // Released or committed already: an earlier attempt was undone; nothing is held.
            Ok(reply @ (StockReply::Released | StockReply::Committed)) => {
                return Reserved::No(anyhow::anyhow!("the stock of this order was already {reply:?}"));
            }
            Ok(other) => anyhow::anyhow!("stock manager answered {other:?}"),
            Err(error) => anyhow::Error::from(error).context("reserving the stock"),
        };
        if Instant::now() + RETRY_PAUSE >= deadline {
            return Reserved::Unknown(error);
        }
        tracing::debug!(error = format!("{error:#}"), "reserve not answered; trying again");
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// What an earlier attempt under the same order id left.
enum PreviousAttempt {
    /// Nothing: the order is new.
    None,
    /// The reply for the order it recorded.
    Reply(OrderReply),
    /// A rollback: the order never reached the queue, and ended failed with its stock released.
    RolledBack,
}

/// Looks for an earlier attempt under `order_id`: what it recorded answers.
async fn resume(controller: &Controller, order_id: &str, deadline: Instant) -> PreviousAttempt {
    match until(deadline, || controller.records.get(order_id)).await {
        Ok(Some(record)) if record.never_queued() => PreviousAttempt::RolledBack,
        Ok(Some(record)) => PreviousAttempt::Reply(accepted(controller, &record, false)),
        Ok(None) => PreviousAttempt::None,
        Err(error) => PreviousAttempt::Reply(unavailable(&error)),
    }
}

/// Puts a reserved order in the work queue, then records it with its place in the queue, and
/// replies; rolls it back when it cannot be queued. Queued before it is recorded, the record
/// is written once: if this controller stops in between, the machine that takes the order
/// records it (the order travels in the message).
async fn queue_and_record(controller: &Controller, order_id: &str, order: Order, new: bool, deadline: Instant) -> OrderReply {
    let started = Instant::now();
    // At least a few tries, however long the reserve took.
    let publish_until = deadline.max(started + MIN_PUBLISH_TIME);
    let published = publish(controller, order_id, &order, publish_until).await;
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
        // Rolled back meanwhile by another attempt under the same id: its machine finds it
        // failed and only releases (again); the customer is told to try again.
        Ok(record) if record.never_queued() => {
            return unavailable(&anyhow::anyhow!("the order was rolled back while it was being queued"));
        }
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
    let placed = KeyedOrder { order_id: brewq_runtime::respond::new_order_id(), order: order.clone() };
    modify(&controller.idempotency, key, |existing: Option<KeyedOrder>| match existing {
        Some(first) if Some(first.order_id.as_str()) != replacing => match first.order == *order {
            true => Ok((Change::Keep, Ok(first.order_id))),
            false => Ok((Change::Keep, Err(first.order_id))),
        },
        _ => Ok((Change::Write(placed.clone()), Ok(placed.order_id.clone()))),
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
async fn publish(controller: &Controller, order_id: &str, order: &Order, deadline: Instant) -> anyhow::Result<u64> {
    // Our own order type always serializes; its JSON is the request's, in canonical spellings.
    let payload = serde_json::to_vec(order).expect("order serializes");
    let subject = subjects::order_subject(order.bean_type);
    loop {
        let message =
            PublishMessage::build().message_id(order_id).header(subjects::ORDER_ID_HEADER, order_id).payload(payload.clone().into());
        // Short tries: a PubAck that does not come in a second is asked for again (the same
        // message id, so the stream keeps one copy), and the next try may reach a new leader.
        let attempt = async {
            let ack = controller.jetstream.send_publish(subject.clone(), message).await?;
            match tokio::time::timeout(PUBLISH_TRY, ack).await {
                Ok(ack) => ack.map_err(anyhow::Error::from),
                Err(_) => Err(anyhow::anyhow!("no PubAck within {PUBLISH_TRY:?}")),
            }
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
/// The least time given to putting a reserved order in the queue.
const MIN_PUBLISH_TIME: Duration = Duration::from_secs(2);
/// How long one try of a reserve waits for its answer: a stock manager answers in
/// milliseconds, and a request lost with a server that stopped is better asked again soon.
const RESERVE_TRY: Duration = Duration::from_millis(1500);
/// How long one try of a publish waits for its PubAck.
const PUBLISH_TRY: Duration = Duration::from_secs(1);

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
    // No message carries this order, so no machine will release its stock.
    release(controller, order_id).await;
}

/// Releases the stock of an order that will not be queued, trying for [`ROLL_BACK_FOR`]
/// (idempotent; an order with nothing reserved gets a released reservation holding nothing).
/// Past that, the reconciler releases it.
async fn release(controller: &Controller, order_id: &str) {
    let deadline = Instant::now() + ROLL_BACK_FOR;
    let release = StockCommand::Release { order_id: order_id.to_owned() };
    loop {
        let released = brewq_runtime::request::stock(&controller.client, &release, controller.config.stock_timeout).await;
        match released {
            Ok(StockReply::Released) => return,
            other if Instant::now() < deadline => {
                tracing::warn!(?other, "cannot release the stock of an unqueued order yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => {
                tracing::error!(?other, "cannot release the stock of an unqueued order; the reconciler will");
                return;
            }
        }
    }
}

/// The success reply; `new` says whether this order just joined the queue (not a retry).
fn accepted(controller: &Controller, record: &OrderRecord, new: bool) -> OrderReply {
    let counted = if new { controller.queue.admit() } else { controller.queue.pending().max(1) };
    let snapshot = controller.snapshot.borrow().clone();
    // The same rule as the order's page: its place from its sequence in the work queue, its
    // wait from the machines' brews under way; the counts alone while the figures are stale.
    let (position, eta, range) = match snapshot.fresh && record.status == OrderStatus::Queued {
        true => {
            let view = snapshot.order_view(record.clone());
            (view.position.unwrap_or(counted), view.eta_seconds.unwrap_or_default(), view.eta_range_seconds)
        }
        false => {
            let estimate = controller.queue.estimate(counted, record.order.size);
            (counted, estimate.expected.as_secs(), Some(estimate.range_seconds()))
        }
    };
    let mut reply = OrderReply::accepted(&record.id, &record.order.name, position, eta).with_ticket(record.ticket());
    reply.eta_range_seconds = range;
    if record.status != OrderStatus::Queued {
        // Past the queue: no place in it, and `GET /api/orders/{id}` has its progress.
        reply.message = format!("Order {} is {}", record.id, record.status);
        (reply.position, reply.eta_seconds, reply.eta_range_seconds) = (None, None, None);
    } else if controller.queue.no_machine_taking_orders() {
        reply.message.push_str("; no machine is taking orders right now, so it waits until one is back");
    }
    reply
}

fn unavailable(error: &anyhow::Error) -> OrderReply {
    tracing::warn!(error = format!("{error:#}"), "order not taken: back end unavailable");
    OrderReply::rejected(RejectCode::Unavailable, "the coffee shop cannot take orders right now; please retry", None)
}
