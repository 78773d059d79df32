//! The chain's dashboard, on the hub (`brewq office --chain-keys`): every shop as the hub last
//! heard from it (machines, stock, orders by status, failed orders), and the chain operator's
//! actions on one shop: a machine command and a restock, each kept on the hub and applied by the
//! shop once, when its link is up (a machine command only within a quarter of an hour). Behind the same
//! login as the operator's pages; each action in the hub's audit trail.

mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use brewq_protocol::machine::ChainMachineCommand;
use brewq_protocol::{MachineCommand, StockCommand, now, subjects};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::admin::actions::{Restock, audit, request_id};
use crate::admin::require;
use crate::error::AppError;
pub use view::{ShopState, ShopSummary};

/// The shops of the chain, each followed from the hub.
#[derive(Debug, Clone, Default)]
pub struct Chain {
    shops: Vec<Shop>,
}

#[derive(Clone)]
struct Shop {
    id: u32,
    /// A user of the shop's account on the hub, with the operator's rights there.
    client: async_nats::Client,
    state: watch::Receiver<ShopState>,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shop({})", self.id)
    }
}

impl Chain {
    /// Follows each shop `(id, client)` until `shutdown`.
    pub fn follow(shops: Vec<(u32, async_nats::Client)>, shutdown: &CancellationToken) -> Chain {
        let shops = shops
            .into_iter()
            .map(|(id, client)| {
                let (sender, state) = watch::channel(ShopState::default());
                tokio::spawn(view::follow(client.clone(), sender, shutdown.clone()));
                Shop { id, client, state }
            })
            .collect();
        Chain { shops }
    }

    /// Every shop as shown now.
    pub fn summaries(&self) -> Vec<ShopSummary> {
        self.shops.iter().map(|shop| shop.state.borrow().summary(shop.id)).collect()
    }

    fn shop(&self, id: u32) -> Result<&Shop, AppError> {
        self.shops.iter().find(|shop| shop.id == id).ok_or_else(|| AppError::status(StatusCode::NOT_FOUND, &format!("no shop {id}")))
    }
}

type Shared = State<Arc<AppState>>;

fn chain_of(state: &AppState) -> Result<&Chain, AppError> {
    state.config.chain.as_ref().ok_or_else(|| AppError::status(StatusCode::NOT_FOUND, "this is no chain's hub"))
}

/// `GET /chain`: the dashboard, or the login page for a visitor without a session.
pub async fn page(State(state): Shared, Query(query): Query<crate::i18n::LangQuery>, headers: HeaderMap) -> Response {
    match require(&state, &headers, false).await {
        Ok(_) => crate::i18n::page(include_str!("../../assets/chain.html"), query.lang.as_deref(), &headers),
        Err(_) => Redirect::to("/admin/login").into_response(),
    }
}

/// `GET /api/chain/state`: every shop.
pub async fn shops(State(state): Shared, headers: HeaderMap) -> Result<Json<Vec<ShopSummary>>, AppError> {
    require(&state, &headers, false).await?;
    Ok(Json(chain_of(&state)?.summaries()))
}

/// `GET /api/chain/events`: every shop, every second.
pub async fn events(State(state): Shared, headers: HeaderMap) -> Result<impl IntoResponse, AppError> {
    require(&state, &headers, false).await?;
    chain_of(&state)?;
    let stream = futures::stream::unfold((state, true), |(state, first)| async move {
        if !first {
            tokio::select! {
                () = state.shutdown.cancelled() => return None,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let shops = state.config.chain.as_ref().map(Chain::summaries).unwrap_or_default();
        let event = Event::default().event("chain").json_data(&shops).unwrap_or_default();
        Some((Ok::<_, std::convert::Infallible>(event), (state, false)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `POST /api/chain/shops/{shop}/machines/{id}/{pause|resume|out-of-service}`: kept on the hub
/// (once, whatever the retries of this request's id) and applied in the shop once, as soon as
/// its link is up, unless that is later than [`MACHINE_COMMAND_VALID_FOR`] from now. Answers
/// 202 with the command's number on the hub and the time it may be applied until.
pub async fn machine(
    State(state): Shared,
    headers: HeaderMap,
    Path((shop, id, action)): Path<(u32, u32, String)>,
) -> Result<Response, AppError> {
    let (user, operator) = require(&state, &headers, true).await?;
    let shop = chain_of(&state)?.shop(shop)?;
    let command = MachineCommand::parse(&action).ok_or_else(|| AppError::status(StatusCode::NOT_FOUND, "unknown machine action"))?;
    if id == 0 {
        return Err(AppError::status(StatusCode::NOT_FOUND, "no machine 0: machines are numbered from 1"));
    }
    let command = ChainMachineCommand::new(id, command, now(), MACHINE_COMMAND_VALID_FOR);
    let key = request_id(&headers)?;
    let stored = send_machine_command(&shop.client, &command, key.as_deref()).await;
    let target = format!("shop {} machine {id}", shop.id);
    audit(&operator, &user, command.command.action_name(), &target, stored.as_ref().err().map(|error| format!("{error:#}"))).await;
    let sequence = stored.map_err(AppError::Unavailable)?;
    let message = format!("kept on the hub; shop {} applies it once, as soon as its link is up", shop.id);
    let body = serde_json::json!({
        "shop": shop.id, "machine": id, "command": sequence, "valid_until": command.valid_until_text(), "message": message,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `POST /api/chain/shops/{shop}/stock/restock` with `{"items": {"arabica": 1000}}`: kept on
/// the hub (once, whatever the retries of this request's id) and applied by the shop once, as
/// soon as its link is up. Answers 202 with the command's number on the hub.
pub async fn restock(
    State(state): Shared,
    headers: HeaderMap,
    Path(shop): Path<u32>,
    Json(restock): Json<Restock>,
) -> Result<Response, AppError> {
    let (user, operator) = require(&state, &headers, true).await?;
    let shop = chain_of(&state)?.shop(shop)?;
    let items = restock.items()?;
    let target = format!(
        "shop {}: {}",
        shop.id,
        items.iter().map(|(ingredient, amount)| format!("{ingredient}={amount}")).collect::<Vec<_>>().join(" ")
    );
    // Kept once on the hub by the request's key, applied once in the shop by its number there.
    let command = StockCommand::Restock { items, request_id: None };
    // A request sent again with the same key is kept once.
    let key = request_id(&headers)?;
    let stored = send_command(&shop.client, &command, key.as_deref()).await;
    audit(&operator, &user, "restock", &target, stored.as_ref().err().map(|error| format!("{error:#}"))).await;
    let sequence = stored.map_err(AppError::Unavailable)?;
    let message = format!("kept on the hub; shop {} applies it once, as soon as its link is up", shop.id);
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"shop": shop.id, "command": sequence, "message": message}))).into_response())
}

/// How long after it is sent a machine command from the hub may still be applied in the shop:
/// one that arrives later (its shop's link was down) is dropped, and the drop audited there.
pub const MACHINE_COMMAND_VALID_FOR: Duration = Duration::from_secs(15 * 60);

/// Stores `command` in the hub's commands to the shop behind `client` (a user of its account
/// on the hub), under the message id `id` (a new one if `None`): sent again with the same id
/// within two minutes, it is stored once. Tried a few times; its sequence on the hub.
pub async fn send_command(client: &async_nats::Client, command: &StockCommand, id: Option<&str>) -> anyhow::Result<u64> {
    send(client, subjects::CHAIN_COMMANDS, serde_json::to_vec(command)?, id).await
}

/// Stores a machine command in the hub's commands to the shop behind `client`, as
/// [`send_command`] does a stock command.
pub async fn send_machine_command(client: &async_nats::Client, command: &ChainMachineCommand, id: Option<&str>) -> anyhow::Result<u64> {
    send(client, subjects::CHAIN_MACHINE_COMMANDS, serde_json::to_vec(command)?, id).await
}

async fn send(client: &async_nats::Client, subject: &'static str, payload: Vec<u8>, id: Option<&str>) -> anyhow::Result<u64> {
    let jetstream = async_nats::jetstream::new(client.clone());
    let mut headers = async_nats::HeaderMap::new();
    let id = id.map_or_else(|| nuid::next().to_string(), str::to_owned);
    headers.insert("Nats-Msg-Id", id.as_str());
    let mut last = None;
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        match jetstream.publish_with_headers(subject, headers.clone(), payload.clone().into()).await {
            Ok(ack) => match ack.await {
                Ok(ack) => return Ok(ack.sequence),
                Err(error) => last = Some(anyhow::Error::from(error)),
            },
            Err(error) => last = Some(error.into()),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("not sent")).context("the hub did not keep the command"))
}
