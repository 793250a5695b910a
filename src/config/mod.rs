//! Configuration as plain data: the TOML file shape (`file`, checked key by key in
//! `schema`), the validated runtime shape (`runtime`), and the one way between them
//! (`validate`, collecting every problem in `problems`); `load_config` goes from a path to a
//! runtime [`Config`], naming each problem's line (`lines`).
//!
//! May use: `http` (TLS material, header names), `jose`, `keys` (signing keys are loaded
//! while validating). Starts nothing, serves nothing, and imports nothing of the request
//! path (`proxy`, `router`, `app`): they read config, never the reverse.

pub mod file;
pub mod lines;
mod problems;
pub mod runtime;
pub mod schema;
pub mod validate;

use std::path::Path;

pub use runtime::{
    AdminSettings, CacheSettings, ClaimMapping, Config, IdpSettings, KeysSettings, RESERVED, Route,
    RouteMode, ServerSettings, SigningSettings, StaticToken, StoreSelection, UpstreamSettings,
    UpstreamTarget,
};

/// Why a configuration file could not become a running configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { path: String, problems: Vec<String> },
}

/// Reads, parses and validates the config file at `path`. Relative paths inside the file
/// (signing keys) are resolved against the file's own directory.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let mut config = parse_config(&text, base).map_err(|err| match err {
        ConfigError::Parse { message, .. } => ConfigError::Parse {
            path: shown.clone(),
            message,
        },
        ConfigError::Invalid { problems, .. } => {
            let mut located: Vec<(Option<usize>, String)> = problems
                .into_iter()
                .map(|problem| with_line(&text, problem))
                .collect();
            // In file order (the schema check visits keys alphabetically); those without a
            // line last.
            located.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
            ConfigError::Invalid {
                path: shown.clone(),
                problems: located.into_iter().map(|(_, problem)| problem).collect(),
            }
        }
        other => other,
    })?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Prefixes a "field: message" problem with the line the field is written on, else the
/// line of the nearest enclosing field found (a key inside an inline table).
fn with_line(text: &str, problem: String) -> (Option<usize>, String) {
    let mut field = problem.split(": ").next().unwrap_or_default();
    loop {
        if let Some(line) = lines::locate(text, field) {
            return (Some(line), format!("line {line}: {problem}"));
        }
        match field.rfind(['.', '[']) {
            Some(end) => field = &field[..end],
            None => return (None, problem),
        }
    }
}

impl ConfigError {
    /// Every problem, one line each (a parse error is one entry).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid { problems, .. } => problems.clone(),
            other => vec![other.to_string()],
        }
    }
}

/// Parses and validates config text; `base` anchors relative file paths. Only a TOML syntax
/// error stops at once: unknown keys, values of the wrong type and missing keys are reported
/// (see [`schema`]) together with every problem validation finds in the rest.
pub fn parse_config(text: &str, base: &Path) -> Result<Config, ConfigError> {
    let parse_error = |err: toml::de::Error| ConfigError::Parse {
        path: "<text>".into(),
        message: err.to_string().trim_end().replace('\n', "\n    "),
    };
    let mut table: toml::Table = text.parse().map_err(parse_error)?;
    let mut problems = schema::check(&mut table);
    // Back through text, so what is left deserializes exactly as a file does (a TOML
    // date-time stays one in `claims.set`); the schema check left only known, typed keys.
    let cleaned = toml::to_string(&table).map_err(|err| ConfigError::Parse {
        path: "<text>".into(),
        message: err.to_string(),
    })?;
    let raw: file::FileConfig = toml::from_str(&cleaned).map_err(parse_error)?;
    match validate::validate(raw, base) {
        Ok(config) if problems.is_empty() => return Ok(config),
        Ok(_) => {}
        Err(semantic) => {
            let new: Vec<String> = semantic
                .into_iter()
                .filter(|problem| !schema::follows_from(&problems, problem))
                .collect();
            problems.extend(new);
        }
    }
    Err(ConfigError::Invalid {
        path: "<text>".into(),
        problems,
    })
}

#[cfg(test)]
pub(crate) mod example_tests {
    //! `config/example.toml` is documentation that must stay true: every key in it is a real
    //! field, and with its key files in place it loads as written.

    use std::path::Path;
    use std::time::Duration;

    use http::header::{AUTHORIZATION, HeaderName};
    use serde_json::{Value, json};

    use super::*;
    use crate::jose::alg::Alg;
    use crate::keys::{SigningKey, pem};

    const EXAMPLE: &str = include_str!("../../config/example.toml");

    /// Writes a fresh PKCS#8 PEM private key for `alg` at `path`, creating its directory.
    fn write_key(path: &Path, alg: Alg) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let der = SigningKey::generate_pkcs8(alg).unwrap();
        std::fs::write(path, pem::encode(&der, "PRIVATE KEY")).unwrap();
    }

    /// `text` in the strict file shape, after the schema's one reshaping (`[idp]` to a list).
    fn file_shape(text: &str) -> Result<file::FileConfig, toml::de::Error> {
        let mut table: toml::Table = text.parse()?;
        schema::normalize(&mut table);
        toml::from_str(&toml::to_string(&table).expect("serializes"))
    }

    /// The example with its commented-out settings (`# name = value`) switched on.
    fn with_commented_settings_enabled(text: &str) -> String {
        text.lines()
            .map(|line| {
                let rest = line.strip_prefix("# ").unwrap_or("");
                let is_setting = rest.split_once(" = ").is_some_and(|(name, _)| {
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                });
                if is_setting { rest } else { line }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn example_parses_into_the_file_shape_with_every_setting_present() {
        let raw = file_shape(EXAMPLE).unwrap_or_else(|err| panic!("config/example.toml: {err}"));
        assert!(raw.server.header_read_timeout.is_some());
        assert!(raw.server.max_header_bytes.is_some() && raw.server.max_headers.is_some());
        assert!(raw.server.body_read_timeout.is_some() && raw.server.drain_timeout.is_some());
        assert!(raw.server.max_connections.is_some());
        assert!(raw.server.workers.is_some() && raw.server.scheduler.is_some());
        assert!(raw.admin.listen.is_some());
        let idp = &raw.idp[0];
        for (name, value) in [
            ("jwks_uri", &idp.jwks_uri),
            ("leeway", &idp.leeway),
            ("require_typ", &idp.require_typ),
            ("refresh", &idp.refresh),
            ("refresh_min", &idp.refresh_min),
            ("refresh_max", &idp.refresh_max),
            ("unknown_kid_cooldown", &idp.unknown_kid_cooldown),
            ("max_stale", &idp.max_stale),
            ("fetch_timeout", &idp.fetch_timeout),
        ] {
            assert!(value.is_some(), "idp.{name} is not shown");
        }
        assert!(idp.algorithms.is_some());
        assert!(raw.signing.max_ttl.is_some());
        assert!(raw.signing.active.is_some());
        assert_eq!(raw.signing.keys.len(), 2);
        assert!(raw.signing.keys.iter().all(|key| key.kid.is_some()));
        assert!(raw.cache.max_bytes.is_some());
        assert!(raw.upstream.connect_timeout.is_some());
        assert!(raw.upstream.timeout.is_some());
        assert!(raw.upstream.pool_idle_timeout.is_some());
        assert_eq!(raw.routes.len(), 2);
        let full = &raw.routes[0];
        assert!(full.strip_prefix);
        assert!(full.header.is_some() && full.timeout.is_some());
        assert!(full.claims.audience.is_some() && full.claims.copy.is_some());
        assert!(!full.claims.rename.is_empty());
        assert!(!full.claims.set.is_empty());
        assert!(!full.claims.remove.is_empty());
        let set = &full.claims.set;
        assert!(set.values().any(Value::is_string));
        assert!(set.values().any(Value::is_i64));
        assert!(set.values().any(Value::is_boolean));
        assert!(set.values().any(Value::is_array));

        // The settings shown commented out (`# max_entries = ...`) are real fields too.
        let enabled = with_commented_settings_enabled(EXAMPLE);
        let raw = file_shape(&enabled)
            .unwrap_or_else(|err| panic!("config/example.toml, comments enabled: {err}"));
        assert!(raw.cache.max_entries.is_some());
        let legacy = &raw.routes[1];
        for (name, value) in [
            ("server.tls_cert", &raw.server.tls_cert),
            ("server.tls_key", &raw.server.tls_key),
            ("server.public_url", &raw.server.public_url),
            ("admin.tls_cert", &raw.admin.tls_cert),
            ("admin.tls_key", &raw.admin.tls_key),
            ("idp.ca_file", &raw.idp[0].ca_file),
            ("routes[1].ca_file", &legacy.ca_file),
            ("routes[1].client_cert", &legacy.client_cert),
            ("routes[1].client_key", &legacy.client_key),
            ("keys.store_password_file", &raw.keys.store_password_file),
            ("keys.cache", &raw.keys.cache),
        ] {
            assert!(value.is_some(), "{name} is not shown");
        }
    }

    /// `config/example.toml` loaded as written, its key files generated beside it in the
    /// returned directory (the router's tests look routes up in it too).
    pub(crate) fn load_example() -> (tempfile::TempDir, Config) {
        let tmp = tempfile::tempdir().unwrap();
        let config_path = tmp.path().join("config").join("example.toml");
        std::fs::create_dir_all(config_path.parent().unwrap()).unwrap();
        std::fs::write(&config_path, EXAMPLE).unwrap();
        let signing = tmp.path().join("certs").join("signing");
        write_key(&signing.join("example.pem"), Alg::ES256);
        write_key(&signing.join("example-next.pem"), Alg::ES256);
        let config = load_config(&config_path).unwrap_or_else(|err| panic!("{err}"));
        (tmp, config)
    }

    #[test]
    fn example_loads_with_its_key_files_in_place() {
        let (_tmp, config) = load_example();

        assert_eq!(config.server.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.server.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.server.max_header_bytes, 65536);
        assert_eq!(config.server.max_headers, 100);
        assert_eq!(config.server.body_read_timeout, Duration::from_secs(30));
        assert_eq!(config.server.max_connections, 4096);
        assert_eq!(config.server.listen_backlog, 4096);
        assert_eq!(config.server.drain_timeout, Duration::from_secs(30));
        assert_eq!(
            config.server.scheduler,
            crate::http::workers::Scheduler::PerCore
        );
        assert_eq!(
            config.server.workers,
            crate::http::workers::default_workers()
        );
        assert!(config.server.tls.is_none() && config.admin_tls.is_none());
        assert_eq!(config.admin_listen, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(config.idps[0].issuer, "https://idp.example.com/");
        assert!(config.idps[0].jwks_uri.is_some());
        assert_eq!(config.idps[0].algorithms, [Alg::RS256]);
        assert_eq!(config.idps[0].leeway, Duration::from_secs(30));
        assert_eq!(config.idps[0].require_typ.as_deref(), Some("at+jwt"));
        assert_eq!(config.idps[0].refresh, Duration::from_secs(600));
        assert_eq!(config.idps[0].max_stale, Duration::from_secs(86_400));
        assert_eq!(config.signing.issuer, "https://auth.example.com/");
        assert_eq!(config.signing.max_ttl, Duration::from_secs(300));
        assert_eq!(config.signing.active().unwrap().kid(), "example-2025-06");
        assert_eq!(config.signing.active().unwrap().alg(), Alg::ES256);
        let kids: Vec<&str> = config.signing.keys.iter().map(|k| k.kid()).collect();
        assert_eq!(kids, ["example-2025-06", "example-2025-12"]);
        assert_eq!(config.cache.max_bytes, Some(64 * 1024 * 1024));
        assert_eq!(config.cache.max_entries, None);
        assert_eq!(config.upstream.timeout, Duration::from_secs(30));

        assert_eq!(config.routes.len(), 2);
        let orders = &config.routes[0];
        assert_eq!(orders.prefix, "/orders");
        assert_eq!(orders.upstream.scheme.as_str(), "http");
        assert_eq!(orders.upstream.authority.as_str(), "orders.internal:8081");
        assert_eq!(orders.upstream.base_path, "/api/v1");
        assert_eq!(orders.audience, "https://api.example.com");
        assert!(orders.strip_prefix);
        assert_eq!(orders.header, AUTHORIZATION);
        assert_eq!(orders.timeout, Duration::from_secs(10));
        let expected = ClaimMapping {
            audience: json!(["legacy-orders", "legacy-billing"]),
            copy: Some(vec![
                "sub".into(),
                "client_id".into(),
                "jti".into(),
                "email".into(),
            ]),
            rename: vec![
                ("https://idp.example.com/roles".into(), "roles".into()),
                ("scope".into(), "scp".into()),
            ],
            set: json!({
                "tenant": "acme",
                "legacy_level": 2,
                "internal": true,
                "groups": ["orders", "billing"],
            })
            .as_object()
            .unwrap()
            .clone(),
            remove: vec!["email".into()],
        };
        assert_eq!(orders.claims, expected);

        let legacy = &config.routes[1];
        assert_eq!(legacy.prefix, "/legacy");
        assert_eq!(legacy.upstream.scheme.as_str(), "https");
        assert_eq!(legacy.upstream.base_path, "");
        assert!(!legacy.strip_prefix);
        assert_eq!(legacy.header, HeaderName::from_static("x-legacy-token"));
        assert_eq!(legacy.timeout, config.upstream.timeout);
        assert_eq!(legacy.claims.audience, json!("https://legacy.example.com"));
        assert_eq!(legacy.claims.copy, None);
        assert!(legacy.claims.rename.is_empty());
        assert!(legacy.claims.set.is_empty());
        assert!(legacy.claims.remove.is_empty());
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        write_key(&tmp.path().join("signing.pem"), Alg::ES256);
        let config_path = tmp.path().join("broken.toml");
        std::fs::write(
            &config_path,
            r#"
[server]
listen = "localhost:8080"
scheduler = "fifo"
workers = 5000

[idp]
issuer = "https://idp.example.com/"
algorithms = ["RS256", "none"]
leway = "30s"
refresh = 600
max_stale = "1 fortnight"

[signing]
issuer = "https://auth.example.com/"

[[signing.keys]]
path = "signing.pem"
alg = "ES256"

[[routes]]
prefix = "orders"
upstream = "http://orders.internal"
audience = "https://api.example.com"
timout = "10s"

[routes.claims.set]
exp = 4102444800
"#,
        )
        .unwrap();

        let err = load_config(&config_path).unwrap_err();
        let ConfigError::Invalid { path, problems } = &err else {
            panic!("expected ConfigError::Invalid, got {err}");
        };
        assert_eq!(path, &config_path.display().to_string());
        let has = |line: usize, field: &str, text: &str| {
            problems
                .iter()
                .any(|p| p.starts_with(&format!("line {line}: {field}: ")) && p.contains(text))
        };
        assert!(has(3, "server.listen", "localhost:8080"), "{problems:#?}");
        assert!(has(4, "server.scheduler", "\"fifo\""), "{problems:#?}");
        assert!(has(5, "server.workers", "at most 1024"), "{problems:#?}");
        assert!(has(9, "idp.algorithms", "\"none\""), "{problems:#?}");
        let leway = "unknown key; did you mean `leeway`?";
        assert!(has(10, "idp.leway", leway), "{problems:#?}");
        let refresh = "expected a string like \"10m\", found integer 600";
        assert!(has(11, "idp.refresh", refresh), "{problems:#?}");
        assert!(
            has(12, "idp.max_stale", "\"1 fortnight\" is not a duration"),
            "{problems:#?}"
        );
        assert!(
            has(22, "routes[0].prefix", "must start with '/'"),
            "{problems:#?}"
        );
        let timout = "unknown key; did you mean `timeout`?";
        assert!(has(25, "routes[0].timout", timout), "{problems:#?}");
        assert!(has(27, "routes[0].claims.set", "\"exp\""), "{problems:#?}");
        assert_eq!(problems.len(), 10, "{problems:#?}");
        assert!(err.to_string().contains("10 problem(s)"), "{err}");
    }
}
