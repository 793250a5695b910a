//! Rotating and revoking the managed signing keys: the operations behind
//! `POST /api/v2/keys/signing/rotate`, `PUT /api/v2/keys/signing/{kid}/revoke`, the
//! `resigner keys rotate|revoke` clients, and the `rotate_every` schedule.
//!
//! Each operation reads the snapshot, computes the new state with the pure transitions of
//! [`crate::keys::managed::transitions`], writes it with a compare-and-set on the managed
//! version (so of two replicas rotating at once exactly one wins: the other gets
//! [`RotationError::Conflict`] and rotates nothing), installs it and writes the audit log. A
//! rotation never retries over a version it did not read: repeating it would rotate twice.
//!
//! May use: `keys::managed`, `keys::store`, the app's managed snapshot.

use std::time::Duration;

use super::AppState;
use super::managed::{InstallError, blocking};
use crate::keys::managed::error::ManagedError;
use crate::keys::managed::{KeyState, ManagedKey, ManagedState, SigningAction, SigningChange};
use crate::keys::store::StoreError;

pub use super::managed::ManagedKeys;

/// Why a rotation or revocation was not made. Nothing is written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("managed signing keys are not enabled: [signing.managed] is not configured")]
    NotManaged,
    #[error("no managed signing keys are loaded yet: {0}")]
    NoSet(String),
    #[error(transparent)]
    Managed(ManagedError),
    #[error(
        "the signing keys have changed since they were read: If-Match does not match the current ETag"
    )]
    Precondition,
    #[error(
        "the signing keys were changed concurrently (another rotation or revocation won); read them again"
    )]
    Conflict,
    #[error("the key store {0} is unavailable; the signing keys were not changed")]
    StoreUnavailable(String),
    #[error("the key store could not be written: {0}")]
    Store(String),
}

impl From<InstallError> for RotationError {
    fn from(err: InstallError) -> Self {
        match err {
            InstallError::Managed(err) => RotationError::Managed(err),
            InstallError::Store(err) => err.into(),
            InstallError::Task(message) => RotationError::Store(message),
        }
    }
}

impl From<StoreError> for RotationError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { .. } => RotationError::Conflict,
            StoreError::Unavailable { location, .. } => RotationError::StoreUnavailable(location),
            other => RotationError::Store(other.to_string()),
        }
    }
}

impl AppState {
    /// What every operation needs first: managed mode on, a state held, If-Match honoured.
    fn managed_base(&self, expected: Option<u64>) -> Result<ManagedState, RotationError> {
        if self.config().signing.managed.is_none() || self.custody().is_none() {
            return Err(RotationError::NotManaged);
        }
        let snapshot = self.managed();
        if snapshot.state.keys.is_empty() {
            let reason = self
                .store_status()
                .no_set
                .unwrap_or_else(|| "the first keys are not created yet".into());
            return Err(RotationError::NoSet(reason));
        }
        if expected.is_some_and(|version| version != snapshot.state.version) {
            return Err(RotationError::Precondition);
        }
        Ok(snapshot.state.clone())
    }

    /// Rotates: next becomes current, current previous, a new next is generated (and
    /// published from now). Returns the new next key.
    pub async fn rotate_signing(
        &self,
        by: &str,
        expected: Option<u64>,
    ) -> Result<ManagedKey, RotationError> {
        let state = self.managed_base(expected)?;
        let config = self.config();
        let Some(spec) = &config.signing.managed else {
            return Err(RotationError::NotManaged);
        };
        let custody = self.custody().ok_or(RotationError::NotManaged)?;
        // The store already holds a newer state (being installed now): a write based on this
        // one would lose, so no key is generated for it.
        if self.store.load().await?.signing.version != state.version {
            return Err(RotationError::Conflict);
        }
        let now = crate::jose::time::now_unix();
        let min_age = config.signing.min_published_age.as_secs();
        // Refused before a key is generated for nothing.
        crate::keys::managed::transitions::check_rotate(&state.keys, now, min_age)
            .map_err(RotationError::Managed)?;
        let alg = spec.alg;
        let new_next = blocking(move || custody.generate(alg, now)).await?;
        let (keys, kids) = crate::keys::managed::transitions::rotate(
            &state.keys,
            new_next.clone(),
            now,
            min_age,
            spec.keep_previous,
        )
        .map_err(RotationError::Managed)?;
        let written = self
            .write_managed(&state, keys, SigningAction::Rotate, kids, by)
            .await?;
        audit(by, SigningAction::Rotate, &written, &state.keys);
        Ok(written.get(&new_next.kid).cloned().unwrap_or(new_next))
    }

    /// Revokes a previous key: it leaves the JWKS at once and signs nothing again. Returns
    /// the revoked key.
    pub async fn revoke_signing(
        &self,
        kid: &str,
        by: &str,
        expected: Option<u64>,
    ) -> Result<ManagedKey, RotationError> {
        let state = self.managed_base(expected)?;
        let now = crate::jose::time::now_unix();
        let keys = crate::keys::managed::transitions::revoke(&state.keys, kid, now)
            .map_err(RotationError::Managed)?;
        let written = self
            .write_managed(
                &state,
                keys,
                SigningAction::Revoke,
                vec![kid.to_string()],
                by,
            )
            .await?;
        audit(by, SigningAction::Revoke, &written, &state.keys);
        written.get(kid).cloned().ok_or_else(|| {
            RotationError::Store(format!("revoked key {kid} missing after the write"))
        })
    }

    async fn write_managed(
        &self,
        base: &ManagedState,
        keys: Vec<ManagedKey>,
        action: SigningAction,
        kids: Vec<String>,
        by: &str,
    ) -> Result<ManagedState, RotationError> {
        let change = SigningChange {
            keys,
            action,
            kids,
            by: Some(by.to_string()),
        };
        let written = self.store.write_signing(base.version, change).await?;
        self.install_managed(written.clone()).await?;
        self.metrics.record_signing_key_change(action.as_str());
        Ok(written)
    }

    /// Rotates whenever the current key has been current for `rotate_every` (and the next
    /// key was published at least `min_published_age`). Every replica runs this; the
    /// compare-and-set lets exactly one of them rotate, the others install its keys.
    pub async fn rotate_on_schedule(self: std::sync::Arc<Self>) {
        loop {
            let wait = match self.rotation_due() {
                Some(0) => {
                    // Replicas due at the same moment spread out over up to 2 s: the first
                    // one's rotation reaches the others (a notification takes milliseconds)
                    // before they generate a key that could only lose.
                    tokio::time::sleep(spread()).await;
                    if self.rotation_due() != Some(0) {
                        continue;
                    }
                    match self.rotate_signing("schedule", None).await {
                        Ok(key) => tracing::info!(next = %key.kid, "scheduled rotation done"),
                        Err(RotationError::Conflict) => {
                            tracing::debug!("scheduled rotation made by another replica")
                        }
                        Err(err) => tracing::warn!(error = %err, "scheduled rotation not made"),
                    }
                    Duration::from_millis(200)
                }
                Some(secs) => Duration::from_secs(secs.min(5)),
                None => Duration::from_secs(5),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Seconds until a scheduled rotation is due (0: now); `None`: no schedule or no keys.
    fn rotation_due(&self) -> Option<u64> {
        let config = self.config();
        let every = config.signing.managed.as_ref()?.rotate_every?.as_secs() as i64;
        let snapshot = self.managed();
        let current = snapshot.state.find(KeyState::Current)?;
        let next = snapshot.state.find(KeyState::Next)?;
        let since = current.current_since.unwrap_or(current.created_at);
        let min_age = config.signing.min_published_age.as_secs() as i64;
        let due = (since + every).max(next.created_at + min_age);
        Some((due - crate::jose::time::now_unix()).max(0) as u64)
    }
}

/// A random pause of up to 2 s.
fn spread() -> Duration {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 2];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    Duration::from_millis(u64::from(u16::from_be_bytes(bytes)) % 2000)
}

/// One audit line per change of the managed keys.
pub(super) fn audit(by: &str, action: SigningAction, after: &ManagedState, before: &[ManagedKey]) {
    let view = |keys: &[ManagedKey]| {
        keys.iter()
            .filter(|k| k.state != KeyState::Revoked)
            .map(|k| format!("{}:{}", k.kid, k.state.as_str()))
            .collect::<Vec<_>>()
    };
    tracing::info!(
        target: "resigner::audit",
        who = %by,
        action = action.as_str(),
        before = ?view(before),
        after = ?view(&after.keys),
        version = after.version,
        "managed signing keys changed"
    );
}
