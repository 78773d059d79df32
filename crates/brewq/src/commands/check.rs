//! `brewq check`: reads every order record, every reservation and the stock, and proves the
//! invariants with an accounting table (see `brewq_protocol::accounting`). Run it when the
//! queue is quiet: a brew in progress is still open. Exits non-zero on any difference. Names
//! each leak: an order whose stock is still reserved while the order has no record or ended.

use std::collections::BTreeMap;

use anyhow::Context;
use brewq_protocol::stock::Reservation;
use brewq_protocol::{OrderRecord, StockCommand, StockReply, subjects};
use futures::TryStreamExt;

use crate::args::ClientArgs;
use crate::output;

/// Runs the check.
pub async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let client = super::admin(&args).await?;
    let records_bucket = super::bucket(&client, subjects::ORDERS_BUCKET).await?;
    let records: Vec<OrderRecord> = brewq_runtime::kv::all_json(&client, &records_bucket).await.context("reading the orders")?;
    let stock_bucket = super::bucket(&client, subjects::STOCK_BUCKET).await?;
    let keys: Vec<String> = stock_bucket.keys().await?.try_collect().await.context("listing reservations")?;
    let mut reservations = BTreeMap::new();
    for key in keys {
        let Some(order_id) = key.strip_prefix("reservation.") else { continue };
        if let Some((reservation, _)) = brewq_runtime::kv::get_json::<Reservation>(&stock_bucket, &key).await? {
            reservations.insert(order_id.to_owned(), reservation);
        }
    }
    let command = StockCommand::Get;
    let reply =
        brewq_runtime::request::request_json(&client, &subjects::stock_subject(&command), &command, std::time::Duration::from_secs(10))
            .await?;
    let StockReply::Snapshot { stock } = reply else { anyhow::bail!("unexpected stock reply {reply:?}") };
    let accounting = brewq_protocol::accounting::check(&records, &reservations, &stock);
    if args.json {
        output::json(&accounting);
    } else {
        print!("{accounting}");
    }
    anyhow::ensure!(accounting.problems.is_empty(), "{} difference(s) found", accounting.problems.len());
    Ok(())
}
