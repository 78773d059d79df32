//! `brewq security init` and `brewq security matrix`.

use brewq_launch::security::{SecurityInit, init};

use crate::args::SecurityCommand;

/// Runs a security subcommand.
pub fn run(command: SecurityCommand) -> anyhow::Result<()> {
    match command {
        SecurityCommand::Init { nodes, out, hosts, tls, store_dir, monitor_on_host } => {
            let info = init(&SecurityInit { nodes, out: out.clone(), hosts, tls, store_dir, monitor_on_host })?;
            println!("wrote {} node config(s), keys and cluster.json to {}", nodes, out.display());
            println!("client URLs: {}", info.nats_urls.join(","));
            println!("start each node with: nats-server -c {}/n<N>.conf", out.display());
            println!(
                "then, e.g.: brewq <command> --data-dir {} ...  (or --nats-url and --seed-file {}/keys/<role>.nk)",
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
