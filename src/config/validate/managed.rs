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
    ]
    .into_iter()
    .flatten()
    .collect();
    let custody = match (named.len(), &raw.pkcs11) {
        (1, Some(token)) => pkcs11(token, alg, base, p),
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
                 under a key-encryption key) or pkcs11 (keys generated on a token)",
            );
            None
        }
        _ => {
            p.push(
                field,
                format!(
                    "exactly one of kek_file, kek_env or pkcs11 is required; {} are set",
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
