//! Standing by for the order requests no controller took. The servers hand a request to one
//! member of the queue group, on any server: one behind a server that has just stopped
//! answering (paused, cut off) is lost with it until its peers give that server up, and a
//! plain client (`nats req`, a kiosk) never sends it again. So every controller also hears
//! every order request on a plain subscription and holds it; the controller that takes a
//! request from the queue group says so on [`subjects::ORDER_TAKEN`] before anything else, and
//! the others let it go. A request nobody took within [`TAKE_OVER_AFTER`] is taken by the
//! standbys that hold it, inside the customer's 10 s. A slow taker and a standby may then both
//! place it: a keyless order's id comes from the request ([`brewq_protocol::ids::OrderIdKey`]),
//! so they place one order, as two retries under one idempotency key do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use brewq_protocol::ids::RequestRef;
use brewq_protocol::subjects;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// How long a request waits for another controller to take it: far more than taking one
/// takes (a few milliseconds), and early enough that the customer's 10 s leave room to place
/// it through an election. Each standby waits up to [`TAKE_OVER_SPREAD`] more, at random, so
/// that most often one takes a lost request over and the others hear it did.
pub const TAKE_OVER_AFTER: Duration = Duration::from_secs(2);
const TAKE_OVER_SPREAD: Duration = Duration::from_millis(800);
/// How often the held requests are looked at.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// How long a taken request is remembered, for a copy that comes after the news it was taken.
const REMEMBER_TAKEN_FOR: Duration = Duration::from_secs(30);
/// Requests held at most; beyond, new ones are not held (counted in
/// `brewq_order_requests_not_held_total`), so that a flood costs memory within bounds.
const MOST_HELD: usize = 100_000;

struct Held {
    message: async_nats::Message,
    came: Instant,
    due: Instant,
}

/// The requests this controller holds, and those it knows were taken.
#[derive(Default)]
pub(crate) struct Standby {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Requests not known to be taken: when they came, when this controller takes them over.
    held: HashMap<RequestRef, Held>,
    /// Requests known to be taken, with when that was heard.
    taken: HashMap<RequestRef, Instant>,
}

impl Standby {
    /// Holds a request heard on the plain subscription, unless it is known to be taken.
    pub(crate) fn hold(&self, request: RequestRef, message: async_nats::Message) {
        let mut state = self.state.lock().expect("standby state");
        if state.taken.contains_key(&request) {
            return;
        }
        if state.held.len() >= MOST_HELD {
            metrics::counter!("brewq_order_requests_not_held_total").increment(1);
            return;
        }
        let came = Instant::now();
        let due = came + TAKE_OVER_AFTER + TAKE_OVER_SPREAD.mul_f64(rand::random::<f64>());
        state.held.insert(request, Held { message, came, due });
    }

    /// Notes that `request` was taken (by this controller or another): it is let go.
    pub(crate) fn taken(&self, request: RequestRef) {
        let mut state = self.state.lock().expect("standby state");
        state.held.remove(&request);
        state.taken.insert(request, Instant::now());
    }

    /// The held requests nobody took in time, with when they came, let go of here (the
    /// caller takes them); and the taken ones forgotten once no copy can still come.
    fn overdue(&self, now: Instant) -> Vec<(RequestRef, async_nats::Message, Instant)> {
        let mut state = self.state.lock().expect("standby state");
        state.taken.retain(|_, heard| now.duration_since(*heard) < REMEMBER_TAKEN_FOR);
        let late: Vec<RequestRef> = state.held.iter().filter(|(_, held)| held.due <= now).map(|(request, _)| *request).collect();
        let late =
            late.into_iter().filter_map(|request| state.held.remove(&request).map(|held| (request, held.message, held.came))).collect();
        brewq_protocol::shrink_after_burst(&mut state.taken);
        brewq_protocol::shrink_after_burst(&mut state.held);
        late
    }
}

/// Says that this controller takes `request`, to the others and to itself.
pub(crate) async fn take(standby: &Standby, client: &async_nats::Client, request: &RequestRef) {
    standby.taken(*request);
    if let Err(error) = client.publish(subjects::ORDER_TAKEN, request.to_string().into()).await {
        tracing::warn!(%error, "cannot tell the other controllers an order request is taken");
    }
}

/// Notes every request the other controllers say they took, until shutdown.
pub(crate) async fn listen(standby: &Standby, mut taken: async_nats::Subscriber, shutdown: CancellationToken) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = taken.next() => match message { Some(message) => message, None => break },
        };
        match std::str::from_utf8(&message.payload).ok().and_then(RequestRef::parse) {
            Some(request) => standby.taken(request),
            None => tracing::warn!("a notice of a taken order request that names none"),
        }
    }
}

/// Every [`LOOK_EVERY`], hands `take_over` the requests nobody took in time, with when they
/// came, until shutdown.
pub(crate) async fn watch(
    standby: &Standby,
    shutdown: CancellationToken,
    mut take_over: impl FnMut(RequestRef, async_nats::Message, Instant),
) {
    let mut looks = tokio::time::interval(LOOK_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = looks.tick() => {}
        }
        for (request, message, came) in standby.overdue(Instant::now()) {
            metrics::counter!("brewq_orders_taken_over_total").increment(1);
            take_over(request, message, came);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(reply: &str) -> async_nats::Message {
        async_nats::Message {
            subject: subjects::ORDER_REQUESTS.into(),
            reply: Some(reply.into()),
            payload: "{}".into(),
            headers: None,
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn a_request_nobody_took_is_overdue_once_and_a_taken_one_never() {
        let standby = Standby::default();
        let (lost, served) = (RequestRef::of("_INBOX_web.a.1", b"{}"), RequestRef::of("_INBOX_web.a.2", b"{}"));
        let start = Instant::now();
        standby.hold(lost, message("_INBOX_web.a.1"));
        standby.hold(served, message("_INBOX_web.a.2"));
        standby.taken(served);
        assert!(standby.overdue(start).is_empty(), "nothing is overdue before its time");
        let overdue: Vec<RequestRef> =
            standby.overdue(start + (TAKE_OVER_AFTER + TAKE_OVER_SPREAD) * 2).into_iter().map(|(request, ..)| request).collect();
        assert_eq!(overdue, [lost]);
        assert!(standby.overdue(start + (TAKE_OVER_AFTER + TAKE_OVER_SPREAD) * 3).is_empty(), "an overdue request is handed over once");
    }

    #[test]
    fn a_copy_heard_after_the_news_it_was_taken_is_not_held() {
        let standby = Standby::default();
        let request = RequestRef::of("_INBOX_web.a.1", b"{}");
        standby.taken(request);
        standby.hold(request, message("_INBOX_web.a.1"));
        assert!(standby.overdue(Instant::now() + (TAKE_OVER_AFTER + TAKE_OVER_SPREAD) * 2).is_empty());
    }

    #[test]
    fn taken_requests_are_forgotten_after_a_while() {
        let standby = Standby::default();
        let request = RequestRef::of("_INBOX_web.a.1", b"{}");
        standby.taken(request);
        let _ = standby.overdue(Instant::now() + REMEMBER_TAKEN_FOR * 2);
        assert!(standby.state.lock().expect("state").taken.is_empty());
    }
}
