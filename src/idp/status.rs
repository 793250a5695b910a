//! What the IdP client knows about its own fetches, and how it says so. Whether the first
//! attempt has ended: a request that finds no key set right after a (re)start waits for that
//! attempt (and only for it, bounded by `fetch_timeout`) instead of failing at once. How many
//! attempts in a row failed, and the wording of a failure for the log and for `last_error`
//! (`/readyz`, `/admin/status`), which says whether a key set is held at all: "no key set is
//! loaded yet" before the first success, "keeping the last good key set" after it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use super::IdpError;

/// The key set the client holds when a fetch fails, with the time since it was fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    Nothing,
    Good(Duration),
    /// Older than `max_stale`: no longer used.
    TooStale(Duration),
}

pub(super) struct FetchStatus {
    /// `true` once the first fetch attempt has ended, whatever its result.
    first_attempt: watch::Sender<bool>,
    /// Failed attempts since the last success.
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl FetchStatus {
    pub(super) fn new() -> Self {
        FetchStatus {
            first_attempt: watch::Sender::new(false),
            failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub(super) fn first_attempt_ended(&self) -> bool {
        *self.first_attempt.borrow()
    }

    /// Waits until the first attempt ends, for at most `limit`.
    pub(super) async fn wait_first_attempt(&self, limit: Duration) {
        let mut ended = self.first_attempt.subscribe();
        let _ = tokio::time::timeout(limit, ended.wait_for(|ended| *ended)).await;
    }

    pub(super) fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Records a success (call after the keys are installed, so waiters find them).
    pub(super) fn succeeded(&self) {
        self.failures.store(0, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = None;
        }
        self.first_attempt.send_replace(true);
    }

    /// Records and logs a failure; `retry` is when the next attempt is due, if scheduled.
    pub(super) fn failed(&self, error: &IdpError, held: Held, retry: Option<Duration>) {
        let attempt = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let what = describe(attempt, held, retry, crate::jose::time::now_unix());
        tracing::warn!(error = %error, "IdP JWKS fetch failed {what}");
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(format!("{error} {what}"));
        }
        self.first_attempt.send_replace(true);
    }
}

/// `(attempt 3); no key set is loaded yet; next attempt in 2s at 2026-12-02T06:10:03Z`.
fn describe(attempt: u64, held: Held, retry: Option<Duration>, now: i64) -> String {
    let ago = |age: Duration| crate::jose::time::describe_relative(-(age.as_secs() as i64));
    let held = match held {
        Held::Nothing => "no key set is loaded yet".to_string(),
        Held::Good(age) => format!("keeping the last good key set (fetched {})", ago(age)),
        Held::TooStale(age) => format!(
            "the last key set (fetched {}) is older than max_stale and no longer used",
            ago(age)
        ),
    };
    let mut text = format!("(attempt {attempt}); {held}");
    if let Some(retry) = retry {
        let at = now + retry.as_secs_f64().ceil() as i64;
        text.push_str(&format!(
            "; next attempt in {retry:?} at {}",
            crate::jose::time::format_utc(at)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_what_is_held_and_when_the_next_attempt_runs() {
        let now = 1_796_105_400; // 2026-12-01T06:10:00Z
        assert_eq!(
            describe(3, Held::Nothing, Some(Duration::from_secs(2)), now),
            "(attempt 3); no key set is loaded yet; next attempt in 2s at 2026-12-01T06:10:02Z"
        );
        assert_eq!(
            describe(1, Held::Good(Duration::from_secs(303)), None, now),
            "(attempt 1); keeping the last good key set (fetched 5m 3s ago)"
        );
        assert!(
            describe(2, Held::TooStale(Duration::from_secs(7200)), None, now)
                .contains("older than max_stale and no longer used")
        );
        assert!(
            describe(1, Held::Nothing, Some(Duration::from_millis(250)), now)
                .ends_with("next attempt in 250ms at 2026-12-01T06:10:01Z")
        );
    }

    #[tokio::test]
    async fn the_first_attempt_ends_on_failure_too_and_counts_restart_on_success() {
        let status = FetchStatus::new();
        assert!(!status.first_attempt_ended());
        let started = std::time::Instant::now();
        status.wait_first_attempt(Duration::from_millis(50)).await;
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "bounded wait"
        );
        let error = IdpError::Status("http://idp/jwks".into(), http::StatusCode::BAD_GATEWAY);
        status.failed(&error, Held::Nothing, None);
        assert!(status.first_attempt_ended());
        status.failed(&error, Held::Nothing, None);
        let last = status.last_error().unwrap();
        assert!(
            last.contains("502") && last.contains("(attempt 2);"),
            "{last}"
        );
        status.succeeded();
        assert_eq!(status.last_error(), None);
        status.failed(&error, Held::Good(Duration::ZERO), None);
        assert!(status.last_error().unwrap().contains("(attempt 1);"));
    }
}
