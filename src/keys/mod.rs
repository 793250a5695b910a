//! Key material: public JWKs (parsing, thumbprints, rendering), private signing keys parsed
//! once, PEM files, and the published key set.

pub mod digest;
pub mod import;
pub mod jwk;
pub mod key_set;
pub mod observe;
pub mod pem;
pub mod signing;
pub mod signing_pool;
pub mod store;
pub mod transit;
pub mod x509;

pub use jwk::{KeyMaterial, PublicJwk, VerifyKey};
pub use key_set::{CustomKeySet, RenderedJwks};
pub use signing::{SigningKey, SigningKeyError};
