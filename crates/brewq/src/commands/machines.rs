//! `brewq machines`: every machine that has sent a heartbeat, online or not.

use brewq_protocol::{MachineHeartbeat, MachineView, now, subjects};

use std::time::Duration;

use brewq_protocol::MachineCommand;

use crate::args::{ClientArgs, MachineAction, MachinesArgs};
use crate::output;

/// Lists the machines, or sends one a command.
pub async fn run(args: MachinesArgs) -> anyhow::Result<()> {
    let (command, target) = match args.action {
        None => return show(args.client).await,
        Some(MachineAction::Pause(target)) => (MachineCommand::Pause, target),
        Some(MachineAction::Resume(target)) => (MachineCommand::Resume, target),
        Some(MachineAction::OutOfService(target)) => (MachineCommand::OutOfService, target),
    };
    let client = super::admin(&target.client).await?;
    let action = serde_json::to_value(command)?.as_str().unwrap_or_default().replace('_', "-");
    let sent = brewq_runtime::request::request_json::<_, MachineHeartbeat>(
        &client,
        &subjects::machine_control(target.id),
        &command,
        Duration::from_secs(5),
    )
    .await;
    let outcome = match &sent {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.to_string(),
    };
    super::audit(&client, &action, &format!("machine {}", target.id), &outcome).await;
    let heartbeat = sent.map_err(|error| anyhow::anyhow!("machine {} did not answer: {error}", target.id))?;
    if target.client.json {
        output::json(&heartbeat);
    } else {
        println!("machine {}: {:?}", heartbeat.id, heartbeat.state);
    }
    Ok(())
}

async fn show(args: ClientArgs) -> anyhow::Result<()> {
    let client = super::admin(&args).await?;
    let machines = list(&client).await?;
    if args.json {
        output::json(&machines);
        return Ok(());
    }
    let counts = super::health::MachinesHealth::of(&machines);
    println!("{} machine(s) online, {} taking orders", counts.online, counts.taking_orders);
    for machine in &machines {
        let beat = &machine.heartbeat;
        let online = if machine.online { "online" } else { "offline" };
        let order = beat.order_id.as_deref().map(|order| format!(" order {order}")).unwrap_or_default();
        println!("machine {:>2}  {online:<7} {:?}{order}  cups {}  failures {}", beat.id, beat.state, beat.cups, beat.failures);
    }
    Ok(())
}

/// Every machine's last heartbeat, by id.
pub async fn list(client: &async_nats::Client) -> anyhow::Result<Vec<MachineView>> {
    let store = super::bucket(client, subjects::MACHINES_BUCKET).await?;
    Ok(MachineView::fleet(brewq_runtime::kv::all_json(&store).await?, now()))
}
