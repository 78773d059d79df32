//! `brewq audit`: the latest operator actions, oldest first.

use brewq_protocol::{AuditEntry, subjects};

use crate::args::AuditArgs;
use crate::output;

/// Prints the audit trail.
pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let client = super::admin(&args.client).await?;
    let jetstream = async_nats::jetstream::new(client);
    let entries: Vec<AuditEntry> = brewq_runtime::jetstream::last_json(&jetstream, subjects::AUDIT_STREAM, args.last).await?;
    if args.client.json {
        output::json(&entries);
        return Ok(());
    }
    for entry in &entries {
        let at = brewq_protocol::rfc3339(entry.at);
        println!("{at}  {:<16} {:<15} {:<24} {}", entry.who, entry.action, entry.target, entry.outcome);
    }
    Ok(())
}
