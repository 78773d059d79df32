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
    let records = super::bucket(&client, subjects::ORDERS_BUCKET).await?;
    let record = brewq_runtime::kv::get_json::<OrderRecord>(&records, id)
        .await?
        .map(|(record, _)| record)
        .with_context(|| format!("no order {id}"))?;
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
        let at = entry.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let machine = entry.machine.map(|machine| format!(" machine {machine}")).unwrap_or_default();
        println!("  {at} {}{machine}", entry.status);
    }
    Ok(())
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
