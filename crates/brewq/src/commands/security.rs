//! `brewq security init`, `brewq security matrix` and `brewq security push`.

use brewq_launch::security::{SecurityInit, init};

use crate::args::SecurityCommand;

/// Runs a security subcommand.
pub async fn run(command: SecurityCommand) -> anyhow::Result<()> {
    match command {
        SecurityCommand::Init { nodes, out, hosts, tls, store_dir, monitor_on_host, machines } => {
            let info = init(&SecurityInit { nodes, out: out.clone(), hosts, tls, store_dir, monitor_on_host, machines })?;
            println!("wrote {} node config(s), credentials and cluster.json to {}", nodes, out.display());
            println!("client URLs: {}", info.nats_urls.join(","));
            println!("start each node with: nats-server -c {}/n<N>.conf", out.display());
            println!(
                "then, e.g.: brewq <command> --data-dir {} ...  (or --nats-url and --creds {}/keys/<role>.creds)",
                out.display(),
                out.display()
            );
            Ok(())
        }
        SecurityCommand::Matrix => {
            print!("{}", brewq_launch::permissions::matrix_markdown());
            Ok(())
        }
        SecurityCommand::Push { timeout, connect } => push(&connect, timeout).await,
    }
}

/// Issues the account's JWT again and gives it to every running server.
async fn push(connect: &crate::args::ConnectArgs, timeout: std::time::Duration) -> anyhow::Result<()> {
    let keys = super::trusted_keys(&connect.data_dir)?;
    let info = brewq_launch::ClusterInfo::load(&connect.data_dir)?;
    let urls = if connect.nats_url.is_empty() { info.nats_urls.clone() } else { connect.nats_url.clone() };
    let (_, account_jwt) = brewq_launch::trust::issue_coffee_account(&keys)?;
    let tls_ca = connect.tls_ca.clone().or(info.tls_ca.clone());
    let servers = info.ports.len().max(1);
    let stored = brewq_launch::trust::push(&urls, tls_ca.as_deref(), &keys, &account_jwt, servers, timeout).await?;
    println!("the account's permissions and revocations are on {} of {servers} server(s): {}", stored.len(), stored.join(", "));
    Ok(())
}
