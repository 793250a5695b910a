//! `keys generate --pkcs11 SPEC` and `keys jwks --pkcs11 SPEC`: a key pair made on, or read
//! from, a PKCS#11 token. SPEC is `module=PATH,token_label=L,key_label=K,pin_file=PATH` (or
//! `pin_env=NAME`), the fields of a `[[signing.keys]] pkcs11 = {...}` table. The private half
//! is generated on the token, sensitive and not extractable; only the public JWK is printed.
//!
//! May use: `keys::signer` (the PKCS#11 backend), `jose::alg` and the rest of `cli`.

use std::path::PathBuf;

use serde_json::Value;

use super::KeysCliError;
use crate::cli::CliError;
use crate::jose::alg::Alg;
use crate::keys::signer::{Backend, Pkcs11Spec, SecretSource, SigningKey, pkcs11};

/// Parses `module=..,token_label=..,key_label=..,pin_file=..|pin_env=..`.
pub fn parse_spec(text: &str) -> Result<Pkcs11Spec, KeysCliError> {
    let usage = |why: String| {
        KeysCliError::Usage(format!(
            "--pkcs11 {text:?}: {why} (expected module=PATH,token_label=LABEL,key_label=LABEL,pin_file=PATH or pin_env=NAME)"
        ))
    };
    let (mut module, mut token_label, mut key_label, mut pin) = (None, None, None, None);
    for part in text.split(',').filter(|part| !part.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| usage(format!("{part:?} is not name=value")))?;
        let value = value.to_string();
        let slot = match name.trim() {
            "module" => &mut module,
            "token_label" => &mut token_label,
            "key_label" => &mut key_label,
            "pin_file" | "pin_env" if pin.is_some() => {
                return Err(usage("give one of pin_file or pin_env".into()));
            }
            "pin_file" => {
                pin = Some(SecretSource::File(PathBuf::from(value)));
                continue;
            }
            "pin_env" => {
                pin = Some(SecretSource::Env(value));
                continue;
            }
            other => return Err(usage(format!("unknown field {other:?}"))),
        };
        *slot = Some(value);
    }
    let missing = |name: &str| usage(format!("{name} is missing"));
    Ok(Pkcs11Spec {
        module: PathBuf::from(module.ok_or_else(|| missing("module"))?),
        token_label: token_label.ok_or_else(|| missing("token_label"))?,
        key_label: key_label.ok_or_else(|| missing("key_label"))?,
        pin: pin.ok_or_else(|| missing("pin_file or pin_env"))?,
    })
}

fn key_error(err: crate::keys::SignerError) -> CliError {
    KeysCliError::Usage(format!("PKCS#11: {err}")).into()
}

/// The public JWK (kid `kid`, else the RFC 7638 thumbprint) of `material` for `alg`.
fn public_jwk(alg: Alg, kid: Option<String>, material: crate::keys::KeyMaterial) -> Value {
    let jwk = crate::keys::PublicJwk {
        kid: kid.unwrap_or_else(|| material.thumbprint()),
        alg: Some(alg),
        material,
    };
    Value::Object(jwk.to_json())
}

/// `keys generate --pkcs11`: generates the pair on the token and prints its public JWK.
pub fn generate(spec: &str, alg: Alg, kid: Option<String>) -> Result<(), CliError> {
    let spec = parse_spec(spec)?;
    let material = pkcs11::generate(&spec, alg).map_err(key_error)?;
    let jwk = public_jwk(alg, kid, material);
    println!("{}", serde_json::to_string_pretty(&jwk)?);
    eprintln!(
        "generated a {} key pair labelled {:?} on token {:?} (private half sensitive, not extractable)",
        alg.name(),
        spec.key_label,
        spec.token_label
    );
    Ok(())
}

/// `keys jwks --pkcs11`: the public JWKS of the key on the token, read from it.
pub fn jwks(spec: &str, alg: Option<Alg>, kid: Option<String>) -> Result<Value, CliError> {
    let spec = parse_spec(spec)?;
    let alg = alg.ok_or_else(|| KeysCliError::Usage("--pkcs11 needs --alg".into()))?;
    let material = pkcs11::read_public(&spec, alg).map_err(key_error)?;
    Ok(serde_json::json!({"keys": [public_jwk(alg, kid, material)]}))
}

/// A connected [`SigningKey`] for tests and benches.
pub fn signing_key(spec: &Pkcs11Spec, alg: Alg, kid: &str) -> Result<SigningKey, CliError> {
    let (key, material) = pkcs11::connect(spec, alg).map_err(key_error)?;
    Ok(SigningKey::new(
        Some(kid.into()),
        alg,
        material,
        Backend::Pkcs11(Box::new(key)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_names_every_field_once() {
        let spec = parse_spec("module=/m.so,token_label=t,key_label=k,pin_env=PIN").unwrap();
        assert_eq!(spec.module, PathBuf::from("/m.so"));
        assert_eq!(
            (spec.token_label.as_str(), spec.key_label.as_str()),
            ("t", "k")
        );
        assert_eq!(spec.pin, SecretSource::Env("PIN".into()));
        for (name, text, expected) in [
            (
                "missing pin",
                "module=/m.so,token_label=t,key_label=k",
                "pin_file or pin_env is missing",
            ),
            (
                "two pins",
                "module=m,token_label=t,key_label=k,pin_env=A,pin_file=B",
                "one of pin_file",
            ),
            ("typo", "modul=m", "unknown field \"modul\""),
            ("no value", "module", "is not name=value"),
        ] {
            let err = parse_spec(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{name}: {err}");
        }
    }
}
