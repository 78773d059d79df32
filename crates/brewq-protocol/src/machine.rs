//! A coffee machine's heartbeat: what it is doing, published every few seconds to
//! [`crate::subjects::MACHINES_BUCKET`] so that the live fleet is read from the running system.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A heartbeat older than this means the machine is offline.
pub const HEARTBEAT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// What a machine is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    Idle,
    Brewing,
    /// Finishes its brew, then takes no new order until resumed.
    Paused,
    /// Hands its order back at once and takes none until resumed.
    OutOfService,
    /// Stopping: finishing or handing back its order, then going offline.
    Stopping,
}

impl MachineState {
    /// Idle or brewing: not held by the operator, not stopping.
    pub fn takes_orders(self) -> bool {
        matches!(self, MachineState::Idle | MachineState::Brewing)
    }

    /// The state in words, for an operator.
    pub fn words(self) -> &'static str {
        match self {
            MachineState::Idle => "idle",
            MachineState::Brewing => "brewing",
            MachineState::Paused => "paused",
            MachineState::OutOfService => "out of service",
            MachineState::Stopping => "stopping",
        }
    }
}

/// One machine's latest news.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineHeartbeat {
    pub id: u32,
    pub state: MachineState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// When the current brew started.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub brewing_since: Option<OffsetDateTime>,
    /// Coffees brewed since the machine started.
    pub cups: u64,
    /// Brews that failed since the machine started.
    pub failures: u64,
    /// Mean time of this machine's recent successful brews per size (its own estimate for a
    /// size it has not brewed yet).
    #[serde(default)]
    pub brew_millis: std::collections::BTreeMap<crate::Size, u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl MachineHeartbeat {
    /// Whether this heartbeat is recent enough, at `now`, for the machine to count as online.
    pub fn is_online(&self, now: OffsetDateTime) -> bool {
        self.state != MachineState::Stopping && now - self.at <= HEARTBEAT_TIMEOUT
    }

    /// Whether the machine is online and taking orders (not paused or out of service).
    pub fn takes_orders(&self, now: OffsetDateTime) -> bool {
        self.is_online(now) && self.state.takes_orders()
    }

    /// Whether the waiting times count on this machine at `now`: taking orders, its heartbeat
    /// at most [`ESTIMATE_WINDOW`] old. Longer than [`HEARTBEAT_TIMEOUT`]: heartbeats read
    /// from a replica of the bucket that lags behind during a rush are seconds old, and a
    /// waiting time that counted no machine then would be off by the whole fleet.
    pub fn counts_for_estimates(&self, now: OffsetDateTime) -> bool {
        self.state != MachineState::Stopping && self.state.takes_orders() && now - self.at <= ESTIMATE_WINDOW
    }
}

/// How old a heartbeat may be for the waiting times to count on its machine.
pub const ESTIMATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

/// A machine as the API and CLI show it: its last heartbeat and whether it is online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineView {
    pub online: bool,
    #[serde(flatten)]
    pub heartbeat: MachineHeartbeat,
    /// The operator's hold kept for it that its state does not show yet: it is not running,
    /// and starts under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<MachineCommand>,
}

impl MachineView {
    /// Online and neither paused, out of service nor stopping: it takes the next order.
    pub fn takes_orders(&self) -> bool {
        self.online && self.heartbeat.state.takes_orders()
    }

    /// The fleet as shown at `now`, by machine id.
    pub fn fleet(heartbeats: Vec<MachineHeartbeat>, now: OffsetDateTime) -> Vec<MachineView> {
        let mut machines: Vec<MachineView> =
            heartbeats.into_iter().map(|heartbeat| MachineView { online: heartbeat.is_online(now), heartbeat, hold: None }).collect();
        machines.sort_by_key(|machine| machine.heartbeat.id);
        machines
    }

    /// Notes on each machine the hold kept for it (`holds`, by machine id) that its state does
    /// not show.
    pub fn note_holds(machines: &mut [MachineView], holds: &BTreeMap<u32, MachineCommand>) {
        for machine in machines {
            machine.hold = holds.get(&machine.heartbeat.id).copied().filter(|hold| !hold.shown_by(machine.heartbeat.state));
        }
    }
}

/// A machine command the chain's operator sent a shop from the hub: kept on the hub until the
/// shop's link carries it, then applied in the shop once, in the order sent; unless it arrives
/// after `valid_until` (a pause sent hours before the link returned is no longer what the
/// operator wants), when it is dropped and the drop audited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainMachineCommand {
    pub machine: u32,
    pub command: MachineCommand,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub valid_until: OffsetDateTime,
}

impl ChainMachineCommand {
    /// `command` for machine `machine`, sent `now`, to be applied within `valid_for`.
    pub fn new(machine: u32, command: MachineCommand, now: OffsetDateTime, valid_for: std::time::Duration) -> ChainMachineCommand {
        let valid_for = time::Duration::try_from(valid_for).unwrap_or(time::Duration::MAX);
        ChainMachineCommand { machine, command, sent_at: now, valid_until: now.saturating_add(valid_for) }
    }

    /// `valid_until`, as RFC 3339.
    pub fn valid_until_text(&self) -> String {
        crate::rfc3339(self.valid_until)
    }

    /// Whether it may still be applied at `now`.
    pub fn valid_at(&self, now: OffsetDateTime) -> bool {
        now <= self.valid_until
    }
}

/// An operator's command to one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineCommand {
    /// Finish the current brew, then take no new order.
    Pause,
    /// Take orders again.
    Resume,
    /// Hand the current order back to the queue at once, and take no new order.
    OutOfService,
}

impl MachineCommand {
    /// The hold this command leaves on its machine, kept in the holds bucket until resumed:
    /// itself, or none for a resume.
    pub fn hold(self) -> Option<MachineCommand> {
        (self != MachineCommand::Resume).then_some(self)
    }

    /// Parses `pause`, `resume` or `out-of-service` (or `out_of_service`).
    pub fn parse(text: &str) -> Option<MachineCommand> {
        let name = text.trim().to_ascii_lowercase().replace('_', "-");
        [MachineCommand::Pause, MachineCommand::Resume, MachineCommand::OutOfService]
            .into_iter()
            .find(|command| command.action_name() == name)
    }

    /// Whether a machine in `state` is already under this command.
    pub fn shown_by(self, state: MachineState) -> bool {
        match self {
            MachineCommand::Pause => state == MachineState::Paused,
            MachineCommand::OutOfService => state == MachineState::OutOfService,
            MachineCommand::Resume => true,
        }
    }

    /// The command as the CLI and the web's URLs name it: `pause`, `resume`, `out-of-service`.
    pub fn action_name(self) -> &'static str {
        match self {
            MachineCommand::Pause => "pause",
            MachineCommand::Resume => "resume",
            MachineCommand::OutOfService => "out-of-service",
        }
    }

    /// The state a machine is in under this command, in words: `paused`, `running`, `out of
    /// service`.
    pub fn state_words(self) -> &'static str {
        match self {
            MachineCommand::Pause => "paused",
            MachineCommand::Resume => "running",
            MachineCommand::OutOfService => "out of service",
        }
    }
}
