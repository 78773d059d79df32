//! The servers as their monitoring endpoints show them: `/varz` (name, version, connections),
//! `/healthz` (JetStream healthy) and `/jsz` (the JetStream meta leader). The endpoint is
//! plain HTTP on the monitor port; one GET per figure, with a short deadline.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

/// How long a server may take to answer before it counts as down.
const DEADLINE: Duration = Duration::from_secs(2);

/// One server, up or down.
#[derive(Debug, Clone, Serialize)]
pub struct ServerHealth {
    /// Its monitoring URL.
    pub url: String,
    /// Its server name: as it says, or, when it is down, the name brewq gave its place in
    /// cluster.json (none with `--monitor-url`).
    pub name: Option<String>,
    pub up: bool,
    /// `ok`, or what `/healthz` says is wrong (JetStream not current, ...).
    pub health: String,
    pub version: Option<String>,
    /// Client connections.
    pub connections: Option<u64>,
}

impl ServerHealth {
    /// `server n2 (http://...) is down`, or without the name when it is not known.
    pub fn describe_down(&self) -> String {
        match &self.name {
            Some(name) => format!("server {name} ({}) is down", self.url),
            None => format!("server {} is down", self.url),
        }
    }
}

/// Asks one server how it is; a server that does not answer is down.
pub async fn server(url: &str) -> ServerHealth {
    let down = |health: String| ServerHealth { url: url.to_owned(), name: None, up: false, health, version: None, connections: None };
    let varz = match get_json(url, "/varz").await {
        Ok(varz) => varz,
        Err(error) => return down(format!("{error:#}")),
    };
    let health = match get_json(url, "/healthz").await {
        Ok(body) if body["status"] == "ok" => "ok".to_owned(),
        Ok(body) => body["error"].as_str().or(body["status"].as_str()).unwrap_or("unhealthy").to_owned(),
        Err(error) => format!("{error:#}"),
    };
    ServerHealth {
        url: url.to_owned(),
        name: varz["server_name"].as_str().map(str::to_owned),
        up: true,
        health,
        version: varz["version"].as_str().map(str::to_owned),
        connections: varz["connections"].as_u64(),
    }
}

/// The JetStream meta leader as `url`'s server sees it.
pub async fn meta_leader(url: &str) -> Option<String> {
    let jsz = get_json(url, "/jsz").await.ok()?;
    jsz["meta_cluster"]["leader"].as_str().map(str::to_owned)
}

/// GETs `path` from a monitoring URL (`http://host:port`) and parses the JSON body, whatever
/// the status (`/healthz` answers 503 with a JSON reason).
async fn get_json(url: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let response =
        reqwest::Client::new().get(format!("{}{path}", url.trim_end_matches('/'))).timeout(DEADLINE).send().await.context("unreachable")?;
    response.json().await.with_context(|| format!("{path} is not JSON"))
}
