//! Reading a stream's messages in batches of direct gets, without creating a consumer: a whole
//! bucket from its first message, or what was written since a sequence or a time, asked again
//! to follow it. The roles that may create no consumer read this way (a consumer's delivery
//! subject is its creator's to choose, and the servers would store what they deliver there);
//! the stream must allow direct gets, and any of its replicas may answer.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use async_nats::jetstream::kv::Operation;
use async_nats::{Client, HeaderMap, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use time::OffsetDateTime;

/// Messages asked for in one request.
const BATCH: usize = 256;

/// How long a read waits for the next message of a batch before it gives up.
const STALL: Duration = Duration::from_secs(5);

/// How many times a read asks again for messages a batch announced, answered "none" by a
/// replica behind, and how long it waits before each.
const BEHIND_TRIES: u32 = 20;
const BEHIND_PAUSE: Duration = Duration::from_millis(50);

/// Where a read starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At this sequence (0 and 1: the stream's first message).
    Sequence(u64),
    /// At the first message written at or after this time.
    Time(OffsetDateTime),
}

/// One message read.
#[derive(Debug, Clone)]
pub struct Read {
    pub subject: String,
    pub sequence: u64,
    /// When it was written, by the server's clock.
    pub written_at: SystemTime,
    /// What it does to its key, for a bucket's message (a put for any other).
    pub operation: Operation,
    pub payload: Bytes,
}

/// The body of a direct get (nats-server's `JSApiMsgGetRequest`).
#[derive(Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    start_time: Option<OffsetDateTime>,
    next_by_subj: &'a str,
    batch: usize,
}

/// Hands each message of `stream` whose subject matches `filter` (wildcards allowed), from
/// `start` on, to `visit`, in order, until none is left; returns where the next read of what
/// follows starts (after the last message handed, or `start` when there was none).
pub async fn read(client: &Client, stream: &str, filter: &str, start: Start, mut visit: impl FnMut(Read)) -> anyhow::Result<Start> {
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await.context("subscribing to the answers")?;
    let subject = format!("$JS.API.DIRECT.GET.{stream}");
    let mut next = start;
    // Messages the last batch said were left, and how many times a replica that had not got
    // them yet answered "none" since.
    let (mut announced, mut behind) = (false, 0);
    loop {
        let request = match next {
            Start::Sequence(sequence) => Request { seq: Some(sequence), start_time: None, next_by_subj: filter, batch: BATCH },
            Start::Time(time) => Request { seq: None, start_time: Some(time), next_by_subj: filter, batch: BATCH },
        };
        let body = serde_json::to_vec(&request).context("encoding a direct get")?;
        client.publish_with_reply(subject.clone(), inbox.clone(), body.into()).await.context("asking for a batch")?;
        loop {
            let message = match tokio::time::timeout(STALL, answers.next()).await {
                Ok(Some(message)) => message,
                Ok(None) => anyhow::bail!("the answers to a read of {stream} stopped"),
                Err(_) => anyhow::bail!("{stream} answered no message of a read for {STALL:?}"),
            };
            match message.status {
                None => {
                    let read = decode(message.headers.as_ref(), message.payload).with_context(|| format!("reading {stream}"))?;
                    next = Start::Sequence(read.sequence + 1);
                    visit(read);
                }
                // The end of a batch, with how many messages are left after it.
                Some(status) if status.as_u16() == 204 => {
                    if pending(message.headers.as_ref()) == 0 {
                        return Ok(next);
                    }
                    (announced, behind) = (true, 0);
                    break;
                }
                // Each batch may come from another replica: one a little behind the one that
                // answered the last batch has none of what it announced yet. Asked again, a
                // replica that has them answers; a read does not end short of them.
                Some(StatusCode::NOT_FOUND) if announced => {
                    behind += 1;
                    anyhow::ensure!(behind < BEHIND_TRIES, "{stream}: the replicas answering have not got what was announced");
                    tokio::time::sleep(BEHIND_PAUSE).await;
                    break;
                }
                Some(StatusCode::NOT_FOUND) => return Ok(next),
                Some(StatusCode::NO_RESPONDERS) => anyhow::bail!("{stream} is not answering direct gets"),
                Some(status) => {
                    anyhow::bail!("{stream} refused a read: {} {}", status.as_u16(), message.description.unwrap_or_default())
                }
            }
        }
    }
}

fn decode(headers: Option<&HeaderMap>, payload: Bytes) -> anyhow::Result<Read> {
    let header = |name: &str| headers.and_then(|headers| headers.get(name)).map(|value| value.as_str().to_owned());
    let subject = header("Nats-Subject").context("a message without its subject")?;
    let sequence = header("Nats-Sequence").and_then(|value| value.parse().ok()).context("a message without its sequence")?;
    let written_at = header("Nats-Time-Stamp")
        .and_then(|value| OffsetDateTime::parse(&value, &time::format_description::well_known::Rfc3339).ok())
        .context("a message without its time")?;
    let operation = crate::kv::operation_in(headers);
    Ok(Read { subject, sequence, written_at: written_at.into(), operation, payload })
}

fn pending(headers: Option<&HeaderMap>) -> u64 {
    headers.and_then(|headers| headers.get("Nats-Num-Pending")).and_then(|value| value.as_str().parse().ok()).unwrap_or(0)
}
