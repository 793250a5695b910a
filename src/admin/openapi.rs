//! `GET /api/v2/openapi.json`: the OpenAPI 3.1 document of the whole admin listener, a static
//! file reviewed with the code (`openapi.json` next to this file, embedded at build time), so
//! what it promises is what a change shows in review. It needs no token: it describes the API
//! and holds no state (the admin listener is loopback or a private network by default).
//!
//! The tests below check that the document lists exactly [`super::ENDPOINTS`] and
//! [`super::signing_keys::ENDPOINTS`] (every path and method the router answers, and nothing
//! else); `tests/it/scans.rs` runs schemathesis against
//! it on a live listener, so every answer is checked against the document.
//!
//! May use: [`crate::http::body`].

use http::{Response, StatusCode};

use crate::http::body::{self, Body};

/// Where the admin listener serves the document.
pub const PATH: &str = "/api/v2/openapi.json";

/// The document, as kept in the repository.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The document as `application/json`.
pub fn document() -> Response<Body> {
    body::json_bytes(StatusCode::OK, DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use http::header;
    use serde_json::Value;

    use super::*;

    const HTTP_METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn parsed() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
    }

    /// Path -> its methods, upper case, as the document lists them.
    fn documented() -> BTreeMap<String, BTreeSet<String>> {
        let doc = parsed();
        doc["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .map(|(path, item)| {
                let methods = item
                    .as_object()
                    .expect("a path item")
                    .keys()
                    .filter(|key| HTTP_METHODS.contains(&key.as_str()))
                    .map(|m| m.to_uppercase())
                    .collect();
                (path.clone(), methods)
            })
            .collect()
    }

    #[test]
    fn the_document_lists_exactly_the_routes_of_the_admin_router() {
        let routed: BTreeMap<String, BTreeSet<String>> = super::super::ENDPOINTS
            .iter()
            .chain(super::super::signing_keys::ENDPOINTS)
            .map(|(path, allow)| {
                let methods = allow.split(", ").map(str::to_string).collect();
                (path.to_string(), methods)
            })
            .collect();
        assert_eq!(documented(), routed);
        let all = super::super::ENDPOINTS.len() + super::super::signing_keys::ENDPOINTS.len();
        assert_eq!(all, routed.len(), "a path twice");
    }

    #[test]
    fn it_is_openapi_3_1_and_every_operation_says_its_answers_and_security() {
        let doc = parsed();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
        assert_eq!(schemes["managementToken"]["scheme"], "bearer");
        let scopes = [
            "read:custom_signing_keys",
            "create:custom_signing_keys",
            "update:custom_signing_keys",
            "delete:custom_signing_keys",
            "read:signing_keys",
            "create:signing_keys",
            "update:signing_keys",
        ];
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let at = format!("{method} {path}");
                assert!(ids.insert(operation["operationId"].as_str().expect(&at)));
                assert!(
                    operation["responses"]
                        .as_object()
                        .is_some_and(|r| !r.is_empty())
                );
                let security = operation["security"].as_array().expect(&at);
                // Only the key set needs a token; it then answers 401 and 403 as Auth0 does.
                assert_eq!(
                    security.is_empty(),
                    !path.starts_with("/api/v2/keys/"),
                    "{at}"
                );
                for requirement in security {
                    for needed in requirement["managementToken"].as_array().expect(&at) {
                        assert!(scopes.contains(&needed.as_str().unwrap()), "{at}");
                    }
                    for status in ["401", "403"] {
                        assert!(operation["responses"].get(status).is_some(), "{at}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_document_is_served_as_json() {
        let response = document();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
