//! `keys generate`: a new signing key as `OUT.pem` (PKCS#8, created with mode 0600) and
//! `OUT.jwk.json` (its public JWK, kid the RFC 7638 thumbprint unless `--kid`). Neither file
//! is ever overwritten: a key that signs tokens someone trusts must not be lost to a typo.
//!
//! May use: `keys` (generation, PEM), `jose::alg` and [`crate::cli::files`].

use std::path::{Path, PathBuf};

use crate::cli::CliError;
use crate::cli::files::{at, write_private};
use crate::jose::alg::Alg;
use crate::keys::{SigningKey, SigningKeyError, pem};

/// Why `keys generate` wrote nothing (or, for [`GenerateError::Write`], not everything).
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("unknown algorithm {0:?}")]
    UnknownAlg(String),
    #[error(transparent)]
    Generate(#[from] SigningKeyError),
    #[error("{0}")]
    Key(String),
    #[error("{0} exists; refusing to overwrite a key (move it away first)")]
    Exists(String),
    #[error("creating {0}")]
    CreateDir(String, #[source] std::io::Error),
    #[error("writing {0}")]
    Write(String, #[source] std::io::Error),
}

/// Generates an `alg` key and writes `out.pem` and `out.jwk.json`; prints what it wrote.
/// With `pkcs11`, the key pair is made on that token instead (see [`super::pkcs11`]).
pub fn generate(
    alg: &str,
    out: Option<&Path>,
    pkcs11: Option<&str>,
    kid: Option<String>,
) -> Result<(), CliError> {
    let alg = Alg::parse(alg).ok_or_else(|| GenerateError::UnknownAlg(alg.to_string()))?;
    let out = match (out, pkcs11) {
        (_, Some(spec)) => return super::pkcs11::generate(spec, alg, kid),
        (Some(out), None) => out,
        (None, None) => {
            return Err(GenerateError::Key("--out or --pkcs11 is required".into()).into());
        }
    };
    let der = SigningKey::generate_pkcs8(alg).map_err(GenerateError::from)?;
    let key = SigningKey::from_pkcs8(&der, alg, kid).map_err(GenerateError::Key)?;
    let pem_path = with_suffix(out, ".pem");
    let jwk_path = with_suffix(out, ".jwk.json");
    for path in [&pem_path, &jwk_path] {
        if path.exists() {
            return Err(GenerateError::Exists(path.display().to_string()).into());
        }
    }
    if let Some(parent) = pem_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(at(parent, GenerateError::CreateDir))?;
    }
    write_private(&pem_path, &pem::encode(&der, "PRIVATE KEY"))
        .map_err(at(&pem_path, GenerateError::Write))?;
    let jwk = serde_json::to_string_pretty(&key.public_jwk().to_json())?;
    std::fs::write(&jwk_path, jwk + "\n").map_err(at(&jwk_path, GenerateError::Write))?;
    println!(
        "wrote {} (private, 0600) and {} (public JWK), kid {}",
        pem_path.display(),
        jwk_path.display(),
        key.kid()
    );
    Ok(())
}

/// `OUT` with `suffix` appended to its file name (`--out keys/a` gives `keys/a.pem`).
fn with_suffix(out: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", out.display()))
}
