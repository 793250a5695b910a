//! `[signing.managed]`: keys resigner generates, seals and rotates itself (see
//! [`crate::keys::managed`]). Checked here: the algorithm, exactly one custody (`kek_file`,
//! `kek_env` or `pkcs11`), the rotation period and how many previous keys stay published.
//! Nothing is read: the KEK and the token are opened by the composition root at start, so a
//! missing or wrong KEK stops the start with the setting named.

use std::path::Path;
use std::time::Duration;

use super::signing::secret;
use crate::config::file;
use crate::config::problems::Problems;
use crate::jose::alg::{Alg, KeyFamily};
use crate::keys::managed::{CustodySpec, ManagedSpec};
use crate::keys::signer::SecretSource;

/// The shortest `rotate_every` accepted: a schedule faster than this is a typo.
pub const MIN_ROTATE_EVERY: Duration = Duration::from_secs(60);

pub(super) fn spec(
    raw: &file::ManagedSection,
    base: &Path,
    p: &mut Problems,
) -> Option<ManagedSpec> {
    let field = "signing.managed";
    let alg = Alg::parse(&raw.alg);
    if alg.is_none() {
        p.push(
            format!("{field}.alg"),
            format!("unknown algorithm {:?}", raw.alg),
        );
    }
    let named: Vec<&str> = [
        raw.kek_file.is_some().then_some("kek_file"),
        raw.kek_env.is_some().then_some("kek_env"),
        raw.pkcs11.is_some().then_some("pkcs11"),
        raw.transit.is_some().then_some("transit"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let custody = match (named.len(), &raw.pkcs11) {
        (1, Some(token)) => pkcs11(token, alg, base, p),
        (1, None) if raw.transit.is_some() => {
            raw.transit.as_ref().and_then(|t| transit(t, base, p))
        }
        (1, None) => match (&raw.kek_file, &raw.kek_env) {
            (Some(path), _) => Some(CustodySpec::Sealed {
                kek: SecretSource::File(base.join(path)),
            }),
            (_, Some(name)) if name.trim().is_empty() => {
                p.push(
                    format!("{field}.kek_env"),
                    "must name an environment variable",
                );
                None
            }
            (_, Some(name)) => Some(CustodySpec::Sealed {
                kek: SecretSource::Env(name.clone()),
            }),
            _ => None,
        },
        (0, _) => {
            p.push(
                field,
                "where the private keys are kept is required: kek_file or kek_env (keys sealed \
                 under a key-encryption key), pkcs11 (keys generated on a token) or transit (keys \
                 created in a Vault/OpenBao Transit engine)",
            );
            None
        }
        _ => {
            p.push(
                field,
                format!(
                    "exactly one of kek_file, kek_env, pkcs11 or transit is required; {} are set",
                    named.join(" and ")
                ),
            );
            None
        }
    };
    let rotate_every = raw.rotate_every.as_ref().and_then(|_| {
        let every = p.duration(
            &format!("{field}.rotate_every"),
            &raw.rotate_every,
            Duration::ZERO,
        );
        if every < MIN_ROTATE_EVERY {
            p.push(
                format!("{field}.rotate_every"),
                format!(
                    "must be at least {} (got {})",
                    humantime::format_duration(MIN_ROTATE_EVERY),
                    humantime::format_duration(every)
                ),
            );
            return None;
        }
        Some(every)
    });
    let keep_previous = raw.keep_previous.unwrap_or(1);
    if keep_previous > 16 {
        p.push(
            format!("{field}.keep_previous"),
            format!("at most 16 previous keys stay published (got {keep_previous})"),
        );
    }
    Some(ManagedSpec {
        alg: alg?,
        custody: custody?,
        rotate_every,
        keep_previous: keep_previous.min(16) as usize,
    })
}

fn pkcs11(
    raw: &file::ManagedPkcs11Section,
    alg: Option<Alg>,
    base: &Path,
    p: &mut Problems,
) -> Option<CustodySpec> {
    let field = "signing.managed.pkcs11";
    let pin = secret(
        field,
        ("pin_file", &raw.pin_file),
        ("pin_env", &raw.pin_env),
        base,
        p,
    );
    if raw.token_label.is_empty() {
        p.push(format!("{field}.token_label"), "must not be empty");
    }
    if let Some(alg) = alg
        && !matches!(alg.family(), KeyFamily::Rsa | KeyFamily::Ec(_))
    {
        p.push(
            field,
            format!(
                "{} keys cannot be generated on PKCS#11 (RSA and EC can)",
                alg.name()
            ),
        );
        return None;
    }
    Some(CustodySpec::Pkcs11 {
        module: base.join(&raw.module),
        token_label: raw.token_label.clone(),
        pin: pin?,
    })
}

fn transit(
    raw: &file::ManagedTransitSection,
    base: &Path,
    p: &mut Problems,
) -> Option<CustodySpec> {
    let field = "signing.managed.transit";
    let token = secret(
        field,
        ("token_file", &raw.token_file),
        ("token_env", &raw.token_env),
        base,
        p,
    );
    if let Err(problem) = super::signing::transit_address(&raw.address) {
        p.push(format!("{field}.address"), problem);
    }
    let timeout = p.duration(
        &format!("{field}.timeout"),
        &raw.timeout,
        super::signing::TRANSIT_TIMEOUT,
    );
    Some(CustodySpec::Transit(crate::keys::signer::TransitSpec {
        address: raw.address.trim_end_matches('/').to_string(),
        mount: raw.mount.clone().unwrap_or_else(|| "transit".into()),
        key: String::new(),
        token: token?,
        ca_file: raw.ca_file.as_ref().map(|path| base.join(path)),
        key_version: None,
        timeout,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, parse_config};
    use crate::keys::managed::CustodySpec;

    /// The problems (or the custody) of a config whose `[signing.managed]` adds `custody`.
    fn custody(custody: &str) -> Result<CustodySpec, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[idp]\nissuer = \"https://idp.test/\"\n\
             [signing]\nissuer = \"https://r.test/\"\n[signing.managed]\nalg = \"ES256\"\n{custody}\n"
        );
        match parse_config(&text, dir.path()) {
            Ok(config) => Ok(config.signing.managed.unwrap().custody),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn exactly_one_custody_and_transit_as_a_transit_key_is_checked() {
        let transit = "transit = { address = \"http://127.0.0.1:8200/\", token_env = \"T\" }";
        let Ok(CustodySpec::Transit(spec)) = custody(transit) else {
            panic!("a transit custody");
        };
        assert_eq!(
            (
                spec.address.as_str(),
                spec.mount.as_str(),
                spec.key.as_str()
            ),
            ("http://127.0.0.1:8200", "transit", "")
        );
        let both = custody(&format!("kek_env = \"K\"\n{transit}")).unwrap_err();
        assert!(
            both.iter().any(|p| p.contains(
                "exactly one of kek_file, kek_env, pkcs11 or transit is required; kek_env and transit are set"
            )),
            "{both:?}"
        );
        let remote =
            custody("transit = { address = \"http://vault.example:8200\", token_env = \"T\" }")
                .unwrap_err();
        assert!(
            remote
                .iter()
                .any(|p| p.starts_with("signing.managed.transit.address: plain http://")),
            "{remote:?}"
        );
        let none = custody("").unwrap_err();
        assert!(none.iter().any(|p| p.contains("or transit")), "{none:?}");
    }
}
