//! The operator's session: a cookie signed with HMAC-SHA256 (any web instance sharing the key
//! can check it, so instances stay stateless), HttpOnly and SameSite=Strict; and a brake on
//! password guessing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ring::hmac;

/// Name of the session cookie.
pub const COOKIE: &str = "brewq_session";
/// How long a login lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed attempts allowed before answers slow down.
const FREE_ATTEMPTS: u32 = 3;

/// The `Set-Cookie` value of a new session for `user`.
pub fn issue(key: &[u8], user: &str) -> String {
    let expires = unix_now() + LIFETIME.as_secs();
    let payload = format!("{user}:{expires}");
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), payload.as_bytes());
    let value = format!("{payload}:{}", hex(tag.as_ref()));
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", LIFETIME.as_secs())
}

/// The `Set-Cookie` value that ends the session.
pub fn clear() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The operator of a valid, unexpired session cookie in `headers`.
pub fn operator(key: &[u8], headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get_all(axum::http::header::COOKIE);
    let value = cookies
        .iter()
        .filter_map(|header| header.to_str().ok())
        .flat_map(|header| header.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix(&format!("{COOKIE}=")))?;
    let (payload, tag) = value.rsplit_once(':')?;
    let (user, expires) = payload.rsplit_once(':')?;
    let tag = unhex(tag)?;
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), payload.as_bytes(), &tag).ok()?;
    (expires.parse::<u64>().ok()? > unix_now()).then(|| user.to_owned())
}

/// Failed logins per user name, to slow guessing down (per instance).
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    /// How long to wait before checking a password for `user`.
    pub fn delay(&self, user: &str) -> Duration {
        let failures = self.failures.lock().expect("throttle lock");
        match failures.get(user) {
            Some((count, last)) if *count >= FREE_ATTEMPTS && last.elapsed() < Duration::from_secs(900) => {
                Duration::from_millis(500 * 2u64.pow((*count - FREE_ATTEMPTS).min(6)))
            }
            _ => Duration::ZERO,
        }
    }

    /// Records the outcome of a login.
    pub fn record(&self, user: &str, success: bool) {
        let mut failures = self.failures.lock().expect("throttle lock");
        if success {
            failures.remove(user);
        } else {
            let entry = failures.entry(user.to_owned()).or_insert((0, Instant::now()));
            *entry = (entry.0 + 1, Instant::now());
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok()).collect()
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
    fn a_signed_cookie_names_its_operator_and_a_forged_one_nothing() {
        let key = b"0123456789abcdef0123456789abcdef";
        let set_cookie = issue(key, "admin");
        let pair = set_cookie.split(';').next().expect("pair");
        assert_eq!(operator(key, &with_cookie(pair)), Some("admin".into()));
        assert_eq!(operator(b"another key", &with_cookie(pair)), None);
        let forged = pair.replace("admin:", "mallory:");
        assert_eq!(operator(key, &with_cookie(&forged)), None);
        assert_eq!(operator(key, &with_cookie("brewq_session=admin:1:00")), None);
    }

    #[test]
    fn failed_logins_slow_down_after_a_few() {
        let throttle = Throttle::default();
        for _ in 0..FREE_ATTEMPTS {
            assert_eq!(throttle.delay("admin"), Duration::ZERO);
            throttle.record("admin", false);
        }
        assert!(throttle.delay("admin") > Duration::ZERO);
        throttle.record("admin", true);
        assert_eq!(throttle.delay("admin"), Duration::ZERO);
    }
}
