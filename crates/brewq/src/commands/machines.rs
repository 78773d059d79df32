//! `brewq machines`: every machine that has sent a heartbeat, online or not; a command to one;
//! and each machine's credential, enrolled or revoked while the shop runs.

use std::collections::BTreeMap;

use brewq_protocol::machine::ChainMachineCommand;
use brewq_protocol::{MachineCommand, MachineHeartbeat, MachineView, now, subjects};
use brewq_web::admin::command::Commanded;

use crate::args::{ClientArgs, EnrollArgs, MachineAction, MachineTarget, MachinesArgs, RevokeArgs};
use crate::output;

/// Lists the machines, or sends one a command.
pub async fn run(args: MachinesArgs) -> anyhow::Result<()> {
    let (command, target) = match args.action {
        None => match args.shop {
            Some(shop) => return show_shop(shop, args.client).await,
            None => return show(args.client).await,
        },
        Some(MachineAction::Pause(target)) => (MachineCommand::Pause, target),
        Some(MachineAction::Resume(target)) => (MachineCommand::Resume, target),
        Some(MachineAction::OutOfService(target)) => (MachineCommand::OutOfService, target),
        Some(MachineAction::Enroll(args)) => return enroll(args),
        Some(MachineAction::Revoke(args)) => return revoke(args).await,
    };
    if let Some(shop) = target.shop {
        return command_shop(shop, target, command).await;
    }
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

/// Shop `shop`'s machines, from the hub: as the hub last saw each one's heartbeat.
async fn show_shop(shop: u32, args: ClientArgs) -> anyhow::Result<()> {
    let client = super::chain::shop_admin(&args, shop).await?;
    let seen = super::chain::all::<MachineHeartbeat>(&client, "machines").await?;
    let last = seen.iter().map(|(_, at)| *at).max();
    let machines = MachineView::fleet(seen.into_iter().map(|(heartbeat, _)| heartbeat).collect(), now());
    if args.json {
        output::json(&serde_json::json!({ "shop": shop, "machines": machines }));
        return Ok(());
    }
    let Some(last) = last else {
        println!("the hub has not heard from any machine of shop {shop}");
        return Ok(());
    };
    let online = machines.iter().filter(|machine| machine.online).count();
    println!("shop {shop}, as the hub last saw it (last heartbeat {}): {online} machine(s) online", super::chain::age(last));
    for machine in &machines {
        let beat = &machine.heartbeat;
        let online = if machine.online { "online" } else { "offline" };
        println!("machine {:>2}  {online:<7} {}  cups {}  failures {}", beat.id, beat.state.words(), beat.cups, beat.failures);
    }
    Ok(())
}

/// Sends machine `target.id` of shop `shop` a command from the hub: kept there, applied in the
/// shop once its link is up; waits a few seconds to see it applied in the hub's view of the
/// shop.
async fn command_shop(shop: u32, target: MachineTarget, command: MachineCommand) -> anyhow::Result<()> {
    anyhow::ensure!(target.id >= 1, "no machine 0: machines are numbered from 1");
    let client = super::chain::shop_admin(&target.client, shop).await?;
    let sent = ChainMachineCommand::new(target.id, command, now(), target.valid_for);
    let sequence = brewq_web::chain::send_machine_command(&client, &sent, None).await?;
    let seen = seen_applied(&client, &sent, std::time::Duration::from_secs(10)).await;
    if target.client.json {
        output::json(&serde_json::json!({
            "shop": shop, "machine": target.id, "command": sequence, "valid_until": sent.valid_until_text(), "applied": seen.is_some(), "heartbeat": seen,
        }));
        return Ok(());
    }
    match seen {
        Some(heartbeat) => println!("machine {} of shop {shop}: {}", target.id, heartbeat.state.words()),
        None => println!(
            "machine {} of shop {shop}: {} kept on the hub (command {sequence}), not seen applied yet; the shop applies it once, as \
             soon as its link is up, if before {} (a machine that is off takes it up when it starts)",
            target.id,
            command.action_name(),
            sent.valid_until_text()
        ),
    }
    Ok(())
}

/// The machine's heartbeat in the hub's view of its shop once it shows `sent` applied (written
/// after it was sent, in the state it asks for), waiting up to `within`.
async fn seen_applied(client: &async_nats::Client, sent: &ChainMachineCommand, within: std::time::Duration) -> Option<MachineHeartbeat> {
    let deadline = tokio::time::Instant::now() + within;
    let key = subjects::machine_key(sent.machine);
    loop {
        if let Ok(Some((heartbeat, written))) = super::chain::last::<MachineHeartbeat>(client, "machines", &key).await {
            let state = heartbeat.state;
            let shown = if sent.command == MachineCommand::Resume { state.takes_orders() } else { sent.command.shown_by(state) };
            if shown && written >= sent.sent_at {
                return Some(heartbeat);
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Every machine's last heartbeat, by id.
pub async fn list(client: &async_nats::Client) -> anyhow::Result<Vec<MachineView>> {
    let store = super::bucket(client, subjects::MACHINES_BUCKET).await?;
    Ok(MachineView::fleet(brewq_runtime::kv::all_json(client, &store).await?, now()))
}

/// Issues machine `id` (of `--shop`) its credential, and copies it where asked.
fn enroll(args: EnrollArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let keys = super::trusted_keys(&args.data_dir)?;
    let account = super::account_of(&keys, args.shop)?;
    let path = account.enroll_machine(args.id)?;
    let written = match &args.out {
        Some(out) => {
            std::fs::copy(&path, out).with_context(|| format!("copying the creds file to {}", out.display()))?;
            out.clone()
        }
        None => path,
    };
    println!("machine {} enrolled: its credential is {} (keep it secret; the machine reads it with --creds)", args.id, written.display());
    Ok(())
}

/// Revokes machine `id`'s credential (of `--shop`) and tells every server at once: the hub's,
/// and the shop's own.
async fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let keys = super::trusted_keys(&args.client.connect.data_dir)?;
    let account = super::account_of(&keys, args.shop)?;
    let revocation = brewq_launch::trust::revoke_machine(&keys, &account, args.id)?;
    let (stored, servers) = super::push_account(&keys, &args.client.connect, args.shop, &revocation.account_jwt, args.timeout).await?;
    let outcome = format!("revoked on {} of {servers} server(s)", stored.len());
    if let Ok(client) = super::admin(&args.client).await {
        super::audit(&client, "revoke", &format!("machine {}", args.id), &outcome).await;
    }
    if args.client.json {
        output::json(&serde_json::json!({ "id": args.id, "user": revocation.user, "servers": stored }));
    } else {
        println!("machine {}: credential {} {outcome}", args.id, revocation.user);
    }
    if stored.len() < servers {
        eprintln!("note: the other servers take the revocation from their peers within 30 s of being back");
    }
    Ok(())
}
