//! The PKCS#11 backend: a key pair on an HSM token (SoftHSM2 in the tests), found by token and
//! key label, signing through the vendor's module with the `cryptoki` crate.
//!
//! - **The module** is loaded and `C_Initialize`d once per process and path ([`module`]);
//!   every key on it shares that context, and each (re-)initialisation has a generation.
//! - **Sessions** are not `Sync`: each signature takes a logged-in session from this key's
//!   pool (or opens one), signs on the calling thread (a signing thread: see
//!   [`super::Placement::Threads`]) and puts it back; at most [`max_idle_sessions`] are kept.
//!   Before taking one, the key compares its connection's generation with the **module's**
//!   current one: when any key on the module re-initialised it (`C_Finalize`), every session
//!   and object handle of this key is void (SoftHSM numbers handles afresh, so an old number
//!   may name another key's object) and the key reconnects at once.
//! - **The public half** is read from the token (`CKA_MODULUS`/`CKA_PUBLIC_EXPONENT` or
//!   `CKA_EC_POINT` of the public key object) when the key connects, and again after a
//!   reconnect: a different key under the same label is refused, never used unpublished.
//! - **Every signature is verified** against that public half before it leaves (as Transit
//!   does), and connect/reconnect make one probe signature: a private key that is not the
//!   public one's pair, swapped under its label, or a handle naming another object never
//!   signs under this kid, even when another thread re-initialises the module between the
//!   generation check and `C_Sign`. Measured: an ES256 verify is ~47 µs (OpenSSL's P-256;
//!   aws-lc-rs is alike) next to ~100 µs for SoftHSM's ES256 signature, so about +50% per
//!   ES256 call on SoftHSM (+18% of the proxy's CPU per cache miss), far less next to a
//!   network HSM's round trip; an RSA-2048 verify (~15 µs) is ~2% of SoftHSM's RS256.
//! - **A token that goes away** fails the signature with [`SignerError::Unavailable`] and drops
//!   the session; the next signature reconnects (find the token, open, log in, find the key,
//!   probe), at most once per [`RECONNECT_INTERVAL`] (in between, signatures fail fast), and
//!   re-initialises the module when the token is not found, so a token that returns (a SoftHSM
//!   directory restored, an HSM back on the network) signs again without a restart.
//! - **Reconnecting runs outside the key's lock**, one attempt in flight: other signatures
//!   of the key fail fast with `Unavailable` meanwhile. PKCS#11 calls themselves have **no
//!   timeout** (the API has none): a hung module holds each signing thread that calls into
//!   it, and once every signing thread is held, other keys' signatures wait too.
//! - **PIN refused**: once `C_Login` answers `CKR_PIN_INCORRECT`, `_LOCKED`, `_EXPIRED`,
//!   `_INVALID` or `CKR_PIN_LEN_RANGE`, the key never logs in again (a real HSM locks the
//!   user PIN after a few tries): every signature is [`SignerError::Refused`] (503) at once,
//!   without touching the token, and the status says [`PIN_REFUSED`] until a reload connects
//!   the key anew. Login attempts are counted ([`Pkcs11Key::login_attempts`]).
//!
//! May use: cryptoki, aws-lc-rs signature verification, `keys::jwk`, `jose::alg`, the
//! parent's spec and error types.

mod classify;
pub mod mechanism;
pub mod module;
mod token;

pub use classify::classify;
pub use token::{generate, read_public};

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::ParsedPublicKey;
use cryptoki::object::ObjectHandle;

use super::{Pkcs11Spec, SignerError};
use crate::jose::alg::Alg;
use crate::keys::jwk::KeyMaterial;
use mechanism::Plan;
use module::Pooled;
use token::{Found, Logins};

/// The least time between two reconnect attempts of one key while its token is away.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

/// The status of a key whose PIN the token refused (the PIN itself is never shown).
pub const PIN_REFUSED: &str = "PIN refused by the token; fix pin_file and reload";

/// What connect and reconnect sign to check the private key against the public one.
const PROBE: &[u8] = b"resigner PKCS#11 key pair check";

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
    /// A reconnect is running (outside the lock).
    connecting: bool,
    /// Why the key cannot sign now.
    problem: Option<String>,
}

/// A connected PKCS#11 key.
pub struct Pkcs11Key {
    spec: Pkcs11Spec,
    alg: Alg,
    /// The public half read when the key connected (and published).
    material: KeyMaterial,
    /// That public half, parsed to verify each signature.
    public: ParsedPublicKey,
    plan: Plan,
    state: Mutex<State>,
    idle: Mutex<Vec<Pooled>>,
    healthy: AtomicBool,
    logins: Logins,
}

/// Opens the module, finds the key on its token, reads its public half and checks that the
/// private key signs for it.
pub fn connect(spec: &Pkcs11Spec, alg: Alg) -> Result<(Pkcs11Key, KeyMaterial), SignerError> {
    let logins = Logins::default();
    let (found, session, generation) = token::find(spec, alg, &logins)?;
    let material = found.material.clone();
    let public = material
        .parse_for(alg)
        .map_err(|err| SignerError::Failed(format!("the token's public key is unusable: {err}")))?;
    let key = Pkcs11Key {
        spec: spec.clone(),
        alg,
        material: material.clone(),
        public,
        plan: found.plan,
        state: Mutex::new(State {
            connection: None,
            last_attempt: None,
            connecting: false,
            problem: None,
        }),
        idle: Mutex::new(Vec::new()),
        healthy: AtomicBool::new(true),
        logins,
    };
    key.probe(&session, &found)?;
    key.state.lock().map_err(|_| poisoned())?.connection = Some(Connection { found, generation });
    key.put_back(session);
    tracing::info!(token = %spec.token_label, key = %spec.key_label, alg = alg.name(), mechanism = %key.plan.describe(), "PKCS#11 key connected");
    Ok((key, material))
}

impl Pkcs11Key {
    /// `None` while the last signature (or connect) worked; else why not.
    pub fn health(&self) -> Option<String> {
        if self.logins.pin_refused.load(Ordering::Relaxed) {
            return Some(PIN_REFUSED.into());
        }
        if self.healthy.load(Ordering::Relaxed) {
            return None;
        }
        self.state.lock().ok().and_then(|s| s.problem.clone())
    }

    /// How often this key called `C_Login` since it connected.
    pub fn login_attempts(&self) -> u64 {
        self.logins.attempts.load(Ordering::Relaxed)
    }

    /// Signs `message` (the JWS signing input) on the calling thread and verifies the result
    /// against the public half.
    pub fn sign(&self, alg: Alg, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        debug_assert_eq!(alg, self.alg);
        let (pooled, key) = self.session()?;
        match self.sign_in(&pooled, key, message) {
            Ok(signature) => {
                self.put_back(pooled);
                self.recovered();
                Ok(signature)
            }
            Err(err) => {
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

    /// One `C_Sign` of `message` with the private key `key` in `pooled`, verified.
    fn sign_in(
        &self,
        pooled: &Pooled,
        key: ObjectHandle,
        message: &[u8],
    ) -> Result<Vec<u8>, SignerError> {
        let signature = self.sign_unverified(pooled, key, message)?;
        match self.public.verify_sig(message, &signature) {
            Ok(()) => Ok(signature),
            Err(_) => Err(SignerError::Unavailable(format!(
                "the token's signature does not verify under the public key of {:?} on token {:?}; reconnecting",
                self.spec.key_label, self.spec.token_label
            ))),
        }
    }

    fn sign_unverified(
        &self,
        pooled: &Pooled,
        key: ObjectHandle,
        message: &[u8],
    ) -> Result<Vec<u8>, SignerError> {
        let (mechanism, data) = self.plan.prepare(message);
        let output = pooled
            .session()
            .sign(&mechanism, key, &data)
            .map_err(|err| classify(&err))?;
        self.plan
            .finish(output)
            .ok_or_else(|| SignerError::Failed("the token's ECDSA output is malformed".into()))
    }

    /// The probe signature of a (re)connect: the private key found signs for the public key.
    fn probe(&self, pooled: &Pooled, found: &Found) -> Result<(), SignerError> {
        let signature = self.sign_unverified(pooled, found.private, PROBE)?;
        self.public.verify_sig(PROBE, &signature).map_err(|_| {
            SignerError::Refused(format!(
                "the private key labelled {:?} on token {:?} does not sign for its public key (not a pair, or swapped)",
                self.spec.key_label, self.spec.token_label
            ))
        })
    }

    /// A logged-in session of the current connection and the key's handle, reconnecting when
    /// there is none or the module was re-initialised since (at most once per
    /// [`RECONNECT_INTERVAL`] after a failed attempt).
    fn session(&self) -> Result<(Pooled, ObjectHandle), SignerError> {
        if self.logins.pin_refused.load(Ordering::Relaxed) {
            return Err(SignerError::Refused(PIN_REFUSED.into()));
        }
        let current = module::generation(&self.spec.module);
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        if state
            .connection
            .as_ref()
            .is_some_and(|c| c.generation != current)
        {
            // Another key re-initialised the module: every handle here is void.
            state.connection = None;
            state.last_attempt = None;
            drop(self.idle.lock().map(|mut idle| idle.clear()));
        }
        let Some(connection) = &state.connection else {
            drop(state);
            return self.reconnect();
        };
        let (generation, key) = (connection.generation, connection.found.private);
        if let Some(pooled) = self.take_idle(generation) {
            return Ok((pooled, key));
        }
        let slot = connection.found.slot;
        drop(state);
        match token::open_session(&self.spec, slot, generation, &self.logins) {
            Ok(pooled) => Ok((pooled, key)),
            Err(err) => {
                self.disconnect(&err);
                Err(err)
            }
        }
    }

    /// Finds the key again (outside the state lock; one attempt at a time, the others fail
    /// fast) and returns a session of the new connection.
    fn reconnect(&self) -> Result<(Pooled, ObjectHandle), SignerError> {
        {
            let mut state = self.state.lock().map_err(|_| poisoned())?;
            if state.connecting
                || state
                    .last_attempt
                    .is_some_and(|at| at.elapsed() < RECONNECT_INTERVAL)
            {
                return Err(unavailable(&state));
            }
            state.connecting = true;
            state.last_attempt = Some(Instant::now());
        }
        let result = self.find_again();
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        state.connecting = false;
        match result {
            Ok((found, session, generation)) => {
                tracing::info!(token = %self.spec.token_label, key = %self.spec.key_label, "PKCS#11 key reconnected");
                let key = found.private;
                state.connection = Some(Connection { found, generation });
                state.problem = None;
                drop(self.idle.lock().map(|mut idle| idle.clear()));
                Ok((session, key))
            }
            Err(err) => {
                state.problem = Some(err.to_string());
                tracing::warn!(token = %self.spec.token_label, key = %self.spec.key_label, "PKCS#11 reconnect failed: {err}");
                Err(err)
            }
        }
    }

    fn find_again(&self) -> Result<(Found, Pooled, u64), SignerError> {
        let (found, session, generation) = token::find(&self.spec, self.alg, &self.logins)?;
        if found.material != self.material {
            return Err(SignerError::Refused(format!(
                "the key labelled {:?} on token {:?} is not the one connected at start (reload to publish and use it)",
                self.spec.key_label, self.spec.token_label
            )));
        }
        self.probe(&session, &found)?;
        Ok((found, session, generation))
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
