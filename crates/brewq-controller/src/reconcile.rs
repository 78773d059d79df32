//! The reconciler gives back stock that no one else will settle. A controller that dies while it
//! accepts an order (after the reserve, before the order reaches the work queue or its record)
//! leaves a reservation that no machine will ever commit or release. Every controller scans
//! the reservations at start and then every `reconcile_every`. A reservation still reserved
//! and last written more than `leak_after` ago is settled as the order's record says, or
//! released when the order has no record and no message in the work queue.
//! Every step is idempotent per order id, so any number of controllers can reconcile at once.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use async_nats::jetstream::stream::RawMessageErrorKind;
use brewq_protocol::stock::{Reservation, ReservationState};
use brewq_protocol::{AuditEntry, OrderRecord, StockCommand, StockReply, audit, ids, now, subjects};
use brewq_runtime::kv::{Scanned, get_json, scan_entries};
use tokio_util::sync::CancellationToken;

use crate::Records;

/// The prefix of every reservation's key in the stock bucket.
const RESERVATION_PREFIX: &str = "reservation.";

/// Whether a reservation needs a look: still reserved, and last written at least `leak_after`
/// before `now`. A write stamped after `now` (a clock ahead) waits.
pub fn is_due(reservation: &Reservation, written_at: SystemTime, now: SystemTime, leak_after: Duration) -> bool {
    let age = now.duration_since(written_at).unwrap_or(Duration::ZERO);
    reservation.state == ReservationState::Reserved && age >= leak_after
}

/// How to settle the reservation of `order_id` found due: as its `record` says if it has one
/// (nothing while the order is open), nothing while it waits `queued` in the work queue
/// unrecorded (its machine records and settles it), and otherwise a release: no one will.
pub fn settlement(order_id: &str, record: Option<&OrderRecord>, queued: bool) -> Option<StockCommand> {
    match record {
        Some(record) => record.settlement(),
        None if queued => None,
        None => Some(StockCommand::Release { order_id: order_id.to_owned() }),
    }
}

/// What one controller's reconciler works with.
pub(crate) struct Reconciler {
    pub client: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    pub stock: Store,
    pub records: Records,
    pub leak_after: Duration,
    pub stock_timeout: Duration,
}

/// What one pass did.
#[derive(Debug, Default)]
struct Tally {
    due: usize,
    settled: usize,
    left: usize,
    failed: usize,
}

/// Reconciles at start and then every `every`, until shutdown.
pub(crate) async fn sweep(reconciler: Reconciler, every: Duration, shutdown: CancellationToken) {
    for action in ["release", "commit"] {
        metrics::counter!("brewq_stock_reconciled_total", "action" => action).increment(0);
    }
    loop {
        match reconciler.pass(&shutdown).await {
            Ok(tally) => log_pass(&tally),
            Err(error) => tracing::warn!(error = format!("{error:#}"), "cannot reconcile the stock now; trying again later"),
        }
        metrics::counter!("brewq_reconcile_passes_total").increment(1);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

fn log_pass(tally: &Tally) {
    let Tally { due, settled, left, failed } = *tally;
    match due {
        0 => tracing::debug!("reconciler pass: no reservation held too long"),
        _ => tracing::info!(due, settled, left, failed, "reconciler pass over reservations held too long"),
    }
}

impl Reconciler {
    /// One pass: finds the reservations due, then decides and settles each one.
    async fn pass(&self, shutdown: &CancellationToken) -> anyhow::Result<Tally> {
        let due = self.due().await?;
        let mut tally = Tally { due: due.len(), ..Tally::default() };
        // Read once per pass, and only when an order has no record.
        let mut queued: Option<HashSet<String>> = None;
        for order_id in &due {
            if shutdown.is_cancelled() {
                break;
            }
            match self.reconcile(order_id, &mut queued).await {
                Ok(true) => tally.settled += 1,
                Ok(false) => tally.left += 1,
                Err(error) => {
                    tally.failed += 1;
                    let error = format!("{error:#}");
                    tracing::warn!(order = ids::order_ref(order_id), error, "cannot reconcile a reservation now");
                }
            }
        }
        Ok(tally)
    }

    /// The order ids whose reservation is due, in one pass over the stock bucket.
    async fn due(&self) -> anyhow::Result<Vec<String>> {
        let (mut due, scanned_at) = (Vec::new(), SystemTime::now());
        scan_entries(&self.client, &self.stock, RESERVATION_PREFIX, |key, entry: Option<Scanned<Reservation>>| {
            if let (Some(order_id), Some(entry)) = (key.strip_prefix(RESERVATION_PREFIX), entry)
                && is_due(&entry.value, entry.written_at, scanned_at, self.leak_after)
            {
                due.push(order_id.to_owned());
            }
        })
        .await
        .context("reading the reservations")?;
        due.sort();
        due.dedup();
        Ok(due)
    }

    /// Decides on one reservation and settles it; true when it settled it. The work queue is
    /// read before the record is read a second time: an order a machine takes out of the queue
    /// is recorded before it leaves it, so an order found in neither is in neither for good.
    async fn reconcile(&self, order_id: &str, queued: &mut Option<HashSet<String>>) -> anyhow::Result<bool> {
        let mut record = self.records.get(order_id).await?;
        let mut in_queue = false;
        if record.is_none() {
            if queued.is_none() {
                *queued = Some(queued_orders(&self.jetstream).await?);
            }
            in_queue = queued.as_ref().is_some_and(|queued| queued.contains(order_id));
            if !in_queue {
                record = self.records.get(order_id).await?;
            }
        }
        let Some(command) = settlement(order_id, record.as_ref(), in_queue) else { return Ok(false) };
        // Another controller may have settled it since the scan.
        if !self.still_reserved(order_id).await? {
            return Ok(false);
        }
        self.settle(&command).await?;
        let reason = match &record {
            Some(record) => format!("order {}", record.status),
            None => "no record, not in the work queue".to_owned(),
        };
        tracing::info!(order = ids::order_ref(order_id), action = command.op(), reason, "leaked reservation settled");
        metrics::counter!("brewq_stock_reconciled_total", "action" => command.op()).increment(1);
        self.audit(&command, order_id).await;
        Ok(true)
    }

    async fn still_reserved(&self, order_id: &str) -> anyhow::Result<bool> {
        let reservation = get_json::<Reservation>(&self.stock, &subjects::reservation_key(order_id)).await?;
        Ok(reservation.is_some_and(|(reservation, _)| reservation.state == ReservationState::Reserved))
    }

    /// Sends `command` to the stock managers (idempotent per order id).
    async fn settle(&self, command: &StockCommand) -> anyhow::Result<()> {
        let reply = brewq_runtime::request::stock(&self.client, command, self.stock_timeout).await?;
        match reply {
            StockReply::Released | StockReply::Committed => Ok(()),
            other => anyhow::bail!("the stock manager answered {other:?} to {}", command.op()),
        }
    }

    /// Records the settlement in the audit trail. Its message id is the action and the order's
    /// reference, so the stream drops the same entry from another controller.
    async fn audit(&self, command: &StockCommand, order_id: &str) {
        let action = audit::reconcile_action(command);
        let reference = ids::order_ref(order_id);
        let entry = AuditEntry {
            at: now(),
            who: audit::RECONCILER.into(),
            action: action.clone(),
            target: format!("order {reference}"),
            outcome: "ok".into(),
        };
        // Our own entry type always serializes.
        let payload = serde_json::to_vec(&entry).expect("audit entry serializes");
        let message =
            async_nats::jetstream::message::PublishMessage::build().message_id(format!("{action}.{reference}")).payload(payload.into());
        let stored = async {
            let ack = self.jetstream.send_publish(subjects::audit_subject(&action), message).await?;
            ack.await.map_err(anyhow::Error::from)
        };
        if let Err(error) = stored.await {
            tracing::error!(error = format!("{error:#}"), order = reference, action, "reconciliation not recorded in the audit trail");
        }
    }
}

/// The ids of the orders waiting in the work queue (or delivered and not yet acked), from their
/// messages' headers, read one by one from the stream leader up to its last message now.
async fn queued_orders(jetstream: &async_nats::jetstream::Context) -> anyhow::Result<HashSet<String>> {
    let mut stream = jetstream.get_stream(subjects::ORDERS_STREAM).await.context("binding the work queue")?;
    let state = stream.info().await.context("reading the work queue")?.state.clone();
    let mut queued = HashSet::new();
    let mut sequence = state.first_sequence;
    while state.messages > 0 && sequence <= state.last_sequence {
        let message = match stream.get_first_raw_message_by_subject(subjects::ORDERS_SUBJECTS, sequence).await {
            Ok(message) => message,
            Err(error) if error.kind() == RawMessageErrorKind::NoMessageFound => break,
            Err(error) => return Err(error).context("reading the work queue"),
        };
        let order_id = [subjects::ORDER_ID_HEADER, async_nats::header::NATS_MESSAGE_ID.as_ref()]
            .into_iter()
            .find_map(|name| message.headers.get(name));
        if let Some(order_id) = order_id {
            queued.insert(order_id.as_str().to_owned());
        }
        sequence = message.sequence + 1;
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use brewq_protocol::stock::Items;
    use brewq_protocol::{Bean, Milk, Order, OrderStatus, Size};

    use super::*;

    fn reservation(state: ReservationState) -> Reservation {
        Reservation { items: Items::new(), state }
    }

    fn record(end: Option<OrderStatus>) -> OrderRecord {
        let order = Order { name: "Ada".into(), size: Size::Small, bean_type: Bean::Arabica, milk: Milk::None, sugar_count: 0 };
        let mut record = OrderRecord::queued("o1", order, now());
        if end == Some(OrderStatus::Ready) {
            record.transition(OrderStatus::Brewing, Some(1), None, now()).expect("brewing");
        }
        if let Some(end) = end {
            record.transition(end, None, None, now()).expect("ends");
        }
        record
    }

    #[test]
    fn only_a_reservation_still_reserved_and_older_than_the_bound_is_due() {
        let now = SystemTime::now();
        let minute = Duration::from_secs(60);
        assert!(is_due(&reservation(ReservationState::Reserved), now - 2 * minute, now, minute));
        assert!(is_due(&reservation(ReservationState::Reserved), now - minute, now, minute));
        assert!(!is_due(&reservation(ReservationState::Reserved), now - minute / 2, now, minute));
        assert!(!is_due(&reservation(ReservationState::Reserved), now + minute, now, Duration::from_secs(1)), "a clock ahead");
        for settled in [ReservationState::Committed, ReservationState::Released] {
            assert!(!is_due(&reservation(settled), now - 10 * minute, now, minute));
        }
    }

    #[test]
    fn an_ended_order_is_settled_as_its_record_says() {
        let commit = settlement("o1", Some(&record(Some(OrderStatus::Ready))), false);
        assert_eq!(commit, Some(StockCommand::Commit { order_id: "o1".into() }));
        for end in [OrderStatus::Failed, OrderStatus::Cancelled] {
            let release = settlement("o1", Some(&record(Some(end))), false);
            assert_eq!(release, Some(StockCommand::Release { order_id: "o1".into() }), "{end}");
        }
    }

    #[test]
    fn an_open_order_or_one_waiting_in_the_queue_unrecorded_is_left_to_its_machine() {
        assert_eq!(settlement("o1", Some(&record(None)), false), None);
        let mut brewing = record(None);
        brewing.transition(OrderStatus::Brewing, Some(1), None, now()).expect("brewing");
        assert_eq!(settlement("o1", Some(&brewing), false), None);
        assert_eq!(settlement("o1", None, true), None);
    }

    #[test]
    fn an_order_with_no_record_and_no_message_is_released() {
        assert_eq!(settlement("o9", None, false), Some(StockCommand::Release { order_id: "o9".into() }));
    }
}
