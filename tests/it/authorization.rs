//! Per-route authorization (issue #15 §2) through the running proxy: `required_scopes` read
//! from each claim shape the IdP may use (`[idp] scope_claims`), `[[routes.require]]` claim
//! rules of each kind, a method-limited rule, and the re-sign cache never serving an entry
//! made for one route or method to a request another rule set governs. One named row per
//! case: status, challenge, body, and whether the upstream was reached.

use http::Method;
use serde_json::{Value, json};

use crate::common::*;

const SCOPE_CHALLENGE: &str = "Bearer realm=\"resigner\", error=\"insufficient_scope\", \
    error_description=\"the token lacks a scope this route requires\", \
    scope=\"read:orders write:orders\"";

fn rule_challenge(index: usize, claim: &str) -> String {
    format!(
        "Bearer realm=\"resigner\", error=\"insufficient_scope\", \
         error_description=\"the token does not satisfy rule require[{index}] on claim {claim}\""
    )
}

async fn fixture() -> Fixture {
    Fixture::builder()
        .await
        .idp("scope_claims", ["scope", "scp", "permissions"])
        .route(Route::new("/orders").set("required_scopes", ["read:orders", "write:orders"]))
        .route(Route::new("/org").set(
            "require",
            json!([
                {"claim": "org_id", "equals": "acme"},
                {"claim": "tier", "one_of": ["gold", "silver"]},
                {"claim": "roles", "contains": "admin"},
            ]),
        ))
        .route(Route::new("/writes").set(
            "require",
            json!([{"claim": "roles", "contains": "writer", "methods": ["POST", "DELETE"]}]),
        ))
        .route(Route::new("/open"))
        .route(Route::new("/strict").set("required_scopes", ["admin:all"]))
        .start()
        .await
}

/// What a row sends and what must come back.
struct Row {
    name: &'static str,
    method: Method,
    path: &'static str,
    token: String,
    /// 200: forwarded; 403: refused with `challenge` and `description`, nothing forwarded.
    status: u16,
    challenge: String,
}

fn ok(name: &'static str, method: Method, path: &'static str, token: String) -> Row {
    Row {
        name,
        method,
        path,
        token,
        status: 200,
        challenge: String::new(),
    }
}

fn denied(name: &'static str, path: &'static str, token: String, challenge: String) -> Row {
    Row {
        name,
        method: Method::GET,
        path,
        token,
        status: 403,
        challenge,
    }
}

/// Valid claims without a `scope`, with `edits` set.
fn with(fixture: &Fixture, edits: Value) -> String {
    fixture.mint(|claims| {
        claims.as_object_mut().unwrap().remove("scope");
        for (name, value) in edits.as_object().unwrap() {
            claims[name] = value.clone();
        }
    })
}

async fn check(fixture: &Fixture, row: &Row) {
    let before = fixture.upstream.count();
    let bearer = format!("Bearer {}", row.token);
    let url = fixture.url(&format!("{}/x", row.path));
    let reply = send(row.method.clone(), &url, &[("authorization", &bearer)], b"").await;
    assert_eq!(
        reply.status.as_u16(),
        row.status,
        "{}: {:?}",
        row.name,
        reply.body
    );
    if row.status == 200 {
        assert_eq!(
            fixture.upstream.count(),
            before + 1,
            "{}: not forwarded",
            row.name
        );
        return;
    }
    assert_eq!(reply.www(), row.challenge, "{}", row.name);
    let body = reply.json();
    assert_eq!(body["error"], "insufficient_scope", "{}", row.name);
    let description = body["error_description"].as_str().unwrap();
    assert!(
        row.challenge.contains(description),
        "{}: {description}",
        row.name
    );
    if row.path == "/orders" {
        assert_eq!(body["scope"], "read:orders write:orders", "{}", row.name);
    }
    assert_eq!(
        fixture.upstream.count(),
        before,
        "{} reached the upstream",
        row.name
    );
}

#[tokio::test]
async fn scopes_in_every_claim_shape_and_claim_rules_of_every_kind() {
    let f = fixture().await;
    let both = "read:orders write:orders";
    let org = json!({"org_id": "acme", "tier": "gold", "roles": ["user", "admin"]});
    let org_with = |name: &str, value: Value| {
        let mut claims = org.clone();
        claims[name] = value;
        with(&f, claims)
    };
    let org_without = |name: &str| {
        let mut claims = org.clone();
        claims.as_object_mut().unwrap().remove(name);
        with(&f, claims)
    };
    let rows = vec![
        ok(
            "scope string",
            Method::GET,
            "/orders",
            with(&f, json!({"scope": format!("openid {both}")})),
        ),
        ok(
            "scp string",
            Method::GET,
            "/orders",
            with(&f, json!({"scp": both})),
        ),
        ok(
            "scp array",
            Method::GET,
            "/orders",
            with(&f, json!({"scp": ["read:orders", "write:orders"]})),
        ),
        ok(
            "permissions array",
            Method::GET,
            "/orders",
            with(&f, json!({"permissions": ["write:orders", "read:orders"]})),
        ),
        ok(
            "scopes split over two claims",
            Method::GET,
            "/orders",
            with(
                &f,
                json!({"scope": "read:orders", "permissions": ["write:orders"]}),
            ),
        ),
        denied(
            "one of two scopes",
            "/orders",
            with(&f, json!({"scope": "read:orders"})),
            SCOPE_CHALLENGE.into(),
        ),
        denied(
            "one of two scopes in scp array",
            "/orders",
            with(&f, json!({"scp": ["write:orders"]})),
            SCOPE_CHALLENGE.into(),
        ),
        denied(
            "a scope prefix is not the scope",
            "/orders",
            with(&f, json!({"scope": "read:orders write:order"})),
            SCOPE_CHALLENGE.into(),
        ),
        denied(
            "no scope claim",
            "/orders",
            with(&f, json!({})),
            SCOPE_CHALLENGE.into(),
        ),
        denied(
            "scope in a claim not configured",
            "/orders",
            with(&f, json!({"scopes": both})),
            SCOPE_CHALLENGE.into(),
        ),
        ok(
            "all three rules",
            Method::GET,
            "/org",
            with(&f, org.clone()),
        ),
        ok(
            "one_of second value",
            Method::GET,
            "/org",
            org_with("tier", json!("silver")),
        ),
        denied(
            "equals other value",
            "/org",
            org_with("org_id", json!("evil")),
            rule_challenge(0, "org_id"),
        ),
        denied(
            "equals missing claim",
            "/org",
            org_without("org_id"),
            rule_challenge(0, "org_id"),
        ),
        denied(
            "equals on an array",
            "/org",
            org_with("org_id", json!(["acme"])),
            rule_challenge(0, "org_id"),
        ),
        denied(
            "one_of outside the list",
            "/org",
            org_with("tier", json!("bronze")),
            rule_challenge(1, "tier"),
        ),
        denied(
            "contains without the value",
            "/org",
            org_with("roles", json!(["user"])),
            rule_challenge(2, "roles"),
        ),
        denied(
            "contains on a string",
            "/org",
            org_with("roles", json!("admin")),
            rule_challenge(2, "roles"),
        ),
        ok(
            "methods-limited rule, other method",
            Method::GET,
            "/writes",
            with(&f, json!({"roles": ["reader"]})),
        ),
        Row {
            method: Method::POST,
            ..denied(
                "methods-limited rule, POST",
                "/writes",
                with(&f, json!({"roles": ["reader"]})),
                rule_challenge(0, "roles"),
            )
        },
        Row {
            method: Method::DELETE,
            ..denied(
                "methods-limited rule, DELETE",
                "/writes",
                with(&f, json!({"roles": ["reader"]})),
                rule_challenge(0, "roles"),
            )
        },
        ok(
            "methods-limited rule satisfied",
            Method::POST,
            "/writes",
            with(&f, json!({"roles": ["writer"]})),
        ),
    ];
    for row in &rows {
        check(&f, row).await;
    }
    // The body names the rule and never the claim's value.
    let reply = send(
        Method::GET,
        &f.url("/org/x"),
        &[(
            "authorization",
            &format!("Bearer {}", org_with("org_id", json!("secret-tenant"))),
        )],
        b"",
    )
    .await;
    assert!(!String::from_utf8_lossy(&reply.body).contains("secret-tenant"));
    assert!(!reply.www().contains("secret-tenant"));
}

#[tokio::test]
async fn a_cache_hit_never_serves_another_route_or_a_stricter_method() {
    let f = fixture().await;
    let metrics = || async {
        let text = send(Method::GET, &f.admin_url("/metrics"), &[], b"").await;
        String::from_utf8_lossy(&text.body).to_string()
    };
    let hits = |text: &str| -> u64 {
        text.lines()
            .find(|line| line.starts_with("resigner_resign_cache_lookups_total{result=\"hit\"} "))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let token = f.token(); // scope "read:orders", no "writer" role
    let reader = with(&f, json!({"roles": ["reader"]}));
    let start = hits(&metrics().await);
    let rows = [
        ok("route A, miss", Method::GET, "/open", token.clone()),
        ok("route A, hit", Method::GET, "/open", token.clone()),
        denied("route B with stricter rules", "/strict", token.clone(), "Bearer realm=\"resigner\", error=\"insufficient_scope\", error_description=\"the token lacks a scope this route requires\", scope=\"admin:all\"".into()),
        ok("GET, miss", Method::GET, "/writes", reader.clone()),
        ok("GET, hit", Method::GET, "/writes", reader.clone()),
        Row { method: Method::POST, ..denied("POST after the GET hit", "/writes", reader.clone(), rule_challenge(0, "roles")) },
        ok("PUT is in the GET class", Method::PUT, "/writes", reader.clone()),
    ];
    for row in &rows {
        check(&f, row).await;
    }
    assert_eq!(
        hits(&metrics().await) - start,
        3,
        "the second /open and /writes GETs and the PUT are hits"
    );
}
