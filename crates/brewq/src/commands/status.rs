//! `brewq status ID` and `brewq cancel ID`; `brewq status` alone is in [`super::health`].

use std::time::Duration;

use anyhow::Context;
use brewq_protocol::{OrderRecord, OrderReply, OrderView, subjects};

use crate::args::{ClientArgs, ShowStatusArgs, StatusArgs};
use crate::output;

/// Prints one order, or the system's health when no id is given.
pub async fn run(args: ShowStatusArgs) -> anyhow::Result<()> {
    match &args.id {
        Some(id) => show_order(id, &args.client).await,
        None => super::health::run(&args).await,
    }
}

async fn show_order(id: &str, args: &ClientArgs) -> anyhow::Result<()> {
    let client = super::admin(args).await?;
    let has_shops = brewq_launch::ClusterInfo::load(&args.connect.data_dir).is_ok_and(|info| !info.shops.is_empty());
    // A hub of shops keeps no orders of its own.
    let records = match super::bucket(&client, subjects::ORDERS_BUCKET).await {
        Err(_) if has_shops => return show_shop_order(id, args).await,
        records => records?,
    };
    let record = match brewq_runtime::kv::get_json::<OrderRecord>(&records, id).await?.map(|(record, _)| record) {
        Some(record) => record,
        None => return show_shop_order(id, args).await,
    };
    // Where it stands, as `GET /api/orders/{id}` shows it; the record alone if the queue
    // cannot be read.
    let queue = match record.status.is_terminal() {
        true => None,
        false => Some(brewq_controller::view::read(&async_nats::jetstream::new(client.clone())).await),
    };
    let view = match &queue {
        Some(Ok(queue)) => queue.order_view(record),
        _ => OrderView::of(record),
    };
    if let Some(Err(error)) = &queue {
        eprintln!("the queue cannot be read now, so no place or ETA: {}", output::chain(error));
    }
    if args.json {
        output::json(&view);
        return Ok(());
    }
    let record = &view.record;
    let order = &record.order;
    println!(
        "order {} for {}: {} {} coffee, milk {}, sugar {}",
        record.id, order.name, order.size, order.bean_type, order.milk, order.sugar_count
    );
    let ticket = view.ticket.map(|ticket| format!("ticket {ticket}, ")).unwrap_or_default();
    println!("{ticket}in the logs {}", brewq_protocol::ids::order_ref(&record.id));
    println!("status: {}{}", record.status, record.machine.map(|machine| format!(" (machine {machine})")).unwrap_or_default());
    let no_machine = matches!(&queue, Some(Ok(queue)) if queue.machines_online() == 0);
    match (view.position, view.eta_seconds, view.progress) {
        (Some(position), _, _) if no_machine => {
            println!("position {position} in the queue; no machine is taking orders right now, so it waits until one is back")
        }
        (Some(position), Some(eta), _) => println!("position {position} in the queue, ready in about {eta} s"),
        (None, Some(eta), Some(progress)) => println!("{:.0} % brewed, ready in about {eta} s", progress * 100.0),
        _ => {}
    }

    if let Some(reason) = &record.reason {
        println!("reason: {reason}");
    }
    for entry in &record.history {
        let at = brewq_protocol::rfc3339(entry.at);
        let machine = entry.machine.map(|machine| format!(" machine {machine}")).unwrap_or_default();
        println!("  {at} {}{machine}", entry.status);
    }
    Ok(())
}

/// An order of one of the shops of a hub, as the hub last saw it (`brewq up --shops`): each
/// shop's account on the hub holds the chain's view of that shop.
async fn show_shop_order(id: &str, args: &ClientArgs) -> anyhow::Result<()> {
    let info = brewq_launch::ClusterInfo::load(&args.connect.data_dir).ok().filter(|info| !info.shops.is_empty());
    let Some(info) = info else { anyhow::bail!("no order {id}") };
    for shop in &info.shops {
        let connect = crate::args::ConnectArgs { creds: Some(super::chain::admin_creds(&args.connect, shop.id)), ..args.connect.clone() };
        let client = crate::connect::connect_once(&connect, brewq_launch::Role::Admin, "brewq-cli").await?;
        let found = super::chain::last::<OrderRecord>(&client, "orders", id).await;
        let Some((record, _)) = found.with_context(|| format!("the hub's view of shop {}", shop.id))? else { continue };
        if args.json {
            output::json(&serde_json::json!({ "shop": shop.id, "record": record }));
            return Ok(());
        }
        let order = &record.order;
        println!(
            "order {} of shop {}, as the hub last saw it: {} {} coffee for {}",
            record.id, shop.id, order.size, order.bean_type, order.name
        );
        println!("status: {}{}", record.status, record.machine.map(|machine| format!(" (machine {machine})")).unwrap_or_default());
        for entry in &record.history {
            let at = brewq_protocol::rfc3339(entry.at);
            println!("  {at} {}{}", entry.status, entry.machine.map(|machine| format!(" machine {machine}")).unwrap_or_default());
        }
        return Ok(());
    }
    anyhow::bail!("no order {id} in any shop the hub has heard from")
}

/// Cancels a queued order.
pub async fn cancel(args: StatusArgs) -> anyhow::Result<()> {
    let client = super::admin(&args.client).await?;
    let reply: OrderReply =
        brewq_runtime::request::request_bytes(&client, subjects::ORDER_CANCEL, args.id.clone().into_bytes(), Duration::from_secs(10))
            .await?;
    if args.client.json {
        output::json(&reply);
    } else if reply.is_success() {
        println!("{}", reply.message);
    }
    anyhow::ensure!(reply.is_success(), "{}", reply.message);
    Ok(())
}
