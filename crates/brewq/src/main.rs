//! `brewq`: one binary, a subcommand per service (`controller`, `stock`, `maker`), the whole
//! system on one machine (`up`), and the operator's commands (`order`, `status`, `stock`,
//! `machines`). Arguments are parsed here and handed to the modules below.

mod args;
mod commands;
mod connect;
mod metrics_server;
mod output;
mod services;
mod up;

use clap::Parser;

use args::{Args, Command};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    brewq_runtime::telemetry::init(args.log_format.into(), args.command.default_log_filter());
    let runtime = match args.command.runs_on_one_thread() {
        true => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        false => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    };
    let result = runtime.map_err(anyhow::Error::from).and_then(|runtime| runtime.block_on(dispatch(args.command, args.log_format)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", output::chain(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command, log_format: args::LogFormatArg) -> anyhow::Result<()> {
    match command {
        Command::Up(up) => up::run(up, log_format).await,
        Command::Controller(service) => services::controller(service).await,
        Command::Stock(stock) => commands::stock::run(stock).await,
        Command::Maker(maker) => services::maker(maker).await,
        Command::Web(web) => services::web(web).await,
        Command::Office(office) => services::office(office).await,
        Command::Provision(provision) => services::provision(provision).await,
        Command::Order(order) => commands::order::run(order).await,
        Command::Status(status) => commands::status::run(status).await,
        Command::Cancel(cancel) => commands::status::cancel(cancel).await,
        Command::Machines(machines) => commands::machines::run(machines).await,
        Command::Failed(failed) => commands::failed::run(failed).await,
        Command::Audit(audit) => commands::audit::run(audit).await,
        Command::Check(check) => commands::check::run(check).await,
        Command::Rush(rush) => commands::rush::run(rush).await,
        Command::Bench(bench) => commands::bench::run(bench).await,
        Command::Security(security) => commands::security::run(security).await,
    }
}
