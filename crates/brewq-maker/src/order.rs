//! One order on one machine, from delivery to ack. The record is moved first (brewing, ready,
//! failed) and the controller settles the stock after it; the machine acks once the controller
//! says the stock is settled, so that a redelivery after a crash finds the record final and
//! only has it settled again (commit and release are idempotent): no order is brewed twice to
//! completion, and none is lost. A brew the machine expects to be instant, on
//! an order's first delivery, is recorded with its outcome: brewing and ready in one write.
//! Every request names the order in its `Brewq-Order-Id` header; brew times, failures and
//! redeliveries are metrics.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use async_nats::jetstream::AckKind;
use async_nats::jetstream::Message;
use brewq_protocol::{Order, OrderRecord, OrderStatus, OrderUpdate, UpdateReply, now, subjects};
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

/// What a machine does after the controller answered one of its updates (`None`: no answer).
#[derive(Debug, PartialEq)]
enum Next {
    /// The order is the machine's to brew, this being its `attempts`th brew.
    Brew { attempts: i64 },
    /// The record is final and the stock settled: ack.
    Done(OrderRecord),
    /// Not now (brewing elsewhere, the stock not settled yet, no answer, no record found):
    /// back to the queue after the retry delay.
    OfferAgain,
}

fn next_step(reply: Option<UpdateReply>) -> Next {
    match reply {
        Some(UpdateReply::Applied { record }) => Next::Brew { attempts: i64::from(record.attempts) },
        Some(UpdateReply::Settled { record }) => Next::Done(record),
        Some(UpdateReply::Refused { .. } | UpdateReply::Error { .. }) | None => Next::OfferAgain,
        // A machine's brewing update carries the order, and records it if it has no record:
        // a later update that finds none read a replica not caught up (a leader cut off by a
        // partition answers until it hears of its successor). The record is there; removing
        // the order would leave it brewing for ever with its stock reserved.
        Some(UpdateReply::NotFound) => Next::OfferAgain,
    }
}

/// Whether the brew about to start, the record's `attempts`th, is past `max_attempts`: the
/// order then ends failed instead (attempts are counted in the record, so a delivery handed
/// back by a paused or stopping machine, which recorded no brewing, is not one).
fn past_limit(attempts: i64, max_attempts: i64) -> bool {
    attempts > max_attempts
}

impl<B: Brewer> Handling<'_, B> {
    async fn run(&self, shutdown: &CancellationToken) {
        let config = &self.machine.config;
        let order = &self.order;
        // Brew attempts are counted in the record: a delivery handed back by a paused or
        // stopping machine is not an attempt.
        let attempts = match self.instant {
            true => 1,
            false => match next_step(self.brewing().await) {
                Next::Brew { attempts } => attempts,
                Next::Done(record) => return self.done(&record).await,
                Next::OfferAgain => return self.retry_later().await,
            },
        };
        if past_limit(attempts, config.max_attempts) {
            let reason = format!("gave up after {} attempts", config.max_attempts);
            return self.record_outcome(OrderStatus::Failed, Some(reason)).await;
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
                self.record_outcome(OrderStatus::Ready, None).await;
            }
            Err(failure) => {
                self.machine.status.failed();
                metrics::counter!("brewq_brew_failures_total", "machine" => config.id.to_string()).increment(1);
                tracing::warn!(%failure, "brew failed");
                if attempts >= config.max_attempts {
                    let reason = format!("{failure}; gave up after {} attempts", config.max_attempts);
                    self.record_outcome(OrderStatus::Failed, Some(reason)).await;
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

    /// Records the final status, which has the controller settle the stock, then acks; if the
    /// stock is not settled yet, the order comes back later and its next update settles it.
    async fn record_outcome(&self, status: OrderStatus, reason: Option<String>) {
        match next_step(self.send(self.update_to(status, reason)).await) {
            Next::Done(record) => self.done(&record).await,
            Next::Brew { .. } | Next::OfferAgain => {
                tracing::warn!("the outcome is not recorded and settled yet; offering the order again");
                self.retry_later().await
            }
        }
    }

    /// The record is final and the stock settled: ack. Not waited for: a lost ack only brings
    /// the order back after the AckWait, to a machine whose update finds the record final and
    /// has the stock settled again, which the stock manager answers without a second change.
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
        OrderUpdate { order_id: self.order_id.to_owned(), status, machine, reason, order, brewing_since }
    }

    async fn send(&self, update: OrderUpdate) -> Option<UpdateReply> {
        let status = update.status;
        let timeout = self.machine.config.request_timeout;
        let header = (subjects::ORDER_ID_HEADER, self.order_id);
        let subject = subjects::order_updates_from(self.machine.config.id);
        match request_json_with_header(&self.machine.client, &subject, header, &update, timeout).await {
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

#[cfg(test)]
mod tests {
    use brewq_protocol::{Bean, Milk, Size};

    use super::*;

    fn record(status: OrderStatus, attempts: u32) -> OrderRecord {
        let order = Order { name: "Ada".into(), size: Size::Small, bean_type: Bean::Arabica, milk: Milk::None, sugar_count: 0 };
        OrderRecord { status, attempts, ..OrderRecord::queued("o1", order, now()) }
    }

    #[test]
    fn a_machine_brews_only_what_the_controller_gave_it_and_acks_only_settled_orders() {
        assert_eq!(next_step(Some(UpdateReply::Applied { record: record(OrderStatus::Brewing, 2) })), Next::Brew { attempts: 2 });
        let ready = record(OrderStatus::Ready, 1);
        assert_eq!(next_step(Some(UpdateReply::Settled { record: ready.clone() })), Next::Done(ready.clone()));
        // A redelivery after the record is final, its stock not settled yet: not acked.
        assert_eq!(next_step(Some(UpdateReply::Refused { record: ready })), Next::OfferAgain);
        assert_eq!(next_step(Some(UpdateReply::Error { message: "busy".into() })), Next::OfferAgain);
        assert_eq!(next_step(None), Next::OfferAgain, "no answer: the order goes back, nothing is lost");
        // The record a brewing update made, read from a replica behind: not a reason to drop it.
        assert_eq!(next_step(Some(UpdateReply::NotFound)), Next::OfferAgain, "the order stays in the queue");
    }

    #[test]
    fn the_brew_past_the_limit_is_not_started() {
        assert!(!past_limit(5, 5), "the fifth attempt of five brews");
        assert!(past_limit(6, 5), "a sixth (a redelivery after the fifth failed while the machine paused) does not");
    }
}
