//! Customers' names are personal data, kept only as long as they serve: a while after an order
//! ends (ready, failed or cancelled; 30 days by default), its name is removed from its record,
//! and with it from every page and board, while the rest of the record stays for statistics.
//! Each controller scans the records at start and then every few minutes; a removal is a
//! compare-and-swap that also drops the record's earlier revisions, so any number of
//! controllers can do it at once and none overwrites a change it did not see.

use std::time::Duration;

use brewq_protocol::{OrderRecord, now};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::Records;

/// Whether the name on `record` is due for removal at `now`: the order ended at least
/// `kept_for` ago and the name is still there. An open order keeps its name.
pub fn name_due(record: &OrderRecord, now: OffsetDateTime, kept_for: Duration) -> bool {
    let Some(ended) = record.ended_at() else { return false };
    record.name_removed_at.is_none() && now - ended >= kept_for
}

/// Removes the names that are due, at start and then every `every`, until shutdown.
pub(crate) async fn sweep(records: Records, kept_for: Duration, every: Duration, shutdown: CancellationToken) {
    loop {
        if let Err(error) = remove_due_names(&records, kept_for, &shutdown).await {
            tracing::warn!(error = format!("{error:#}"), "cannot remove customers' names now; trying again later");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One pass: finds the records whose name is due, then removes each name, checking again
/// against the record as it is when written.
async fn remove_due_names(records: &Records, kept_for: Duration, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let scanned_at = now();
    let due = records.select(|record| name_due(record, scanned_at, kept_for)).await?;
    if due.is_empty() {
        return Ok(());
    }
    let (mut removed, mut failed) = (0u64, 0u64);
    for order_id in &due {
        if shutdown.is_cancelled() {
            break;
        }
        match records.remove_name(order_id, |record| name_due(record, now(), kept_for)).await {
            Ok(true) => removed += 1,
            // Removed meanwhile by another controller.
            Ok(false) => {}
            Err(error) => {
                failed += 1;
                let error = format!("{error:#}");
                tracing::warn!(order = brewq_protocol::ids::order_ref(order_id), error, "cannot remove the customer's name");
            }
        }
    }
    metrics::counter!("brewq_names_removed_total").increment(removed);
    tracing::info!(due = due.len(), removed, failed, "customers' names removed from ended orders");
    Ok(())
}

#[cfg(test)]
mod tests {
    use brewq_protocol::{Bean, Milk, Order, OrderStatus, Size};
    use time::Duration as Span;

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// An order accepted at `start` that went to `end` (if any) at `start + 1 min`.
    fn record(start: OffsetDateTime, end: Option<OrderStatus>) -> OrderRecord {
        let order = Order { name: "Ada".into(), size: Size::Small, bean_type: Bean::Arabica, milk: Milk::None, sugar_count: 0 };
        let mut record = OrderRecord::queued("o1", order, start);
        if end == Some(OrderStatus::Ready) {
            record.transition(OrderStatus::Brewing, Some(1), None, start).expect("brewing");
        }
        if let Some(end) = end {
            record.transition(end, None, None, start + Span::minutes(1)).expect("ends");
        }
        record
    }

    #[test]
    fn a_name_is_due_once_its_order_ended_longer_ago_than_it_is_kept() {
        let now = now();
        for end in [OrderStatus::Ready, OrderStatus::Failed, OrderStatus::Cancelled] {
            let ended_31_days_ago = record(now - Span::days(31), Some(end));
            assert!(name_due(&ended_31_days_ago, now, 30 * DAY), "{end}");
            let ended_29_days_ago = record(now - Span::days(29), Some(end));
            assert!(!name_due(&ended_29_days_ago, now, 30 * DAY), "{end}");
        }
        // Exactly the time kept: due.
        let ended = record(now - Span::days(30) - Span::minutes(1), Some(OrderStatus::Ready));
        assert!(name_due(&ended, now, 30 * DAY));
        // Kept for no time at all: due as soon as it ends.
        assert!(name_due(&record(now - Span::minutes(1), Some(OrderStatus::Cancelled)), now, Duration::ZERO));
    }

    #[test]
    fn an_open_order_or_a_name_already_removed_is_never_due() {
        let now = now();
        let queued_long_ago = record(now - Span::days(400), None);
        assert!(!name_due(&queued_long_ago, now, DAY));
        let mut brewing = queued_long_ago.clone();
        brewing.transition(OrderStatus::Brewing, Some(1), None, now - Span::days(399)).expect("brewing");
        assert!(!name_due(&brewing, now, DAY));
        let removed = record(now - Span::days(40), Some(OrderStatus::Ready)).without_name(now - Span::days(5));
        assert!(!name_due(&removed, now, DAY));
        // An end stamped in the future (a clock ahead) waits for it.
        assert!(!name_due(&record(now + Span::hours(1), Some(OrderStatus::Ready)), now, Duration::ZERO));
    }
}
