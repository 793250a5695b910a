//! Key material: public JWKs (parsing, thumbprints, rendering), the signer abstraction and its
//! backends (`signer`: in-memory, PKCS#11, Vault/OpenBao Transit), PEM files, the published
//! key set, and the weak-key checks every trusted key passes.

pub mod der;
pub mod digest;
pub mod import;
pub mod jwk;
pub mod key_set;
pub mod managed;
pub mod pem;
pub mod signer;
pub mod signing_pool;
pub mod store;
pub mod weak;
pub mod x509;

pub use jwk::{KeyMaterial, PublicJwk, VerifyKey};
pub use key_set::{CustomKeySet, RenderedJwks};
pub use signer::{SignerError, SigningKey, SigningKeyError};
