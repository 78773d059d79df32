//! The services' resident memory once the orders went through, as each one's `/metrics` says
//! (`process_resident_memory_bytes`, and its highest since the process started), by kind of
//! service: the controllers, the stock managers, the machines, the web shop, the operator's
//! process.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Serialize;

const MIB: f64 = 1024.0 * 1024.0;

/// The memory of the services of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceMemory {
    /// The kind of service, as `brewq up` names its processes without their number
    /// (`controller`, `maker`; a shop's `shop2-controller`).
    pub service: String,
    pub processes: usize,
    /// Resident now, the least and the most of its processes, in MiB.
    pub resident_min_mib: f64,
    pub resident_max_mib: f64,
    /// The most any of its processes ever had resident, in MiB.
    pub highest_mib: f64,
}

/// Reads every service's metrics in `urls` (process name to `/metrics` URL); a service that
/// does not answer is left out.
pub async fn read(http: &reqwest::Client, urls: &BTreeMap<String, String>) -> Vec<ServiceMemory> {
    let figures: Vec<_> = futures::stream::iter(urls)
        .map(|(name, url)| read_one(http, name, url))
        .buffer_unordered(16)
        .filter_map(|read| async { read })
        .collect()
        .await;
    summarise(figures)
}

/// One process's kind, resident memory and highest resident memory, in bytes.
async fn read_one(http: &reqwest::Client, name: &str, url: &str) -> Option<(String, f64, f64)> {
    let text = http.get(url).send().await.ok()?.text().await.ok()?;
    Some((kind(name), figure(&text, "process_resident_memory_bytes")?, figure(&text, "process_resident_memory_max_bytes")?))
}

/// The figures of each kind, in MiB.
fn summarise(figures: Vec<(String, f64, f64)>) -> Vec<ServiceMemory> {
    let mut by_kind = BTreeMap::<String, Vec<(f64, f64)>>::new();
    for (kind, resident, highest) in figures {
        by_kind.entry(kind).or_default().push((resident / MIB, highest / MIB));
    }
    by_kind
        .into_iter()
        .map(|(service, processes)| {
            let (mut least, mut most, mut highest) = (f64::MAX, f64::MIN, f64::MIN);
            for &(resident, high) in &processes {
                (least, most, highest) = (least.min(resident), most.max(resident), highest.max(high));
            }
            ServiceMemory { service, processes: processes.len(), resident_min_mib: least, resident_max_mib: most, highest_mib: highest }
        })
        .collect()
}

/// A process's kind: its name without the number `brewq up` gave it.
fn kind(name: &str) -> String {
    match name.rsplit_once('-') {
        Some((kind, number)) if !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit()) => kind.to_owned(),
        _ => name.to_owned(),
    }
}

/// The value of the gauge `name` in Prometheus text.
fn figure(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_are_grouped_by_kind_with_their_least_and_most() {
        let text = "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 14680064\n\
                    process_resident_memory_max_bytes 16777216\n";
        assert_eq!(figure(text, "process_resident_memory_bytes"), Some(14.0 * MIB));
        assert_eq!(figure(text, "process_resident_memory_max_bytes"), Some(16.0 * MIB));
        assert_eq!(figure("process_resident_memory_bytes_total 1\n", "process_resident_memory_bytes"), None);
        assert_eq!((kind("maker-12"), kind("shop2-controller-1"), kind("web")), ("maker".into(), "shop2-controller".into(), "web".into()));
        let memory = summarise(vec![
            ("maker".into(), 14.0 * MIB, 15.0 * MIB),
            ("controller".into(), 23.0 * MIB, 27.0 * MIB),
            ("maker".into(), 13.0 * MIB, 16.0 * MIB),
        ]);
        assert_eq!(
            memory,
            [
                ServiceMemory {
                    service: "controller".into(),
                    processes: 1,
                    resident_min_mib: 23.0,
                    resident_max_mib: 23.0,
                    highest_mib: 27.0
                },
                ServiceMemory { service: "maker".into(), processes: 2, resident_min_mib: 13.0, resident_max_mib: 14.0, highest_mib: 16.0 },
            ]
        );
    }
}
