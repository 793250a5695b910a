//! Validation of the transport settings: the listeners' TLS files and limits (`[server]`,
//! `[admin]`), and outbound TLS for routes and the IdP (`ca_file`, `client_cert`,
//! `client_key`). TLS files are loaded and checked here, so `resigner check` reports a bad
//! certificate or a key that does not match it, with the field that names the file.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::file::{RouteSection, ServerSection};
use crate::config::problems::Problems;
use crate::config::runtime::ServerSettings;
use crate::http::tls::{ClientTls, TlsFiles, load_certified_key};
use crate::http::workers::{self, Scheduler};

/// Default `[server] max_header_bytes`: request line plus headers of an HTTP/1 request.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// hyper refuses a smaller read buffer.
pub const MIN_MAX_HEADER_BYTES: usize = 8 * 1024;
/// Default `[server] max_headers` (hyper's own default).
pub const DEFAULT_MAX_HEADERS: usize = crate::http::server::DEFAULT_MAX_HEADERS;
/// Most `[server] workers`.
pub const MAX_WORKERS: usize = 1024;
/// Default `[server] max_connections`, per listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default `[server] listen_backlog`, per listener.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

/// `[server]` beyond `listen` and `header_read_timeout`, which the caller has checked.
pub(super) fn server_settings(
    listen: Option<SocketAddr>,
    header_read_timeout: Duration,
    raw: &ServerSection,
    base: &Path,
    p: &mut Problems,
) -> Option<ServerSettings> {
    let tls = listener_tls("server", &raw.tls_cert, &raw.tls_key, base, p);
    let max_header_bytes = raw.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES);
    if !(MIN_MAX_HEADER_BYTES..=16 * 1024 * 1024).contains(&max_header_bytes) {
        p.push(
            "server.max_header_bytes",
            format!("must be between {MIN_MAX_HEADER_BYTES} and 16777216"),
        );
    }
    let max_headers = raw.max_headers.unwrap_or(DEFAULT_MAX_HEADERS);
    if !(1..=10_000).contains(&max_headers) {
        p.push("server.max_headers", "must be between 1 and 10000");
    }
    let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=1_000_000).contains(&max_connections) {
        p.push("server.max_connections", "must be between 1 and 1000000");
    }
    let listen_backlog = match raw.listen_backlog.map(u32::try_from) {
        None => DEFAULT_LISTEN_BACKLOG,
        Some(Ok(backlog @ 1..=65_535)) => backlog,
        Some(_) => {
            p.push("server.listen_backlog", "must be between 1 and 65535");
            DEFAULT_LISTEN_BACKLOG
        }
    };
    let body_read_timeout = p.duration_min(
        "server.body_read_timeout",
        &raw.body_read_timeout,
        Duration::from_secs(30),
        Duration::from_millis(50),
    );
    let drain_timeout = p.duration(
        "server.drain_timeout",
        &raw.drain_timeout,
        Duration::from_secs(30),
    );
    let scheduler = match raw.scheduler.as_deref() {
        None => Scheduler::PerCore,
        Some(text) => Scheduler::parse(text).unwrap_or_else(|| {
            p.push(
                "server.scheduler",
                format!("must be \"per_core\" or \"work_stealing\", not {text:?}"),
            );
            Scheduler::PerCore
        }),
    };
    let workers = match raw.workers.unwrap_or(0) {
        0 => workers::default_workers(),
        n if n > MAX_WORKERS => {
            p.push("server.workers", format!("must be at most {MAX_WORKERS}"));
            1
        }
        n => n,
    };
    if header_read_timeout < Duration::from_millis(50) {
        p.push("server.header_read_timeout", "must be at least 50ms");
    }
    Some(ServerSettings {
        listen: listen?,
        header_read_timeout,
        tls,
        max_header_bytes,
        max_headers,
        body_read_timeout,
        max_connections,
        listen_backlog,
        drain_timeout,
        scheduler,
        workers,
        public_url: raw
            .public_url
            .as_deref()
            .and_then(|text| public_url(text, p)),
    })
}

/// `[server] public_url`: an absolute `http://` or `https://` URL without user info, query or
/// fragment, returned without its trailing `/` so paths can be appended.
fn public_url(text: &str, p: &mut Problems) -> Option<String> {
    const FIELD: &str = "server.public_url";
    let uri = p.http_url(FIELD, text)?;
    if text.contains('?') || text.contains('#') {
        p.push(FIELD, format!("{text:?} must not have a query or fragment"));
        return None;
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        p.push(FIELD, format!("{text:?} must not carry user info"));
        return None;
    }
    Some(text.trim_end_matches('/').to_string())
}

/// A listener's `tls_cert` and `tls_key` (both or neither), loaded and checked.
pub(super) fn listener_tls(
    section: &str,
    cert: &Option<String>,
    key: &Option<String>,
    base: &Path,
    p: &mut Problems,
) -> Option<TlsFiles> {
    let files = match (cert, key) {
        (None, None) => return None,
        (Some(cert), Some(key)) => TlsFiles {
            cert: base.join(cert),
            key: base.join(key),
        },
        (Some(_), None) => {
            p.push(format!("{section}.tls_key"), "is required with tls_cert");
            return None;
        }
        (None, Some(_)) => {
            p.push(format!("{section}.tls_cert"), "is required with tls_key");
            return None;
        }
    };
    match load_certified_key(&files) {
        Ok(_) => Some(files),
        Err(err) => {
            let is_key = err.path() == Some(&*files.key.display().to_string());
            let field = if is_key { "tls_key" } else { "tls_cert" };
            p.push(format!("{section}.{field}"), err.to_string());
            None
        }
    }
}

/// A route's outbound TLS settings; `None` for the defaults (webpki roots, no client cert).
pub(super) fn route_tls(
    field: &str,
    raw: &RouteSection,
    https: bool,
    base: &Path,
    p: &mut Problems,
) -> Option<Arc<ClientTls>> {
    if raw.ca_file.is_none() && raw.client_cert.is_none() && raw.client_key.is_none() {
        return None;
    }
    if !https {
        p.push(
            format!("{field}.upstream"),
            "ca_file, client_cert and client_key need an https:// upstream",
        );
        return None;
    }
    let identity = match (&raw.client_cert, &raw.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: base.join(cert),
            key: base.join(key),
        }),
        (Some(_), None) => {
            p.push(
                format!("{field}.client_key"),
                "is required with client_cert",
            );
            return None;
        }
        (None, Some(_)) => {
            p.push(
                format!("{field}.client_cert"),
                "is required with client_key",
            );
            return None;
        }
    };
    client_tls(field, raw.ca_file.as_deref(), identity.as_ref(), base, p)
}

/// Outbound TLS with an optional CA file and client identity, loaded and checked.
pub(super) fn client_tls(
    field: &str,
    ca_file: Option<&str>,
    identity: Option<&TlsFiles>,
    base: &Path,
    p: &mut Problems,
) -> Option<Arc<ClientTls>> {
    let ca_file = ca_file.map(|path| base.join(path));
    match ClientTls::load(ca_file.as_deref(), identity) {
        Ok(tls) => Some(Arc::new(tls)),
        Err(err) => {
            let at = |path: &Path| err.path() == Some(&*path.display().to_string());
            let name = match identity {
                Some(id) if at(&id.key) => "client_key",
                Some(id) if at(&id.cert) => "client_cert",
                _ => "ca_file",
            };
            p.push(format!("{field}.{name}"), err.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, parse_config};
    use crate::jose::alg::Alg;
    use crate::keys::{SigningKey, pem};

    /// The problems of a config whose `[server]` table holds `server`.
    fn problems(server: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
        std::fs::write(dir.path().join("k.pem"), pem::encode(&der, "PRIVATE KEY")).unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n[idp]\nissuer = \"https://idp.test/\"\n\
             [signing]\nissuer = \"https://r.test/\"\n[[signing.keys]]\npath = \"k.pem\"\nalg = \"ES256\"\n"
        );
        match parse_config(&text, dir.path()) {
            Ok(_) => vec![],
            Err(ConfigError::Invalid { problems, .. }) => problems,
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn limits_out_of_range_are_reported_and_defaults_are_safe() {
        assert_eq!(problems(""), Vec::<String>::new());
        let found = problems(
            "max_header_bytes = 4096\nmax_headers = 0\nmax_connections = 0\nlisten_backlog = 0\n\
             body_read_timeout = \"10ms\"\nheader_read_timeout = \"0s\"\ndrain_timeout = \"soon\"",
        );
        for field in [
            "server.max_header_bytes: must be between 8192",
            "server.max_headers: must be between 1",
            "server.max_connections: must be between 1",
            "server.listen_backlog: must be between 1 and 65535",
            "server.body_read_timeout: must be at least",
            "server.header_read_timeout: must be at least",
            "server.drain_timeout: ",
        ] {
            assert!(
                found.iter().any(|p| p.starts_with(field)),
                "{field}: {found:#?}"
            );
        }
        assert_eq!(found.len(), 7, "{found:#?}");
        assert!(problems("tls_cert = \"missing.pem\"")[0].starts_with("server.tls_key: "));
        let missing = problems("tls_cert = \"missing.pem\"\ntls_key = \"k.pem\"");
        assert!(
            missing[0].starts_with("server.tls_cert: cannot read ")
                && missing[0].contains("missing.pem"),
            "{missing:?}"
        );
    }
}
