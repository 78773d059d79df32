//! The queue as customers see it: how many orders are ahead, how many machines brew, and the
//! ETA that follows. One formula, used by the controller's reply and the web page alike.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{MachineHeartbeat, Size};

/// Brew time assumed for a size until machines have measured it.
pub const DEFAULT_BREW_TIME: Duration = Duration::from_secs(30);

/// The queue right now, as `GET /api/queue` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueView {
    /// Orders waiting or being brewed.
    pub pending: u64,
    pub machines_online: u64,
    /// Wait for an order placed now, by the rule that gives a placed order its wait.
    pub eta_seconds: u64,
    /// The range that wait most likely falls in, `[low, high]` seconds (`[0, 0]` from a
    /// controller older than the field).
    #[serde(default)]
    pub eta_range_seconds: [u64; 2],
    /// Measured mean brew time per size, in seconds.
    pub brew_seconds: BTreeMap<Size, f64>,
}

/// Mean brew time per size over the machines online; sizes no machine has brewed yet are
/// absent.
pub fn brew_times(fleet: &[MachineHeartbeat]) -> BTreeMap<Size, Duration> {
    let mut sums: BTreeMap<Size, (u64, u64)> = BTreeMap::new();
    for machine in fleet {
        for (&size, &millis) in &machine.brew_millis {
            let (total, count) = sums.entry(size).or_default();
            // Saturating: a heartbeat is a machine's word, and an absurd one must not stop the
            // services that read it.
            *total = total.saturating_add(millis);
            *count += 1;
        }
    }
    sums.into_iter().map(|(size, (total, count))| (size, Duration::from_millis(total / count))).collect()
}

/// Time for one cup of unknown size: the mean over the sizes measured, or the default.
pub fn typical_brew_time(times: &BTreeMap<Size, Duration>) -> Duration {
    if times.is_empty() {
        return DEFAULT_BREW_TIME;
    }
    times.values().sum::<Duration>() / times.len() as u32
}

/// How long a cup of `size` brews: its measured time, else the typical one of `times`, else
/// `default`.
pub fn own_brew_time(times: &BTreeMap<Size, Duration>, size: Size, default: Duration) -> Duration {
    times.get(&size).copied().unwrap_or_else(|| typical_or(times, default))
}

/// The typical brew time of `times`, or `default` while none is measured.
fn typical_or(times: &BTreeMap<Size, Duration>, default: Duration) -> Duration {
    match times.is_empty() {
        true => default,
        false => typical_brew_time(times),
    }
}

/// What a waiting customer is told: the wait expected, and the range it most likely falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub expected: Duration,
    pub low: Duration,
    pub high: Duration,
}

impl Estimate {
    /// The range in whole seconds, `[low, high]`.
    pub fn range_seconds(&self) -> [u64; 2] {
        [self.low.as_secs(), self.high.as_secs().max(self.expected.as_secs())]
    }
}

/// Orders simulated one by one; beyond, the rest of the queue is counted in whole rounds.
const SIMULATED_ORDERS: u64 = 10_000;

/// The wait of an order of `size` with `ahead` orders to brew before it that no machine has
/// started yet, on `fleet` (the machines taking orders, as of `at`). Each machine is free once
/// its current brew ends; each order ahead goes to the first one free, then this one. A brew
/// fails as often as the fleet's have, and a failure costs half a brew before the order is
/// brewed again: the expected wait counts that, the range goes from no failure at all to
/// failures ahead two standard deviations above their mean and this order's own brew failing
/// once.
/// `unseen` machines shown idle have in fact just taken an order (their heartbeat is not out
/// yet): they are free a brew from now. An order of no `size` yet (one not placed) brews in
/// the typical time.
pub fn estimate(ahead: u64, unseen: u64, fleet: &[MachineHeartbeat], size: Option<Size>, at: time::OffsetDateTime) -> Estimate {
    let times = brew_times(fleet);
    let typical = typical_or(&times, DEFAULT_BREW_TIME);
    let own = size.map_or(typical, |size| own_brew_time(&times, size, DEFAULT_BREW_TIME));
    let failing = failure_share(fleet);
    // Failures per order brewed (geometric), each costing half a brew.
    let retries = failing / (1.0 - failing);
    let mut free: Vec<Duration> = fleet
        .iter()
        .map(|machine| match machine.brewing_since {
            Some(since) if machine.state == crate::MachineState::Brewing => {
                typical.saturating_sub(Duration::try_from(at - since).unwrap_or_default())
            }
            _ => Duration::ZERO,
        })
        .collect();
    let mut unseen = unseen;
    for free in free.iter_mut().filter(|free| free.is_zero()) {
        if unseen == 0 {
            break;
        }
        *free = typical;
        unseen -= 1;
    }
    if free.is_empty() {
        // No machine takes orders: as if one came back now.
        free.push(Duration::ZERO);
    }
    let start = |per_order: Duration| first_free_after(&free, ahead, per_order);
    let expected = start(times_f64(typical, 1.0 + retries / 2.0)).saturating_add(times_f64(own, 1.0 + retries / 2.0));
    // The spread: the orders ahead are of sizes not known here (each brews in one of the
    // sizes' times) and each may fail (half a brew more); shared by the machines. This order's
    // own brew may fail too.
    let half = typical.as_secs_f64() / 2.0;
    let per_order_variance = size_variance(&times) + half * half * failing * (1.0 - failing);
    let machines = free.len() as f64;
    let spread = Duration::try_from_secs_f64(1.3 * (ahead as f64 * per_order_variance).sqrt() / machines).unwrap_or(Duration::MAX);
    let own_failure = if failing > 0.0 { own / 2 } else { Duration::ZERO };
    let low = expected.saturating_sub(spread).max(own);
    let high = expected.saturating_add(spread).saturating_add(own_failure);
    Estimate { expected, low: low.min(expected), high }
}

/// The variance of the brew time of an order of unknown size, the sizes taken as equally
/// likely, in seconds squared.
fn size_variance(times: &BTreeMap<Size, Duration>) -> f64 {
    if times.len() < 2 {
        return 0.0;
    }
    let seconds: Vec<f64> = times.values().map(Duration::as_secs_f64).collect();
    let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
    seconds.iter().map(|time| (time - mean).powi(2)).sum::<f64>() / seconds.len() as f64
}

/// When the first machine is free for the order after `ahead` others, each taking
/// `per_order`, the machines being free at `free`.
fn first_free_after(free: &[Duration], ahead: u64, per_order: Duration) -> Duration {
    let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<Duration>> = free.iter().copied().map(std::cmp::Reverse).collect();
    let simulated = ahead.min(SIMULATED_ORDERS);
    for _ in 0..simulated {
        let std::cmp::Reverse(at) = heap.pop().expect("a machine");
        heap.push(std::cmp::Reverse(at.saturating_add(per_order)));
    }
    let std::cmp::Reverse(first) = heap.pop().expect("a machine");
    let rounds = (ahead - simulated).div_ceil(free.len() as u64);
    first.saturating_add(per_order.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX)))
}

/// `time` times `factor`, `Duration::MAX` beyond (a machine's word on its brew times is not
/// trusted to be sane).
fn times_f64(time: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(time.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// The share of brews that failed on `fleet`, counted only once there are a few to count.
pub fn failure_share(fleet: &[MachineHeartbeat]) -> f64 {
    let failures = fleet.iter().fold(0u64, |sum, machine| sum.saturating_add(machine.failures));
    let brews = fleet.iter().fold(0u64, |sum, machine| sum.saturating_add(machine.cups).saturating_add(machine.failures)).max(10);
    (failures as f64 / brews as f64).clamp(0.0, 0.9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(id: u32, brewing_for: Option<u64>, cups: u64, failures: u64) -> MachineHeartbeat {
        let at = crate::now();
        MachineHeartbeat {
            id,
            state: if brewing_for.is_some() { crate::MachineState::Brewing } else { crate::MachineState::Idle },
            order_id: None,
            brewing_since: brewing_for.map(|seconds| at - Duration::from_secs(seconds)),
            cups,
            failures,
            brew_millis: BTreeMap::from([(Size::Small, 10_000), (Size::Large, 30_000)]),
            at,
        }
    }

    #[test]
    fn an_estimate_counts_the_brews_under_way_the_orders_ahead_and_the_failures() {
        let at = crate::now();
        // Two machines, one idle, one 15 s into a brew (typical 20 s): the first order ahead
        // goes to the idle one, this one to the other, free in 5 s.
        let fleet = [machine(1, None, 0, 0), machine(2, Some(15), 0, 0)];
        let estimate = estimate(1, 0, &fleet, Some(Size::Small), at);
        assert_eq!(estimate.expected.as_secs(), 15);
        // The order ahead is of a size not known: a range around it, as wide as the sizes differ.
        assert!(estimate.low < estimate.expected && estimate.expected < estimate.high, "{estimate:?}");
        // Nothing ahead and no failure seen: no range.
        let nothing_ahead = super::estimate(0, 0, &fleet, Some(Size::Small), at);
        assert_eq!(
            (nothing_ahead.low, nothing_ahead.expected, nothing_ahead.high),
            (Duration::from_secs(10), Duration::from_secs(10), Duration::from_secs(10))
        );
        // A fleet that failed one brew in five: longer, and wider.
        let failing = [machine(1, None, 40, 10), machine(2, None, 40, 10)];
        let sound = [machine(1, None, 50, 0), machine(2, None, 50, 0)];
        let (failing, sound) =
            (super::estimate(10, 0, &failing, Some(Size::Small), at), super::estimate(10, 0, &sound, Some(Size::Small), at));
        assert_eq!(sound.expected.as_secs(), 5 * 20 + 10, "five rounds of 20 s, then its own 10 s");
        assert!(failing.expected > sound.expected && failing.high - failing.low > sound.high - sound.low, "{failing:?} {sound:?}");
        // No machine taking orders: as if one came back now.
        assert_eq!(super::estimate(2, 0, &[], Some(Size::Small), at).expected, DEFAULT_BREW_TIME * 3);
        // The idle machine has in fact just taken an order: free in a brew, 20 s.
        assert_eq!(super::estimate(0, 1, &fleet, Some(Size::Small), at).expected.as_secs(), 5 + 10);
    }
}
