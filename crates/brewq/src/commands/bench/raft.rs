//! The servers' own count of what they replicated, read from every server's monitoring port
//! before and after a phase of the run: each Raft group's committed log index (`/raftz`), and
//! each stream's last sequence and each consumer's deliveries and acks (`/jsz`). A log entry is
//! a round of replication and a disk write on every replica; a busy leader puts several
//! proposals into one. A stored message, a delivery and an ack are one proposal each, so their
//! sum is the proposals the streams and consumers made, less the few the counters do not show
//! (a pull request waiting, a message deleted by request).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The counters of every group, stream and consumer, the highest any server reports.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Raft group id to its committed index.
    committed: BTreeMap<String, u64>,
    /// Raft group id to what it replicates: a stream's name, or `stream/consumer`.
    names: BTreeMap<String, String>,
    /// Stream name to its last sequence: every message it ever stored.
    stored: BTreeMap<String, u64>,
    /// `stream/consumer` to its deliveries (redeliveries included) and its ack floor, for the
    /// consumers with a Raft group of their own.
    delivered: BTreeMap<String, u64>,
    acked: BTreeMap<String, u64>,
}

/// What was replicated during a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Replication {
    pub entries: Entries,
    /// Log entries by stream or `stream/consumer`, the busiest first.
    pub entries_by_group: Vec<(String, u64)>,
    /// Messages stored by stream, the busiest first.
    pub stored_by_stream: Vec<(String, u64)>,
    /// Deliveries and acks, over every consumer.
    pub deliveries: u64,
    pub acks: u64,
}

impl Replication {
    /// Messages stored, deliveries and acks: one proposal each.
    pub fn proposals(&self) -> u64 {
        self.stored_by_stream.iter().map(|(_, count)| count).sum::<u64>() + self.deliveries + self.acks
    }
}

/// Log entries committed during a phase, by kind of group.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Entries {
    /// Streams' groups (the work queue, the buckets, the audit).
    pub streams: u64,
    /// Consumers' groups (deliveries and acks).
    pub consumers: u64,
    /// The meta group (streams and consumers created or removed).
    pub meta: u64,
}

impl Entries {
    pub fn total(&self) -> u64 {
        self.streams + self.consumers + self.meta
    }
}

#[derive(Deserialize)]
struct Group {
    committed: u64,
}

#[derive(Deserialize)]
struct Jsz {
    #[serde(default)]
    account_details: Vec<JszAccount>,
}

#[derive(Deserialize)]
struct JszAccount {
    id: String,
    #[serde(default)]
    stream_detail: Vec<StreamDetail>,
}

#[derive(Deserialize)]
struct StreamDetail {
    name: String,
    #[serde(default)]
    state: StreamState,
    #[serde(default)]
    consumer_detail: Vec<ConsumerDetail>,
    #[serde(default)]
    stream_raft_group: String,
    #[serde(default)]
    consumer_raft_groups: Vec<RaftGroupDetail>,
}

#[derive(Deserialize, Default)]
struct StreamState {
    #[serde(default)]
    last_seq: u64,
}

#[derive(Deserialize)]
struct ConsumerDetail {
    name: String,
    delivered: Sequences,
    ack_floor: Sequences,
}

#[derive(Deserialize)]
struct Sequences {
    consumer_seq: u64,
}

#[derive(Deserialize)]
struct RaftGroupDetail {
    name: String,
    #[serde(default)]
    raft_group: String,
}

/// Reads every server: the system account's groups (the meta group), and for each account with
/// JetStream its streams, consumers and their groups; `None` if no server answered (the
/// monitoring ports unknown or closed), so that a run without them still reports the rest.
pub async fn read(http: &reqwest::Client, monitor_urls: &[String]) -> Option<Counters> {
    let mut counters = Counters::default();
    let mut answered = false;
    for url in monitor_urls {
        let url = url.trim_end_matches('/');
        let Some(jsz) = get::<Jsz>(http, &format!("{url}/jsz?accounts=true&streams=true&consumers=true&raft=true")).await else {
            continue;
        };
        let filters = std::iter::once(String::new()).chain(jsz.account_details.iter().map(|account| format!("?acc={}", account.id)));
        for filter in filters {
            // Account, then group id.
            let Some(groups) = get::<BTreeMap<String, BTreeMap<String, Group>>>(http, &format!("{url}/raftz{filter}")).await else {
                continue;
            };
            answered = true;
            for (group, state) in groups.into_values().flatten() {
                raise(&mut counters.committed, group, state.committed);
            }
        }
        for stream in jsz.account_details.into_iter().flat_map(|account| account.stream_detail) {
            counters.add_stream(stream);
        }
    }
    answered.then_some(counters)
}

fn raise(counts: &mut BTreeMap<String, u64>, key: String, value: u64) {
    let highest = counts.entry(key).or_insert(0);
    *highest = (*highest).max(value);
}

async fn get<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Option<T> {
    http.get(url).send().await.ok()?.json().await.ok()
}

impl Counters {
    fn add_stream(&mut self, stream: StreamDetail) {
        if !stream.stream_raft_group.is_empty() {
            self.names.insert(stream.stream_raft_group, stream.name.clone());
        }
        let mut replicated = std::collections::BTreeSet::new();
        for group in stream.consumer_raft_groups {
            if group.raft_group.is_empty() {
                continue;
            }
            // nats-server names a group `C-R<replicas><storage>-…`; a consumer of one replica
            // (an ordered consumer, in memory) has a name but no Raft log.
            if !group.raft_group.starts_with("C-R1") {
                replicated.insert(group.name.clone());
            }
            self.names.insert(group.raft_group, format!("{}/{}", stream.name, group.name));
        }
        for consumer in stream.consumer_detail.into_iter().filter(|consumer| replicated.contains(&consumer.name)) {
            let name = format!("{}/{}", stream.name, consumer.name);
            raise(&mut self.delivered, name.clone(), consumer.delivered.consumer_seq);
            raise(&mut self.acked, name, consumer.ack_floor.consumer_seq);
        }
        raise(&mut self.stored, stream.name, stream.state.last_seq);
    }

    /// What was replicated since `before` (a group, stream or consumer new since then counts
    /// from 0).
    pub fn since(&self, before: &Counters) -> Replication {
        let added = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
            now.iter()
                .map(|(key, &count)| (key.clone(), count.saturating_sub(then.get(key).copied().unwrap_or(0))))
                .filter(|(_, count)| *count > 0)
                .collect()
        };
        let mut entries = Entries::default();
        let mut by_group = BTreeMap::<String, u64>::new();
        for (group, count) in added(&self.committed, &before.committed) {
            match kind(&group) {
                Kind::Stream => entries.streams += count,
                Kind::Consumer => entries.consumers += count,
                Kind::Meta => entries.meta += count,
            }
            let name = self.names.get(&group).or_else(|| before.names.get(&group)).cloned().unwrap_or(group);
            *by_group.entry(name).or_default() += count;
        }
        Replication {
            entries,
            entries_by_group: busiest_first(by_group),
            stored_by_stream: busiest_first(added(&self.stored, &before.stored)),
            deliveries: added(&self.delivered, &before.delivered).values().sum(),
            acks: added(&self.acked, &before.acked).values().sum(),
        }
    }
}

fn busiest_first(counts: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

enum Kind {
    Stream,
    Consumer,
    Meta,
}

/// The kind of a group by its id: nats-server names a stream's `S-…`, a consumer's `C-…`, the
/// meta group `_meta_`.
fn kind(group: &str) -> Kind {
    if group.starts_with("S-") {
        Kind::Stream
    } else if group.starts_with("C-") {
        Kind::Consumer
    } else {
        Kind::Meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(committed: &[(&str, u64)], stored: &[(&str, u64)], delivered: u64, acked: u64) -> Counters {
        let map = |pairs: &[(&str, u64)]| pairs.iter().map(|(key, value)| (key.to_string(), *value)).collect();
        Counters {
            committed: map(committed),
            names: BTreeMap::new(),
            stored: map(stored),
            delivered: [("queue/takers".to_owned(), delivered)].into(),
            acked: [("queue/takers".to_owned(), acked)].into(),
        }
    }

    #[test]
    fn entries_are_counted_by_kind_of_group_from_the_highest_index_seen() {
        let before = counters(&[("S-R3F-a", 10), ("C-R3F-b", 4), ("_meta_", 7)], &[], 0, 0);
        let after = counters(&[("S-R3F-a", 25), ("C-R3F-b", 9), ("_meta_", 7), ("S-R3F-new", 3)], &[], 0, 0);
        let entries = after.since(&before).entries;
        assert_eq!((entries.streams, entries.consumers, entries.meta, entries.total()), (18, 5, 0, 23));
    }

    #[test]
    fn groups_are_named_after_their_stream_or_consumer_and_proposals_add_messages_deliveries_and_acks() {
        let mut before = counters(&[("S-R3F-a", 10), ("C-R3F-b", 4)], &[("queue", 100), ("KV_records", 40)], 50, 45);
        before.names = [("S-R3F-a".to_owned(), "queue".to_owned()), ("C-R3F-b".to_owned(), "queue/takers".to_owned())].into();
        let mut after = counters(&[("S-R3F-a", 16), ("C-R3F-b", 12)], &[("queue", 110), ("KV_records", 60), ("KV_new", 2)], 62, 60);
        after.names = before.names.clone();
        let replication = after.since(&before);
        assert_eq!(replication.entries_by_group, vec![("queue/takers".to_owned(), 8), ("queue".to_owned(), 6)]);
        assert_eq!(replication.stored_by_stream, vec![("KV_records".to_owned(), 20), ("queue".to_owned(), 10), ("KV_new".to_owned(), 2)]);
        assert_eq!((replication.deliveries, replication.acks, replication.proposals()), (12, 15, 59));
    }
}
