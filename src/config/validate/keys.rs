//! `[keys]`: which store holds the custom key set (a file path, or a `postgres://` URL for a
//! store shared by replicas), the PostgreSQL password file and local copy, and the poll
//! period. A PostgreSQL store's settings are checked here as opening it would (URL, sslmode,
//! CA and password files) without connecting, so a wrong setting is a config problem with
//! its line and never looks like a database outage. No message shows a password.

use std::path::Path;
use std::time::Duration;

use super::super::file::KeysSection;
use super::super::problems::Problems;
use super::super::runtime::{KeysSettings, StoreSelection};
use super::MIN_TIMEOUT;
use crate::keys::store::postgres::{PgOptions, is_postgres_url};

/// The file store's default edit check, and the PostgreSQL store's default poll.
const FILE_POLL: Duration = Duration::from_secs(1);
const POSTGRES_POLL: Duration = Duration::from_secs(30);

pub(super) fn settings(raw: &KeysSection, base: &Path, p: &mut Problems) -> KeysSettings {
    let store_text = raw.store.as_deref().unwrap_or("custom-keys.json");
    let postgres = is_postgres_url(store_text);
    let store = if postgres {
        StoreSelection::Postgres {
            url: store_text.to_string(),
            password_file: raw.store_password_file.as_deref().map(|f| base.join(f)),
        }
    } else {
        if store_text.contains("://") {
            p.push(
                "keys.store",
                "a URL must start with postgres:// or postgresql:// (anything else is a file path)",
            );
        }
        for (name, value) in [
            ("keys.store_password_file", &raw.store_password_file),
            ("keys.cache", &raw.cache),
        ] {
            if value.is_some() {
                p.push(
                    name,
                    "only used with a postgres:// store; remove it or set keys.store to a postgres:// URL",
                );
            }
        }
        StoreSelection::File(base.join(store_text))
    };
    let default_poll = if postgres { POSTGRES_POLL } else { FILE_POLL };
    let poll_interval = p.duration_min(
        "keys.poll_interval",
        &raw.poll_interval,
        default_poll,
        MIN_TIMEOUT,
    );
    let settings = KeysSettings {
        store,
        poll_interval,
        cache: base.join(raw.cache.as_deref().unwrap_or("keys-cache.json")),
    };
    if let Some(options) = pg_options(&settings)
        && let Err(err) = options.check()
    {
        let field = match err.to_string() {
            text if text.contains("password file") => "keys.store_password_file",
            _ => "keys.store",
        };
        p.push(field, err.to_string());
    }
    settings
}

/// The PostgreSQL store's options for these settings (`PGPASSWORD` from the environment);
/// `None` for the file store.
pub fn pg_options(settings: &KeysSettings) -> Option<PgOptions> {
    let StoreSelection::Postgres { url, password_file } = &settings.store else {
        return None;
    };
    let mut options = PgOptions::new(url);
    options.password_file = password_file.clone();
    options.cache = Some(settings.cache.clone());
    options.poll_interval = settings.poll_interval;
    Some(options)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, ConfigError, StoreSelection, parse_config};
    use crate::jose::alg::Alg;
    use crate::keys::{SigningKey, pem};

    /// A config whose `[keys]` table holds `keys`, loaded in a temp dir (returned).
    fn load(keys: &str) -> (tempfile::TempDir, Result<Config, Vec<String>>) {
        let dir = tempfile::tempdir().unwrap();
        let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
        std::fs::write(dir.path().join("k.pem"), pem::encode(&der, "PRIVATE KEY")).unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[idp]\nissuer = \"https://idp.test/\"\n\
             [signing]\nissuer = \"https://r.test/\"\n[[signing.keys]]\npath = \"k.pem\"\nalg = \"ES256\"\n\
             [keys]\n{keys}\n"
        );
        let result = match parse_config(&text, dir.path()) {
            Ok(config) => Ok(config),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems),
            Err(other) => panic!("{other}"),
        };
        (dir, result)
    }

    #[test]
    fn a_path_keeps_the_file_store_and_a_url_selects_postgres_with_its_defaults() {
        let (dir, config) = load("");
        let keys = config.unwrap().keys;
        assert_eq!(
            keys.store,
            StoreSelection::File(dir.path().join("custom-keys.json"))
        );
        assert_eq!(keys.poll_interval, Duration::from_secs(1));

        let (_dir, config) = load(
            "store = \"postgres://app@127.0.0.1:5432/keys?sslmode=disable\"\n\
             store_password_file = \"pw\"",
        );
        let problems = config.unwrap_err();
        assert!(
            problems[0].starts_with("keys.store_password_file: key store settings: password file")
                && problems[0].contains("pw"),
            "{problems:?}"
        );
        let (dir, config) = load("store = \"postgres://app@127.0.0.1:5432/keys?sslmode=disable\"");
        let keys = config.unwrap().keys;
        assert!(matches!(keys.store, StoreSelection::Postgres { .. }));
        assert_eq!(keys.poll_interval, Duration::from_secs(30));
        assert_eq!(keys.cache, dir.path().join("keys-cache.json"));
        assert_eq!(keys.store.to_string(), "postgres://app@127.0.0.1:5432/keys");
    }

    #[test]
    fn store_problems_are_reported_without_the_password() {
        let (_dir, config) =
            load("store = \"postgres://app:s3cret@127.0.0.1/keys?sslmode=sometimes\"");
        let problems = config.unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("keys.store: ") && problems[0].contains("sslmode=sometimes"),
            "{problems:?}"
        );
        let (_dir, config) =
            load("store = \"postgres://app:s3cret@127.0.0.1/keys\"\nstore_password_file = \"pw\"");
        let problems = config.unwrap_err();
        assert!(problems[0].contains("two passwords"), "{problems:?}");
        let (_dir, config) = load("store = \"postgres://app:s3cret@127.0.0.1/keys\"");
        let shown = format!("{:?}", config.unwrap().keys);
        assert!(!shown.contains("s3cret"), "{shown}");
        let (_dir, config) = load("store = \"mysql://app@db/keys\"");
        assert!(
            config.unwrap_err()[0].starts_with("keys.store: a URL must start with postgres://")
        );
    }

    #[test]
    fn postgres_settings_with_a_file_store_are_refused() {
        let (_dir, config) =
            load("store = \"keys.json\"\ncache = \"copy.json\"\nstore_password_file = \"pw\"");
        let problems = config.unwrap_err();
        let fields: Vec<&str> = problems
            .iter()
            .filter_map(|p| p.split(':').next())
            .collect();
        assert_eq!(
            fields,
            ["keys.store_password_file", "keys.cache"],
            "{problems:?}"
        );
    }
}
