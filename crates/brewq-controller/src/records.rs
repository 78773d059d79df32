//! Order records in KV: created when an order is accepted, then moved through the state
//! machine of [`brewq_protocol::OrderStatus`] by compare-and-swap, and stripped of the
//! customer's name some time after the order ends. Only controllers write here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use brewq_protocol::{Order, OrderRecord, OrderStatus, OrderUpdate, StockReply, UpdateReply, now, subjects};
use brewq_runtime::batch::GroupWriter;
use brewq_runtime::kv::{Change, get_json, modify, modify_entry, modify_rolling_up, scan_json};
use time::OffsetDateTime;

/// Records of open orders remembered at once; past it, the memory starts afresh.
const KNOWN_CAPACITY: usize = 20_000;

/// Handle on the order-record bucket.
#[derive(Clone)]
pub struct Records {
    store: Store,
    /// Sends the first try of each write, several together when several wait.
    writer: GroupWriter,
    /// The last record this instance wrote for each open order, with its revision: the next
    /// change is tried straight over it, with no read, and falls back to reading when another
    /// writer moved the record since.
    known: Arc<Mutex<HashMap<String, (OrderRecord, u64)>>>,
    /// Announces each change on [`subjects::order_changed`].
    client: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
}

impl Records {
    /// Records over the provisioned bucket, and the task that sends their writes (to spawn;
    /// it ends when the last clone of the records is dropped).
    pub fn new(store: Store, client: async_nats::Client) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let (writer, task) = GroupWriter::new(store.clone(), client.clone());
        let jetstream = brewq_runtime::connect::jetstream(&client);
        (Records { store, writer, known: Arc::default(), client, jetstream }, task)
    }

    /// The record of `order_id`, if any.
    pub async fn get(&self, order_id: &str) -> anyhow::Result<Option<OrderRecord>> {
        Ok(get_json(&self.store, order_id).await?.map(|(record, _)| record))
    }

    /// Stores a new record; if one exists already (a retry), returns that one instead.
    pub async fn create(&self, record: OrderRecord) -> anyhow::Result<OrderRecord> {
        // Our own record type always serializes.
        let bytes = serde_json::to_vec(&record).expect("record serializes");
        if let Ok(revision) = self.writer.write(&record.id, bytes, 0).await {
            self.wrote(record.clone(), revision).await;
            return Ok(record);
        }
        self.change(&record.id.clone(), |existing: Option<OrderRecord>| match existing {
            Some(existing) => Ok((Change::Keep, existing)),
            None => Ok((Change::Write(record.clone()), record.clone())),
        })
        .await
        .context("creating the order record")
    }

    /// Read-modify-write of one record: first over the remembered revision, if any, and only
    /// when that write loses (or `decide` keeps the value) by reading it again.
    async fn change<R>(
        &self,
        order_id: &str,
        mut decide: impl FnMut(Option<OrderRecord>) -> anyhow::Result<(Change<OrderRecord>, R)>,
    ) -> anyhow::Result<R> {
        let known = self.known.lock().expect("known records").get(order_id).cloned();
        if let Some((record, revision)) = known
            && let (Change::Write(changed), result) = decide(Some(record))?
        {
            // Our own record type always serializes.
            let bytes = serde_json::to_vec(&changed).expect("record serializes");
            if let Ok(revision) = self.writer.write(order_id, bytes, revision).await {
                self.wrote(changed, revision).await;
                return Ok(result);
            }
        }
        let (result, written) = modify_entry(&self.store, order_id, decide).await?;
        match written {
            Some((record, revision)) => self.wrote(record, revision).await,
            None => self.forget(order_id),
        }
        Ok(result)
    }

    /// Notes a record this instance wrote, and says so to whoever follows the order.
    async fn wrote(&self, record: OrderRecord, revision: u64) {
        self.announce(&record).await;
        self.remember(record, revision);
    }

    fn remember(&self, record: OrderRecord, revision: u64) {
        let mut known = self.known.lock().expect("known records");
        if record.status.is_terminal() {
            known.remove(&record.id);
            brewq_protocol::shrink_after_burst(&mut known);
            return;
        }
        if known.len() >= KNOWN_CAPACITY {
            known.clear();
        }
        known.insert(record.id.clone(), (record, revision));
    }

    /// Best effort: a page that misses it reads the order on its next tick anyway.
    async fn announce(&self, record: &OrderRecord) {
        let status = record.status.to_string();
        let _ = self.client.publish(subjects::order_changed(&record.id), status.into()).await;
    }

    fn forget(&self, order_id: &str) {
        self.known.lock().expect("known records").remove(order_id);
    }

    /// The ids of the records `pick` picks, in one pass over the bucket that holds one record
    /// at a time.
    pub async fn select(&self, mut pick: impl FnMut(&OrderRecord) -> bool) -> anyhow::Result<Vec<String>> {
        let mut picked = std::collections::BTreeSet::new();
        scan_json(&self.client, &self.store, |order_id, record: Option<(OrderRecord, u64)>| {
            if record.is_some_and(|(record, _)| pick(&record)) {
                picked.insert(order_id);
            }
        })
        .await
        .context("reading the order records")?;
        Ok(picked.into_iter().collect())
    }

    /// Removes the customer's name from the record of `order_id` if `due` says so of the
    /// record as it is when written; the write drops every earlier revision of the record,
    /// which still holds the name. True when this call removed it.
    pub async fn remove_name(&self, order_id: &str, due: impl Fn(&OrderRecord) -> bool) -> anyhow::Result<bool> {
        let at = now();
        let (removed, written) =
            modify_rolling_up(&self.store, &self.jetstream, order_id, |existing: Option<OrderRecord>| match existing {
                Some(record) if due(&record) => Ok((Change::Write(record.without_name(at)), true)),
                _ => Ok((Change::Keep, false)),
            })
            .await
            .context("removing the customer's name")?;
        if let Some((record, _)) = written {
            self.announce(&record).await;
        }
        Ok(removed)
    }

    /// Links a failed order to the new order that retries it.
    pub async fn set_retried_as(&self, order_id: &str, new_id: &str) -> anyhow::Result<()> {
        modify(&self.store, order_id, |existing: Option<OrderRecord>| match existing {
            Some(mut record) if record.retried_as.is_none() => {
                record.retried_as = Some(new_id.to_owned());
                Ok((Change::Write(record), ()))
            }
            _ => Ok((Change::Keep, ())),
        })
        .await
    }

    /// Records as failed an order that could not be queued, unless a machine recorded it first
    /// (the publish landed after all); true when the order is failed, by now or before.
    pub async fn fail_unqueued(&self, order_id: &str, order: &Order, reason: &str) -> anyhow::Result<bool> {
        let at = now();
        self.change(order_id, |existing: Option<OrderRecord>| {
            let mut record = match existing {
                None => OrderRecord::queued(order_id, order.clone(), at),
                Some(record) => return Ok((Change::Keep, record.status == OrderStatus::Failed)),
            };
            match record.transition(OrderStatus::Failed, None, Some(reason.to_owned()), at) {
                Ok(()) => Ok((Change::Write(record), true)),
                Err(_) => Ok((Change::Keep, false)),
            }
        })
        .await
    }

    /// Moves an order to `update.status` if the state machine allows it (through brewing, for
    /// an instant brew recorded with its outcome) and the order is `update.machine`'s to change.
    /// An order without a record that comes with the update (queued by a controller that
    /// stopped before recording it) is recorded as queued first.
    pub async fn update(&self, update: &OrderUpdate) -> anyhow::Result<UpdateReply> {
        let at = now();
        self.change(&update.order_id, |existing: Option<OrderRecord>| Ok(decide_update(existing, update, at))).await
    }
}

/// Whether the machine of `update` may change `record`: any machine may start brewing an order
/// delivered to it (a queued one, or one whose machine stopped and whose delivery ran out),
/// but only the machine brewing an order may end its brew, as ready, failed or to retry.
fn machine_holds(record: &OrderRecord, update: &OrderUpdate) -> bool {
    match record.status {
        OrderStatus::Brewing => update.status == OrderStatus::Brewing || record.machine == update.machine,
        OrderStatus::Ready | OrderStatus::Failed => record.machine == update.machine,
        OrderStatus::Queued | OrderStatus::Cancelled => true,
    }
}

/// What `update` does to the record `existing`: the record to write, if any, and the answer.
/// `update.machine` is the machine that asks, as the servers vouch for it.
fn decide_update(existing: Option<OrderRecord>, update: &OrderUpdate, at: OffsetDateTime) -> (Change<OrderRecord>, UpdateReply) {
    let record = match (existing, &update.order) {
        (Some(record), _) => record,
        (None, Some(order)) => OrderRecord::queued(&update.order_id, order.clone(), at),
        (None, None) => return (Change::Keep, UpdateReply::NotFound),
    };
    if !machine_holds(&record, update) {
        return (Change::Keep, UpdateReply::Refused { record });
    }
    if record.status == update.status && update.status.is_terminal() {
        // Asked again after a crash or a lost reply: already done.
        return (Change::Keep, UpdateReply::Applied { record });
    }
    match record.updated(update, at) {
        Ok(record) => (Change::Write(record.clone()), UpdateReply::Applied { record }),
        // A refused transition leaves the record as it was.
        Err(_) => (Change::Keep, UpdateReply::Refused { record }),
    }
}

fn log_update(update: &OrderUpdate, reply: &UpdateReply) {
    match reply {
        UpdateReply::Applied { .. } => {
            tracing::info!(status = %update.status, machine = update.machine, "order is {}", update.status);
        }
        UpdateReply::Refused { record } => {
            tracing::info!(asked = %update.status, current = %record.status, holder = record.machine, "order update refused");
        }
        UpdateReply::NotFound => tracing::warn!(asked = %update.status, "no record for the update: a replica behind answered?"),
        UpdateReply::Settled { .. } | UpdateReply::Error { .. } => {}
    }
}

/// Serves one [`OrderUpdate`] request from machine `from` (the token of the subject it came
/// on, which only that machine's credential may publish to); a failed order is filed for the
/// operator.
#[tracing::instrument(skip_all, fields(order, machine = from))]
pub(crate) async fn handle_update(controller: &crate::Controller, from: u32, payload: &[u8]) -> Vec<u8> {
    let reply = match serde_json::from_slice::<OrderUpdate>(payload) {
        Err(error) => UpdateReply::Error { message: format!("bad order update: {error}") },
        Ok(update) => {
            tracing::Span::current().record("order", brewq_protocol::ids::order_ref(&update.order_id));
            // The machine is the one the subject names, whatever the payload says.
            let update = OrderUpdate { machine: Some(from), ..update };
            match controller.records.update(&update).await {
                Ok(reply) => {
                    log_update(&update, &reply);
                    if let UpdateReply::Applied { record } = &reply
                        && record.status == brewq_protocol::OrderStatus::Failed
                    {
                        crate::dead_letters::file(controller, &record.id, record.reason.as_deref()).await;
                    }
                    settle(controller, reply).await
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "order update failed");
                    UpdateReply::Error { message: format!("{error:#}") }
                }
            }
        }
    };
    crate::to_json(&reply)
}

/// How long the controller waits to settle a machine's order: well under the machines' own
/// request timeout (3 s by default), so that a slow stock manager leaves the machine the time
/// to get the record's answer and offer the order again later.
const SETTLE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Settles the stock of an order whose record the update left final (or found final): after the
/// record, so that a redelivery after a crash finds it final and settles again (commit and
/// release are idempotent). The controllers are the only ones that settle a machine's order:
/// the reply says [`UpdateReply::Settled`] once the stock manager confirmed, and a machine acks
/// only then; otherwise it offers the order again later, and its next update settles it.
async fn settle(controller: &crate::Controller, reply: UpdateReply) -> UpdateReply {
    let (UpdateReply::Applied { record } | UpdateReply::Refused { record }) = &reply else { return reply };
    let Some(command) = record.settlement() else { return reply };
    let timeout = controller.config.stock_timeout.min(SETTLE_TIMEOUT);
    match brewq_runtime::request::stock(&controller.client, &command, timeout).await {
        Ok(StockReply::Committed | StockReply::Released) => UpdateReply::Settled { record: record.clone() },
        other => {
            tracing::warn!(?other, "stock not settled yet; the machine offers the order again");
            reply
        }
    }
}

#[cfg(test)]
mod tests {
    use brewq_protocol::{Bean, Milk, Size};

    use super::*;

    fn order() -> Order {
        Order { name: "Ada".into(), size: Size::Small, bean_type: Bean::Arabica, milk: Milk::None, sugar_count: 0 }
    }

    fn update(status: OrderStatus, machine: u32) -> OrderUpdate {
        OrderUpdate { order_id: "o1".into(), status, machine: Some(machine), reason: None, order: None, brewing_since: None }
    }

    fn written(change: &Change<OrderRecord>) -> Option<&OrderRecord> {
        match change {
            Change::Write(record) => Some(record),
            Change::Keep => None,
        }
    }

    #[test]
    fn a_redelivery_after_the_record_is_final_changes_nothing_and_says_where_it_stands() {
        let ready = OrderRecord::queued("o1", order(), now()).updated(&update(OrderStatus::Brewing, 1), now()).expect("brewing");
        let ready = ready.updated(&update(OrderStatus::Ready, 1), now()).expect("ready");
        // The same final update again (a lost reply): applied already, nothing written.
        let (change, reply) = decide_update(Some(ready.clone()), &update(OrderStatus::Ready, 1), now());
        assert!(written(&change).is_none());
        assert_eq!(reply, UpdateReply::Applied { record: ready.clone() });
        // Another machine's redelivery wants to brew it: refused, the record as it was.
        let (change, reply) = decide_update(Some(ready.clone()), &update(OrderStatus::Brewing, 2), now());
        assert!(written(&change).is_none());
        assert_eq!(reply, UpdateReply::Refused { record: ready });
    }

    #[test]
    fn only_the_machine_brewing_an_order_ends_its_brew() {
        let brewing = OrderRecord::queued("o1", order(), now()).updated(&update(OrderStatus::Brewing, 3), now()).expect("brewing");
        for status in [OrderStatus::Ready, OrderStatus::Failed, OrderStatus::Queued] {
            let (change, reply) = decide_update(Some(brewing.clone()), &update(status, 2), now());
            assert!(written(&change).is_none(), "machine 2 moved machine 3's order to {status}");
            assert_eq!(reply, UpdateReply::Refused { record: brewing.clone() });
        }
        let (change, _) = decide_update(Some(brewing.clone()), &update(OrderStatus::Ready, 3), now());
        assert_eq!(written(&change).map(|record| record.status), Some(OrderStatus::Ready), "its own machine ends it");
        // A redelivery after machine 3 stopped: machine 2 takes the order over, then ends it.
        let (change, _) = decide_update(Some(brewing), &update(OrderStatus::Brewing, 2), now());
        let taken = written(&change).expect("taken over").clone();
        assert_eq!((taken.machine, taken.attempts), (Some(2), 2));
        let (change, _) = decide_update(Some(taken.clone()), &update(OrderStatus::Ready, 3), now());
        assert!(written(&change).is_none(), "the machine that lost it no longer ends it");
        let (change, _) = decide_update(Some(taken), &update(OrderStatus::Ready, 2), now());
        let ready = written(&change).expect("ready").clone();
        // Asking again for a final state: applied for its machine, refused for another.
        let (_, reply) = decide_update(Some(ready.clone()), &update(OrderStatus::Ready, 2), now());
        assert_eq!(reply, UpdateReply::Applied { record: ready.clone() });
        let (_, reply) = decide_update(Some(ready.clone()), &update(OrderStatus::Ready, 3), now());
        assert_eq!(reply, UpdateReply::Refused { record: ready });
    }

    #[test]
    fn an_order_with_no_record_is_recorded_from_the_update_that_carries_it_or_not_found() {
        let (change, reply) = decide_update(None, &update(OrderStatus::Brewing, 1), now());
        assert!(written(&change).is_none());
        assert_eq!(reply, UpdateReply::NotFound);
        let carrying = OrderUpdate { order: Some(order()), ..update(OrderStatus::Brewing, 1) };
        let (change, reply) = decide_update(None, &carrying, now());
        let record = written(&change).expect("recorded");
        assert_eq!(record.status, OrderStatus::Brewing);
        assert_eq!(record.history.first().map(|entry| entry.status), Some(OrderStatus::Queued), "queued first, then brewing");
        assert!(matches!(reply, UpdateReply::Applied { .. }));
    }

    #[test]
    fn a_cancelled_order_is_not_brewed_by_a_machine_that_took_it_before() {
        let cancelled = OrderRecord::queued("o1", order(), now());
        let (_, reply) = decide_update(Some(cancelled.clone()), &update(OrderStatus::Cancelled, 0), now());
        let UpdateReply::Applied { record: cancelled } = reply else { panic!("cancelled: {reply:?}") };
        let (change, reply) = decide_update(Some(cancelled.clone()), &update(OrderStatus::Brewing, 3), now());
        assert!(written(&change).is_none());
        assert_eq!(reply, UpdateReply::Refused { record: cancelled });
    }
}
