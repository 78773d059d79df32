//! `brewq security init` and `brewq security matrix`.

use brewq_launch::security::{SecurityInit, init};

use crate::args::SecurityCommand;

/// Runs a security subcommand.
pub fn run(command: SecurityCommand) -> anyhow::Result<()> {
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
    }
}
