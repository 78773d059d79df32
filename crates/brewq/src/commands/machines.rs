//! `brewq machines`: every machine that has sent a heartbeat, online or not.

use std::collections::BTreeMap;

use brewq_protocol::{MachineCommand, MachineView, now, subjects};
use brewq_web::admin::command::Commanded;

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
    let action = command.action_name();
    let sent = brewq_web::admin::command::command(&client, target.id, command).await;
    let outcome = match &sent {
        Ok(Commanded::Applied(_)) => "ok".to_owned(),
        Ok(Commanded::Kept) => "kept (machine not running)".to_owned(),
        Err(error) => format!("{error:#}"),
    };
    super::audit(&client, action, &format!("machine {}", target.id), &outcome).await;
    let sent = sent?;
    match (&sent, target.client.json) {
        (Commanded::Applied(heartbeat), true) => output::json(heartbeat),
        (Commanded::Kept, true) => output::json(&serde_json::json!({
            "id": target.id,
            "kept": true,
            "message": sent.describe(target.id, command),
        })),
        (_, false) => println!("{}", sent.describe(target.id, command)),
    }
    if matches!(sent, Commanded::Kept) && !list(&client).await?.iter().any(|machine| machine.heartbeat.id == target.id) {
        eprintln!("note: no machine {} has sent a heartbeat in the last hour; check the number", target.id);
    }
    Ok(())
}

async fn show(args: ClientArgs) -> anyhow::Result<()> {
    let client = super::admin(&args).await?;
    let mut machines = list(&client).await?;
    let mut holds = brewq_web::admin::command::holds(&async_nats::jetstream::new(client.clone())).await.unwrap_or_else(|error| {
        eprintln!("the operator's holds cannot be read: {}", output::chain(&error));
        BTreeMap::new()
    });
    MachineView::note_holds(&mut machines, &holds);
    if args.json {
        output::json(&machines);
        return Ok(());
    }
    let counts = super::health::MachinesHealth::of(&machines);
    println!("{} machine(s) online, {} taking orders", counts.online, counts.taking_orders);
    for machine in &machines {
        let beat = &machine.heartbeat;
        holds.remove(&beat.id);
        let online = if machine.online { "online" } else { "offline" };
        let order = beat.order_id.as_deref().map(|order| format!(" order {order}")).unwrap_or_default();
        // A machine that is down shows its last state: a hold kept since is what it starts under.
        let held = machine.hold.map(|hold| format!("  (held: {})", hold.state_words())).unwrap_or_default();
        let state = beat.state.words();
        println!("machine {:>2}  {online:<7} {state}{order}  cups {}  failures {}{held}", beat.id, beat.cups, beat.failures);
    }
    for (id, hold) in holds {
        println!("machine {id:>2}  no heartbeat in the last hour  (held: {})", hold.state_words());
    }
    Ok(())
}

/// Every machine's last heartbeat, by id.
pub async fn list(client: &async_nats::Client) -> anyhow::Result<Vec<MachineView>> {
    let store = super::bucket(client, subjects::MACHINES_BUCKET).await?;
    Ok(MachineView::fleet(brewq_runtime::kv::all_json(&store).await?, now()))
}
