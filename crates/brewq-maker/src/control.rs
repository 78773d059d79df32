//! The operator's hold on one machine: pause (finish the brew, take no new order), out of
//! service (hand the order back at once), resume. Commands arrive by request/reply on
//! `coffee.machines.<id>.control`; the reply is the machine's heartbeat after the change. A
//! hold is kept in the holds bucket until resumed, so a machine that restarts keeps it.

use std::sync::Mutex;

use async_nats::jetstream::kv::Store;
use brewq_protocol::{MachineCommand, subjects};
use futures::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Whether the machine takes orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Running,
    Paused,
    OutOfService,
}

/// Shared by the order loop, the brew in progress and the control task.
pub(crate) struct Control {
    mode: watch::Sender<Mode>,
    /// Cancelled to make the brew in progress hand its order back.
    abandon: Mutex<CancellationToken>,
}

impl Control {
    pub(crate) fn new() -> Self {
        Control { mode: watch::Sender::new(Mode::Running), abandon: Mutex::new(CancellationToken::new()) }
    }

    pub(crate) fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// A token the next brew watches; out of service cancels it.
    pub(crate) fn brew_token(&self) -> CancellationToken {
        let token = CancellationToken::new();
        // Never held across an await; a panic inside would be a bug in these two lines.
        *self.abandon.lock().expect("abandon lock") = token.clone();
        token
    }

    /// Applies an operator's command.
    pub(crate) fn apply(&self, command: MachineCommand) {
        let mode = match command {
            MachineCommand::Pause => Mode::Paused,
            MachineCommand::Resume => Mode::Running,
            MachineCommand::OutOfService => {
                self.abandon.lock().expect("abandon lock").cancel();
                Mode::OutOfService
            }
        };
        self.mode.send_replace(mode);
    }

    /// Waits until the machine may take orders; false if shutdown comes first.
    pub(crate) async fn wait_running(&self, shutdown: &CancellationToken) -> bool {
        let mut mode = self.mode.subscribe();
        tokio::select! {
            () = shutdown.cancelled() => false,
            running = mode.wait_for(|mode| *mode == Mode::Running) => running.is_ok(),
        }
    }
}

/// Takes up the hold machine `id` was under when it stopped, if any.
pub(crate) async fn restore(id: u32, holds: &Store, control: &Control) {
    match brewq_runtime::kv::get_json::<MachineCommand>(holds, &subjects::machine_key(id)).await {
        Ok(Some((command, _))) => {
            tracing::info!(machine = id, ?command, "the operator's hold is still on");
            control.apply(command);
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(machine = id, error = format!("{error:#}"), "cannot read the operator's hold; running"),
    }
}

/// Keeps `command` as machine `id`'s hold (pause, out of service), or lifts it (resume).
pub(crate) async fn keep(id: u32, holds: &Store, command: MachineCommand) -> anyhow::Result<()> {
    let key = subjects::machine_key(id);
    match command.hold() {
        Some(hold) => brewq_runtime::kv::put_json(holds, &key, &hold).await.map(drop),
        None => holds.delete(&key).await.map_err(anyhow::Error::from),
    }
}

/// Serves the control requests of machine `id` from `requests` (its subscription to
/// `coffee.machines.<id>.control`) until shutdown; `on_change` runs after each command and
/// returns the reply payload.
pub(crate) async fn serve(
    id: u32,
    client: async_nats::Client,
    mut requests: async_nats::Subscriber,
    control: std::sync::Arc<Control>,
    holds: Store,
    on_change: impl Fn() -> Vec<u8> + Send,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = requests.next() => match message { Some(message) => message, None => break },
        };
        let Some(reply_to) = brewq_runtime::respond::reply_subject(message.subject.as_str(), &message) else { continue };
        let payload = match serde_json::from_slice::<MachineCommand>(&message.payload) {
            Ok(command) => {
                tracing::info!(machine = id, ?command, "operator command");
                if let Err(error) = keep(id, &holds, command).await {
                    tracing::warn!(machine = id, error = format!("{error:#}"), "the hold is applied but not kept: a restart forgets it");
                }
                control.apply(command);
                on_change()
            }
            Err(error) => format!("{{\"error\":\"bad machine command: {error}\"}}").into_bytes(),
        };
        if let Err(error) = client.publish(reply_to, payload.into()).await {
            tracing::warn!(%error, "cannot answer an operator command");
        }
    }
    let _ = requests.unsubscribe().await;
}
