//! A brake on password guessing, in bounded memory and CPU.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Failed logins, to slow guessing down (per instance), in bounded memory and CPU: per bucket
/// (the operator's name, and one for every other name, which can never succeed), each attempt
/// past the first few must wait twice as long as the one before (up to [`LONGEST_WAIT`]); a
/// bucket is forgotten [`REMEMBERED`] after its last attempt and at most [`MAX_BUCKETS`] are
/// kept; and at most [`CONCURRENT_CHECKS`] passwords are checked at once.
pub struct Throttle {
    buckets: Mutex<HashMap<String, Attempts>>,
    checks: Arc<Semaphore>,
}

/// The bucket of every user name that is not the operator's.
pub const OTHER_NAMES: &str = "";
/// Longest user name looked at; a longer one is refused before any password check.
pub const MAX_USER_BYTES: usize = 64;
/// Attempts per bucket that need not wait.
const FREE_ATTEMPTS: u32 = 3;
/// The wait after the first attempt past the free ones; each further one doubles it.
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
const LONGEST_WAIT: Duration = Duration::from_secs(32);
/// How long a bucket is kept after its last attempt.
const REMEMBERED: Duration = Duration::from_secs(900);
/// Most buckets kept; a new one beyond waits until the oldest is forgotten.
const MAX_BUCKETS: usize = 1024;
/// Password checks (bcrypt, a quarter second of a core each) at once.
const CONCURRENT_CHECKS: usize = 2;

/// The attempts in one bucket not yet followed by a success.
#[derive(Debug, Clone, Copy)]
struct Attempts {
    count: u32,
    last: Instant,
}

impl Attempts {
    /// When the next attempt may start.
    fn next_at(&self) -> Instant {
        let Some(past_free) = self.count.checked_sub(FREE_ATTEMPTS) else { return self.last };
        self.last + FIRST_WAIT.saturating_mul(2u32.saturating_pow(past_free)).min(LONGEST_WAIT)
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { buckets: Mutex::new(HashMap::new()), checks: Arc::new(Semaphore::new(CONCURRENT_CHECKS)) }
    }
}

impl Throttle {
    /// Starts a login attempt in `bucket`, counted as failed until [`Throttle::succeeded`];
    /// or refuses it, with how long to wait. Counted at the start, so that attempts sent
    /// together cannot all pass before the first has failed.
    pub fn begin(&self, bucket: &str) -> Result<(), Duration> {
        self.begin_at(bucket, Instant::now())
    }

    fn begin_at(&self, bucket: &str, now: Instant) -> Result<(), Duration> {
        // A panic elsewhere while holding the lock leaves the counts usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.retain(|_, attempts| now.saturating_duration_since(attempts.last) < REMEMBERED);
        if let Some(attempts) = buckets.get_mut(bucket) {
            let next_at = attempts.next_at();
            if now < next_at {
                return Err(next_at - now);
            }
            *attempts = Attempts { count: attempts.count + 1, last: now };
            return Ok(());
        }
        if buckets.len() >= MAX_BUCKETS {
            let oldest = buckets.values().map(|attempts| attempts.last).min().unwrap_or(now);
            return Err((oldest + REMEMBERED).saturating_duration_since(now).max(Duration::from_secs(1)));
        }
        buckets.insert(bucket.to_owned(), Attempts { count: 1, last: now });
        Ok(())
    }

    /// The attempt in `bucket` succeeded: its count starts again.
    pub fn succeeded(&self, bucket: &str) {
        self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(bucket);
    }

    /// Waits for the right to check a password; hold it until the check is done.
    pub async fn check(&self) -> OwnedSemaphorePermit {
        // The semaphore is never closed, so acquiring cannot fail; without a permit the
        // check would still be correct, only unbounded.
        self.checks.clone().acquire_owned().await.expect("the throttle's semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_past_the_free_ones_wait_twice_as_long_each_time_and_a_success_resets() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for _ in 0..FREE_ATTEMPTS {
            assert_eq!(throttle.begin_at("admin", start), Ok(()));
        }
        assert_eq!(throttle.begin_at("admin", start), Err(FIRST_WAIT));
        assert_eq!(throttle.begin_at("admin", start + FIRST_WAIT), Ok(()));
        let later = start + FIRST_WAIT;
        assert_eq!(throttle.begin_at("admin", later), Err(FIRST_WAIT * 2));
        let mut now = later;
        for _ in 0..20 {
            now += LONGEST_WAIT;
            assert_eq!(throttle.begin_at("admin", now), Ok(()), "never more than the longest wait");
        }
        assert_eq!(throttle.begin_at("admin", now), Err(LONGEST_WAIT));
        assert_eq!(throttle.begin_at(OTHER_NAMES, now), Ok(()), "buckets are separate");
        throttle.succeeded("admin");
        assert_eq!(throttle.begin_at("admin", now), Ok(()));
    }

    #[test]
    fn attempts_are_forgotten_after_a_while() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for _ in 0..=FREE_ATTEMPTS {
            let _ = throttle.begin_at("admin", start);
        }
        assert!(throttle.begin_at("admin", start).is_err());
        assert_eq!(throttle.begin_at("admin", start + REMEMBERED), Ok(()));
        assert_eq!(throttle.buckets.lock().expect("lock")["admin"].count, 1, "counted from scratch");
    }

    #[test]
    fn the_buckets_are_capped_and_a_new_one_waits_for_the_oldest_to_be_forgotten() {
        let throttle = Throttle::default();
        let start = Instant::now();
        for index in 0..MAX_BUCKETS {
            assert_eq!(throttle.begin_at(&format!("user{index}"), start), Ok(()));
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(throttle.begin_at("one too many", later), Err(REMEMBERED - Duration::from_secs(60)));
        assert_eq!(throttle.begin_at("user0", later), Ok(()), "a kept bucket goes on");
        assert_eq!(throttle.buckets.lock().expect("lock").len(), MAX_BUCKETS);
        assert_eq!(throttle.begin_at("one too many", start + REMEMBERED), Ok(()));
        assert_eq!(throttle.buckets.lock().expect("lock").len(), 2, "the forgotten ones are gone");
    }

    #[tokio::test]
    async fn at_most_two_passwords_are_checked_at_once() {
        let throttle = Throttle::default();
        let first = throttle.check().await;
        let _second = throttle.check().await;
        let third = tokio::time::timeout(Duration::from_millis(50), throttle.check()).await;
        assert!(third.is_err(), "a third check waits");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), throttle.check()).await;
        assert!(third.is_ok(), "and goes once one is done");
    }
}
