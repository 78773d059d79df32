//! The operator's sessions, kept server side: a login draws a random token for the cookie
//! (`HttpOnly`, `SameSite=Strict`) and stores its SHA-256 in [`brewq_protocol::subjects::SESSIONS_BUCKET`]
//! with the user; a request is the operator's while that entry exists and has not expired.
//! Logout deletes the entry, "log out everywhere" purges the bucket: either ends the session
//! at once in every instance. The bucket's age limit ([`SESSION_LIFETIME`]) removes the rest.

use anyhow::Context;
use async_nats::jetstream::kv::Store;
use axum::http::HeaderMap;
use brewq_protocol::ids::Hex;
use brewq_protocol::{OperatorSession, SESSION_LIFETIME, now};
use ring::rand::SecureRandom;

/// Name of the session cookie.
pub const COOKIE: &str = "brewq_session";
/// Bytes of a session token, from the OS's random source.
const TOKEN_BYTES: usize = 32;

/// The sessions bucket.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
}

impl Sessions {
    /// Over the provisioned bucket.
    pub fn new(store: Store) -> Sessions {
        Sessions { store }
    }

    /// A new session for `user`: the `Set-Cookie` value to send.
    pub async fn start(&self, user: &str) -> anyhow::Result<String> {
        let mut token = [0u8; TOKEN_BYTES];
        ring::rand::SystemRandom::new().fill(&mut token).map_err(|_| anyhow::anyhow!("the OS's random source failed"))?;
        let token = Hex(&token).to_string();
        let session = OperatorSession { user: user.to_owned(), expires_at: now() + SESSION_LIFETIME };
        let value = serde_json::to_vec(&session).expect("a session serializes");
        self.store.put(key_of(&token), value.into()).await.context("storing the session")?;
        Ok(format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", SESSION_LIFETIME.as_secs()))
    }

    /// The operator of the live session whose cookie `headers` carry, if any. An error is the
    /// bucket not answering (the caller answers 503, not 401).
    pub async fn user(&self, headers: &HeaderMap) -> anyhow::Result<Option<String>> {
        let Some(token) = token_in(headers) else { return Ok(None) };
        let Some(entry) = self.store.get(key_of(token)).await.context("reading the session")? else { return Ok(None) };
        let session: Option<OperatorSession> = serde_json::from_slice(&entry).ok();
        Ok(session.filter(|session| session.expires_at > now()).map(|session| session.user))
    }

    /// Ends the session whose cookie `headers` carry (nothing if there is none).
    pub async fn end(&self, headers: &HeaderMap) -> anyhow::Result<()> {
        if let Some(token) = token_in(headers) {
            self.store.purge(key_of(token)).await.context("ending the session")?;
        }
        Ok(())
    }

    /// Ends every session, this one included.
    pub async fn end_all(&self) -> anyhow::Result<()> {
        self.store.stream.purge().await.context("ending every session")?;
        Ok(())
    }
}

/// The `Set-Cookie` value that removes the cookie from the browser.
pub fn clear() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session token of the cookie in `headers`, if it has the shape of one.
fn token_in(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|token| token.len() == 2 * TOKEN_BYTES && token.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// The bucket's key of a token: its SHA-256, so that whoever reads the bucket holds no cookie.
fn key_of(token: &str) -> String {
    Hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(axum::http::header::COOKIE, value.parse().expect("header"));
        headers
    }

    #[test]
    fn only_a_token_shaped_cookie_is_looked_up() {
        let token = "ab".repeat(TOKEN_BYTES);
        assert_eq!(token_in(&with_cookie(&format!("other=1; {COOKIE}={token}"))), Some(token.as_str()));
        for bad in ["", "admin:1:00", &"zz".repeat(TOKEN_BYTES), &"ab".repeat(TOKEN_BYTES + 1)] {
            assert_eq!(token_in(&with_cookie(&format!("{COOKIE}={bad}"))), None, "{bad:?}");
        }
        assert_eq!(token_in(&with_cookie(&format!("{COOKIE}x={token}"))), None);
    }

    #[test]
    fn the_bucket_holds_a_hash_of_the_token_never_the_token() {
        let token = "ab".repeat(TOKEN_BYTES);
        let key = key_of(&token);
        assert_eq!(key.len(), 64);
        assert_ne!(key, token);
        assert_eq!(key, key_of(&token));
    }
}
