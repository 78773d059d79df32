//! Server-Sent Events: an order's life as it happens, and the queue's waiting time. The
//! browser's EventSource reconnects by itself after a blip or a restart of the web server.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use brewq_protocol::OrderView;
use brewq_protocol::subjects;
use futures::{Stream, StreamExt};

use crate::AppState;
use crate::error::{AppError, not_found};
use crate::queue::order;

/// How often a queued or brewing order's place and progress are sent again.
const TICK: Duration = Duration::from_secs(1);

/// `GET /api/orders/{id}/events`: an `order` event at once, then one each time the order
/// changes and every second while it waits or brews (its place and progress); the stream ends
/// after the final state. The order is asked of the controllers each time, woken by their
/// announcement on [`subjects::order_changed`]: the web may read one order by its id, and
/// watch none.
pub async fn order_events(
    State(state): State<Arc<AppState>>,
    Path(order_id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    if !brewq_protocol::ids::is_order_id(&order_id) {
        return Err(not_found(&order_id));
    }
    // Listening before the first read: a change between the two is not missed.
    let changes = state.client.subscribe(subjects::order_changed(&order_id)).await.map_err(anyhow::Error::from)?;
    let view = order(&state.client, &order_id, state.config.request_timeout).await?.ok_or_else(|| not_found(&order_id))?;
    let follow = Follow { order_id, changes: changes.boxed(), state };
    let stream = futures::stream::unfold((Some(view), Some(follow)), |(view, follow)| async move {
        let mut follow = follow?;
        let view = match view {
            Some(view) => view,
            None => follow.next_view().await?,
        };
        let event = Event::default().event("order").json_data(&view).unwrap_or_default();
        // After the final state, the stream ends: nothing is left to follow.
        let follow = (!view.record.status.is_terminal()).then_some(follow);
        Some((Ok(event), (None, follow)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One page following one order.
struct Follow {
    order_id: String,
    changes: futures::stream::BoxStream<'static, async_nats::Message>,
    state: Arc<AppState>,
}

impl Follow {
    /// The order after its next change or a tick, whichever comes first; `None` to end the
    /// stream (shutdown, the id gone). A blip of the back end only skips a tick.
    async fn next_view(&mut self) -> Option<OrderView> {
        loop {
            tokio::select! {
                () = self.state.shutdown.cancelled() => return None,
                changed = self.changes.next() => if changed.is_none() {
                    // The subscription ended (the connection is closing): ticks only.
                    self.changes = futures::stream::pending().boxed();
                },
                () = tokio::time::sleep(TICK) => {}
            }
            match order(&self.state.client, &self.order_id, self.state.config.request_timeout).await {
                Ok(view) => return view,
                Err(_) => continue,
            }
        }
    }
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
        let view = receiver.borrow_and_update().queue.clone();
        let event = match view {
            Some(view) => Event::default().event("queue").json_data(&view).unwrap_or_default(),
            None => Event::default().comment("queue figures unavailable"),
        };
        Some((Ok(event), (receiver, state, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
