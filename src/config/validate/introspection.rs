//! `[idp] introspection = { ... }` (RFC 7662): the endpoint, resigner's client credentials
//! (the secret read now, from a file or the environment), timeout and cache bounds; and the
//! rule that a route or `[admin]` accepts at most one introspecting IdP.

use std::path::Path;
use std::time::Duration;

use super::MIN_TIMEOUT;
use crate::config::file;
use crate::config::problems::Problems;
use crate::config::runtime::{IdpSettings, IntrospectionSettings, Secret};

/// `introspection = { endpoint, client_id, client_secret_file | client_secret_env, timeout,
/// cache_max, negative_ttl }`; the secret is read now (a reload reads it again).
pub(super) fn settings(
    raw: &file::IntrospectionSection,
    field: &str,
    base: &Path,
    p: &mut Problems,
) -> Option<IntrospectionSettings> {
    let f = |name: &str| format!("{field}.{name}");
    let endpoint = p.http_url(&f("endpoint"), &raw.endpoint);
    if raw.client_id.is_empty() || raw.client_id.chars().any(char::is_control) {
        p.push(
            f("client_id"),
            "must be a non-empty string without control characters",
        );
    }
    let source = super::signing::secret(
        field,
        ("client_secret_file", &raw.client_secret_file),
        ("client_secret_env", &raw.client_secret_env),
        base,
        p,
    );
    let secret_file = match &source {
        Some(crate::keys::signer::SecretSource::File(path)) => Some(path.clone()),
        _ => None,
    };
    let secret = source.and_then(|source| match source.read() {
        Ok(secret) if !secret.is_empty() => Some(secret),
        Ok(_) => {
            p.push(field, "the client secret is empty");
            None
        }
        Err(err) => {
            p.push(field, format!("client secret: {err}"));
            None
        }
    });
    let timeout = p.duration_min(
        &f("timeout"),
        &raw.timeout,
        Duration::from_secs(5),
        MIN_TIMEOUT,
    );
    let cache_max = p.duration(&f("cache_max"), &raw.cache_max, Duration::from_secs(300));
    let negative_ttl = p.duration(
        &f("negative_ttl"),
        &raw.negative_ttl,
        Duration::from_secs(10),
    );
    Some(IntrospectionSettings {
        endpoint: endpoint?,
        client_id: raw.client_id.clone(),
        client_secret: Secret::new(secret?),
        secret_file,
        timeout,
        cache_max,
        negative_ttl,
    })
}

/// An opaque token has no `iss` to pick its IdP by: a route (or the management API, `field`)
/// may accept at most one IdP with introspection, so a token is never sent to another IdP.
pub(super) fn one_introspecting(
    p: &mut Problems,
    field: &str,
    accepted: Option<&[String]>,
    idps: &[IdpSettings],
) {
    let introspecting: Vec<&str> = idps
        .iter()
        .filter(|idp| idp.introspection.is_some())
        .filter(|idp| crate::config::runtime::accepts(accepted, &idp.issuer))
        .map(|idp| idp.name.as_str())
        .collect();
    if introspecting.len() > 1 {
        p.push(
            field,
            format!(
                "accepts several IdPs with introspection ({}): an opaque token would be sent \
                 to each of them; name one of them in issuers",
                introspecting.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn problems(text: &str, base: &Path) -> Vec<String> {
        let text = format!(
            "{text}\n[server]\nlisten = \"127.0.0.1:1\"\n[signing]\nissuer = \"https://me/\"\n"
        );
        match crate::config::parse_config(&text, base) {
            Ok(_) => Vec::new(),
            Err(err) => err.problems(),
        }
    }

    #[test]
    fn the_client_secret_is_read_when_loading_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "s3cret\n").unwrap();
        let missing = problems(
            "[idp]\nissuer = \"https://a.test/\"\n\
             introspection = { endpoint = \"https://a.test/introspect\", client_id = \"r\", \
             client_secret_file = \"nope\" }",
            dir.path(),
        );
        assert!(
            missing
                .iter()
                .any(|p| p.starts_with("idp.introspection: client secret: cannot read")),
            "{missing:#?}"
        );
        let both = problems(
            "[idp]\nissuer = \"https://a.test/\"\n\
             introspection = { endpoint = \"ftp://a.test/\", client_id = \"\", \
             client_secret_file = \"secret\", client_secret_env = \"X\" }",
            dir.path(),
        );
        for wanted in [
            "idp.introspection.endpoint: \"ftp://a.test/\" is not an http",
            "idp.introspection.client_id: must be a non-empty string",
            "idp.introspection: exactly one of client_secret_file or client_secret_env",
        ] {
            assert!(
                both.iter().any(|p| p.starts_with(wanted)),
                "{wanted}: {both:#?}"
            );
        }
        let settings = crate::config::runtime::Secret::new("s3cret".into());
        assert_eq!(format!("{settings:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn a_route_may_accept_only_one_introspecting_idp() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        let introspect = |host: &str| {
            format!(
                "[[idp]]\nname = \"{host}\"\nissuer = \"https://{host}/\"\n\
                 introspection = {{ endpoint = \"https://{host}/i\", client_id = \"r\", \
                 client_secret_file = \"secret\" }}\n"
            )
        };
        let text = format!(
            "{}{}[[routes]]\nprefix = \"/all\"\nupstream = \"http://127.0.0.1:2\"\n\
             audience = \"x\"\n[[routes]]\nprefix = \"/one\"\nupstream = \"http://127.0.0.1:2\"\n\
             audience = \"x\"\nissuers = [\"a\"]\n",
            introspect("a"),
            introspect("b")
        );
        let found = problems(&text, dir.path());
        assert!(
            found.iter().any(|p| p
                .starts_with("routes[0].issuers: accepts several IdPs with introspection (a, b)")),
            "{found:#?}"
        );
        assert!(
            !found.iter().any(|p| p.starts_with("routes[1]")),
            "{found:#?}"
        );
    }
}
