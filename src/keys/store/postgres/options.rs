//! The PostgreSQL store's settings: the `postgres://` URL with libpq's `sslmode` values
//! (which `tokio-postgres` alone does not all know), where the password comes from, and the
//! timeouts. Everything is checked before the first connection, so a wrong setting is a clear
//! error at start-up and never looks like a database outage.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode};

use super::super::StoreError;
use super::tls::{RustlsConnect, Verify};

/// How to reach the database and how to follow it. [`PgOptions::new`] fills the defaults.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/dbname[?sslmode=...&sslrootcert=...]`.
    pub url: String,
    /// A file holding the password (trailing newline ignored); refused together with a
    /// password in the URL.
    pub password_file: Option<PathBuf>,
    /// The password when neither the URL nor the file gives one: `PGPASSWORD` as read by
    /// [`PgOptions::new`].
    pub env_password: Option<String>,
    /// Trust anchors for `sslmode=verify-ca`/`verify-full` (also `sslrootcert` in the URL).
    pub ca_file: Option<PathBuf>,
    /// The local copy of the last set read from the database, served when it is down at start.
    pub cache: Option<PathBuf>,
    /// Bounds connecting (TCP, TLS, authentication): a write while the database is down fails
    /// after at most this long.
    pub connect_timeout: Duration,
    /// Sent as the session's `statement_timeout`, and bounds each exchange on our side too.
    pub statement_timeout: Duration,
    /// The follower reads the current version this often even without a notification.
    pub poll_interval: Duration,
    /// The follower's reconnect backoff doubles from 100 ms up to this.
    pub max_backoff: Duration,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact_url(&self.url))
            .field("password_file", &self.password_file)
            .field(
                "env_password",
                &self.env_password.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_file", &self.ca_file)
            .field("cache", &self.cache)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl PgOptions {
    /// Options for `url` with the defaults (5 s connect and statement timeouts, a 30 s poll,
    /// backoff up to 10 s) and `PGPASSWORD` from the environment.
    pub fn new(url: &str) -> Self {
        PgOptions {
            url: url.to_string(),
            password_file: None,
            env_password: std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
            ca_file: None,
            cache: None,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_secs(30),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl PgOptions {
    /// Checks the settings as opening the store would (URL, sslmode, CA and password files)
    /// without connecting, for `resigner check` and config validation.
    pub fn check(&self) -> Result<(), StoreError> {
        Settings::from_options(self).map(|_| ())
    }
}

/// The checked settings every connection is made from.
#[derive(Clone)]
pub(super) struct Settings {
    pub config: tokio_postgres::Config,
    pub tls: RustlsConnect,
    /// `user@host:port/dbname`, for messages and the status (no password).
    pub location: String,
    pub connect_timeout: Duration,
    /// Our bound on one exchange (a read, or a whole write transaction).
    pub exchange_timeout: Duration,
    pub poll_interval: Duration,
    pub max_backoff: Duration,
    pub cache: Option<PathBuf>,
}

/// True for a `postgres://` or `postgresql://` URL (what selects this backend).
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

impl Settings {
    pub fn from_options(options: &PgOptions) -> Result<Self, StoreError> {
        let bad = |message: String| StoreError::Settings(message);
        if !is_postgres_url(&options.url) {
            return Err(bad(format!(
                "{} is not a postgres:// URL",
                redact_url(&options.url)
            )));
        }
        let (base, query) = match options.url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (options.url.as_str(), ""),
        };
        let mut sslmode = "prefer".to_string();
        let mut rootcert: Option<PathBuf> = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => sslmode = decode(value)?,
                "sslrootcert" => rootcert = Some(PathBuf::from(decode(value)?)),
                "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "passfile" => {
                    return Err(bad(format!(
                        "the URL parameter {key} is not supported (password: the URL, PGPASSWORD or the password file; TLS: sslmode and sslrootcert)"
                    )));
                }
                _ => rest.push(pair),
            }
        }
        let rebuilt = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config: tokio_postgres::Config = rebuilt
            .parse()
            .map_err(|e| bad(format!("{}: {e}", redact_url(&options.url))))?;
        if config.get_hosts().is_empty() {
            return Err(bad(format!("{}: no host", redact_url(&options.url))));
        }
        password(&mut config, options)?;
        let ca = match (&rootcert, &options.ca_file) {
            (Some(a), Some(b)) if a != b => {
                return Err(bad(format!(
                    "two CA files: sslrootcert={} in the URL and {}",
                    a.display(),
                    b.display()
                )));
            }
            (Some(path), _) | (None, Some(path)) => Some(path.as_path()),
            (None, None) => None,
        };
        let (mode, verify) = ssl(&sslmode, ca)?;
        config.ssl_mode(mode);
        let statement_ms = options.statement_timeout.as_millis().max(1);
        let session = format!("-c statement_timeout={statement_ms}");
        let merged = match config.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {session}"),
            _ => session,
        };
        config.options(merged);
        if config.get_application_name().is_none() {
            config.application_name("resigner");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let connect_timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(options.connect_timeout);
        Ok(Settings {
            location: location(&config),
            tls: RustlsConnect::new(verify)?,
            config,
            connect_timeout,
            exchange_timeout: options.statement_timeout + Duration::from_secs(1),
            poll_interval: options.poll_interval,
            max_backoff: options.max_backoff.max(Duration::from_millis(100)),
            cache: options.cache.clone(),
        })
    }
}

/// The password: from the URL, else the password file, else `PGPASSWORD`.
fn password(config: &mut tokio_postgres::Config, options: &PgOptions) -> Result<(), StoreError> {
    let in_url = config.get_password().is_some();
    match (&options.password_file, in_url) {
        (Some(path), true) => Err(StoreError::Settings(format!(
            "two passwords: one in the URL and the password file {}; keep one",
            path.display()
        ))),
        (Some(path), false) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StoreError::Settings(format!("password file {}: {e}", path.display()))
            })?;
            let text = text.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                return Err(StoreError::Settings(format!(
                    "password file {} is empty",
                    path.display()
                )));
            }
            config.password(text);
            Ok(())
        }
        (None, true) => Ok(()),
        (None, false) => {
            if let Some(text) = &options.env_password {
                config.password(text.as_str());
            }
            Ok(())
        }
    }
}

/// libpq's `sslmode` values: what to negotiate and what to check.
fn ssl(sslmode: &str, ca: Option<&Path>) -> Result<(SslMode, Verify), StoreError> {
    let roots = |ca: Option<&Path>| -> Result<Option<Vec<u8>>, StoreError> {
        ca.map(|path| {
            std::fs::read(path)
                .map_err(|e| StoreError::Settings(format!("CA file {}: {e}", path.display())))
        })
        .transpose()
    };
    let needs_ca = |mode: &str| {
        StoreError::Settings(format!(
            "sslmode={mode} needs a CA to verify the server against: set sslrootcert=FILE in the URL or the store's CA file (sslrootcert=system for the public roots)"
        ))
    };
    let system = ca.is_some_and(|p| p == Path::new("system"));
    let ca = ca.filter(|_| !system);
    Ok(match sslmode {
        "disable" => (SslMode::Disable, Verify::Nothing),
        // As libpq: without a root certificate these encrypt but do not authenticate the
        // server; with one they verify the chain (verify-ca).
        "prefer" | "require" => {
            let mode = if sslmode == "prefer" {
                SslMode::Prefer
            } else {
                SslMode::Require
            };
            match (system, roots(ca)?) {
                (true, _) => (mode, Verify::Chain(None)),
                (false, Some(pem)) => (mode, Verify::Chain(Some((pem, path_of(ca))))),
                (false, None) => (mode, Verify::Nothing),
            }
        }
        "verify-ca" | "verify-full" => {
            let anchors = match (system, roots(ca)?) {
                (true, _) => None,
                (false, Some(pem)) => Some((pem, path_of(ca))),
                (false, None) => return Err(needs_ca(sslmode)),
            };
            if sslmode == "verify-ca" {
                (SslMode::Require, Verify::Chain(anchors))
            } else {
                (SslMode::Require, Verify::Full(anchors))
            }
        }
        other => {
            return Err(StoreError::Settings(format!(
                "sslmode={other} is not supported: use disable, prefer, require, verify-ca or verify-full"
            )));
        }
    })
}

fn path_of(ca: Option<&Path>) -> PathBuf {
    ca.map(Path::to_path_buf).unwrap_or_default()
}

/// `user@host:port/dbname` of the first host.
fn location(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// The URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL>".into();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let shown = if userinfo.contains(':') {
                format!("{user}:<redacted>")
            } else {
                user.to_string()
            };
            let tail = tail.split('?').next().unwrap_or("");
            format!("{scheme}://{shown}@{host}{tail}")
        }
        None => format!(
            "{scheme}://{authority}{}",
            tail.split('?').next().unwrap_or("")
        ),
    }
}

/// Percent-decoding of a query value (paths may be encoded).
fn decode(value: &str) -> Result<String, StoreError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    StoreError::Settings(format!("bad percent-encoding in {value:?}"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| StoreError::Settings(format!("{value:?} is not UTF-8")))
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
