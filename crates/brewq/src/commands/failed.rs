//! `brewq failed`: the failed orders waiting for an operator, and `retry` / `give-up`.

use std::time::Duration;

use brewq_protocol::{DeadLetter, OrderReply, subjects};

use crate::args::{FailedAction, FailedArgs};
use crate::output;

/// Lists failed orders, or acts on one.
pub async fn run(args: FailedArgs) -> anyhow::Result<()> {
    let (subject, action, target) = match args.action {
        None => return list(&args.client).await,
        Some(FailedAction::Retry(target)) => (subjects::DEAD_LETTER_RETRY, "retry", target),
        Some(FailedAction::GiveUp(target)) => (subjects::DEAD_LETTER_GIVE_UP, "give-up", target),
    };
    let client = super::admin(&target.client).await?;
    let reply: OrderReply =
        brewq_runtime::request::request_bytes(&client, subject, target.id.clone().into_bytes(), Duration::from_secs(10)).await?;
    let outcome = if reply.is_success() { "ok".to_owned() } else { reply.message.clone() };
    super::audit(&client, action, &format!("order {}", target.id), &outcome).await;
    if target.client.json {
        output::json(&reply);
    } else if reply.is_success() {
        println!("{}", reply.message);
    }
    anyhow::ensure!(reply.is_success(), "{}", reply.message);
    Ok(())
}

async fn list(args: &crate::args::ClientArgs) -> anyhow::Result<()> {
    let client = super::admin(args).await?;
    let store = super::bucket(&client, subjects::DEAD_LETTERS_BUCKET).await?;
    let letters: Vec<DeadLetter> = brewq_runtime::kv::all_json(&client, &store).await?;
    if args.json {
        output::json(&letters);
        return Ok(());
    }
    println!("{} failed order(s) waiting", letters.len());
    for letter in &letters {
        println!("  {}  {}", letter.order_id, letter.reason);
    }
    Ok(())
}
