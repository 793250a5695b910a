//! `[signing]`: the output issuer and lifetime, and the signing keys with exactly one active
//! kid. Each `[[signing.keys]]` entry names exactly one backend: `path` (read here: a key file
//! that does not parse, or whose public key is weak ([`crate::keys::weak`]), is a problem with
//! its field), `pkcs11` or `transit` (described here, connected later by the composition root,
//! which runs the same weak-key check: see [`crate::keys::signer`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::file;
use crate::config::problems::Problems;
use crate::config::runtime::SigningSettings;
use crate::jose::alg::Alg;
use crate::keys::signer::{BackendSpec, KeySpec, Pkcs11Spec, SecretSource, TransitSpec};
use crate::keys::{SigningKey, weak};

/// How long a Transit call may take unless `timeout` says otherwise.
pub const TRANSIT_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn settings(
    raw: &file::SigningSection,
    base: &Path,
    p: &mut Problems,
) -> Option<SigningSettings> {
    if raw.issuer.trim().is_empty() {
        p.push("signing.issuer", "must not be empty");
    }
    let max_ttl = p.duration("signing.max_ttl", &raw.max_ttl, Duration::from_secs(300));
    if max_ttl.is_zero() {
        p.push("signing.max_ttl", "must be positive");
    }
    if let Some(managed) = &raw.managed {
        return managed_settings(raw, managed, max_ttl, base, p);
    }
    if raw.keys.is_empty() {
        p.push(
            "signing.keys",
            "at least one [[signing.keys]] entry (or [signing.managed]) is required",
        );
    }
    let mut specs: Vec<KeySpec> = Vec::new();
    let mut key_paths = Vec::new();
    for (index, entry) in raw.keys.iter().enumerate() {
        let field = format!("signing.keys[{index}]");
        let Some(alg) = Alg::parse(&entry.alg) else {
            p.push(
                format!("{field}.alg"),
                format!("unknown algorithm {:?}", entry.alg),
            );
            continue;
        };
        let Some(spec) = key_spec(entry, alg, &field, base, &mut key_paths, p) else {
            continue;
        };
        if specs.iter().any(|s| s.kid == spec.kid) {
            p.push(
                format!("{field}.kid"),
                format!("kid {:?} is used by another key", spec.kid),
            );
            continue;
        }
        specs.push(spec);
    }
    let active = match (&raw.active, specs.len()) {
        (Some(kid), _) => match specs.iter().find(|s| &s.kid == kid) {
            Some(spec) => Some(spec.kid.clone()),
            None => {
                if specs.len() == raw.keys.len() {
                    p.push("signing.active", format!("no signing key has kid {kid:?}"));
                }
                None
            }
        },
        (None, 1) => specs.first().map(|s| s.kid.clone()),
        (None, 0) => None,
        (None, _) => {
            p.push(
                "signing.active",
                "several signing keys are configured: name the active kid",
            );
            None
        }
    };
    let min_published_age = p.duration(
        "signing.min_published_age",
        &raw.min_published_age,
        Duration::ZERO,
    );
    active.map(|active| {
        SigningSettings::new(
            raw.issuer.clone(),
            max_ttl,
            min_published_age,
            specs,
            active,
            key_paths,
        )
    })
}

/// `[signing.managed]`: the managed current key signs, so no configured key or `active`.
fn managed_settings(
    raw: &file::SigningSection,
    managed: &file::ManagedSection,
    max_ttl: Duration,
    base: &Path,
    p: &mut Problems,
) -> Option<SigningSettings> {
    if !raw.keys.is_empty() {
        p.push(
            "signing.keys",
            "[[signing.keys]] and [signing.managed] exclude each other: with managed keys the \
             managed current key signs (publish an old key through the custom-signing API to \
             keep its tokens verifying)",
        );
    }
    if raw.active.is_some() {
        p.push(
            "signing.active",
            "not used with [signing.managed]: the managed current key signs",
        );
    }
    let min_published_age = p.duration(
        "signing.min_published_age",
        &raw.min_published_age,
        Duration::ZERO,
    );
    let spec = super::managed::spec(managed, base, p)?;
    let mut key_paths = Vec::new();
    if let crate::keys::managed::CustodySpec::Pkcs11 { pin, .. } = &spec.custody {
        watch_secret(&Some(pin.clone()), &mut key_paths);
    }
    let mut settings = SigningSettings::new(
        raw.issuer.clone(),
        max_ttl,
        min_published_age,
        Vec::new(),
        String::new(),
        key_paths,
    );
    settings.managed = Some(spec);
    Some(settings)
}

/// One entry's spec: exactly one backend, a kid where the backend cannot supply a default.
fn key_spec(
    entry: &file::SigningKeySection,
    alg: Alg,
    field: &str,
    base: &Path,
    key_paths: &mut Vec<std::path::PathBuf>,
    p: &mut Problems,
) -> Option<KeySpec> {
    let named = [
        entry.path.is_some().then_some("path"),
        entry.pkcs11.is_some().then_some("pkcs11"),
        entry.transit.is_some().then_some("transit"),
    ];
    let named: Vec<&str> = named.into_iter().flatten().collect();
    if named.len() != 1 {
        let found = match named.is_empty() {
            true => "none is set".to_string(),
            false => format!("{} are set", named.join(" and ")),
        };
        p.push(
            field,
            format!("exactly one of path (a key file), pkcs11 or transit is required; {found}"),
        );
        return None;
    }
    let backend_kid = |p: &mut Problems, backend: &str| match &entry.kid {
        Some(kid) if !kid.trim().is_empty() => Some(kid.clone()),
        _ => {
            p.push(
                format!("{field}.kid"),
                format!("is required for a {backend} key (its public half is read only when the key is connected)"),
            );
            None
        }
    };
    if let Some(path) = &entry.path {
        let path = base.join(path);
        key_paths.push(path.clone());
        return match SigningKey::load(&path, alg, entry.kid.clone()) {
            Ok(key) if let Err(weak) = weak::check(&key.public_jwk().material) => {
                p.push(
                    format!("{field}.path"),
                    format!("signing key {:?} is weak and is refused: {weak}", key.kid()),
                );
                None
            }
            Ok(key) => Some(KeySpec {
                kid: key.kid().to_string(),
                alg,
                backend: BackendSpec::Memory(Arc::new(key)),
            }),
            Err(err) => {
                p.push(format!("{field}.path"), err.to_string());
                None
            }
        };
    }
    if let Some(raw) = &entry.pkcs11 {
        let field = format!("{field}.pkcs11");
        let pin = secret(
            &field,
            ("pin_file", &raw.pin_file),
            ("pin_env", &raw.pin_env),
            base,
            p,
        );
        watch_secret(&pin, key_paths);
        for (name, value) in [
            ("token_label", &raw.token_label),
            ("key_label", &raw.key_label),
        ] {
            if value.is_empty() {
                p.push(format!("{field}.{name}"), "must not be empty");
            }
        }
        if !matches!(
            alg.family(),
            crate::jose::alg::KeyFamily::Rsa | crate::jose::alg::KeyFamily::Ec(_)
        ) {
            p.push(
                &field,
                format!(
                    "{} keys are not supported on PKCS#11 (RSA and EC are)",
                    alg.name()
                ),
            );
        }
        let kid = backend_kid(p, "pkcs11")?;
        return Some(KeySpec {
            kid,
            alg,
            backend: BackendSpec::Pkcs11(Pkcs11Spec {
                module: base.join(&raw.module),
                token_label: raw.token_label.clone(),
                key_label: raw.key_label.clone(),
                pin: pin?,
            }),
        });
    }
    let raw = entry.transit.as_ref()?;
    let field = format!("{field}.transit");
    let token = secret(
        &field,
        ("token_file", &raw.token_file),
        ("token_env", &raw.token_env),
        base,
        p,
    );
    // A renewed token (a Vault Agent's sink file) or CA is picked up by the reload it triggers.
    watch_secret(&token, key_paths);
    let ca_file = raw.ca_file.as_ref().map(|path| base.join(path));
    key_paths.extend(ca_file.clone());
    if let Err(problem) = transit_address(&raw.address) {
        p.push(format!("{field}.address"), problem);
    }
    let timeout = p.duration(&format!("{field}.timeout"), &raw.timeout, TRANSIT_TIMEOUT);
    let kid = backend_kid(p, "transit")?;
    Some(KeySpec {
        kid,
        alg,
        backend: BackendSpec::Transit(TransitSpec {
            address: raw.address.trim_end_matches('/').to_string(),
            mount: raw.mount.clone().unwrap_or_else(|| "transit".into()),
            key: raw.key.clone(),
            token: token?,
            ca_file,
            key_version: raw.key_version,
            timeout,
        }),
    })
}

/// `transit.address`: an http(s) origin (an optional path prefix for a proxy in front of
/// Vault) without credentials, query or fragment. The token travels in every request, so plain
/// `http://` is accepted only for a loopback host (a Vault Agent or a local test server).
pub(super) fn transit_address(address: &str) -> Result<(), String> {
    let uri: http::Uri = address
        .parse()
        .map_err(|err| format!("not a URL ({err})"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err("must be an absolute http:// or https:// URL".into());
    };
    if authority.as_str().contains('@') {
        return Err("must not carry credentials (user:password@); the token comes from token_file or token_env".into());
    }
    if uri.query().is_some() || address.contains('#') {
        return Err("must not have a query or fragment".into());
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback(authority.host()) => Ok(()),
        "http" => Err(format!(
            "plain http:// would send the Vault token to {} in the clear; use https:// \
             (http:// is accepted for a loopback host only)",
            authority.host()
        )),
        other => Err(format!("scheme {other:?}: must be http or https")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A secret read from a file is watched like a key file: a new PIN or token reloads.
fn watch_secret(secret: &Option<SecretSource>, key_paths: &mut Vec<std::path::PathBuf>) {
    if let Some(SecretSource::File(path)) = secret {
        key_paths.push(path.clone());
    }
}

/// Exactly one of a `*_file` and a `*_env` field.
pub(super) fn secret(
    field: &str,
    (file_name, file): (&str, &Option<String>),
    (env_name, env): (&str, &Option<String>),
    base: &Path,
    p: &mut Problems,
) -> Option<SecretSource> {
    match (file, env) {
        (Some(path), None) => Some(SecretSource::File(base.join(path))),
        (None, Some(name)) => Some(SecretSource::Env(name.clone())),
        _ => {
            p.push(
                field,
                format!("exactly one of {file_name} or {env_name} is required"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, parse_config};
    use crate::keys::signer::{BackendSpec, SecretSource};

    /// A config whose one `[[signing.keys]]` entry is `key`, in a temp dir holding `k.pem`.
    fn load(key: &str) -> Result<Config, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let der = crate::keys::SigningKey::generate_pkcs8(crate::jose::alg::Alg::ES256).unwrap();
        let pem = crate::keys::pem::encode(&der, "PRIVATE KEY");
        std::fs::write(dir.path().join("k.pem"), pem).unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[idp]\nissuer = \"https://idp.test/\"\n\
             [signing]\nissuer = \"https://r.test/\"\n[[signing.keys]]\nalg = \"ES256\"\n{key}\n"
        );
        match parse_config(&text, dir.path()) {
            Ok(config) => Ok(config),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems),
            Err(other) => panic!("{other}"),
        }
    }

    const PKCS11: &str = "pkcs11 = { module = \"/usr/lib/softhsm/libsofthsm2.so\", \
                          token_label = \"t\", key_label = \"k\", pin_file = \"pin\" }";

    #[test]
    fn exactly_one_backend_is_named() {
        for (name, key, expected) in [
            ("none", "kid = \"a\"", "none is set"),
            (
                "two",
                &format!("path = \"k.pem\"\n{PKCS11}"),
                "path and pkcs11 are set",
            ),
        ] {
            let problems = load(key).unwrap_err();
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with("signing.keys[0]: exactly one of path")
                        && p.ends_with(expected)),
                "{name}: {problems:?}"
            );
        }
    }

    #[test]
    fn a_backend_key_is_a_spec_with_a_required_kid_and_one_secret_source() {
        let problems = load(PKCS11).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("signing.keys[0].kid: is required for a pkcs11 key")),
            "{problems:?}"
        );
        let both = PKCS11.replace(
            "pin_file = \"pin\"",
            "pin_file = \"pin\", pin_env = \"PIN\"",
        );
        let problems = load(&format!("kid = \"h\"\n{both}")).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p
                    == "signing.keys[0].pkcs11: exactly one of pin_file or pin_env is required"),
            "{problems:?}"
        );

        let config = load(&format!("kid = \"h\"\n{PKCS11}")).unwrap();
        assert!(!config.signing.is_connected(), "validation opens nothing");
        assert!(config.signing.active().is_none());
        let BackendSpec::Pkcs11(spec) = &config.signing.specs[0].backend else {
            panic!("not a pkcs11 spec")
        };
        assert_eq!(spec.token_label, "t");
        assert!(matches!(&spec.pin, SecretSource::File(path) if path.ends_with("pin")));

        let transit = "kid = \"t\"\ntransit = { address = \"http://127.0.0.1:8200/\", key = \"r\", token_env = \"T\" }";
        let config = load(transit).unwrap();
        let BackendSpec::Transit(spec) = &config.signing.specs[0].backend else {
            panic!("not a transit spec")
        };
        assert_eq!(
            (spec.address.as_str(), spec.mount.as_str()),
            ("http://127.0.0.1:8200", "transit")
        );
        assert_eq!(spec.timeout, super::TRANSIT_TIMEOUT);
    }

    #[test]
    fn a_memory_only_config_is_connected_by_validation() {
        let config = load("path = \"k.pem\"").unwrap();
        assert!(config.signing.is_connected());
        assert_eq!(config.signing.active().unwrap().backend(), "memory");
    }

    #[test]
    fn a_transit_address_is_https_or_loopback_http_without_credentials() {
        for ok in [
            "https://vault.example.com:8200",
            "https://vault.example.com/proxy",
            "http://127.0.0.1:8200",
            "http://[::1]:8200",
            "http://localhost:8200",
        ] {
            assert_eq!(super::transit_address(ok), Ok(()), "{ok}");
        }
        for (bad, expected) in [
            ("http://vault.example.com:8200", "in the clear"),
            ("http://10.0.0.5:8200", "in the clear"),
            ("https://user:pw@vault.example.com", "credentials"),
            ("https://vault.example.com/?x=1", "query"),
            ("ftp://vault.example.com", "must be http or https"),
            ("vault.example.com:8200", "absolute"),
            ("", "URL"),
        ] {
            let problem = super::transit_address(bad).unwrap_err();
            assert!(problem.contains(expected), "{bad}: {problem}");
        }
    }
}
