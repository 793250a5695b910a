//! A circuit breaker in front of a remote signer, so a KMS that is down costs a request
//! nothing but a fast 503: after `failures` consecutive availability failures (no
//! connection, no answer in time, a 5xx) the circuit opens for `cool_down`; then one request
//! is let through as a probe (half-open) while the others keep failing fast; the probe's
//! success closes the circuit, its failure opens it again. Refusals (4xx) are answers, not
//! outages, and leave the count alone.
//!
//! May use: std only.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When the circuit opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Consecutive failures that open the circuit.
    pub failures: u32,
    /// How long an open circuit fails fast before a probe is let through.
    pub cool_down: Duration,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        CircuitSettings {
            failures: 3,
            cool_down: Duration::from_secs(5),
        }
    }
}

/// The circuit's state as `/admin/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn name(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is in flight since the instant; one that never reports (its future was
    /// dropped) is replaced after a cool-down.
    HalfOpen {
        since: Instant,
    },
}

#[derive(Debug)]
pub struct Circuit {
    settings: CircuitSettings,
    state: Mutex<State>,
}

impl Circuit {
    pub fn new(settings: CircuitSettings) -> Self {
        Circuit {
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a call may go out now (false: fail fast).
    pub fn admit(&self) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } | State::HalfOpen { since: until }
                if now < until + self.probe_grace(&state) =>
            {
                false
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                *state = State::HalfOpen { since: now };
                true
            }
        }
    }

    /// Records the outcome of an admitted call: `Some(true)` success, `Some(false)` an
    /// availability failure, `None` an answer that says nothing about availability.
    pub fn record(&self, available: Option<bool>) {
        let mut state = self.lock();
        *state = match (available, *state) {
            (Some(true), _) | (None, State::HalfOpen { .. }) => State::Closed { failures: 0 },
            (None, other) => other,
            (Some(false), State::Closed { failures }) if failures + 1 < self.settings.failures => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            (Some(false), _) => State::Open {
                until: Instant::now() + self.settings.cool_down,
            },
        };
    }

    pub fn state(&self) -> CircuitState {
        match *self.lock() {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Open: none (the instant is the end); half-open: the probe's own allowance.
    fn probe_grace(&self, state: &State) -> Duration {
        match state {
            State::HalfOpen { .. } => self.settings.cool_down,
            _ => Duration::ZERO,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit(cool_down_ms: u64) -> Circuit {
        Circuit::new(CircuitSettings {
            failures: 2,
            cool_down: Duration::from_millis(cool_down_ms),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let c = circuit(10_000);
        c.record(Some(false));
        c.record(Some(true));
        c.record(Some(false));
        assert_eq!(c.state(), CircuitState::Closed);
        assert!(c.admit());
        c.record(None);
        c.record(Some(false));
        assert_eq!(c.state(), CircuitState::Open);
        assert!(!c.admit());
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_result_decides() {
        let c = circuit(30);
        c.record(Some(false));
        c.record(Some(false));
        assert!(!c.admit());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.admit(), "the probe");
        assert_eq!(c.state(), CircuitState::HalfOpen);
        assert!(!c.admit(), "others fail fast while the probe is out");
        c.record(Some(false));
        assert_eq!(c.state(), CircuitState::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.admit());
        c.record(Some(true));
        assert_eq!(c.state(), CircuitState::Closed);
        assert!(c.admit());
    }

    #[test]
    fn a_lost_probe_is_replaced_after_a_cool_down() {
        let c = circuit(20);
        c.record(Some(false));
        c.record(Some(false));
        std::thread::sleep(Duration::from_millis(25));
        assert!(c.admit());
        assert!(!c.admit());
        std::thread::sleep(Duration::from_millis(25));
        assert!(c.admit(), "the first probe never reported");
    }
}
