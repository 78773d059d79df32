//! The controller: takes orders on `coffee.web.requests` (validate, reserve, queue, reply),
//! cancels queued orders, and is the one writer of order records, applying the status changes
//! machines ask for. Any number of instances share the work through a queue group, and stand
//! by for the order requests none of them took ([`standby`]). Each also removes customers' names from the records of orders that ended long enough ago, and gives
//! back stock left reserved for no open order.

mod accept;
mod board;
mod cancel;
mod dead_letters;
pub mod privacy;
mod queue;
pub mod reconcile;
pub mod records;
mod standby;
pub mod view;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use brewq_protocol::ids::{OrderIdKey, RequestRef};
use brewq_protocol::subjects;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use queue::{QueueStats, WorkQueue, work_queue};
pub use records::Records;

/// Settings of one controller instance.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long accepting one order may take, every retry included: callers wait 10 s, and a
    /// stream electing a new leader takes up to about 9.
    pub answer_within: Duration,
    /// How long the stock manager may take to answer.
    pub stock_timeout: Duration,
    /// How long a customer's name stays on the record of an order that ended.
    pub names_kept_for: Duration,
    /// How often the records are scanned for names to remove (also once at start).
    pub name_scan_every: Duration,
    /// How often the reservations are scanned for stock held for no open order (also once at start).
    pub reconcile_every: Duration,
    /// How long a reservation stays reserved before the reconciler looks at its order.
    pub leak_after: Duration,
    /// Turns an order request without an idempotency key into its order id: the same for
    /// every controller of a cluster, so that a request two of them place is one order.
    pub order_id_key: OrderIdKey,
    /// How long a ready order stays on the pickup board.
    pub board_ready_for: Duration,
}

/// Customers' names are kept for 30 days after their order ends.
pub const DEFAULT_NAMES_KEPT_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// The records are scanned for names to remove every 5 minutes.
pub const DEFAULT_NAME_SCAN_EVERY: Duration = Duration::from_secs(5 * 60);
/// The reservations are scanned every 30 seconds.
pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(30);
/// A reservation held a minute, far longer than accepting an order takes, is looked at.
pub const DEFAULT_LEAK_AFTER: Duration = Duration::from_secs(60);

impl Default for Config {
    fn default() -> Self {
        Config {
            answer_within: Duration::from_secs(9),
            stock_timeout: Duration::from_secs(3),
            names_kept_for: DEFAULT_NAMES_KEPT_FOR,
            name_scan_every: DEFAULT_NAME_SCAN_EVERY,
            reconcile_every: DEFAULT_RECONCILE_EVERY,
            leak_after: DEFAULT_LEAK_AFTER,
            order_id_key: OrderIdKey::random(),
            board_ready_for: brewq_protocol::board::DEFAULT_READY_SHOWN_FOR,
        }
    }
}

/// What every handler of this instance shares.
struct Controller {
    config: Config,
    client: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
    records: Records,
    idempotency: async_nats::jetstream::kv::Store,
    dead_letters: async_nats::jetstream::kv::Store,
    queue: Arc<QueueStats>,
    /// The queue as customers see it, read once a second.
    snapshot: tokio::sync::watch::Receiver<brewq_protocol::QueueSnapshot>,
    /// The order requests held in case no controller takes them.
    standby: standby::Standby,
    /// The orders changed in the last hour, for the pickup board and the operator.
    board: Arc<board::Board>,
}

/// Shows the controller's counters at 0, so that a dashboard sees the series before the first
/// order: called by `run`, and by a process as soon as it serves its metrics, before it has
/// connected to the servers.
pub fn show_counters() {
    metrics::counter!("brewq_orders_accepted_total").increment(0);
    metrics::counter!("brewq_dead_letters_total").increment(0);
    metrics::counter!("brewq_names_removed_total").increment(0);
}

/// Serves until `shutdown` fires, then finishes the requests in hand and drains.
pub async fn run(config: Config, client: async_nats::Client, shutdown: CancellationToken) -> anyhow::Result<()> {
    show_counters();
    let jetstream = brewq_runtime::connect::jetstream(&client);
    let wait = |bucket| brewq_runtime::kv::wait_for_bucket(&jetstream, bucket, &shutdown);
    let (Some(records), Some(idempotency), Some(values), Some(machines), Some(dead_letters), Some(stock)) = (
        wait(subjects::ORDERS_BUCKET).await,
        wait(subjects::IDEMPOTENCY_BUCKET).await,
        wait(subjects::VALUES_BUCKET).await,
        wait(subjects::MACHINES_BUCKET).await,
        wait(subjects::DEAD_LETTERS_BUCKET).await,
        wait(subjects::STOCK_BUCKET).await,
    ) else {
        return Ok(());
    };
    let queue = Arc::new(QueueStats::default());
    let (snapshots, snapshot) = tokio::sync::watch::channel(brewq_protocol::QueueSnapshot::default());
    let (records, writer) = Records::new(records, client.clone());
    let writers = TaskTracker::new();
    writers.spawn(writer);
    let names = privacy::sweep(records.clone(), config.names_kept_for, config.name_scan_every, shutdown.clone());
    let reconciler = reconcile::Reconciler {
        client: client.clone(),
        jetstream: jetstream.clone(),
        stock,
        records: records.clone(),
        leak_after: config.leak_after,
        stock_timeout: config.stock_timeout,
    };
    let leaks = reconcile::sweep(reconciler, config.reconcile_every, shutdown.clone());
    let board = Arc::new(board::Board::new(config.board_ready_for));
    let controller = Arc::new(Controller {
        config,
        client: client.clone(),
        jetstream: jetstream.clone(),
        records,
        idempotency,
        dead_letters,
        queue: queue.clone(),
        snapshot,
        standby: standby::Standby::default(),
        board,
    });
    let tracker = TaskTracker::new();
    tracker.spawn(queue::refresh(queue, jetstream.clone(), values, machines, shutdown.clone()));
    tracker.spawn(view::refresh(jetstream.clone(), snapshots, shutdown.clone()));
    tracker.spawn(board::follow(client.clone(), controller.board.clone(), shutdown.clone()));
    tracker.spawn(names);
    tracker.spawn(leaks);
    for subject in [
        subjects::ORDER_REQUESTS,
        subjects::ORDER_CANCEL,
        subjects::ORDER_UPDATES,
        subjects::ORDER_READ,
        subjects::SHOP_READ,
        subjects::BOARD_READ,
        subjects::ACTIVITY_READ,
        subjects::DEAD_LETTER_RETRY,
        subjects::DEAD_LETTER_GIVE_UP,
    ] {
        let subscription = client
            .queue_subscribe(subject, subjects::CONTROLLER_QUEUE.into())
            .await
            .with_context(|| format!("subscribing to {subject}"))?;
        tracker.spawn(serve(controller.clone(), subject, subscription, tracker.clone(), shutdown.clone()));
    }
    stand_by(&controller, &tracker, &shutdown).await?;
    tracing::info!("controller ready");
    shutdown.cancelled().await;
    tracker.close();
    tracker.wait().await;
    // The last handle on the records goes: their writer sends what it holds and ends.
    drop(controller);
    writers.close();
    writers.wait().await;
    client.drain().await.context("draining the NATS connection")?;
    tracing::info!("controller stopped");
    Ok(())
}

/// Takes requests on one subject until shutdown, one task per request.
async fn serve(
    controller: Arc<Controller>,
    subject: &'static str,
    mut subscription: async_nats::Subscriber,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = shutdown.cancelled() => break,
            message = subscription.next() => match message { Some(message) => message, None => break },
        };
        let controller = controller.clone();
        let span = request_span(subject, &message);
        if subject == subjects::ORDER_REQUESTS {
            tracker.spawn(tracing::Instrument::instrument(take_order(controller, message, Instant::now()), span));
            continue;
        }
        tracker.spawn(tracing::Instrument::instrument(
            async move {
                // A machine's update is checked against its own subject, which names it.
                let on = if subject == subjects::ORDER_UPDATES { message.subject.as_str() } else { subject };
                let Some(reply_to) = brewq_runtime::respond::reply_subject(on, &message) else { return };
                let reply = match subject {
                    subjects::ORDER_CANCEL => cancel::handle(&controller, &message.payload).await,
                    subjects::DEAD_LETTER_RETRY => dead_letters::retry(&controller, &message.payload).await,
                    subjects::DEAD_LETTER_GIVE_UP => dead_letters::give_up(&controller, &message.payload).await,
                    subjects::ORDER_READ => view::order(&controller, &message.payload).await,
                    subjects::SHOP_READ => view::shop(&controller),
                    subjects::BOARD_READ => board::board(&controller.board),
                    subjects::ACTIVITY_READ => board::activity(&controller.board),
                    _ => match subjects::machine_updating(&message.subject) {
                        Some(machine) => records::handle_update(&controller, machine, &message.payload).await,
                        None => return,
                    },
                };
                if let Err(error) = controller.client.publish(reply_to, reply.into()).await {
                    tracing::warn!(%error, subject, "cannot send reply");
                }
            },
            span,
        ));
    }
    let _ = subscription.unsubscribe().await;
}

/// Takes one order request, `came` when it did: tells the other controllers, so that they
/// let go of their copies, places the order and answers.
async fn take_order(controller: Arc<Controller>, message: async_nats::Message, came: Instant) {
    let Some(request) = request_ref(&message) else { return };
    // Taken even if refused below: the others need not refuse it again.
    standby::take(&controller.standby, &controller.client, &request).await;
    let Some(reply_to) = brewq_runtime::respond::reply_subject(subjects::ORDER_REQUESTS, &message) else { return };
    let reply = accept::handle(&controller, &message.payload, &request, came).await;
    if let Err(error) = controller.client.publish(reply_to, reply.into()).await {
        tracing::warn!(%error, subject = subjects::ORDER_REQUESTS, "cannot send reply");
    }
}

/// What names an order request among the controllers: its sender's id for it, or its reply
/// subject, and its body; `None` for a request that wants no answer.
fn request_ref(message: &async_nats::Message) -> Option<RequestRef> {
    let reply = message.reply.as_ref()?;
    let request_id = message.headers.as_ref().and_then(|headers| headers.get(subjects::REQUEST_ID_HEADER));
    Some(RequestRef::of_request(request_id.map(|id| id.as_str()), reply.as_str(), &message.payload))
}

/// Hears every order request a second time, outside the queue group, and every notice that
/// one was taken; takes those nobody took in time ([`standby`]).
async fn stand_by(controller: &Arc<Controller>, tracker: &TaskTracker, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let taken = controller.client.subscribe(subjects::ORDER_TAKEN).await.context("subscribing to the taken notices")?;
    let mut copies = controller.client.subscribe(subjects::ORDER_REQUESTS).await.context("subscribing to the order requests")?;
    let listening = controller.clone();
    let stop = shutdown.clone();
    tracker.spawn(async move { standby::listen(&listening.standby, taken, stop).await });
    let holding = controller.clone();
    let stop = shutdown.clone();
    tracker.spawn(async move {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => break,
                message = copies.next() => match message { Some(message) => message, None => break },
            };
            if let Some(request) = request_ref(&message) {
                holding.standby.hold(request, message);
            }
        }
    });
    let watching = controller.clone();
    let (stop, takers) = (shutdown.clone(), tracker.clone());
    tracker.spawn(async move {
        standby::watch(&watching.standby, stop, |request, message, came| {
            let span = tracing::info_span!("request", subject = subjects::ORDER_REQUESTS, taken_over = request.to_string().as_str());
            span.in_scope(|| tracing::info!("no controller took this order request in time; taking it over"));
            takers.spawn(tracing::Instrument::instrument(take_order(watching.clone(), message, came), span));
        })
        .await
    });
    Ok(())
}

/// The span of one request, with the order id its sender put in the header, if any (a new
/// order gets its id in the handler's own span).
fn request_span(subject: &'static str, message: &async_nats::Message) -> tracing::Span {
    let order_id = message.headers.as_ref().and_then(|headers| headers.get(subjects::ORDER_ID_HEADER));
    match order_id {
        Some(order_id) => tracing::info_span!("request", subject, order = brewq_protocol::ids::order_ref(order_id.as_str())),
        None => tracing::info_span!("request", subject),
    }
}

/// Serializes one of our protocol replies; they are plain data and always serialize.
fn to_json<T: serde::Serialize>(reply: &T) -> Vec<u8> {
    serde_json::to_vec(reply).expect("protocol replies serialize")
}
