//! The pickup board and the shop's last hour ([`subjects::BOARD_READ`],
//! [`subjects::ACTIVITY_READ`]): each controller follows the order records changed in the last
//! hour into a [`RecentOrders`], and answers from it. It reads them in batches of direct gets
//! from an hour ago, then asks for what was written since, a few times a second (no consumer:
//! a controller may create none). Every controller follows the same records, so any of them
//! gives the same board; one that restarts reads the hour again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brewq_protocol::{ActivityLookup, BoardLookup, OrderRecord, RecentOrders, now, subjects};
use tokio_util::sync::CancellationToken;

use crate::to_json;

/// How often the follow asks for the records written since its last read.
const ASK_EVERY: Duration = Duration::from_millis(250);

/// The recent orders, and whether they are caught up with the records.
#[derive(Debug)]
pub(crate) struct Board {
    recent: Mutex<RecentOrders>,
    caught_up: std::sync::atomic::AtomicBool,
}

impl Board {
    /// An empty board, not caught up, showing ready orders for `ready_for`.
    pub(crate) fn new(ready_for: Duration) -> Board {
        Board { recent: Mutex::new(RecentOrders::new(ready_for)), caught_up: Default::default() }
    }

    fn with<T>(&self, read: impl FnOnce(&mut RecentOrders) -> T) -> T {
        // A panic while holding the lock leaves plain data behind, still readable.
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        read(&mut recent)
    }

    fn caught_up(&self) -> bool {
        self.caught_up.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Answers [`subjects::BOARD_READ`].
pub(crate) fn board(board: &Board) -> Vec<u8> {
    let lookup = match board.caught_up() {
        true => BoardLookup::Current { board: board.with(|recent| recent.board(now())) },
        false => BoardLookup::Unavailable { message: "the board is being read; try again shortly".into() },
    };
    to_json(&lookup)
}

/// Answers [`subjects::ACTIVITY_READ`].
pub(crate) fn activity(board: &Board) -> Vec<u8> {
    let lookup = match board.caught_up() {
        true => ActivityLookup::Current { activity: board.with(|recent| recent.activity(now())) },
        false => ActivityLookup::Unavailable { message: "the last hour is being read; try again shortly".into() },
    };
    to_json(&lookup)
}

/// Follows the records into `board` until shutdown, forgetting each minute what left the
/// hour and the names of orders that left the board; a broken follow starts again, an hour
/// back, after a pause.
pub(crate) async fn follow(client: async_nats::Client, board: Arc<Board>, shutdown: CancellationToken) {
    loop {
        if let Err(error) = follow_once(&client, &board, &shutdown).await {
            tracing::warn!(error = format!("{error:#}"), "cannot follow the order records for the board; trying again");
        }
        board.caught_up.store(false, std::sync::atomic::Ordering::Relaxed);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

async fn follow_once(client: &async_nats::Client, board: &Board, shutdown: &CancellationToken) -> anyhow::Result<()> {
    use brewq_runtime::direct::{self, Start};
    let stream = format!("KV_{}", subjects::ORDERS_BUCKET);
    let filter = format!("$KV.{}.>", subjects::ORDERS_BUCKET);
    let hour_ago = now() - time::Duration::minutes(brewq_protocol::board::ACTIVITY_MINUTES as i64);
    let mut next = Start::Time(hour_ago);
    let mut ask = tokio::time::interval(ASK_EVERY);
    ask.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prune = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = prune.tick() => { board.with(|recent| recent.prune(now())); continue }
            _ = ask.tick() => {}
        }
        next = direct::read(client, &stream, &filter, next, |read| {
            let order_id = read.subject.rsplit('.').next().unwrap_or_default();
            match serde_json::from_slice::<OrderRecord>(&read.payload) {
                Ok(record) => board.with(|recent| recent.note(&record, now())),
                // A deleted or purged record: its order leaves the board.
                Err(_) => board.with(|recent| recent.forget(order_id)),
            }
        })
        .await?;
        board.caught_up.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
