//! `brewq stock` (show), `brewq stock restock ITEM=AMOUNT...` and `brewq stock serve`.

use std::time::Duration;

use anyhow::Context;
use brewq_protocol::stock::Items;
use brewq_protocol::{Ingredient, StockCommand, StockReply, StockSnapshot, subjects};
use brewq_runtime::request::RequestError;

use crate::args::{StockAction, StockArgs};
use crate::output;

/// Dispatches the stock subcommands.
pub async fn run(args: StockArgs) -> anyhow::Result<()> {
    let (command, client_args) = match args.action {
        Some(StockAction::Serve(service)) => return crate::services::stock(service).await,
        Some(StockAction::Restock { items, shop: Some(shop), client }) => {
            return send_to_shop(shop, StockCommand::Restock { items: parse_items(&items)?, request_id: None }, &client).await;
        }
        Some(StockAction::Threshold { items, shop: Some(shop), client }) => {
            return send_to_shop(shop, StockCommand::Threshold { items: parse_items(&items)? }, &client).await;
        }
        Some(StockAction::Restock { items, client, .. }) => {
            (StockCommand::Restock { items: parse_items(&items)?, request_id: Some(restock_id()) }, client)
        }
        Some(StockAction::Threshold { items, client, .. }) => (StockCommand::Threshold { items: parse_items(&items)? }, client),
        None => match args.shop {
            Some(shop) => return show_shop(shop, &args.client).await,
            None => (StockCommand::Get, args.client),
        },
    };
    let client = super::admin(&client_args).await?;
    let reply = send(&client, &command).await?;
    let refused = match &reply {
        StockReply::Snapshot { .. } => None,
        StockReply::Refused { message } => Some(format!("refused: {message}")),
        StockReply::Error { message } => Some(format!("stock manager: {message}")),
        other => Some(format!("unexpected stock reply {other:?}")),
    };
    if let StockCommand::Restock { items, .. } | StockCommand::Threshold { items } = &command {
        let target: Vec<String> = items.iter().map(|(ingredient, amount)| format!("{ingredient}={amount}")).collect();
        super::audit(&client, command.op(), &target.join(" "), refused.as_deref().unwrap_or("ok")).await;
    }
    let StockReply::Snapshot { stock } = reply else { anyhow::bail!("{}", refused.unwrap_or_default()) };
    if client_args.json {
        output::json(&stock);
    } else {
        print_table(&stock);
    }
    Ok(())
}

/// Attempts at a command whose answer does not come; a restock goes again under its request id,
/// so that it is applied once however many went.
const ATTEMPTS: u32 = 3;

/// Sends `command` to the stock managers, again while no answer comes.
async fn send(client: &async_nats::Client, command: &StockCommand) -> anyhow::Result<StockReply> {
    let subject = subjects::stock_subject(command);
    let mut attempt = 1;
    loop {
        match brewq_runtime::request::request_json(client, &subject, command, Duration::from_secs(5)).await {
            Ok(reply) => return Ok(reply),
            Err(error @ (RequestError::NoResponders { .. } | RequestError::TimedOut { .. } | RequestError::Transport { .. }))
                if attempt < ATTEMPTS =>
            {
                eprintln!("no answer from the stock managers ({error}); sending it again in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(anyhow::Error::new(error).context(format!("after {attempt} attempt(s)"))),
        }
        attempt += 1;
    }
}

/// A restock's request id, unique to this run: `cli-` and a NUID.
fn restock_id() -> String {
    format!("cli-{}", nuid::next())
}

/// Sends a command to shop `shop` of the chain, through the hub: stored there (once, whatever
/// the retries) and applied by the shop once, as soon as its link is up.
async fn send_to_shop(shop: u32, command: StockCommand, args: &crate::args::ClientArgs) -> anyhow::Result<()> {
    let client = super::chain::shop_admin(args, shop).await?;
    let sequence =
        brewq_web::chain::send_command(&client, &command, None).await.with_context(|| format!("sending the command to shop {shop}"))?;
    if args.json {
        output::json(&serde_json::json!({ "shop": shop, "command": command, "sequence": sequence }));
    } else {
        println!("{} sent to shop {shop} (command {sequence} on the hub): applied there once, as soon as its link is up", command.op());
    }
    Ok(())
}

/// Shop `shop`'s stock, from the hub: asked of its stock manager over the shop's link, or,
/// while the link is down, as the hub last saw it.
async fn show_shop(shop: u32, args: &crate::args::ClientArgs) -> anyhow::Result<()> {
    let client = super::chain::shop_admin(args, shop).await?;
    let asked = brewq_runtime::request::request_json(
        &client,
        &subjects::stock_subject(&StockCommand::Get),
        &StockCommand::Get,
        Duration::from_secs(3),
    )
    .await;
    let (stock, seen) = match asked {
        Ok(StockReply::Snapshot { stock }) => (stock, None),
        answer => {
            let why = match answer {
                Ok(other) => format!("unexpected stock reply {other:?}"),
                Err(error) => error.to_string(),
            };
            let (doc, at) = super::chain::last::<brewq_protocol::stock::LevelsDoc>(&client, "stock", subjects::STOCK_KEY)
                .await?
                .with_context(|| format!("shop {shop} does not answer ({why}), and the hub has never seen its stock"))?;
            let stock = StockSnapshot { levels: doc.levels };
            (stock, Some(format!("shop {shop} does not answer ({why}); its stock as the hub last saw it, {}", super::chain::age(at))))
        }
    };
    if args.json {
        output::json(&serde_json::json!({ "shop": shop, "stock": stock, "live": seen.is_none() }));
        return Ok(());
    }
    if let Some(seen) = seen {
        println!("{seen}:");
    }
    print_table(&stock);
    Ok(())
}

/// Parses `arabica=1000` pairs.
fn parse_items(pairs: &[String]) -> anyhow::Result<Items> {
    let mut items = Items::new();
    for pair in pairs {
        let (name, amount) = pair.split_once('=').with_context(|| format!("{pair:?} is not INGREDIENT=AMOUNT"))?;
        let ingredient = Ingredient::parse(name).with_context(|| {
            let known: Vec<&str> = Ingredient::ALL.iter().map(|ingredient| ingredient.as_str()).collect();
            format!("unknown ingredient {name:?}; expected one of: {}", known.join(", "))
        })?;
        let amount: u64 = amount.trim().parse().with_context(|| format!("amount of {name} must be a whole number, got {amount:?}"))?;
        anyhow::ensure!(amount > 0, "amount of {name} must be more than 0");
        let total = items.entry(ingredient).or_default();
        *total = total.checked_add(amount).with_context(|| format!("amounts of {name} add up past {}", u64::MAX))?;
    }
    Ok(items)
}

fn print_table(stock: &StockSnapshot) {
    println!("{:<10} {:>10} {:>10} {:>10} {:>8}  unit", "item", "on hand", "reserved", "consumed", "low at");
    for (ingredient, level) in &stock.levels {
        let alert = if level.is_low() { "  LOW: restock" } else { "" };
        println!(
            "{:<10} {:>10} {:>10} {:>10} {:>8}  {}{alert}",
            ingredient.as_str(),
            level.on_hand,
            level.reserved,
            level.consumed,
            level.low_at,
            ingredient.unit()
        );
    }
}
