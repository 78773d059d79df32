//! `brewq order`: places an order over `coffee.web.requests`, and with `--wait` follows it to
//! its end.

use std::time::Duration;

use anyhow::Context;
use brewq_protocol::{OrderRecord, OrderReply, OrderRequest, subjects};
use futures::StreamExt;
use serde_json::Value;

use crate::args::OrderArgs;
use crate::output;

/// Places the order; fails (non-zero exit) when it is refused or, with `--wait`, does not end
/// ready.
pub async fn run(args: OrderArgs) -> anyhow::Result<()> {
    let client = super::admin(&args.client).await?;
    let request = OrderRequest {
        name: Some(Value::from(args.name)),
        size: Some(Value::from(args.size)),
        bean_type: Some(Value::from(args.bean_type)),
        milk: Some(Value::from(args.milk)),
        sugar_count: Some(Value::from(args.sugar_count)),
        idempotency_key: args.idempotency_key.map(Value::from),
    };
    let reply: OrderReply =
        brewq_runtime::request::request_json(&client, subjects::ORDER_REQUESTS, &request, Duration::from_secs(10)).await?;
    if !args.wait || !reply.is_success() {
        if args.client.json {
            output::json(&reply);
        } else if reply.is_success() {
            println!("{}", reply.message);
        }
        anyhow::ensure!(reply.is_success(), "{}", refusal(&reply));
        return Ok(());
    }
    if !args.client.json {
        println!("{}", reply.message);
    }
    let order_id = reply.order_id.context("accepted order without an id")?;
    let record = follow(&client, &order_id, !args.client.json).await?;
    if args.client.json {
        output::json(&record);
    }
    anyhow::ensure!(
        record.status == brewq_protocol::OrderStatus::Ready,
        "order {order_id} ended {}{}",
        record.status,
        record.reason.as_deref().map(|reason| format!(": {reason}")).unwrap_or_default()
    );
    Ok(())
}

fn refusal(reply: &OrderReply) -> String {
    match &reply.field {
        Some(field) if !reply.message.contains(field.as_str()) => format!("order refused ({field}): {}", reply.message),
        _ => format!("order refused: {}", reply.message),
    }
}

/// Watches the order's record until it is final; prints each change when `verbose`.
pub async fn follow(client: &async_nats::Client, order_id: &str, verbose: bool) -> anyhow::Result<OrderRecord> {
    let records = super::bucket(client, subjects::ORDERS_BUCKET).await?;
    let mut updates = records.watch_with_history(order_id).await.context("watching the order")?;
    while let Some(entry) = updates.next().await {
        let entry = entry.context("watching the order")?;
        let Ok(record) = serde_json::from_slice::<OrderRecord>(&entry.value) else { continue };
        if verbose {
            let machine = record.machine.map(|machine| format!(" at machine {machine}")).unwrap_or_default();
            println!("{}: {}{machine}", record.id, record.status);
        }
        if record.status.is_terminal() {
            if verbose && record.status == brewq_protocol::OrderStatus::Ready {
                println!(
                    "{}, your coffee is ready{}",
                    record.order.name,
                    record.machine.map(|machine| format!(" at machine {machine}")).unwrap_or_default()
                );
            }
            return Ok(record);
        }
    }
    anyhow::bail!("the watch on order {order_id} ended early")
}
