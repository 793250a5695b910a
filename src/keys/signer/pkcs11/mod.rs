//! The PKCS#11 backend: a key pair on an HSM token (SoftHSM2 in the tests), found by token and
//! key label, signing through the vendor's module with the `cryptoki` crate.
//!
//! - **The module** is loaded and `C_Initialize`d once per process and path ([`module`]);
//!   every key on it shares that context.
//! - **Sessions** are not `Sync`: each signature takes a logged-in session from this key's
//!   pool (or opens one), signs on the calling thread (a signing thread: see
//!   [`super::Placement::Threads`]) and puts it back; at most [`max_idle_sessions`] are kept.
//! - **The public half** is read from the token (`CKA_MODULUS`/`CKA_PUBLIC_EXPONENT` or
//!   `CKA_EC_POINT` of the public key object) when the key connects, and again after a
//!   reconnect: a different key under the same label is refused, never used unpublished.
//! - **A token that goes away** fails the signature with [`SignerError::Unavailable`] and drops
//!   the session; the next signature reconnects (find the token, open, log in, find the key),
//!   at most once per [`RECONNECT_INTERVAL`] (in between, signatures fail fast), and re-
//!   initialises the module when the token is not found, so a token that returns (a SoftHSM
//!   directory restored, an HSM back on the network) signs again without a restart.
//!
//! May use: cryptoki, `keys::jwk`, `jose::alg`, the parent's spec and error types.

pub mod mechanism;
pub mod module;
mod token;

pub use token::{generate, read_public};

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::ObjectHandle;

use super::{Pkcs11Spec, SignerError};
use crate::jose::alg::Alg;
use crate::keys::jwk::KeyMaterial;
use mechanism::Plan;
use module::Pooled;
use token::Found;

/// The least time between two reconnect attempts of one key while its token is away.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

/// Idle sessions kept per key: two per core (the signing threads, and the normal-priority
/// runs of signatures that waited too long for them).
pub fn max_idle_sessions() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What a working connection holds: where the key is and how to sign with it.
struct Connection {
    found: Found,
    /// The module context generation the handles belong to.
    generation: u64,
}

struct State {
    connection: Option<Connection>,
    last_attempt: Option<Instant>,
    /// Why the key cannot sign now.
    problem: Option<String>,
}

/// A connected PKCS#11 key.
pub struct Pkcs11Key {
    spec: Pkcs11Spec,
    alg: Alg,
    /// The public half read when the key connected (and published).
    material: KeyMaterial,
    plan: Plan,
    state: Mutex<State>,
    idle: Mutex<Vec<Pooled>>,
    healthy: AtomicBool,
}

/// Opens the module, finds the key on its token and reads its public half.
pub fn connect(spec: &Pkcs11Spec, alg: Alg) -> Result<(Pkcs11Key, KeyMaterial), SignerError> {
    let (found, session, generation) = token::find(spec, alg)?;
    let material = found.material.clone();
    let key = Pkcs11Key {
        spec: spec.clone(),
        alg,
        material: material.clone(),
        plan: found.plan,
        state: Mutex::new(State {
            connection: Some(Connection { found, generation }),
            last_attempt: None,
            problem: None,
        }),
        idle: Mutex::new(Vec::new()),
        healthy: AtomicBool::new(true),
    };
    key.put_back(session);
    tracing::info!(token = %spec.token_label, key = %spec.key_label, alg = alg.name(), mechanism = %key.plan.describe(), "PKCS#11 key connected");
    Ok((key, material))
}

impl Pkcs11Key {
    /// `None` while the last signature (or connect) worked; else why not.
    pub fn health(&self) -> Option<String> {
        if self.healthy.load(Ordering::Relaxed) {
            return None;
        }
        self.state.lock().ok().and_then(|s| s.problem.clone())
    }

    /// Signs `message` (the JWS signing input) on the calling thread.
    pub fn sign(&self, alg: Alg, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        debug_assert_eq!(alg, self.alg);
        let (pooled, key) = self.session()?;
        let (mechanism, data) = self.plan.prepare(message);
        match pooled.session().sign(&mechanism, key, &data) {
            Ok(output) => {
                self.put_back(pooled);
                self.recovered();
                self.plan.finish(output).ok_or_else(|| {
                    SignerError::Failed("the token's ECDSA output is malformed".into())
                })
            }
            Err(err) => {
                let err = classify(&err);
                // The session may be what broke: never reuse it; and the connection is
                // re-established on the next signature for errors the token caused.
                drop(pooled);
                if !matches!(err, SignerError::Failed(_)) {
                    self.disconnect(&err);
                }
                Err(err)
            }
        }
    }

    /// A logged-in session of the current connection and the key's handle, reconnecting when
    /// there is none (at most once per [`RECONNECT_INTERVAL`]).
    fn session(&self) -> Result<(Pooled, ObjectHandle), SignerError> {
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        if state.connection.is_none() {
            self.reconnect(&mut state)?;
        }
        let Some(connection) = &state.connection else {
            return Err(unavailable(&state));
        };
        let (generation, key) = (connection.generation, connection.found.private);
        if let Some(pooled) = self.take_idle(generation) {
            return Ok((pooled, key));
        }
        let slot = connection.found.slot;
        drop(state);
        match token::open_session(&self.spec, slot, generation) {
            Ok(pooled) => Ok((pooled, key)),
            Err(err) => {
                self.disconnect(&err);
                Err(err)
            }
        }
    }

    fn reconnect(&self, state: &mut State) -> Result<(), SignerError> {
        if state
            .last_attempt
            .is_some_and(|at| at.elapsed() < RECONNECT_INTERVAL)
        {
            return Err(unavailable(state));
        }
        state.last_attempt = Some(Instant::now());
        let (found, session, generation) = match token::find(&self.spec, self.alg) {
            Ok(found) => found,
            Err(err) => {
                state.problem = Some(err.to_string());
                tracing::warn!(token = %self.spec.token_label, key = %self.spec.key_label, "PKCS#11 reconnect failed: {err}");
                return Err(err);
            }
        };
        if found.material != self.material {
            let err = SignerError::Refused(format!(
                "the key labelled {:?} on token {:?} is not the one connected at start (reload to publish and use it)",
                self.spec.key_label, self.spec.token_label
            ));
            state.problem = Some(err.to_string());
            return Err(err);
        }
        tracing::info!(token = %self.spec.token_label, key = %self.spec.key_label, "PKCS#11 key reconnected");
        state.connection = Some(Connection { found, generation });
        state.problem = None;
        drop(self.idle.lock().map(|mut idle| idle.clear()));
        self.put_back(session);
        Ok(())
    }

    /// Forgets the connection and its idle sessions after `err`; logs once per outage.
    fn disconnect(&self, err: &SignerError) {
        let was_healthy = self.healthy.swap(false, Ordering::Relaxed);
        if was_healthy {
            tracing::warn!(token = %self.spec.token_label, key = %self.spec.key_label, kind = err.kind(), "PKCS#11 key stopped signing: {err}");
        }
        if let Ok(mut state) = self.state.lock() {
            state.connection = None;
            state.problem = Some(err.to_string());
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn recovered(&self) {
        if !self.healthy.load(Ordering::Relaxed) {
            self.healthy.store(true, Ordering::Relaxed);
            if let Ok(mut state) = self.state.lock() {
                state.problem = None;
            }
            tracing::info!(token = %self.spec.token_label, key = %self.spec.key_label, "PKCS#11 key signs again");
        }
    }

    fn take_idle(&self, generation: u64) -> Option<Pooled> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(pooled) = idle.pop() {
            if pooled.generation == generation {
                return Some(pooled);
            }
        }
        None
    }

    fn put_back(&self, pooled: Pooled) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < max_idle_sessions()
        {
            idle.push(pooled);
        }
    }
}

fn poisoned() -> SignerError {
    SignerError::Failed("the PKCS#11 key's state lock is poisoned".into())
}

fn unavailable(state: &State) -> SignerError {
    SignerError::Unavailable(
        state
            .problem
            .clone()
            .unwrap_or_else(|| "the PKCS#11 token is not connected".into()),
    )
}

/// A cryptoki error as a [`SignerError`] kind: the token or session gone is `Unavailable`, a
/// PIN or permission problem `Refused`, anything else `Failed`.
pub fn classify(err: &CkError) -> SignerError {
    let text = err.to_string();
    match err {
        CkError::Pkcs11(rv, _) => match rv {
            RvError::PinIncorrect
            | RvError::PinLocked
            | RvError::PinExpired
            | RvError::PinInvalid
            | RvError::PinLenRange
            | RvError::KeyFunctionNotPermitted => SignerError::Refused(text),
            RvError::MechanismInvalid
            | RvError::MechanismParamInvalid
            | RvError::ArgumentsBad
            | RvError::DataLenRange
            | RvError::DataInvalid => SignerError::Failed(text),
            _ => SignerError::Unavailable(text),
        },
        CkError::LibraryLoading(_) => SignerError::Unavailable(text),
        _ => SignerError::Failed(text),
    }
}
