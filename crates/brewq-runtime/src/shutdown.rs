//! The OS signals that stop a service: Ctrl-C and SIGTERM.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Listens for Ctrl-C (SIGINT) and SIGTERM from this call on, and completes on the first. Until
/// the call, either signal kills the process outright: call it as a service starts, so that
/// one stopped during its start-up still stops cleanly. Needs a Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    let mut interrupt = listen(SignalKind::interrupt(), "Ctrl-C");
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = received(&mut interrupt) => {},
            () = received(&mut terminate) => {},
        }
    }
}

fn listen(kind: SignalKind, name: &str) -> Option<Signal> {
    signal(kind).inspect_err(|error| tracing::error!(%error, "cannot listen for {name}")).ok()
}

async fn received(signal: &mut Option<Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
