//! The stock's last hour for the operator's charts: the office samples the levels every
//! [`SAMPLE_EVERY`] and keeps [`SAMPLES_KEPT`] of them, in memory. A restarted office starts
//! a new history, and its page says so.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use brewq_protocol::{StockCommand, StockReply, subjects};
use serde::Serialize;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// How often the levels are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(30);
/// An hour of samples.
pub const SAMPLES_KEPT: usize = 120;

/// The levels on hand at one time, by ingredient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StockSample {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub levels: BTreeMap<String, u64>,
}

/// The samples, oldest first.
#[derive(Debug, Default)]
pub struct StockHistory(Mutex<VecDeque<StockSample>>);

impl StockHistory {
    /// Keeps `sample`, forgetting the oldest beyond [`SAMPLES_KEPT`].
    pub fn push(&self, sample: StockSample) {
        let mut samples = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        samples.push_back(sample);
        while samples.len() > SAMPLES_KEPT {
            samples.pop_front();
        }
    }

    /// Every sample kept, oldest first.
    pub fn samples(&self) -> Vec<StockSample> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().cloned().collect()
    }
}

/// Samples the stock into `history` every `every` until shutdown; a failed read is skipped.
pub async fn sample(client: async_nats::Client, history: std::sync::Arc<StockHistory>, every: Duration, shutdown: CancellationToken) {
    loop {
        let subject = subjects::stock_subject(&StockCommand::Get);
        match brewq_runtime::request::request_json(&client, &subject, &StockCommand::Get, Duration::from_secs(3)).await {
            Ok(StockReply::Snapshot { stock }) => {
                let levels = stock.levels.iter().map(|(item, level)| (item.as_str().to_owned(), level.on_hand)).collect();
                history.push(StockSample { at: brewq_protocol::now(), levels });
            }
            Ok(other) => tracing::debug!(?other, "the stock manager did not give the levels"),
            Err(error) => tracing::debug!(error = format!("{error:#}"), "cannot sample the stock"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_last_hour_of_samples() {
        let history = StockHistory::default();
        for minute in 0..(SAMPLES_KEPT as i64 + 5) {
            let at = OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minute);
            history.push(StockSample { at, levels: BTreeMap::from([("sugar".to_owned(), minute as u64)]) });
        }
        let samples = history.samples();
        assert_eq!(samples.len(), SAMPLES_KEPT);
        assert_eq!(samples.first().map(|sample| sample.levels["sugar"]), Some(5));
    }
}
