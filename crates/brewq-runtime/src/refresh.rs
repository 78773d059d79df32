//! A value kept fresh: read again every interval, its watchers told only when it changed.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Reads the value with `read` (given the one it replaces) at once and then every `every`,
/// until `shutdown`; the watchers of `sender` wake only when the new value differs.
pub async fn every<T, F, Fut>(sender: watch::Sender<T>, every: Duration, shutdown: CancellationToken, mut read: F)
where
    T: PartialEq + Clone,
    F: FnMut(T) -> Fut,
    Fut: Future<Output = T>,
{
    loop {
        let previous = sender.borrow().clone();
        let value = read(previous).await;
        sender.send_if_modified(|current| {
            let changed = *current != value;
            *current = value;
            changed
        });
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
