//! Reading a token exchange request (RFC 8693 §2.1): the form parameters, the client's
//! authentication (`client_secret_basic` or `client_secret_post`, RFC 6749 §2.3.1; exactly
//! one), the subject token and its type, the requested token type, and the target route
//! named by `resource` or `audience`. Plain functions over the request parts and the
//! config snapshot.

use aws_lc_rs::{constant_time, digest};
use http::{HeaderMap, header};

use super::error::ExchangeError;
use crate::config::runtime::{ExchangeClient, TokenExchangeSettings};
use crate::config::{Config, Route, RouteMode};
use crate::http::form;

pub const GRANT_TYPE: &str = TokenExchangeSettings::GRANT_TYPE;
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// A request that passed every check but the subject token's own.
#[derive(Debug)]
pub struct Exchange<'a> {
    pub client: &'a ExchangeClient,
    pub route: &'a Route,
    pub subject_token: String,
    /// `issued_token_type` of the answer: what was requested (access_token by default).
    pub issued_token_type: &'static str,
}

/// The form's parameters (each at most once, RFC 6749 §3.2).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(body: &[u8]) -> Result<Params, ExchangeError> {
        form::parse(body)
            .map(Params)
            .map_err(|err| ExchangeError::InvalidRequest(err.to_string()))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    fn required(&self, name: &str) -> Result<&str, ExchangeError> {
        self.get(name)
            .ok_or_else(|| ExchangeError::InvalidRequest(format!("{name} is required")))
    }
}

/// Checks `params` and `headers` against `config` (whose `[token_exchange]` is `settings`).
pub fn read<'a>(
    config: &'a Config,
    settings: &'a TokenExchangeSettings,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Exchange<'a>, ExchangeError> {
    let client = authenticate(settings, headers, params)?;
    if params.required("grant_type")? != GRANT_TYPE {
        return Err(ExchangeError::UnsupportedGrantType);
    }
    let subject_token = params.required("subject_token")?;
    match params.required("subject_token_type")? {
        ACCESS_TOKEN_TYPE => {}
        JWT_TOKEN_TYPE if crate::proxy::verify::is_jws(subject_token) => {}
        JWT_TOKEN_TYPE => {
            return Err(ExchangeError::InvalidRequest(
                "subject_token is not a JWT, but subject_token_type says it is".into(),
            ));
        }
        other => {
            return Err(ExchangeError::InvalidRequest(format!(
                "subject_token_type {other:?} is not supported (use {ACCESS_TOKEN_TYPE})"
            )));
        }
    }
    let issued_token_type = match params.get("requested_token_type") {
        None | Some(ACCESS_TOKEN_TYPE) => ACCESS_TOKEN_TYPE,
        Some(JWT_TOKEN_TYPE) => JWT_TOKEN_TYPE,
        Some(other) => {
            return Err(ExchangeError::InvalidRequest(format!(
                "requested_token_type {other:?} is not supported (resigner issues access tokens)"
            )));
        }
    };
    if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
        return Err(ExchangeError::InvalidRequest(
            "actor_token is not supported: the actor is the authenticated client".into(),
        ));
    }
    if params.get("scope").is_some() {
        return Err(ExchangeError::InvalidScope(
            "scope is not supported: the issued token carries the subject token's scopes".into(),
        ));
    }
    let route = target(
        config,
        client,
        params.get("resource"),
        params.get("audience"),
    )?;
    if client
        .routes
        .as_ref()
        .is_some_and(|ids| !ids.contains(&route.id))
    {
        return Err(ExchangeError::InvalidTarget(format!(
            "client {:?} may not get tokens for route {}",
            client.client_id, route.prefix
        )));
    }
    Ok(Exchange {
        client,
        route,
        subject_token: subject_token.to_string(),
        issued_token_type,
    })
}

/// The client by `client_secret_basic` or `client_secret_post` (never both). Every client's
/// hash is compared, so the time taken does not say which id exists.
fn authenticate<'a>(
    settings: &'a TokenExchangeSettings,
    headers: &HeaderMap,
    params: &Params,
) -> Result<&'a ExchangeClient, ExchangeError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| ExchangeError::InvalidClient)?;
            Some(form::parse_basic(value).ok_or(ExchangeError::InvalidClient)?)
        }
        None => None,
    };
    let posted = params.get("client_secret").map(str::to_string);
    let (id, secret) = match (basic, posted) {
        (Some(_), Some(_)) => {
            return Err(ExchangeError::InvalidRequest(
                "use one client authentication method, not both".into(),
            ));
        }
        (Some(credentials), None) => credentials,
        (None, Some(secret)) => (params.required("client_id")?.to_string(), secret),
        (None, None) => return Err(ExchangeError::InvalidClient),
    };
    if params.get("client_id").is_some_and(|posted| posted != id) {
        return Err(ExchangeError::InvalidRequest(
            "client_id differs from the authenticated client".into(),
        ));
    }
    let presented = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut matched = None;
    for client in &settings.clients {
        let same_secret =
            constant_time::verify_slices_are_equal(presented.as_ref(), &client.secret_sha256)
                .is_ok();
        if same_secret && client.client_id == id {
            matched = Some(client);
        }
    }
    matched.ok_or(ExchangeError::InvalidClient)
}

/// The route `resource` or `audience` names (both given: the same one). A value names the
/// re-signing route (among those `client` may use) whose output audience (`[routes.claims]
/// audience`, else its `audience`) is that value (two such routes: refused as ambiguous);
/// else a `resource` URL names the route its path is routed to, when it is under
/// `[server] public_url` (any host while `public_url` is unset), and that route must re-sign.
fn target<'a>(
    config: &'a Config,
    client: &ExchangeClient,
    resource: Option<&str>,
    audience: Option<&str>,
) -> Result<&'a Route, ExchangeError> {
    let named = [("resource", resource), ("audience", audience)];
    let mut found: Option<&Route> = None;
    for (name, value) in named {
        let Some(value) = value else { continue };
        let route = route_named(config, client, name, value)?;
        if found.is_some_and(|first| first.id != route.id) {
            return Err(ExchangeError::InvalidTarget(
                "resource and audience name different routes".into(),
            ));
        }
        found = Some(route);
    }
    let route = found.ok_or_else(|| {
        ExchangeError::InvalidRequest("resource or audience is required: it names the route".into())
    })?;
    if route.mode != RouteMode::Resign {
        return Err(ExchangeError::InvalidTarget(format!(
            "route {} does not re-sign tokens",
            route.prefix
        )));
    }
    Ok(route)
}

fn route_named<'a>(
    config: &'a Config,
    client: &ExchangeClient,
    name: &str,
    value: &str,
) -> Result<&'a Route, ExchangeError> {
    let usable = |route: &Route| {
        client
            .routes
            .as_ref()
            .is_none_or(|ids| ids.contains(&route.id))
    };
    let by_audience: Vec<&Route> = config
        .routes
        .iter()
        .filter(|route| route.mode == RouteMode::Resign && usable(route))
        .filter(|route| audience_is(route, value))
        .collect();
    match by_audience.as_slice() {
        [route] => return Ok(route),
        [] => {}
        several => {
            let prefixes: Vec<&str> = several.iter().map(|r| r.prefix.as_str()).collect();
            return Err(ExchangeError::InvalidTarget(format!(
                "{name} {value:?} is the audience of several routes ({}): name one by its URL",
                prefixes.join(", ")
            )));
        }
    }
    let no_route = || ExchangeError::InvalidTarget(format!("{name} {value:?} names no route"));
    if name != "resource" {
        return Err(no_route());
    }
    let under_public_url = match config.server.public_url.as_deref() {
        Some(base) => value
            .strip_prefix(base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        None => true,
    };
    let path = value
        .parse::<http::Uri>()
        .ok()
        .filter(|uri| uri.scheme().is_some() && uri.authority().is_some() && under_public_url)
        .map(|uri| uri.path().to_string());
    path.and_then(|path| config.route_for(&path))
        .ok_or_else(no_route)
}

/// Whether `value` is the `aud` the route's re-signed tokens carry.
fn audience_is(route: &Route, value: &str) -> bool {
    match &route.claims.audience {
        serde_json::Value::String(aud) => aud == value,
        serde_json::Value::Array(list) => list.iter().any(|aud| aud == value),
        _ => false,
    }
}
