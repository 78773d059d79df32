//! The shop's figures as the pages show them: the queue and the fleet, asked of the
//! controllers once a second by one task per instance, and one order by its id. The web holds
//! no JetStream rights: it cannot list or watch orders, only ask for one it has the id of.

use std::time::Duration;

use brewq_protocol::{MachineView, OrderLookup, OrderView, QueueView, ShopView, subjects};
use brewq_runtime::request::request_bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::AppError;

/// The latest figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub queue: Option<QueueView>,
    pub waiting: u64,
    pub in_flight: u64,
    pub machines: Vec<MachineView>,
}

impl Figures {
    /// The figures of a controller's answer; none when it could not read them.
    fn of(view: ShopView) -> Self {
        match view {
            ShopView::Current { queue, waiting, in_flight, machines } => Figures { queue: Some(queue), waiting, in_flight, machines },
            ShopView::Unavailable { .. } => Figures::default(),
        }
    }

    /// The queue, unless the figures are not known now.
    pub fn fresh_queue(&self) -> Option<&QueueView> {
        self.queue.as_ref()
    }
}

/// Asks for the figures every `every` until shutdown; an unanswered request makes them unknown.
pub(crate) async fn refresh(client: async_nats::Client, sender: watch::Sender<Figures>, every: Duration, shutdown: CancellationToken) {
    let client = &client;
    brewq_runtime::refresh::every(sender, every, shutdown, |_| async move {
        match request_bytes::<ShopView>(client, subjects::SHOP_READ, Vec::new(), every * 3).await {
            Ok(view) => Figures::of(view),
            Err(error) => {
                tracing::debug!(error = format!("{error:#}"), "cannot read the queue");
                Figures::default()
            }
        }
    })
    .await
}

/// The order `order_id` with where it stands now, if there is one.
pub async fn order(client: &async_nats::Client, order_id: &str, timeout: Duration) -> Result<Option<OrderView>, AppError> {
    if !brewq_protocol::ids::is_order_id(order_id) {
        return Ok(None);
    }
    let header = (subjects::ORDER_ID_HEADER, order_id);
    let lookup: OrderLookup =
        brewq_runtime::request::request_bytes_with_header(client, subjects::ORDER_READ, header, order_id.as_bytes().to_vec(), timeout)
            .await?;
    match lookup {
        OrderLookup::Found { order } => Ok(Some(*order)),
        OrderLookup::NotFound => Ok(None),
        OrderLookup::Unavailable { message } => Err(AppError::Unavailable(anyhow::anyhow!(message))),
    }
}
