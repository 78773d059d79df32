//! Connecting to a NATS cluster as one role: credentials, a private inbox prefix, reconnection
//! forever, and connection events in the log.

use std::time::Duration;

use anyhow::Context;

/// How a client proves who it is: a creds file's content, its user JWT (signed for its role, or
/// for one machine) and the user's nkey seed. Never printed.
#[derive(Clone)]
pub struct Credentials {
    creds: String,
}

impl Credentials {
    /// Credentials from a creds file's content; an error names what is missing.
    pub fn from_creds(creds: String) -> anyhow::Result<Credentials> {
        let credentials = Credentials { creds };
        anyhow::ensure!(credentials.jwt().is_some(), "the creds file holds no user JWT");
        anyhow::ensure!(credentials.seed().is_some(), "the creds file holds no user nkey seed");
        Ok(credentials)
    }

    /// The user's JWT.
    pub fn jwt(&self) -> Option<&str> {
        self.creds.lines().map(str::trim).find(|line| line.starts_with("eyJ"))
    }

    /// The user's nkey seed.
    pub fn seed(&self) -> Option<&str> {
        self.creds.lines().map(str::trim).find(|line| line.starts_with("SU") && nkeys::KeyPair::from_seed(line).is_ok())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URLs; any one reachable is enough, the rest are found by gossip.
    pub urls: Vec<String>,
    pub credentials: Credentials,
    /// The role (`controller`, `maker`, ...), used for the inbox prefix `_INBOX_<role>`; a
    /// machine's is `maker.<number>`, its own under the makers'.
    pub role: String,
    /// Connection name shown by the server, e.g. `maker-3`.
    pub name: String,
    /// CA to trust when the cluster requires TLS.
    pub tls_ca: Option<std::path::PathBuf>,
}

impl NatsConfig {
    /// The private inbox prefix of this role: replies meant for it arrive under it only.
    pub fn inbox_prefix(&self) -> String {
        brewq_protocol::subjects::inbox_prefix(&self.role)
    }
}

/// The options every brewq client shares: credentials, name, private inbox, TLS.
pub fn options(config: &NatsConfig) -> anyhow::Result<async_nats::ConnectOptions> {
    let options = async_nats::ConnectOptions::with_credentials(&config.credentials.creds).context("reading the credentials")?;
    let options = options.name(&config.name).custom_inbox_prefix(config.inbox_prefix());
    Ok(match &config.tls_ca {
        Some(ca) => options.add_root_certificates(ca.clone()).require_tls(true),
        None => options,
    })
}

/// `urls` from the `home`th (modulo their number) on, then the rest in turn.
pub fn home_first(mut urls: Vec<String>, home: usize) -> Vec<String> {
    if !urls.is_empty() {
        let len = urls.len();
        urls.rotate_left(home % len);
    }
    urls
}

/// How often a client pings its server.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);

/// How long one JetStream API request, read or write waits: short, so that during an
/// election a caller fails fast and tries again (its own deadline bounds the whole).
pub const JETSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// A JetStream context whose requests wait [`JETSTREAM_TIMEOUT`].
pub fn jetstream(client: &async_nats::Client) -> async_nats::jetstream::Context {
    let mut context = async_nats::jetstream::new(client.clone());
    context.set_timeout(JETSTREAM_TIMEOUT);
    context
}

/// Connects, retrying in the background until a server answers, and reconnecting forever.
/// Servers are tried in the order given, not at random: a service's first URL is its home
/// server (its own host's, or in `brewq up` one per instance in turn), so that the instances of
/// a service sit on different servers and every server has one to hand requests to.
pub async fn connect(config: &NatsConfig) -> anyhow::Result<async_nats::Client> {
    let name = config.name.clone();
    let connected_before = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    options(config)?
        // A server that stops answering (paused, cut off) is left after about three pings,
        // within a customer's 10 s, not minutes.
        .ping_interval(PING_INTERVAL)
        .connection_timeout(Duration::from_secs(3))
        .retain_servers_order()
        .retry_on_initial_connect()
        .event_callback(move |event| {
            let (name, connected_before) = (name.clone(), connected_before.clone());
            async move {
                let reconnect =
                    matches!(event, async_nats::Event::Connected) && connected_before.swap(true, std::sync::atomic::Ordering::Relaxed);
                record_event(&name, &event, reconnect);
                log_event(&name, event);
            }
        })
        .connect(config.urls.as_slice())
        .await
        .with_context(|| format!("connecting to NATS at {}", config.urls.join(",")))
}

/// Connection state and reconnects as metrics, labelled by connection name:
/// `brewq_nats_connected` (1 or 0), `brewq_nats_reconnects_total` and
/// `brewq_nats_disconnects_total`.
fn record_event(name: &str, event: &async_nats::Event, reconnect: bool) {
    let connection = name.to_owned();
    match event {
        async_nats::Event::Connected => {
            metrics::gauge!("brewq_nats_connected", "connection" => connection.clone()).set(1.0);
            let reconnects = metrics::counter!("brewq_nats_reconnects_total", "connection" => connection);
            // Registered at the first connect, so that it shows as 0 until a reconnect.
            reconnects.increment(u64::from(reconnect));
        }
        async_nats::Event::Disconnected => {
            metrics::gauge!("brewq_nats_connected", "connection" => connection.clone()).set(0.0);
            metrics::counter!("brewq_nats_disconnects_total", "connection" => connection).increment(1);
        }
        async_nats::Event::Closed => metrics::gauge!("brewq_nats_connected", "connection" => connection).set(0.0),
        _ => {}
    }
}

fn log_event(name: &str, event: async_nats::Event) {
    match event {
        async_nats::Event::Connected => tracing::info!(connection = name, "connected to NATS"),
        async_nats::Event::Disconnected => tracing::warn!(connection = name, "disconnected from NATS"),
        async_nats::Event::Draining | async_nats::Event::Closed => {
            tracing::debug!(connection = name, event = %event, "NATS connection closing");
        }
        async_nats::Event::ServerError(error) if error.to_string().contains("Revoked") => {
            tracing::error!(connection = name, %error, "this credential was revoked: the servers refuse it from now on; ask the operator for a new one");
        }
        other => tracing::warn!(connection = name, event = %other, "NATS event"),
    }
}
