//! The servers' own count of what they replicated: each Raft group's committed log index, from
//! every server's `/raftz` (its monitoring port), read before and after a phase of the run. The
//! difference, summed over the groups, is the number of log entries the cluster agreed on: each
//! one a round of replication and a disk write on every replica.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Each Raft group's committed index, the highest any server reports.
#[derive(Debug, Clone, Default)]
pub struct Committed(BTreeMap<String, u64>);

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

/// Reads every server's groups: the system account's (the meta group) and those of each
/// account with JetStream (its streams' and consumers' groups, which run in the account that
/// owns them); `None` if no server answered (the monitoring ports unknown or closed), so that
/// a run without them still reports the rest.
pub async fn read(http: &reqwest::Client, monitor_urls: &[String]) -> Option<Committed> {
    let mut committed = BTreeMap::new();
    let mut answered = false;
    for url in monitor_urls {
        let url = url.trim_end_matches('/');
        let Some(accounts) = get::<Jsz>(http, &format!("{url}/jsz?accounts=true")).await else { continue };
        let filters =
            std::iter::once(String::new()).chain(accounts.account_details.into_iter().map(|account| format!("?acc={}", account.id)));
        for filter in filters {
            // Account, then group id.
            let Some(groups) = get::<BTreeMap<String, BTreeMap<String, Group>>>(http, &format!("{url}/raftz{filter}")).await else {
                continue;
            };
            answered = true;
            for (group, state) in groups.into_values().flatten() {
                let highest = committed.entry(group).or_insert(0);
                *highest = (*highest).max(state.committed);
            }
        }
    }
    answered.then_some(Committed(committed))
}

#[derive(Deserialize)]
struct Jsz {
    #[serde(default)]
    account_details: Vec<JszAccount>,
}

#[derive(Deserialize)]
struct JszAccount {
    id: String,
}

async fn get<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Option<T> {
    http.get(url).send().await.ok()?.json().await.ok()
}

impl Committed {
    /// The entries committed since `before`, by kind of group (a group new since then counts
    /// from 0).
    pub fn since(&self, before: &Committed) -> Entries {
        let mut entries = Entries::default();
        for (group, &now) in &self.0 {
            let added = now.saturating_sub(before.0.get(group).copied().unwrap_or(0));
            match kind(group) {
                Kind::Stream => entries.streams += added,
                Kind::Consumer => entries.consumers += added,
                Kind::Meta => entries.meta += added,
            }
        }
        entries
    }
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

    #[test]
    fn entries_are_counted_by_kind_of_group_from_the_highest_index_seen() {
        let before = Committed([("S-R3F-a".to_owned(), 10), ("C-R3F-b".to_owned(), 4), ("_meta_".to_owned(), 7)].into());
        let after = Committed(
            [("S-R3F-a".to_owned(), 25), ("C-R3F-b".to_owned(), 9), ("_meta_".to_owned(), 7), ("S-R3F-new".to_owned(), 3)].into(),
        );
        let entries = after.since(&before);
        assert_eq!((entries.streams, entries.consumers, entries.meta, entries.total()), (18, 5, 0, 23));
    }
}
