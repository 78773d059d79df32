//! Server-Sent Events: an order's life as it happens, and the queue's waiting time. The
//! browser's EventSource reconnects by itself after a blip or a restart of the web server.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use brewq_protocol::OrderRecord;
use futures::{Stream, StreamExt};

use crate::AppState;
use crate::api::read_record;
use crate::error::{AppError, not_found};

/// How often a queued or brewing order's place and progress are sent again.
const TICK: Duration = Duration::from_secs(1);

/// `GET /api/orders/{id}/events`: one `order` event per change (and every second while the
/// order waits or brews, for its place and progress); the stream ends after the final state.
pub async fn order_events(
    State(state): State<Arc<AppState>>,
    Path(order_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let record = read_record(&state, &order_id).await?.ok_or_else(|| not_found(&order_id))?;
    let watch = state.records().await?.watch(&order_id).await.map_err(anyhow::Error::from)?;
    let updates = watch.filter_map(|entry| async move {
        entry.ok().and_then(|entry| serde_json::from_slice::<OrderRecord>(&entry.value).ok())
    });
    let stream = futures::stream::unfold(
        (record, Box::pin(updates), state, true),
        |(mut record, mut updates, state, first)| async move {
            if !first {
                if record.status.is_terminal() {
                    return None;
                }
                tokio::select! {
                    () = state.shutdown.cancelled() => return None,
                    update = updates.next() => record = update?,
                    () = tokio::time::sleep(TICK) => {}
                }
            }
            let view = state.queue.borrow().order_view(record.clone());
            let event = Event::default().event("order").json_data(&view).unwrap_or_default();
            Some((Ok(event), (record, updates, state, false)))
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /api/queue/events`: a `queue` event with the waiting time, at once and on each change.
pub async fn queue_events(State(state): State<Arc<AppState>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.queue.clone();
    let stream = futures::stream::unfold((receiver, state, true), |(mut receiver, state, first)| async move {
        if !first {
            tokio::select! {
                () = state.shutdown.cancelled() => return None,
                changed = receiver.changed() => changed.ok()?,
            }
        }
        let view = receiver.borrow_and_update().view();
        let event = Event::default().event("queue").json_data(&view).unwrap_or_default();
        Some((Ok(event), (receiver, state, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
