//! One order on one machine, from delivery to ack. The record is moved first (brewing, ready,
//! failed) and the stock settled after, so that a redelivery after a crash finds the record
//! final and only settles the stock again (commit and release are idempotent): no order is
//! brewed twice to completion, and none is lost. A brew the machine expects to be instant, on
//! an order's first delivery, is recorded with its outcome: brewing and ready in one write.
//! Every request names the order in its `Brewq-Order-Id` header; brew times, failures and
//! redeliveries are metrics.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_nats::jetstream::AckKind;
use async_nats::jetstream::Message;
use brewq_protocol::{Order, OrderRecord, OrderStatus, OrderUpdate, StockReply, UpdateReply, now, subjects};
use brewq_runtime::request::request_json_with_header;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Brewer, Machine};

/// Handles one delivered order; every path ends in an ack, a term or a nak.
pub(crate) async fn handle<B: Brewer>(machine: &Machine<B>, message: Message, shutdown: &CancellationToken) {
    let order_id = order_id_of(&message);
    let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
    let span = tracing::info_span!("order", order = brewq_protocol::ids::order_ref(&order_id), machine = machine.config.id, delivered);
    if delivered > 1 {
        metrics::counter!("brewq_redeliveries_total", "machine" => machine.config.id.to_string()).increment(1);
    }
    async {
        // Validated by the controller, the only role that may publish to the work queue.
        let order = serde_json::from_slice::<Order>(&message.payload).map_err(|error| error.to_string());
        match order {
            Ok(order) if !order_id.is_empty() => {
                if shutdown.is_cancelled() || machine.control.mode() != crate::control::Mode::Running {
                    // Stopping or paused while its fetch was out: the order goes back as it
                    // came, with nothing recorded (it is not an attempt), for another machine.
                    tracing::info!("not taking orders any more; order handed back unopened");
                    return nak(&message, None).await;
                }
                // An instant brew needs no brewing record ahead of it: no one could see it. A
                // redelivery records brewing first, so that its attempts are counted.
                let instant = delivered == 1 && machine.brewer.expected_brew_time(order.size).is_zero();
                let handling = Handling { machine, message: &message, order_id: &order_id, order, instant, brew_started: OnceLock::new() };
                handling.run(shutdown).await;
            }
            Ok(_) => terminate(&message, "order without an id").await,
            Err(error) => terminate(&message, &error).await,
        }
    }
    .instrument(span)
    .await;
}

/// How long after a stopping machine hands its order back the order can be taken again. When
/// the whole fleet stops at once, the other machines have stopped fetching by then, so none
/// takes it only to hand it back in turn (each such brew would count as an attempt).
const STOPPING_HAND_BACK_DELAY: Duration = Duration::from_secs(1);

struct Handling<'a, B> {
    machine: &'a Machine<B>,
    message: &'a Message,
    order_id: &'a str,
    order: Order,
    /// Brewed before anything is recorded, then recorded brewing and done in one update.
    instant: bool,
    /// When an instant brew started; every later update carries it.
    brew_started: OnceLock<OffsetDateTime>,
}

impl<B: Brewer> Handling<'_, B> {
    async fn run(&self, shutdown: &CancellationToken) {
        let config = &self.machine.config;
        let order = &self.order;
        // Brew attempts are counted in the record: a delivery handed back by a paused or
        // stopping machine is not an attempt.
        let attempts = match self.instant {
            true => 1,
            false => match self.brewing().await {
                Some(UpdateReply::Applied { record }) => i64::from(record.attempts),
                Some(UpdateReply::Refused { record } | UpdateReply::Settled { record }) => return self.settle(&record).await,
                Some(UpdateReply::NotFound) => return terminate(self.message, "no record for this order").await,
                Some(UpdateReply::Error { .. }) | None => return self.retry_later().await,
            },
        };
        if attempts > config.max_attempts {
            let reason = format!("gave up after {} attempts", config.max_attempts);
            return self.finish(OrderStatus::Failed, Some(reason)).await;
        }
        let out_of_service = self.machine.control.brew_token();
        if self.machine.control.mode() == crate::control::Mode::OutOfService {
            return self.abandon("out of service", None).await;
        }
        self.machine.status.brewing(self.order_id);
        tracing::info!(size = %order.size, "brewing");
        if self.instant {
            self.brew_started.get_or_init(now);
        }
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = self.brew_with_progress(order) => outcome,
            () = shutdown.cancelled() => return self.abandon("stopped", Some(STOPPING_HAND_BACK_DELAY)).await,
            () = out_of_service.cancelled() => return self.abandon("out of service", None).await,
        };
        match outcome {
            Ok(()) => {
                let machine = self.machine.config.id.to_string();
                let brew_seconds = metrics::histogram!("brewq_brew_seconds", "size" => order.size.to_string(), "machine" => machine);
                brew_seconds.record(started.elapsed().as_secs_f64());
                self.machine.status.brewed(order.size, started.elapsed());
                self.finish(OrderStatus::Ready, None).await;
            }
            Err(failure) => {
                self.machine.status.failed();
                metrics::counter!("brewq_brew_failures_total", "machine" => config.id.to_string()).increment(1);
                tracing::warn!(%failure, "brew failed");
                if attempts >= config.max_attempts {
                    let reason = format!("{failure}; gave up after {} attempts", config.max_attempts);
                    self.finish(OrderStatus::Failed, Some(reason)).await;
                } else {
                    self.update(OrderStatus::Queued, Some(failure.to_string())).await;
                    nak(self.message, Some(config.retry_delay)).await;
                }
            }
        }
    }

    /// Brews while telling JetStream, every few seconds, that the order is in progress.
    async fn brew_with_progress(&self, order: &Order) -> Result<(), crate::BrewFailure> {
        let brew = self.machine.brewer.brew(order);
        tokio::pin!(brew);
        let mut ticker = tokio::time::interval(self.machine.progress_every);
        ticker.tick().await;
        loop {
            tokio::select! {
                outcome = &mut brew => return outcome,
                _ = ticker.tick() => {
                    if let Err(error) = self.message.ack_with(AckKind::Progress).await {
                        tracing::warn!(%error, "cannot send in-progress");
                    }
                }
            }
        }
    }

    /// Records the final status and has the controller settle the stock (or settles it), then
    /// acks.
    async fn finish(&self, status: OrderStatus, reason: Option<String>) {
        match self.send(OrderUpdate { settle: true, ..self.update_to(status, reason) }).await {
            Some(UpdateReply::Settled { record }) => self.done(&record).await,
            Some(UpdateReply::Applied { record } | UpdateReply::Refused { record }) => self.settle(&record).await,
            Some(UpdateReply::NotFound) => terminate(self.message, "no record for this order").await,
            Some(UpdateReply::Error { .. }) | None => self.retry_later().await,
        }
    }

    /// The record says where the order stands: settle the stock accordingly and ack, or, if it
    /// is still in progress elsewhere, leave it to the queue.
    async fn settle(&self, record: &OrderRecord) {
        let Some(command) = record.settlement() else {
            tracing::warn!(status = %record.status, "order not final yet; offering it again");
            return self.retry_later().await;
        };
        let timeout = self.machine.config.request_timeout;
        match brewq_runtime::request::stock(&self.machine.client, &command, timeout).await {
            Ok(StockReply::Committed | StockReply::Released) => self.done(record).await,
            other => {
                tracing::warn!(?other, "stock not settled; retrying later");
                self.retry_later().await;
            }
        }
    }

    /// The record is final and the stock settled: ack. Not waited for: a lost ack only brings
    /// the order back after the AckWait, to a machine that finds the record final and settles
    /// the stock again, which the stock manager answers without a second change.
    async fn done(&self, record: &OrderRecord) {
        if let Err(error) = self.message.ack().await {
            tracing::warn!(%error, "ack not sent; the order will come back and be settled again");
            return;
        }
        tracing::info!(status = %record.status, "order done");
    }

    /// Shutdown or out of service while brewing: the order goes back to the queue for another
    /// machine, at once or after `delay`.
    async fn abandon(&self, why: &str, delay: Option<Duration>) {
        tracing::warn!(why, "brew abandoned, order handed back to the queue");
        self.machine.status.idle();
        if !self.instant {
            // An instant brew recorded nothing yet: the record still says queued.
            let reason = format!("machine {} {why} mid-brew", self.machine.config.id);
            self.update(OrderStatus::Queued, Some(reason)).await;
        }
        nak(self.message, delay).await;
    }

    async fn retry_later(&self) {
        self.machine.status.idle();
        nak(self.message, Some(self.machine.config.retry_delay)).await;
    }

    /// Asks the controllers to record that the order is brewing, sending the order along so
    /// that one queued without a record (its controller stopped) gets its record now.
    async fn brewing(&self) -> Option<UpdateReply> {
        self.send(OrderUpdate { order: Some(self.order.clone()), ..self.update_to(OrderStatus::Brewing, None) }).await
    }

    /// Asks the controllers to record a status; `None` if they could not be reached.
    async fn update(&self, status: OrderStatus, reason: Option<String>) -> Option<UpdateReply> {
        self.send(self.update_to(status, reason)).await
    }

    /// The update to `status`; after an instant brew, it records the brew's start too, and
    /// carries the order, as a brewing update does.
    fn update_to(&self, status: OrderStatus, reason: Option<String>) -> OrderUpdate {
        let machine = Some(self.machine.config.id);
        let brewing_since = self.brew_started.get().copied();
        let order = brewing_since.map(|_| self.order.clone());
        OrderUpdate { order_id: self.order_id.to_owned(), status, machine, reason, order, settle: false, brewing_since }
    }

    async fn send(&self, update: OrderUpdate) -> Option<UpdateReply> {
        let status = update.status;
        let timeout = self.machine.config.request_timeout;
        let header = (subjects::ORDER_ID_HEADER, self.order_id);
        match request_json_with_header(&self.machine.client, subjects::ORDER_UPDATES, header, &update, timeout).await {
            Ok(reply) => Some(reply),
            Err(error) => {
                tracing::warn!(%error, %status, "cannot record the order status");
                None
            }
        }
    }
}

fn order_id_of(message: &Message) -> String {
    let headers = message.headers.as_ref();
    headers
        .and_then(|headers| headers.get(subjects::ORDER_ID_HEADER).or_else(|| headers.get("Nats-Msg-Id")))
        .map(|value| value.as_str().to_owned())
        .unwrap_or_default()
}

async fn nak(message: &Message, delay: Option<Duration>) {
    if let Err(error) = message.ack_with(AckKind::Nak(delay)).await {
        tracing::warn!(%error, "cannot nak; the order comes back after the ack wait");
    }
}

async fn terminate(message: &Message, why: &str) {
    tracing::warn!(why, "invalid order removed from the queue");
    if let Err(error) = message.double_ack_with(AckKind::Term).await {
        tracing::warn!(%error, "term not confirmed");
    }
}
