//! The chain of trust the servers check (decentralized JWT authentication): the operator's
//! JWT, the system account's, and a shop's three accounts, each listing the scoped signing keys
//! of its roles: `COFFEE` (the streams, the provisioner and the admin), `COFFEE-SERVICES` (the
//! services and their callers) and `COFFEE-MACHINES` (the machines, and the revoked ones). Revoking a machine issues a new account JWT and pushes it to
//! every running server (`$SYS.REQ.CLAIMS.UPDATE`), which close the machine's connection.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::jwt;
use crate::keys::{Account, AccountKeys, Keys, Role};

/// The seconds since the Unix epoch, as JWTs count time.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A revoked user: the machine it was, and from when its credential is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    pub machine: Option<u32>,
    pub at: i64,
}

/// What the servers are given to trust: preloaded in their configs, and stored by their
/// resolver, which also takes newer account JWTs while it runs.
#[derive(Debug, Clone)]
pub struct Trust {
    pub operator_jwt: String,
    /// The system account's public key.
    pub system_account: String,
    /// Each account's public key and JWT.
    pub accounts: Vec<(String, String)>,
}

impl Trust {
    /// Issues the operator's and the accounts' JWTs from `keys`: the system account, and each
    /// of `accounts` with the current permissions and revocations.
    pub fn issue(keys: &Keys, accounts: &[&AccountKeys]) -> anyhow::Result<Trust> {
        let system_account = keys.system_account.public_key();
        let issued_at = unix_now();
        let operator_jwt = jwt::operator(&keys.operator, &system_account, issued_at)?;
        let system = jwt::Account { name: "SYS".into(), ..jwt::Account::default() };
        let mut jwts = vec![(system_account.clone(), system.sign(&keys.operator, &system_account, issued_at)?)];
        for account in accounts {
            for kind in ACCOUNTS {
                jwts.push(issue_account(keys, account, kind)?);
            }
        }
        Ok(Trust { operator_jwt, system_account, accounts: jwts })
    }

    /// The same trust with only the system account and the accounts of `account`'s shop
    /// preloaded: a shop's server knows no other shop.
    pub fn only(&self, account: &AccountKeys) -> Trust {
        let mut wanted = vec![self.system_account.clone()];
        wanted.extend(ACCOUNTS.map(|kind| account.public_key(kind)));
        let accounts = self.accounts.iter().filter(|(key, _)| wanted.contains(key)).cloned().collect();
        Trust { accounts, ..self.clone() }
    }
}

/// Issues the JWT of one of a shop's accounts (`account_keys` holds the shop's keys): the scopes
/// of the roles whose users it holds, JetStream for the streams' account only, the revoked
/// machines for the machines' account, and the services it exports and imports
/// ([`crate::permissions::exports`], [`crate::permissions::imports`]), so that no answer or
/// delivery a user of the services' or the machines' account points at a subject of its own
/// choosing can reach a stream or a bucket (SECURITY.md, "Accounts").
pub fn issue_account(keys: &Keys, account_keys: &AccountKeys, account: Account) -> anyhow::Result<(String, String)> {
    let scopes = Role::ALL
        .iter()
        .filter(|role| role.account() == account)
        .map(|&role| crate::permissions::scope(role, &account_keys.signing[&role].public_key()))
        .collect();
    let service = |import: crate::permissions::Import, from: String| jwt::Service {
        subject: import.subject,
        account: from,
        streamed: import.streamed,
    };
    let exports = crate::permissions::exports(account).into_iter().map(|export| service(export, String::new())).collect();
    let imports = crate::permissions::imports(account)
        .into_iter()
        .map(|import| {
            let from = account_keys.public_key(import.from);
            service(import, from)
        })
        .collect();
    let revocations = match account {
        Account::Machines => load_revocations(account_keys)?.into_iter().map(|(user, revoked)| (user, revoked.at)).collect(),
        Account::Streams | Account::Services => BTreeMap::new(),
    };
    let file = match account {
        Account::Streams => ACCOUNT_JWT,
        Account::Services => SERVICES_ACCOUNT_JWT,
        Account::Machines => MACHINES_ACCOUNT_JWT,
    };
    let jwt = jwt::Account {
        name: account_keys.account_name(account),
        jetstream: account == Account::Streams,
        scopes,
        revocations,
        exports,
        imports,
    };
    sign_later(keys, account_keys, &jwt, &account_keys.public_key(account), file)
}

/// Signs `account`'s JWT later than the last one kept in `file` (a server keeps the newer of
/// two, by issue time), and keeps it there; returns its public key and JWT.
fn sign_later(
    keys: &Keys,
    account_keys: &AccountKeys,
    account: &jwt::Account,
    public: &str,
    file: &str,
) -> anyhow::Result<(String, String)> {
    let last_path = account_keys.trust_dir.join(file);
    let last_issued = std::fs::read_to_string(&last_path)
        .ok()
        .and_then(|last| jwt::claims(&last).ok())
        .and_then(|claims| claims["iat"].as_i64())
        .unwrap_or_default();
    let signed = account.sign(&keys.operator, public, unix_now().max(last_issued + 1))?;
    std::fs::write(&last_path, &signed).with_context(|| format!("writing {}", last_path.display()))?;
    Ok((public.to_owned(), signed))
}

/// The account's JWT last issued, in its trust folder.
const ACCOUNT_JWT: &str = "account.jwt";
/// Its services' account's JWT last issued.
const SERVICES_ACCOUNT_JWT: &str = "services-account.jwt";
/// Its machines' account's JWT last issued.
const MACHINES_ACCOUNT_JWT: &str = "machines-account.jwt";

/// A shop's accounts, in the order they are issued.
pub const ACCOUNTS: [Account; 3] = [Account::Streams, Account::Services, Account::Machines];
/// The users revoked, in an account's trust folder.
const REVOCATIONS: &str = "revocations.json";

fn load_revocations(account: &AccountKeys) -> anyhow::Result<BTreeMap<String, Revoked>> {
    let path = account.trust_dir.join(REVOCATIONS);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// A machine revoked: its user's public key and the account JWT that refuses it, to push.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub user: String,
    pub account_jwt: String,
}

/// Revokes machine `machine`'s credential in `account`: its user key goes on the account's
/// revocation list from now, its creds file is removed, and the new account JWT is returned to
/// push.
pub fn revoke_machine(keys: &Keys, account: &AccountKeys, machine: u32) -> anyhow::Result<Revocation> {
    let path = account.machine_creds_file(machine);
    let creds = std::fs::read_to_string(&path)
        .with_context(|| format!("machine {machine} has no credential to revoke ({} is missing)", path.display()))?;
    let claims = jwt::claims(jwt::jwt_of_creds(&creds)?)?;
    let user = claims["sub"].as_str().context("a creds file whose JWT names no user")?.to_owned();
    let mut revocations = load_revocations(account)?;
    revocations.insert(user.clone(), Revoked { machine: Some(machine), at: unix_now() });
    let revocations_path = account.trust_dir.join(REVOCATIONS);
    std::fs::write(&revocations_path, serde_json::to_vec_pretty(&revocations)?)
        .with_context(|| format!("writing {}", revocations_path.display()))?;
    let (_, account_jwt) = issue_account(keys, account, Account::Machines)?;
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(Revocation { user, account_jwt })
}

/// Sends `account_jwt` to every running server through the system account, and waits until
/// `servers` of them have stored it or `timeout` passes; returns the names of those that did.
/// A server that was down takes it from its peers (its resolver syncs) when it is back.
pub async fn push(
    urls: &[String],
    tls_ca: Option<&Path>,
    keys: &Keys,
    account_jwt: &str,
    servers: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let config = brewq_runtime::NatsConfig {
        urls: urls.to_vec(),
        credentials: brewq_runtime::Credentials::from_creds(crate::keys::read_creds_file(&keys.sys_creds_file())?)?,
        role: "sys".into(),
        name: "claims-update".into(),
        tls_ca: tls_ca.map(Path::to_owned),
    };
    let client = brewq_runtime::connect::options(&config)?
        .connection_timeout(Duration::from_secs(3))
        .connect(urls)
        .await
        .context("connecting to the servers as the system account")?;
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stored = Vec::new();
    let mut failures = Vec::new();
    while stored.len() < servers && tokio::time::Instant::now() < deadline {
        client.publish_with_reply(CLAIMS_UPDATE, inbox.clone(), account_jwt.to_owned().into()).await?;
        client.flush().await?;
        // Every server answers once per copy; ask again for those that did not, once a second.
        let round = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
        while let Ok(Some(answer)) = tokio::time::timeout_at(round, futures::StreamExt::next(&mut answers)).await {
            let answer: ClaimsAnswer = serde_json::from_slice(&answer.payload).context("a server's answer to a claims update")?;
            match answer.error {
                None if !stored.contains(&answer.server.name) => stored.push(answer.server.name),
                None => {}
                Some(error) => failures.push(format!("{}: {}", answer.server.name, error.description)),
            }
        }
    }
    client.drain().await.ok();
    anyhow::ensure!(failures.is_empty() || !stored.is_empty(), "the servers refused the account update: {}", failures.join("; "));
    Ok(stored)
}

/// Where the servers take account JWTs while they run.
const CLAIMS_UPDATE: &str = "$SYS.REQ.CLAIMS.UPDATE";

#[derive(Deserialize)]
struct ClaimsAnswer {
    server: ServerName,
    #[serde(default)]
    error: Option<ClaimsError>,
}

#[derive(Deserialize)]
struct ServerName {
    name: String,
}

#[derive(Deserialize)]
struct ClaimsError {
    description: String,
}
