//! The IdP's keys through the weak-key checks ([`crate::keys::weak`]): a weak key is not
//! refused (resigner does not choose the IdP's keys, and refusing would stop every request
//! its tokens carry) but logged as a warning naming the kid and the reason, and counted in
//! `resigner_idp_weak_keys{idp, reason}`, each time a changed key set is installed.
//!
//! May use: [`crate::keys`], [`crate::metrics`].

use crate::keys::VerifyKey;
use crate::keys::weak::{self, WeakKey};
use crate::metrics::Metrics;

/// Checks the keys of the IdP named `idp`, warns about each weak one and sets its gauge for
/// every reason (0 included).
pub(super) fn report(idp: &str, keys: &[VerifyKey], metrics: &Metrics) {
    let mut counts: Vec<(&'static str, i64)> =
        WeakKey::REASONS.iter().map(|reason| (*reason, 0)).collect();
    for key in keys {
        let Err(weak) = weak::check(&key.material) else {
            continue;
        };
        tracing::warn!(
            idp,
            kid = key.kid.as_deref().unwrap_or("(none)"),
            reason = weak.reason(),
            "IdP key is weak: {weak}; tokens it signs are still accepted: replace the key at the IdP"
        );
        if let Some((_, count)) = counts.iter_mut().find(|(r, _)| *r == weak.reason()) {
            *count += 1;
        }
    }
    metrics.set_idp_weak_keys(idp, &counts);
}

/// Drops the series of IdP `idp` (removed or renamed by a reload).
pub(super) fn forget(idp: &str, metrics: &Metrics) {
    metrics.forget_idp(idp, &WeakKey::REASONS);
}
