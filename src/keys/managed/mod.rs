//! Managed signing keys (`[signing.managed]`): key pairs resigner generates itself, kept in
//! the key store as a small state machine (next → current → previous → revoked, with
//! timestamps) that every replica shares, and rotated or revoked through Auth0's
//! `/api/v2/keys/signing` (see `admin::signing_keys`) or on a schedule (`rotate_every`).
//!
//! - [`state`]: the stored shape ([`ManagedState`], [`ManagedKey`]) and the validated settings
//!   ([`ManagedSpec`]); plain data.
//! - [`error`]: [`ManagedError`], one variant per refusal.
//! - [`transitions`]: pure bootstrap / rotate / revoke over the key list.
//! - [`kek`]: the key-encryption key and AES-256-GCM sealing; [`cert`]: the certificate
//!   Auth0's API shows per key; [`custody`]: generate a key, connect a stored one.
//!
//! **Custody.** With the default custody every private key is generated in memory and stored
//! only *sealed*: AES-256-GCM under a key-encryption key (KEK) read from `kek_file` or
//! `kek_env`, which never enters the store. With a PKCS#11 custody the key pair is generated
//! on the token and the store holds only its label: nothing secret is stored at all.
//!
//! May use: `jose`, `keys::jwk`, `keys::signer`, `keys::digest`; never the store or the app.

pub mod cert;
pub mod custody;
pub mod error;
pub mod kek;
pub mod state;
pub mod transitions;

pub use error::ManagedError;

pub use state::{
    Custody as CustodySpec, KeyState, ManagedKey, ManagedSpec, ManagedState, Sealed, SigningAction,
    SigningChange,
};
