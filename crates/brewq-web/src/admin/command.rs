//! An operator's command to one machine (pause, resume, out of service), as the CLI and the
//! operator's pages send it: to the machine if it runs, or kept in the holds bucket for it
//! to take up when it starts, if no machine of that number is running.

use std::collections::BTreeMap;
use std::time::Duration;

use brewq_protocol::{MachineCommand, MachineHeartbeat, subjects};

use brewq_runtime::request::{RequestError, request_json};

/// How long a running machine may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// What became of a command.
#[derive(Debug)]
pub enum Commanded {
    /// The machine applied it; its heartbeat after the change.
    Applied(MachineHeartbeat),
    /// No machine of that number runs: the hold is kept (or lifted, for a resume) and applies
    /// when it starts.
    Kept,
}

impl Commanded {
    /// One line for an operator.
    pub fn describe(&self, id: u32, command: MachineCommand) -> String {
        match (self, command) {
            (Commanded::Applied(heartbeat), _) => format!("machine {id}: {}", heartbeat.state.words()),
            (Commanded::Kept, MachineCommand::Resume) => {
                format!("machine {id} is not running: it has no hold now, and takes orders when it starts")
            }
            (Commanded::Kept, hold) => {
                format!("machine {id} is not running: the hold ({}) is kept, and it starts under it", hold.state_words())
            }
        }
    }
}

/// Sends `command` to machine `id`; keeps it as the machine's hold if none answers because
/// none runs. A machine that starts meanwhile takes up the hold (it listens for commands before
/// it reads its hold), or gets the command sent again after the hold is written.
pub async fn command(client: &async_nats::Client, id: u32, command: MachineCommand) -> anyhow::Result<Commanded> {
    anyhow::ensure!(id >= 1, "no machine 0: machines are numbered from 1");
    let subject = subjects::machine_control(id);
    match request_json::<_, MachineHeartbeat>(client, &subject, &command, ANSWER_WITHIN).await {
        Ok(heartbeat) => return Ok(Commanded::Applied(heartbeat)),
        Err(RequestError::NoResponders { .. }) => {}
        Err(error) => return Err(anyhow::anyhow!("machine {id} did not answer: {error}")),
    }
    let kept = async {
        let holds = async_nats::jetstream::new(client.clone()).get_key_value(subjects::MACHINE_HOLDS_BUCKET).await?;
        let key = subjects::machine_key(id);
        match command.hold() {
            Some(hold) => brewq_runtime::kv::put_json(&holds, &key, &hold).await.map(drop),
            None => holds.delete(&key).await.map_err(anyhow::Error::from),
        }
    };
    kept.await.map_err(|error| anyhow::anyhow!("machine {id} is not running, and its hold cannot be kept: {error:#}"))?;
    match request_json::<_, MachineHeartbeat>(client, &subject, &command, ANSWER_WITHIN).await {
        Ok(heartbeat) => Ok(Commanded::Applied(heartbeat)),
        Err(RequestError::NoResponders { .. }) => Ok(Commanded::Kept),
        Err(error) => Err(anyhow::anyhow!("the hold is kept, but machine {id}, starting meanwhile, did not confirm it: {error}")),
    }
}

/// The holds kept, by machine, from the holds bucket.
pub async fn holds(jetstream: &async_nats::jetstream::Context) -> anyhow::Result<BTreeMap<u32, MachineCommand>> {
    let store = jetstream.get_key_value(subjects::MACHINE_HOLDS_BUCKET).await?;
    let mut holds = BTreeMap::new();
    brewq_runtime::kv::scan_json(&jetstream.client(), &store, |key, hold: Option<(MachineCommand, u64)>| {
        let Some(id) = key.strip_prefix("machine.").and_then(|id| id.parse().ok()) else { return };
        match hold {
            Some((hold, _)) => holds.insert(id, hold),
            None => holds.remove(&id),
        };
    })
    .await?;
    Ok(holds)
}
