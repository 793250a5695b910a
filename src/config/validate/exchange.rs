//! `[token_exchange]`: the clients of `POST /oauth/token` (RFC 8693): distinct, non-empty
//! client ids, secrets as hex SHA-256, and the route prefixes each may get tokens for (each a
//! configured route that re-signs).

use std::collections::HashSet;

use crate::config::file;
use crate::config::problems::Problems;
use crate::config::runtime::{ExchangeClient, Route, RouteMode, TokenExchangeSettings};

pub(super) fn settings(
    raw: &Option<file::TokenExchangeSection>,
    routes: &[Route],
    p: &mut Problems,
) -> Option<TokenExchangeSettings> {
    let raw = raw.as_ref()?;
    if raw.clients.is_empty() {
        p.push(
            "token_exchange.clients",
            "at least one [[token_exchange.clients]] is required (or leave [token_exchange] out)",
        );
    }
    if raw.clients.len() > usize::from(u16::MAX) {
        p.push("token_exchange.clients", "too many clients");
    }
    let mut seen = HashSet::new();
    let mut clients = Vec::new();
    for (index, client) in raw.clients.iter().enumerate() {
        let field = format!("token_exchange.clients[{index}]");
        let id = &client.client_id;
        if id.is_empty() || id.chars().any(|c| c.is_control() || c == ':') {
            p.push(
                format!("{field}.client_id"),
                "must be non-empty, without ':' or control characters",
            );
        } else if !seen.insert(id.clone()) {
            p.push(
                format!("{field}.client_id"),
                format!("{id:?} is another client's id too"),
            );
        }
        let secret = p.sha256_hex(&format!("{field}.secret_sha256"), &client.secret_sha256);
        let allowed = client.routes.as_ref().map(|prefixes| {
            prefixes
                .iter()
                .filter_map(|prefix| {
                    let route = routes.iter().find(|route| route.prefix == *prefix);
                    match route {
                        Some(route) if route.mode == RouteMode::Resign => Some(route.id),
                        Some(_) => {
                            p.push(
                                format!("{field}.routes"),
                                format!("route {prefix:?} does not re-sign (mode must be resign)"),
                            );
                            None
                        }
                        None => {
                            p.push(
                                format!("{field}.routes"),
                                format!("{prefix:?} is no route's prefix"),
                            );
                            None
                        }
                    }
                })
                .collect()
        });
        if let Some(secret_sha256) = secret {
            clients.push(ExchangeClient {
                client_id: id.clone(),
                number: u16::try_from(index + 1).unwrap_or(u16::MAX),
                secret_sha256,
                routes: allowed,
            });
        }
    }
    Some(TokenExchangeSettings { clients })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn problems(exchange: &str) -> Vec<String> {
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:1\"\n[idp]\nissuer = \"https://idp.test/\"\n\
             [signing]\nissuer = \"https://me/\"\n\
             [[routes]]\nprefix = \"/api\"\nupstream = \"http://127.0.0.1:2\"\naudience = \"x\"\n\
             [[routes]]\nprefix = \"/v\"\nupstream = \"http://127.0.0.1:2\"\naudience = \"y\"\n\
             mode = \"verify\"\n{exchange}"
        );
        match crate::config::parse_config(&text, Path::new("/nonexistent")) {
            Ok(_) => Vec::new(),
            Err(err) => err.problems(),
        }
    }

    #[test]
    fn clients_need_distinct_ids_hashed_secrets_and_resigning_routes() {
        let hash = "a".repeat(64);
        let found = problems(&format!(
            "[[token_exchange.clients]]\nclient_id = \"c\"\nsecret_sha256 = \"{hash}\"\n\
             routes = [\"/api\", \"/v\", \"/nope\"]\n\
             [[token_exchange.clients]]\nclient_id = \"c\"\nsecret_sha256 = \"zz\"\n\
             [[token_exchange.clients]]\nclient_id = \"a:b\"\nsecret_sha256 = \"{hash}\"\n"
        ));
        for wanted in [
            "token_exchange.clients[0].routes: route \"/v\" does not re-sign",
            "token_exchange.clients[0].routes: \"/nope\" is no route's prefix",
            "token_exchange.clients[1].client_id: \"c\" is another client's id too",
            "token_exchange.clients[1].secret_sha256: must be 64 hex digits",
            "token_exchange.clients[2].client_id: must be non-empty, without ':'",
        ] {
            assert!(
                found.iter().any(|p| p.starts_with(wanted)),
                "{wanted}: {found:#?}"
            );
        }
        let empty = problems("[token_exchange]\n");
        assert!(
            empty
                .iter()
                .any(|p| p.starts_with("token_exchange.clients: at least one")),
            "{empty:#?}"
        );
    }
}
