//! Errors of managed signing keys (KEK, custody, certificates, transitions). Messages name
//! the setting or kid concerned and never contain a secret. May use: `state`.

use super::state::KeyState;

#[derive(Debug, thiserror::Error)]
pub enum ManagedError {
    #[error("{setting}: {message}")]
    Kek {
        setting: &'static str,
        message: String,
    },
    #[error("managed key {kid}: {message}")]
    WrongKek { kid: String, message: String },
    #[error("cannot generate a managed signing key: {0}")]
    Generate(String),
    #[error("signing.managed.pkcs11: {0}")]
    Pkcs11(String),
    #[error("signing.managed.transit: {0}")]
    Transit(String),
    #[error("cannot make the certificate of a managed key: {0}")]
    Cert(String),
    #[error("no next managed signing key to rotate in")]
    NoNext,
    #[error("no current managed signing key")]
    NoCurrent,
    #[error(
        "next key {kid} has been published {age_secs}s, signing.min_published_age requires {required_secs}s before it may become current"
    )]
    TooYoung {
        kid: String,
        age_secs: u64,
        required_secs: u64,
    },
    #[error("no managed signing key with kid {0}")]
    UnknownKid(String),
    #[error("managed key {kid} is {}, only a previous key can be revoked", state.as_str())]
    NotPrevious { kid: String, state: KeyState },
    #[error("managed key {0} is already revoked")]
    AlreadyRevoked(String),
    #[error("managed key store data is corrupt: {0}")]
    Corrupt(String),
}
