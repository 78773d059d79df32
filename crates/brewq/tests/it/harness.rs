//! `TestSystem`: a brewq system in a temporary folder, with an admin connection and helpers to
//! order, wait for orders to end (by watching their records, never by sleeping) and read stock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use brewq_launch::{Role, System, SystemConfig};
use brewq_protocol::{OrderRecord, OrderReply, RejectCode, StockCommand, StockReply, StockSnapshot, subjects};
use futures::StreamExt;
use serde_json::{Value, json};

/// The nats-server the tests run: `NATS_SERVER_BIN`, or the one the scripts install.
pub fn nats_server_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return path.into();
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/nats-server/bin/nats-server");
    assert!(installed.is_file(), "no nats-server: run the tests through scripts/test.sh, or set NATS_SERVER_BIN");
    installed
}

/// The brewq binary under test.
pub fn brewq_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_brewq"))
}

/// A config for a test system in `dir`: instant brews, no failures, a short AckWait.
pub fn test_config(dir: &Path, machines: u32) -> SystemConfig {
    let mut config = SystemConfig::new(&brewq_bin(), &nats_server_bin(), dir, machines);
    config.brew_scale = 0.0;
    config.topology.ack_wait = Duration::from_secs(4);
    config.service_env = vec![("RUST_LOG".into(), "info,brewq=debug,async_nats=warn".into())];
    config
}

/// A running system owned by one test.
pub struct TestSystem {
    pub system: System,
    pub admin: async_nats::Client,
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl TestSystem {
    /// Starts a system in a fresh temporary folder, configured by `configure`.
    pub async fn start(machines: u32, configure: impl FnOnce(&mut SystemConfig)) -> TestSystem {
        let temp = tempfile::Builder::new().prefix("brewq-test-").tempdir().expect("temp dir");
        let mut system = Self::start_in(temp.path(), machines, configure).await;
        system._temp = Some(temp);
        system
    }

    /// Starts a system in `dir`, which may hold an earlier run.
    pub async fn start_in(dir: &Path, machines: u32, configure: impl FnOnce(&mut SystemConfig)) -> TestSystem {
        let mut config = test_config(dir, machines);
        configure(&mut config);
        let system = System::start(config).await.expect("system starts");
        let admin = brewq_runtime::connect(&system.nats_config(Role::Admin, "test").expect("admin config")).await.expect("admin connects");
        TestSystem { system, admin, dir: dir.to_owned(), _temp: None }
    }

    /// The operator pages' base URL, when they run.
    pub fn office_url(&self) -> String {
        self.system.info.office_url.clone().expect("the system runs the operator's pages")
    }

    /// The web shop's base URL (`http://127.0.0.1:port`), when it runs.
    pub fn http_url(&self) -> String {
        self.system.info.http_url.clone().expect("the system runs a web shop")
    }

    /// Stops every process cleanly (a folder given to [`TestSystem::start_in`] stays for a
    /// restart; a temporary one goes).
    pub async fn stop(mut self) {
        self.system.stop().await.expect("clean stop");
    }

    /// Sends an order request and returns the reply.
    pub async fn order(&self, payload: &Value) -> OrderReply {
        brewq_runtime::request::request_json(&self.admin, subjects::ORDER_REQUESTS, payload, Duration::from_secs(10))
            .await
            .expect("the controller answers")
    }

    /// Sends an order with an idempotency key, retrying as a careful client would while the
    /// system cannot answer, until it is accepted or refused for good.
    pub async fn order_until_answered(&self, payload: &Value, deadline: Instant) -> OrderReply {
        order_until_answered(&self.admin, payload, deadline).await
    }

    /// The record of an order.
    pub async fn record(&self, order_id: &str) -> Option<OrderRecord> {
        let records = self.bucket(subjects::ORDERS_BUCKET).await;
        brewq_runtime::kv::get_json(&records, order_id).await.expect("record readable").map(|(record, _)| record)
    }

    /// Watches records until `done` holds for each of `order_ids`; panics after `timeout`.
    /// The watch is opened again if it breaks (a server dying, a leader moving).
    pub async fn wait_for(
        &self,
        order_ids: &[String],
        done: impl Fn(&OrderRecord) -> bool,
        timeout: Duration,
    ) -> HashMap<String, OrderRecord> {
        let mut latest: HashMap<String, OrderRecord> = HashMap::new();
        let wanted = |latest: &HashMap<String, OrderRecord>| order_ids.iter().all(|id| latest.get(id).is_some_and(&done));
        let watched = tokio::time::timeout(timeout, async {
            while !wanted(&latest) {
                let records = self.bucket(subjects::ORDERS_BUCKET).await;
                let Ok(mut watch) = records.watch_with_history(">").await else { continue };
                while !wanted(&latest) {
                    let Some(Ok(entry)) = watch.next().await else { break };
                    if let Ok(record) = serde_json::from_slice::<OrderRecord>(&entry.value) {
                        latest.insert(record.id.clone(), record);
                    }
                }
            }
        })
        .await;
        if watched.is_err() {
            let stuck: Vec<_> = order_ids
                .iter()
                .filter(|id| !latest.get(*id).is_some_and(&done))
                .map(|id| (id, latest.get(id).map(|record| record.status)))
                .collect();
            panic!("{} order(s) not done after {timeout:?}: {stuck:?} (logs in {})", stuck.len(), self.dir.display());
        }
        latest.retain(|id, _| order_ids.contains(id));
        latest
    }

    /// Waits until every order in `order_ids` is ready, failed or cancelled.
    pub async fn wait_terminal(&self, order_ids: &[String], timeout: Duration) -> HashMap<String, OrderRecord> {
        self.wait_for(order_ids, |record| record.status.is_terminal(), timeout).await
    }

    /// The stock as the stock manager reports it.
    pub async fn stock(&self) -> StockSnapshot {
        let reply = brewq_runtime::request::request_json(
            &self.admin,
            &subjects::stock_subject(&StockCommand::Get),
            &StockCommand::Get,
            Duration::from_secs(10),
        )
        .await
        .expect("stock manager answers");
        match reply {
            StockReply::Snapshot { stock } => stock,
            other => panic!("unexpected stock reply {other:?}"),
        }
    }

    /// Orders waiting in, or delivered from, the work queue and not yet acknowledged; asked
    /// again while the consumer is between leaders.
    pub async fn queue_depth(&self) -> u64 {
        let jetstream = async_nats::jetstream::new(self.admin.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let consumer: Result<async_nats::jetstream::consumer::PullConsumer, _> =
                jetstream.get_consumer_from_stream(subjects::MAKERS_CONSUMER, subjects::ORDERS_STREAM).await;
            match consumer {
                Ok(consumer) => {
                    let info = consumer.cached_info();
                    return info.num_pending + info.num_ack_pending as u64;
                }
                Err(error) => assert!(Instant::now() < deadline, "consumer info: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Messages held by the work-queue stream.
    pub async fn stream_messages(&self) -> u64 {
        let jetstream = async_nats::jetstream::new(self.admin.clone());
        let mut stream = jetstream.get_stream(subjects::ORDERS_STREAM).await.expect("stream");
        stream.info().await.expect("stream info").state.messages
    }

    /// Binds a bucket, retrying while its stream is between leaders.
    pub async fn bucket(&self, name: &str) -> async_nats::jetstream::kv::Store {
        let jetstream = async_nats::jetstream::new(self.admin.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match jetstream.get_key_value(name).await {
                Ok(store) => return store,
                Err(error) => assert!(Instant::now() < deadline, "bucket {name}: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for TestSystem {
    /// A failed test keeps its folder, logs included, and says where; so does every test with
    /// `BREWQ_KEEP_TEST_DIRS=1`.
    fn drop(&mut self) {
        let keep = std::thread::panicking() || std::env::var_os("BREWQ_KEEP_TEST_DIRS").is_some_and(|keep| keep == "1");
        if keep && let Some(temp) = self._temp.take() {
            eprintln!("test system kept in {}", temp.keep().display());
        }
    }
}

/// Sends an order, retrying while the system cannot answer, until it is accepted or refused
/// for good (give it an idempotency key, so that retries are one order).
pub async fn order_until_answered(client: &async_nats::Client, payload: &Value, deadline: Instant) -> OrderReply {
    loop {
        let sent =
            brewq_runtime::request::request_json::<_, OrderReply>(client, subjects::ORDER_REQUESTS, payload, Duration::from_secs(5)).await;
        match sent {
            Ok(reply) if reply.code != Some(RejectCode::Unavailable) => return reply,
            other => assert!(Instant::now() < deadline, "no definitive answer before the deadline: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A free loopback address for a web shop.
pub fn free_listen_address() -> String {
    format!("127.0.0.1:{}", brewq_launch::cluster::free_service_port().expect("free port"))
}

/// Free addresses for the web shop and the operator's pages, on two different ports.
pub fn web_and_office_addresses() -> (String, String) {
    let web = free_listen_address();
    let office = std::iter::repeat_with(free_listen_address).find(|office| *office != web).expect("a second free port");
    (web, office)
}

/// Runs the web shop and the operator's pages, on free addresses.
pub fn with_web_and_office(config: &mut brewq_launch::SystemConfig) {
    let (web, office) = web_and_office_addresses();
    config.web_listen = Some(web);
    config.office_listen = Some(office);
}

/// Reads a Server-Sent Events response as `(event, data)` pairs.
pub fn sse_events(response: reqwest::Response) -> impl futures::Stream<Item = (String, String)> {
    let bytes = Box::pin(response.bytes_stream());
    futures::stream::unfold((bytes, String::new()), |(mut bytes, mut buffer)| async move {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = name.trim().to_owned();
                    } else if let Some(chunk) = line.strip_prefix("data:") {
                        data.push_str(chunk.trim_start());
                    }
                }
                if !data.is_empty() {
                    return Some(((event, data), (bytes, buffer)));
                }
                continue;
            }
            let chunk = bytes.next().await?.ok()?;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
}

/// The original demo's order, for `name`, with `size`, `bean` and `milk`.
pub fn order_json(name: &str, size: &str, bean: &str, milk: &str, sugar: u8) -> Value {
    json!({"name": name, "size": size, "bean_type": bean, "milk": milk, "sugar_count": sugar.to_string()})
}

/// Waits until `condition` holds, checking every 50 ms; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `probe` finds something, checking every 50 ms; panics with `what` after
/// `timeout`.
pub async fn until_found<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The order records for which `wanted` holds, as they are now, read through `client`.
pub async fn records_where(
    client: &async_nats::Client,
    records: &async_nats::jetstream::kv::Store,
    wanted: impl Fn(&OrderRecord) -> bool,
) -> Vec<OrderRecord> {
    let mut found = std::collections::BTreeMap::new();
    // Each revision the bucket keeps comes in order: the last one of a key is current.
    let scanned = brewq_runtime::kv::scan_json(client, records, |key, record: Option<(OrderRecord, u64)>| match record {
        Some((record, _)) => {
            found.insert(key, record);
        }
        None => {
            found.remove(&key);
        }
    });
    // A scan cut short by an election finds less; the caller looks again.
    scanned.await.ok();
    found.into_values().filter(|record| wanted(record)).collect()
}

/// `brewq check --json` on the system in `dir`: its report and whether it passed.
pub async fn check(dir: &Path) -> (Value, bool) {
    let dir = dir.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(brewq_bin()).args(["check", "--json", "--data-dir"]).arg(&dir).output().expect("brewq runs")
    })
    .await
    .expect("join");
    let report = serde_json::from_slice(&output.stdout).expect("check --json prints JSON");
    (report, output.status.success())
}

/// The sum of every series of metric `name` on a Prometheus page, whatever its labels.
pub fn sum_of(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A service's metrics page.
pub async fn scrape(url: &str) -> String {
    reqwest::get(url).await.expect("metrics answer").error_for_status().expect("metrics status").text().await.expect("metrics page")
}
