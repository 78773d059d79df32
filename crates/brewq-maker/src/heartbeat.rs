//! The machine's heartbeat: its state, order and counters, written to `coffee-machines` every
//! few seconds and soon after a change of state or order that lasts (a brew of a moment only
//! shows in the counters), so the fleet is read from the live system.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use async_nats::jetstream::kv::Store;
use brewq_protocol::{MachineHeartbeat, MachineState, Size, now, subjects};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How many recent brews of each size the mean brew time covers.
const BREW_WINDOW: usize = 20;

/// What the machine is doing, shared between the order loop and the heartbeat.
pub(crate) struct Status {
    inner: Mutex<Inner>,
    changed: Notify,
    control: std::sync::OnceLock<std::sync::Arc<crate::control::Control>>,
}

#[derive(Default)]
struct Inner {
    order_id: Option<String>,
    brewing_since: Option<time::OffsetDateTime>,
    cups: u64,
    failures: u64,
    /// The brewer's own estimate per size, until brews are measured.
    expected: std::collections::BTreeMap<Size, u64>,
    recent_brews: std::collections::BTreeMap<Size, std::collections::VecDeque<u64>>,
}

impl Status {
    /// A machine that expects `expected` per size until it has measured its brews.
    pub(crate) fn new(expected: impl Fn(Size) -> Duration) -> Self {
        let expected = Size::ALL.iter().map(|&size| (size, millis(expected(size)))).collect();
        Status { inner: Mutex::new(Inner { expected, ..Inner::default() }), changed: Notify::new(), control: std::sync::OnceLock::new() }
    }

    /// Publishes a heartbeat now (the operator's mode changed).
    pub(crate) fn touch(&self) {
        self.changed.notify_one();
    }

    /// Reports the operator's mode (paused, out of service) from now on.
    pub(crate) fn follow(&self, control: std::sync::Arc<crate::control::Control>) {
        let _ = self.control.set(control);
    }

    pub(crate) fn brewing(&self, order_id: &str) {
        self.with(|inner| {
            inner.order_id = Some(order_id.to_owned());
            inner.brewing_since = Some(now());
        });
    }

    pub(crate) fn brewed(&self, size: Size, took: Duration) {
        self.with(|inner| {
            inner.order_id = None;
            inner.cups += 1;
            let recent = inner.recent_brews.entry(size).or_default();
            if recent.len() == BREW_WINDOW {
                recent.pop_front();
            }
            recent.push_back(millis(took));
        });
    }

    pub(crate) fn failed(&self) {
        self.with(|inner| {
            inner.order_id = None;
            inner.failures += 1;
        });
    }

    pub(crate) fn idle(&self) {
        self.with(|inner| inner.order_id = None);
    }

    fn with(&self, change: impl FnOnce(&mut Inner)) {
        // The lock is never held across an await, and a panic while holding it would be a bug
        // in the few lines above.
        let mut inner = self.inner.lock().expect("status lock");
        change(&mut inner);
        if inner.order_id.is_none() {
            inner.brewing_since = None;
        }
        drop(inner);
        self.changed.notify_one();
    }

    /// The heartbeat now; `state` overrides what the machine is doing.
    pub(crate) fn heartbeat(&self, id: u32, state: Option<MachineState>) -> MachineHeartbeat {
        let mode = self.control.get().map(|control| control.mode());
        let inner = self.inner.lock().expect("status lock");
        let brewing = inner.order_id.is_some();
        let state = state.or(match mode {
            Some(crate::control::Mode::OutOfService) => Some(MachineState::OutOfService),
            Some(crate::control::Mode::Paused) if !brewing => Some(MachineState::Paused),
            _ => None,
        });
        MachineHeartbeat {
            id,
            state: state.unwrap_or(if brewing { MachineState::Brewing } else { MachineState::Idle }),
            order_id: inner.order_id.clone(),
            brewing_since: inner.brewing_since,
            cups: inner.cups,
            failures: inner.failures,
            brew_millis: inner
                .expected
                .iter()
                .map(|(&size, &expected)| {
                    let recent = inner.recent_brews.get(&size).filter(|recent| !recent.is_empty());
                    (size, recent.map_or(expected, |recent| recent.iter().sum::<u64>() / recent.len() as u64))
                })
                .collect(),
            at: now(),
        }
    }
}

fn millis(time: Duration) -> u64 {
    u64::try_from(time.as_millis()).unwrap_or(u64::MAX)
}

/// Writes heartbeats until `stop`, then a last one saying the machine is going away. One goes
/// out every `every`, and one soon after a change that shows: a state or an order other than
/// the last one written. A change is looked at a tenth of the interval after it is made, and no
/// sooner than a quarter after the last write. Each heartbeat is a replicated write, and a
/// machine brewing instant orders changes state many times a second: a brew that began and
/// ended in between shows only in the counters of the next regular heartbeat.
pub(crate) async fn publish(id: u32, every: Duration, status: std::sync::Arc<Status>, store: Store, stop: CancellationToken) {
    let key = subjects::machine_key(id);
    'beats: loop {
        let shown = status.heartbeat(id, None);
        let written = Instant::now();
        if let Err(error) = brewq_runtime::kv::put_json(&store, &key, &shown).await {
            tracing::warn!(error = format!("{error:#}"), "cannot publish heartbeat");
        }
        loop {
            tokio::select! {
                () = stop.cancelled() => break 'beats,
                () = tokio::time::sleep_until(written + every) => break,
                () = status.changed.notified() => {
                    let look = (written + every / 4).max(Instant::now() + every / 10);
                    tokio::select! {
                        () = stop.cancelled() => break 'beats,
                        () = tokio::time::sleep_until(look) => {}
                    }
                    if shows_other_than(&status.heartbeat(id, None), &shown) {
                        break;
                    }
                }
            }
        }
    }
    let last = status.heartbeat(id, Some(MachineState::Stopping));
    if let Err(error) = brewq_runtime::kv::put_json(&store, &key, &last).await {
        tracing::warn!(error = format!("{error:#}"), "cannot publish the last heartbeat");
    }
}

/// Whether `now` shows the fleet something `shown` did not: another state or another order.
fn shows_other_than(now: &MachineHeartbeat, shown: &MachineHeartbeat) -> bool {
    now.state != shown.state || now.order_id != shown.order_id
}
