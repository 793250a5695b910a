//! The label sets of the registered families. Every value is a `&'static str` from a fixed
//! list, a status code, or an `Arc<str>` shared with the series it names, so building a label
//! set to look a series up never allocates.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;

/// `resigner_requests_total{route, status}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: Arc<str>,
    pub status: u16,
}

/// `resigner_verification_failures_total{reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// `{result}` of cache lookups, IdP fetches and reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// `resigner_signatures_total{kid, alg}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KeyLabels {
    pub kid: Arc<str>,
    pub alg: &'static str,
}

/// `resigner_signature_duration_seconds{alg, backend}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AlgLabel {
    pub alg: &'static str,
    pub backend: &'static str,
}

/// `resigner_signing_errors_total{backend, kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SignerErrorLabels {
    pub backend: &'static str,
    pub kind: &'static str,
}

/// `resigner_upstream_errors_total{kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

/// `resigner_admin_changes_total{action}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct Action {
    pub action: &'static str,
}

/// `resigner_signing_key_published{kid}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct KidLabel {
    pub kid: Arc<str>,
}

/// `resigner_idp_jwks_fetches_total{idp, result}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IdpResult {
    pub idp: Arc<str>,
    pub result: &'static str,
}

/// `resigner_idp_jwks_age_seconds{idp}` and `resigner_idp_jwks_loaded{idp}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IdpLabel {
    pub idp: Arc<str>,
}

/// `resigner_idp_weak_keys{idp, reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IdpReason {
    pub idp: Arc<str>,
    pub reason: &'static str,
}
