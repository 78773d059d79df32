//! The pickup board's data: `GET /api/board` and its live stream, from the controllers'
//! board ([`subjects::BOARD_READ`]), asked once a second by one task per instance, however
//! many screens show it. Tickets and first names only: the board never carries an order id.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use brewq_protocol::{BoardLookup, BoardView, subjects};
use brewq_runtime::request::request_bytes;
use futures::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::error::AppError;

/// Asks for the board every `every` until shutdown; `None` while it cannot be read.
pub(crate) async fn refresh(
    client: async_nats::Client,
    sender: watch::Sender<Option<BoardView>>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let client = &client;
    brewq_runtime::refresh::every(sender, every, shutdown, |_| async move {
        match request_bytes::<BoardLookup>(client, subjects::BOARD_READ, Vec::new(), every * 3).await {
            Ok(BoardLookup::Current { board }) => Some(board),
            Ok(BoardLookup::Unavailable { message }) => {
                tracing::debug!(message, "the board is not ready");
                None
            }
            Err(error) => {
                tracing::debug!(error = format!("{error:#}"), "cannot read the board");
                None
            }
        }
    })
    .await
}

/// `GET /api/board`: `{brewing: [...], ready: [...], more_brewing, more_ready}`, each item
/// `{ticket, name, machine, since}`, at most [`brewq_protocol::board::BOARD_MOST_LISTED`] a column.
pub async fn board(State(state): State<Arc<AppState>>) -> Result<Json<BoardView>, AppError> {
    let board = state.board.borrow().clone();
    board.map(Json).ok_or_else(|| AppError::Unavailable(anyhow::anyhow!("the board cannot be read right now")))
}

/// `GET /api/board/events`: a `board` event at once and on each change; `unavailable` while
/// the controllers cannot tell.
pub async fn board_events(State(state): State<Arc<AppState>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.board.clone();
    let stream = futures::stream::unfold((receiver, state, true), |(mut receiver, state, first)| async move {
        if !first {
            tokio::select! {
                () = state.shutdown.cancelled() => return None,
                changed = receiver.changed() => changed.ok()?,
            }
        }
        let board = receiver.borrow_and_update().clone();
        let event = match board {
            Some(board) => Event::default().event("board").json_data(&board).unwrap_or_default(),
            None => Event::default().event("unavailable").data("the board cannot be read right now"),
        };
        Some((Ok(event), (receiver, state, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
