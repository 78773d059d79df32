//! `brewq security init`, `brewq security matrix` and `brewq security push`.

use brewq_launch::security::{SecurityInit, init};

use crate::args::SecurityCommand;

/// Runs a security subcommand.
pub async fn run(command: SecurityCommand) -> anyhow::Result<()> {
    match command {
        SecurityCommand::Init { nodes, out, hosts, tls, store_dir, monitor_on_host, machines, shops, shop_hosts } => {
            let request = SecurityInit { nodes, out: out.clone(), hosts, tls, store_dir, monitor_on_host, machines, shops, shop_hosts };
            let info = init(&request)?;
            println!("wrote {} node config(s), credentials and cluster.json to {}", nodes, out.display());
            println!("client URLs: {}", info.nats_urls.join(","));
            println!("start each node with: nats-server -c {}/n<N>.conf", out.display());
            for shop in &info.shops {
                println!("shop {}: nats-server -c {}/shop-{}.conf, at {}", shop.id, out.display(), shop.id, shop.nats_urls.join(","));
            }
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

/// Issues every account's JWT again, its machines' and services' accounts' first, and gives each
/// to every running server that trusts it.
async fn push(connect: &crate::args::ConnectArgs, timeout: std::time::Duration) -> anyhow::Result<()> {
    let keys = super::trusted_keys(&connect.data_dir)?;
    let info = brewq_launch::ClusterInfo::load(&connect.data_dir)?;
    let shops = std::iter::once(None).chain(info.shops.iter().map(|shop| Some(shop.id)));
    for shop in shops {
        let account = super::account_of(&keys, shop)?;
        // The accounts that import first, then those they import from.
        for kind in brewq_launch::trust::ACCOUNTS.into_iter().rev() {
            let (_, jwt) = brewq_launch::trust::issue_account(&keys, &account, kind)?;
            let name = account.account_name(kind);
            let (stored, asked) = super::push_account(&keys, connect, shop, &jwt, timeout).await?;
            println!("{name}: permissions and revocations on {} of {asked} server(s): {}", stored.len(), stored.join(", "));
        }
    }
    Ok(())
}
