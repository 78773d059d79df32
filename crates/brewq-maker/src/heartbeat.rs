//! The machine's heartbeat: its state, order and counters, written to `coffee-machines` every
//! few seconds and at once on each change of state, so the fleet is read from the live system.

use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::kv::Store;
use brewq_protocol::{MachineHeartbeat, MachineState, now, subjects};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How many recent brews the mean brew time covers.
const BREW_WINDOW: usize = 20;

/// What the machine is doing, shared between the order loop and the heartbeat.
#[derive(Default)]
pub(crate) struct Status {
    inner: Mutex<Inner>,
    changed: Notify,
}

#[derive(Default)]
struct Inner {
    order_id: Option<String>,
    cups: u64,
    failures: u64,
    recent_brews: std::collections::VecDeque<u64>,
}

impl Status {
    pub(crate) fn brewing(&self, order_id: &str) {
        self.with(|inner| inner.order_id = Some(order_id.to_owned()));
    }

    pub(crate) fn brewed(&self, took: Duration) {
        self.with(|inner| {
            inner.order_id = None;
            inner.cups += 1;
            if inner.recent_brews.len() == BREW_WINDOW {
                inner.recent_brews.pop_front();
            }
            inner.recent_brews.push_back(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
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
        change(&mut self.inner.lock().expect("status lock"));
        self.changed.notify_one();
    }

    fn heartbeat(&self, id: u32, state: Option<MachineState>) -> MachineHeartbeat {
        let inner = self.inner.lock().expect("status lock");
        let brewing = inner.order_id.is_some();
        let count = inner.recent_brews.len() as u64;
        MachineHeartbeat {
            id,
            state: state.unwrap_or(if brewing { MachineState::Brewing } else { MachineState::Idle }),
            order_id: inner.order_id.clone(),
            cups: inner.cups,
            failures: inner.failures,
            mean_brew_millis: (count > 0).then(|| inner.recent_brews.iter().sum::<u64>() / count),
            at: now(),
        }
    }
}

/// Writes heartbeats until `stop`, then a last one saying the machine is going away.
pub(crate) async fn publish(
    id: u32,
    every: Duration,
    status: std::sync::Arc<Status>,
    store: Store,
    stop: CancellationToken,
) {
    let key = subjects::machine_key(id);
    loop {
        if let Err(error) = brewq_runtime::kv::put_json(&store, &key, &status.heartbeat(id, None)).await {
            tracing::warn!(error = format!("{error:#}"), "cannot publish heartbeat");
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = status.changed.notified() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
    let last = status.heartbeat(id, Some(MachineState::Stopping));
    if let Err(error) = brewq_runtime::kv::put_json(&store, &key, &last).await {
        tracing::warn!(error = format!("{error:#}"), "cannot publish the last heartbeat");
    }
}
