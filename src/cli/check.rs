//! `resigner check`: what a config check covers, and what it does not, so "config OK" is not
//! read as "will serve". Offline (the default) only the files are validated (config, signing
//! keys, TLS files: [`crate::load_config`]) and [`NOT_CHECKED_OFFLINE`] says the rest was
//! not. `--online` ([`online`]) also fetches the IdP's discovery document (unless `jwks_uri`
//! is set) and JWKS through the proxy's own IdP client, and connects to each route's
//! upstream (TCP, plus a TLS handshake for `https`, with the route's CA and client
//! certificate) within `[upstream] connect_timeout`, reporting every failure at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use crate::cli::{CliError, runtime};
use crate::config::{Config, IdpSettings, Route};
use crate::idp::IdpClient;
use crate::metrics::Metrics;

/// Printed after "config OK" by `check` without `--online`.
pub const NOT_CHECKED_OFFLINE: &str = "not checked (add --online to check them): whether the \
    IdP answers (discovery, JWKS) and whether each route's upstream accepts connections\n\
    not checked: whether the active signing key is published in the custom key set (the \
    running proxy's /readyz says)";

/// Printed after a successful `check --online`.
pub const NOT_CHECKED_ONLINE: &str = "not checked: whether the active signing key is published \
    in the custom key set (the running proxy's /readyz says)";

/// Why `check --online` failed: every problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("online check found {} problem(s):\n  - {}", .0.len(), .0.join("\n  - "))]
pub struct OnlineProblems(pub Vec<String>);

/// What `check --online` found: lines for stdout, and the problems.
#[derive(Debug, Default)]
pub struct OnlineReport {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

impl OnlineReport {
    /// `Err` listing every problem, if there was one.
    pub fn result(self) -> Result<(), OnlineProblems> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(OnlineProblems(self.problems))
        }
    }
}

/// `resigner check`: validates the config at `path` and prints what was (and was not)
/// checked; with `online`, also what [`online`] found.
pub fn run(path: &Path, online: bool) -> Result<(), CliError> {
    let config = crate::cli::error::load_connected(path)?;
    let active = config.signing.active().map_or("?", |key| key.alg().name());
    println!(
        "config OK: {} route(s), active signing key {} ({})",
        config.routes.len(),
        config.signing.active_kid,
        active
    );
    if !online {
        println!("{NOT_CHECKED_OFFLINE}");
        return Ok(());
    }
    let report = runtime::block_on(self::online(&config))?;
    report.lines.iter().for_each(|line| println!("{line}"));
    Ok(report.result()?)
}

/// Contacts the IdP and every route's upstream; never stops at the first failure.
pub async fn online(config: &Config) -> OnlineReport {
    let mut report = OnlineReport::default();
    let mut upstreams = JoinSet::new();
    let timeout = config.upstream.connect_timeout;
    for (index, route) in config.routes.iter().enumerate() {
        let target = Target::of(route);
        upstreams.spawn(async move { (index, target.connect(timeout).await, target) });
    }
    idps(config, &mut report).await;
    let mut results = upstreams.join_all().await;
    results.sort_by_key(|(index, ..)| *index);
    for (_, result, target) in results {
        match result {
            Ok(what) => report.lines.push(format!("upstream {target}: {what}")),
            Err(problem) => report
                .problems
                .push(format!("upstream {target}: {problem}")),
        }
    }
    if report.problems.is_empty() {
        report.lines.push(NOT_CHECKED_ONLINE.into());
        report.lines.push("online check OK".into());
    }
    report
}

async fn idps(config: &Config, report: &mut OnlineReport) {
    for settings in &config.idps {
        idp(settings, config.idps.len() > 1, report).await;
    }
}

async fn idp(settings: &Arc<IdpSettings>, several: bool, report: &mut OnlineReport) {
    let label = match several {
        true => format!("IdP {}", settings.name),
        false => "IdP".to_string(),
    };
    let http = crate::http::client::fetch_client(settings.fetch_timeout, settings.tls.as_deref());
    let client = IdpClient::new(
        settings.clone(),
        http,
        Arc::new(Metrics::default()),
        Default::default(),
    );
    match client.probe().await {
        Ok(probe) => {
            let source = if probe.discovered {
                "discovered from the OpenID configuration"
            } else {
                "configured"
            };
            let kids: Vec<&str> = probe
                .keys
                .iter()
                .map(|key| key.kid.as_deref().unwrap_or("(no kid)"))
                .collect();
            report
                .lines
                .push(format!("{label}: JWKS {} ({source})", probe.jwks_uri));
            report.lines.push(format!(
                "{label}: {} usable key(s), kids: {}",
                kids.len(),
                kids.join(", ")
            ));
        }
        Err(err) => report
            .problems
            .push(format!("IdP {}: {err}", settings.issuer)),
    }
}

/// Where a route connects, owned so the connect can run on its own task.
struct Target {
    prefix: String,
    https: bool,
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    fn of(route: &Route) -> Self {
        let upstream = &route.upstream;
        let https = upstream.scheme == Scheme::HTTPS;
        let host = upstream.authority.host();
        Target {
            prefix: route.prefix.clone(),
            https,
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port: upstream
                .authority
                .port_u16()
                .unwrap_or(if https { 443 } else { 80 }),
            tls: route.tls.as_ref().map(|tls| tls.config.clone()),
        }
    }

    async fn connect(&self, timeout: Duration) -> Result<&'static str, String> {
        let address = (self.host.as_str(), self.port);
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| format!("TCP connect did not complete within {timeout:?}"))?
            .map_err(|err| format!("TCP connect failed: {err}"))?;
        if !self.https {
            return Ok("TCP connect OK");
        }
        let config = self
            .tls
            .clone()
            .unwrap_or_else(|| Arc::new(crate::http::tls::default_client_config()));
        let name = ServerName::try_from(self.host.clone())
            .map_err(|err| format!("{:?} is not a TLS server name: {err}", self.host))?;
        tokio::time::timeout(timeout, TlsConnector::from(config).connect(name, tcp))
            .await
            .map_err(|_| format!("TLS handshake did not complete within {timeout:?}"))?
            .map_err(|err| format!("TLS handshake failed: {err}"))?;
        Ok("TCP connect and TLS handshake OK")
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{} -> {scheme}://{host}:{}", self.prefix, self.port)
    }
}
