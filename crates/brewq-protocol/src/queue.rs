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
    /// Wait for an order placed now.
    pub eta_seconds: u64,
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

/// When the order at `position` (1 = next) will be ready: the rounds of brewing ahead of it
/// on `machines` machines, each as long as a typical cup. With no machine online, as if one
/// came back.
pub fn eta(position: u64, machines: u64, brew_time: Duration) -> Duration {
    let rounds = position.max(1).div_ceil(machines.max(1));
    brew_time.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
}

/// When an order of `size` at `position` will be ready: the rounds of brewing ahead of it at
/// the typical brew time of `times` (`default` while none is measured), then its own brew. The
/// controller's answer and the web's view of a queued order both use it.
pub fn order_eta(position: u64, machines: u64, times: &BTreeMap<Size, Duration>, size: Size, default: Duration) -> Duration {
    let typical = typical_or(times, default);
    eta(position, machines, typical).saturating_sub(typical).saturating_add(own_brew_time(times, size, default))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_waits_the_rounds_ahead_of_it_then_its_own_brew() {
        let times = BTreeMap::from([(Size::Small, Duration::from_secs(2)), (Size::Large, Duration::from_secs(4))]);
        let default = Duration::from_secs(30);
        // First on two machines: only its own brew.
        assert_eq!(order_eta(1, 2, &times, Size::Large, default), Duration::from_secs(4));
        // Third on two machines: one round at the typical 3 s, then its own.
        assert_eq!(order_eta(3, 2, &times, Size::Small, default), Duration::from_secs(5));
        // A size not measured yet brews in the typical time; nothing measured, in the default.
        assert_eq!(order_eta(1, 2, &times, Size::Medium, default), Duration::from_secs(3));
        assert_eq!(order_eta(3, 2, &BTreeMap::new(), Size::Large, default), Duration::from_secs(60));
    }
}
