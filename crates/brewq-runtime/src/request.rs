//! JSON request/reply over core NATS, with a deadline and errors that say what failed.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Nobody serves the subject right now.
    #[error("no {subject} service is running")]
    NoResponders { subject: String },
    /// The service did not answer in time.
    #[error("{subject} did not answer within {timeout:?}")]
    TimedOut { subject: String, timeout: Duration },
    /// The connection failed.
    #[error("request to {subject} failed: {source}")]
    Transport { subject: String, source: async_nats::RequestError },
    /// The answer was not the expected JSON.
    #[error("bad reply from {subject}: {source}")]
    BadReply { subject: String, source: serde_json::Error },
}

/// Sends `request` as JSON on `subject` and parses the JSON reply.
pub async fn request_json<Req: Serialize, Rep: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    request: &Req,
    timeout: Duration,
) -> Result<Rep, RequestError> {
    send(client, subject, None, to_json(request), timeout).await
}

/// Like [`request_json`], with one header (`(name, value)`), such as the order id that lets
/// the receiving service's logs name the order.
pub async fn request_json_with_header<Req: Serialize, Rep: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    header: (&str, &str),
    request: &Req,
    timeout: Duration,
) -> Result<Rep, RequestError> {
    send(client, subject, Some(header), to_json(request), timeout).await
}

/// Sends raw bytes on `subject` and parses the JSON reply.
pub async fn request_bytes<Rep: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Rep, RequestError> {
    send(client, subject, None, payload, timeout).await
}

/// Like [`request_bytes`], with one header (`(name, value)`).
pub async fn request_bytes_with_header<Rep: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    header: (&str, &str),
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Rep, RequestError> {
    send(client, subject, Some(header), payload, timeout).await
}

/// Sends a stock command to the stock managers, on its own subject and with the order id in
/// the header when it is about an order (so that their logs name the order).
pub async fn stock(
    client: &async_nats::Client,
    command: &brewq_protocol::StockCommand,
    timeout: Duration,
) -> Result<brewq_protocol::StockReply, RequestError> {
    let subject = brewq_protocol::subjects::stock_subject(command);
    let header = command.order_id().map(|order_id| (brewq_protocol::subjects::ORDER_ID_HEADER, order_id));
    send(client, &subject, header, to_json(command), timeout).await
}

fn to_json<Req: Serialize>(request: &Req) -> Vec<u8> {
    // Serializing our own protocol types cannot fail: they are plain data with string keys.
    serde_json::to_vec(request).expect("protocol types serialize")
}

async fn send<Rep: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    header: Option<(&str, &str)>,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Rep, RequestError> {
    let subject_owned = subject.to_owned();
    let sent = async {
        match header {
            Some((name, value)) => {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(name, value);
                client.request_with_headers(subject_owned.clone(), headers, payload.into()).await
            }
            None => client.request(subject_owned.clone(), payload.into()).await,
        }
    };
    let message = match tokio::time::timeout(timeout, sent).await {
        Err(_) => return Err(RequestError::TimedOut { subject: subject_owned, timeout }),
        Ok(Err(error)) => return Err(classify(subject_owned, timeout, error)),
        Ok(Ok(message)) => message,
    };
    serde_json::from_slice(&message.payload).map_err(|source| RequestError::BadReply { subject: subject_owned, source })
}

fn classify(subject: String, timeout: Duration, error: async_nats::RequestError) -> RequestError {
    match error.kind() {
        async_nats::RequestErrorKind::NoResponders => RequestError::NoResponders { subject },
        async_nats::RequestErrorKind::TimedOut => RequestError::TimedOut { subject, timeout },
        _ => RequestError::Transport { subject, source: error },
    }
}
