//! NATS JWTs minted by brewq: the operator's, the accounts' and the users' claims, each signed
//! by its issuer's ed25519 nkey, and the creds files clients connect with. It follows the NATS
//! recipe for minting without the Go library (ADR-14): a fixed header, the claims with a `jti`
//! that is the hash of the claims, base64url without padding.

use std::collections::BTreeMap;

use anyhow::Context;
use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use nkeys::KeyPair;
use serde_json::{Value, json};

const HEADER: &str = r#"{"typ":"JWT","alg":"ed25519-nkey"}"#;

/// Signs the claims `nats` about `subject` (a public key), issued by `issuer` at `issued_at`
/// (Unix seconds).
fn sign(issuer: &KeyPair, subject: &str, name: &str, issued_at: i64, nats: Value) -> anyhow::Result<String> {
    let mut claims = json!({ "jti": "", "iat": issued_at, "iss": issuer.public_key(), "name": name, "sub": subject, "nats": nats });
    let digest = ring::digest::digest(&ring::digest::SHA256, &serde_json::to_vec(&claims)?);
    claims["jti"] = Value::String(BASE32_NOPAD.encode(digest.as_ref()));
    let body = BASE64URL_NOPAD.encode(&serde_json::to_vec(&claims)?);
    let signing_input = format!("{}.{body}", BASE64URL_NOPAD.encode(HEADER.as_bytes()));
    let signature = issuer.sign(signing_input.as_bytes()).context("signing a JWT")?;
    Ok(format!("{signing_input}.{}", BASE64URL_NOPAD.encode(&signature)))
}

/// The operator's JWT: self-signed, naming the system account.
pub fn operator(operator: &KeyPair, system_account: &str, issued_at: i64) -> anyhow::Result<String> {
    let nats = json!({ "type": "operator", "version": 2, "system_account": system_account });
    sign(operator, &operator.public_key(), "brewq", issued_at, nats)
}

/// What users signed by one signing key may do: the key's role, and its permissions, which
/// may name the user's tags (`{{tag(machine)}}`).
#[derive(Debug, Clone)]
pub struct Scope {
    /// The signing key's public key.
    pub key: String,
    pub role: String,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// An account's JWT, signed by the operator.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub name: String,
    /// Unlimited JetStream when true; none otherwise.
    pub jetstream: bool,
    pub scopes: Vec<Scope>,
    /// Users refused from the given time (Unix seconds): every JWT of that key issued then or
    /// before.
    pub revocations: BTreeMap<String, i64>,
    /// The services it offers other accounts.
    pub exports: Vec<Service>,
    /// The services of other accounts it reaches, each under the same subject here.
    pub imports: Vec<Service>,
}

/// A service subject shared between two accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub subject: String,
    /// For an import, the public key of the account that exports it.
    pub account: String,
    /// Answered by more than one message (a JetStream pull's deliveries).
    pub streamed: bool,
}

impl Service {
    fn export(&self) -> Value {
        let response_type = if self.streamed { "Stream" } else { "Singleton" };
        json!({ "name": self.subject, "subject": self.subject, "type": "service", "response_type": response_type })
    }

    fn import(&self) -> Value {
        json!({ "name": self.subject, "subject": self.subject, "account": self.account, "type": "service" })
    }
}

impl Account {
    /// The JWT of the account `account` (its public key).
    pub fn sign(&self, operator: &KeyPair, account: &str, issued_at: i64) -> anyhow::Result<String> {
        let mut limits = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
        });
        if self.jetstream {
            for limit in ["mem_storage", "disk_storage", "streams", "consumer"] {
                limits[limit] = json!(-1);
            }
        }
        let signing_keys: Vec<Value> = self
            .scopes
            .iter()
            .map(|scope| {
                json!({
                    "kind": "user_scope",
                    "key": scope.key,
                    "role": scope.role,
                    "template": {
                        "pub": { "allow": scope.publish },
                        "sub": { "allow": scope.subscribe },
                        "subs": -1, "data": -1, "payload": -1,
                    },
                    "description": format!("the {} role", scope.role),
                })
            })
            .collect();
        let mut nats = json!({ "type": "account", "version": 2, "limits": limits, "default_permissions": { "pub": {}, "sub": {} } });
        if !signing_keys.is_empty() {
            nats["signing_keys"] = Value::Array(signing_keys);
        }
        if !self.revocations.is_empty() {
            nats["revocations"] = json!(self.revocations);
        }
        if !self.exports.is_empty() {
            nats["exports"] = self.exports.iter().map(Service::export).collect();
        }
        if !self.imports.is_empty() {
            nats["imports"] = self.imports.iter().map(Service::import).collect();
        }
        sign(operator, account, &self.name, issued_at, nats)
    }
}

/// A user's JWT. Signed by a scoped signing key of `account`, it carries no permissions of
/// its own (the key's scope gives them, with its tags filled in); signed by the account's own
/// key, it may do anything in the account.
pub fn user(signer: &KeyPair, account: &str, user: &str, name: &str, tags: &[String], issued_at: i64) -> anyhow::Result<String> {
    let mut nats = json!({ "type": "user", "version": 2 });
    if signer.public_key() == account {
        nats["subs"] = json!(-1);
        nats["data"] = json!(-1);
        nats["payload"] = json!(-1);
    } else {
        nats["issuer_account"] = json!(account);
    }
    if !tags.is_empty() {
        nats["tags"] = json!(tags);
    }
    sign(signer, user, name, issued_at, nats)
}

/// A creds file: the user's JWT and its seed, in the layout NATS clients read.
pub fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// The JWT of a creds file.
pub fn jwt_of_creds(creds: &str) -> anyhow::Result<&str> {
    creds.lines().map(str::trim).find(|line| line.starts_with("eyJ")).context("no JWT in the creds file")
}

/// The claims of a JWT, once its signature is checked against its issuer (`iss`).
pub fn claims(jwt: &str) -> anyhow::Result<Value> {
    let mut parts = jwt.trim().split('.');
    let (Some(header), Some(body), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("not a JWT: it should have three parts");
    };
    let decode = |part: &str| BASE64URL_NOPAD.decode(part.as_bytes()).context("not base64url");
    let claims: Value = serde_json::from_slice(&decode(body)?).context("JWT claims are not JSON")?;
    let issuer = claims["iss"].as_str().context("a JWT without an issuer")?;
    let key = KeyPair::from_public_key(issuer).context("the JWT's issuer is not a public nkey")?;
    key.verify(format!("{header}.{body}").as_bytes(), &decode(signature)?).context("the JWT's signature does not verify")?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scoped_user_carries_its_tags_and_no_permission_and_verifies() {
        let account = KeyPair::new_account();
        let signing = KeyPair::new_account();
        let user_key = KeyPair::new_user();
        let jwt = user(&signing, &account.public_key(), &user_key.public_key(), "machine-3", &["machine:3".into()], 1_700_000_000)
            .expect("signed");
        let claims = claims(&jwt).expect("verifies");
        assert_eq!(claims["sub"], json!(user_key.public_key()));
        assert_eq!(claims["iss"], json!(signing.public_key()));
        assert_eq!(claims["nats"]["issuer_account"], json!(account.public_key()));
        assert_eq!(claims["nats"]["tags"], json!(["machine:3"]));
        assert!(claims["nats"].get("pub").is_none() && claims["nats"].get("subs").is_none(), "a scoped user has no limits of its own");
        assert!(!claims["jti"].as_str().unwrap_or_default().is_empty());
    }

    #[test]
    fn a_tampered_jwt_does_not_verify() {
        let operator_key = KeyPair::new_operator();
        let jwt = operator(&operator_key, "ASYS", 1).expect("signed");
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        let mut body: Value = serde_json::from_slice(&BASE64URL_NOPAD.decode(parts[1].as_bytes()).expect("base64")).expect("json");
        body["nats"]["system_account"] = json!("AOTHER");
        parts[1] = BASE64URL_NOPAD.encode(&serde_json::to_vec(&body).expect("json"));
        assert!(claims(&parts.join(".")).is_err());
        assert!(claims(&jwt).is_ok());
    }

    #[test]
    fn an_account_lists_its_scopes_revocations_and_jetstream() {
        let operator_key = KeyPair::new_operator();
        let account_key = KeyPair::new_account();
        let scope = Scope { key: "AKEY".into(), role: "maker".into(), publish: vec!["a.{{tag(machine)}}".into()], subscribe: vec![] };
        let account = Account {
            name: "COFFEE".into(),
            jetstream: true,
            scopes: vec![scope],
            revocations: [("UREVOKED".to_owned(), 42)].into(),
            ..Account::default()
        };
        let claims = claims(&account.sign(&operator_key, &account_key.public_key(), 7).expect("signed")).expect("verifies");
        assert_eq!(claims["nats"]["limits"]["disk_storage"], json!(-1));
        assert_eq!(claims["nats"]["signing_keys"][0]["template"]["pub"]["allow"][0], json!("a.{{tag(machine)}}"));
        assert_eq!(claims["nats"]["revocations"]["UREVOKED"], json!(42));
        let creds = creds("eyJabc", "SUseed");
        assert_eq!(jwt_of_creds(&creds).expect("found"), "eyJabc");
    }
}
