//! `brewq machines`: every machine that has sent a heartbeat, online or not.

use brewq_protocol::{MachineHeartbeat, MachineView, now, subjects};

use crate::args::ClientArgs;
use crate::output;

/// Lists the machines.
pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let client = super::admin(&args).await?;
    let machines = list(&client).await?;
    if args.json {
        output::json(&machines);
        return Ok(());
    }
    println!("{} machine(s) online", machines.iter().filter(|machine| machine.online).count());
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
    let at = now();
    let mut machines: Vec<MachineView> = brewq_runtime::kv::all_json::<MachineHeartbeat>(&store)
        .await?
        .into_iter()
        .map(|heartbeat| MachineView { online: heartbeat.is_online(at), heartbeat })
        .collect();
    machines.sort_by_key(|machine| machine.heartbeat.id);
    Ok(machines)
}
