//! What one client, or a crowd, can make an instance hold: every request is refused at once
//! with 503 and `Retry-After` beyond [`Config::max_in_flight`] answers in the making, its body
//! is read whole and refused with 413 past [`Config::max_body_bytes`], and it is answered
//! within [`Config::answer_within`] (503 otherwise). An event stream outlives its request: it
//! is not cut by the deadline, but holds one of [`Config::max_event_streams`] slots until it
//! ends.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use brewq_protocol::{OrderReply, RejectCode};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Config;

/// The routes that answer with a Server-Sent Events stream.
pub(crate) const EVENT_STREAMS: [&str; 3] = ["/api/orders/{id}/events", "/api/queue/events", "/api/admin/events"];

/// The bounds of one instance, shared by every route.
pub struct Limits {
    in_flight: Arc<Semaphore>,
    event_streams: Arc<Semaphore>,
    max_body_bytes: usize,
    answer_within: Duration,
}

impl Limits {
    pub fn new(config: &Config) -> Limits {
        Limits {
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            event_streams: Arc::new(Semaphore::new(config.max_event_streams)),
            max_body_bytes: config.max_body_bytes,
            answer_within: config.answer_within,
        }
    }
}

/// The middleware: sheds, caps the body, times the answer, and keeps an event stream's slot
/// for as long as the stream is open.
pub async fn guard(State(limits): State<Arc<Limits>>, request: Request, next: Next) -> Response {
    let Ok(in_flight) = limits.in_flight.clone().try_acquire_owned() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, Some(1), "the coffee shop is busy; please retry in a second");
    };
    let streams = request.extensions().get::<MatchedPath>().is_some_and(|route| EVENT_STREAMS.contains(&route.as_str()));
    let slot = match streams.then(|| limits.event_streams.clone().try_acquire_owned()) {
        Some(Err(_)) => return refuse(StatusCode::SERVICE_UNAVAILABLE, Some(5), "too many live updates open; please retry shortly"),
        Some(Ok(slot)) => Some(slot),
        None => None,
    };
    let answer = async {
        match read_body(request, limits.max_body_bytes).await {
            Ok(request) => next.run(request).await,
            Err(refusal) => refusal,
        }
    };
    // Only the answer's head is timed: a stream's events come after it.
    let response = tokio::time::timeout(limits.answer_within, answer).await.unwrap_or_else(|_| {
        let message = format!("no answer within {} s; please retry", limits.answer_within.as_secs_f64());
        refuse(StatusCode::SERVICE_UNAVAILABLE, None, &message)
    });
    drop(in_flight);
    match slot {
        Some(slot) if response.status().is_success() => holding(response, slot),
        _ => response,
    }
}

/// The request with its body read, or a 413 if it is longer than `max` bytes (announced or
/// sent).
async fn read_body(request: Request, max: usize) -> Result<Request, Response> {
    let too_large = || refuse(StatusCode::PAYLOAD_TOO_LARGE, None, &format!("request bodies are limited to {max} bytes"));
    let announced = request.headers().get(header::CONTENT_LENGTH).and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > max as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let mut chunks = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| refuse(StatusCode::BAD_REQUEST, None, "the request body could not be read"))?;
        if bytes.len() + chunk.len() > max {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// `response` with a body that gives `slot` back when the stream ends or the client leaves.
fn holding(response: Response, slot: OwnedSemaphorePermit) -> Response {
    let (parts, body) = response.into_parts();
    let events = body.into_data_stream().map(move |chunk| {
        let _slot = &slot;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(events))
}

/// A refusal in the shape of the other errors (`status`, `code`, `message`), with
/// `Retry-After` in seconds when given.
pub(crate) fn refuse(status: StatusCode, retry_after: Option<u64>, message: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => RejectCode::Invalid,
        _ => RejectCode::Unavailable,
    };
    let mut response = (status, axum::Json(OrderReply::rejected(code, message, None))).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
