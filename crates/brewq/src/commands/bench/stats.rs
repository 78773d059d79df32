//! Latency summaries (p50 / p99 / max) and the tally of errors by kind.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// p50, p99 and max of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Summarizes `samples` (sorted in place).
    pub fn of(samples: &mut [Duration]) -> Latency {
        samples.sort_unstable();
        let at = |rank: f64| {
            let index = ((rank * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index].as_secs_f64() * 1000.0
        };
        if samples.is_empty() {
            return Latency::default();
        }
        Latency { count: samples.len(), p50_ms: at(0.50), p99_ms: at(0.99), max_ms: at(1.0) }
    }
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms", self.p50_ms, self.p99_ms, self.max_ms)
    }
}

/// Errors by kind (`out_of_stock`, `unavailable`, `timeout`, `http 503`, ...).
pub type Errors = BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let latency = Latency::of(&mut samples);
        assert_eq!((latency.count, latency.p50_ms, latency.p99_ms, latency.max_ms), (100, 50.0, 99.0, 100.0));
        assert_eq!(Latency::of(&mut []).count, 0);
    }
}
