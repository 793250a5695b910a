//! RFC 8693 token exchange (issue #15 §5) driven by a real OAuth client library: npm
//! `openid-client` 6 (`tests/sdk/token_exchange.mjs`) discovers resigner from its issuer
//! (`[server] public_url`, the discovery document's `token_endpoint`) and exchanges IdP
//! tokens, a JWT of the test IdP and an opaque one of a real OpenID Provider (introspected),
//! with both client authentication methods. The issued token is the proxy's: signed with the
//! active key, mapped per route, `exp` never later, plus `act` naming the client; every
//! refusal row is an RFC 6749 §5.2 error the library reports by its code. Hand-written
//! requests cover what a library never sends (GET, repeated parameters, a JSON body).

use std::path::PathBuf;

use http::Method;
use serde_json::{Value, json};

use resigner::jose::alg::Alg;

use crate::common::jose::{decoded, jose_verify};
use crate::common::oidc_provider::{INTROSPECTION_CLIENT, OidcProvider};
use crate::common::*;
use crate::sdk::{run_script, summary_of};

const BATCH: (&str, &str) = ("batch-cli", "batch-cli-secret-0123456789");
const NARROW: (&str, &str) = ("narrow", "narrow-secret-0123456789");
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

struct Exchange {
    fixture: Fixture,
    issuer: String,
    provider: OidcProvider,
    dir: tempfile::TempDir,
}

async fn exchange() -> Exchange {
    let (public, admin) = (free_addr(), free_addr());
    // openid-client compares the issuer with the URL it discovered from, slash included.
    let issuer = format!("http://{public}/");
    let provider = OidcProvider::start(AUDIENCE);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("introspection-secret");
    std::fs::write(&secret_file, INTROSPECTION_CLIENT.1).unwrap();
    let op = json!({
        "name": "op",
        "issuer": provider.issuer,
        "algorithms": ["RS256", "ES256", "PS256"],
        "introspection": {
            "endpoint": provider.introspection_endpoint(),
            "client_id": INTROSPECTION_CLIENT.0,
            "client_secret_file": secret_file,
        },
    });
    let clients = json!([
        {"client_id": BATCH.0, "secret_sha256": sha256_hex(BATCH.1)},
        {"client_id": NARROW.0, "secret_sha256": sha256_hex(NARROW.1), "routes": ["/other"]},
    ]);
    let fixture = Fixture::builder()
        .await
        .idp("name", "jwt")
        .set("signing", "issuer", &issuer)
        .server("public_url", &issuer)
        .set("token_exchange", "clients", clients)
        .route(Route::api())
        .route(Route::new("/other").set("audience", "https://other.test"))
        .route(
            Route::new("/writes")
                .set("required_scopes", ["write:orders"])
                .claims("audience", "https://writes.legacy"),
        )
        .route(Route::new("/verify").set("mode", "verify"))
        .with_proxy(|proxy| proxy.listen_on(&public, &admin).also_idp_entry(op))
        .start()
        .await;
    Exchange {
        fixture,
        issuer,
        provider,
        dir,
    }
}

impl Exchange {
    /// Runs `cases` through openid-client; the results by name.
    async fn run(&self, cases: Value) -> Vec<Value> {
        let file: PathBuf = self.dir.path().join("cases.json");
        std::fs::write(&file, cases.to_string()).unwrap();
        let args = vec![self.issuer.clone(), file.display().to_string()];
        let output = run_script("node", "token_exchange.mjs", args).await;
        let summary = summary_of(&output, "npm openid-client");
        summary.as_array().expect("an array").clone()
    }
}

/// One case: `client` authenticating by `auth`, exchanging `subject` for `target`
/// (`{"audience": ...}` or `{"resource": ...}`).
fn case(name: &str, client: (&str, &str), auth: &str, subject: &str, target: Value) -> Value {
    let mut params = json!({"subject_token": subject, "subject_token_type": ACCESS_TOKEN});
    params
        .as_object_mut()
        .unwrap()
        .extend(target.as_object().unwrap().clone());
    json!({"name": name, "client_id": client.0, "client_secret": client.1, "auth": auth, "params": params})
}

#[tokio::test]
async fn openid_client_exchanges_idp_tokens_for_route_tokens() {
    let ex = exchange().await;
    let fx = &ex.fixture;
    let subject = fx.token();
    let subject_exp = decoded(&subject).1["exp"].as_i64().unwrap();
    let opaque = ex.provider.token("read:orders").await;
    let expired = fx.mint(|claims| claims["exp"] = json!(1_000_000_000));
    let no_write = fx.token();
    let for_other = fx.mint(|claims| claims["aud"] = json!("https://other.test"));
    let api = json!({"audience": AUDIENCE});
    let by_url = json!({"resource": format!("{}api/orders", ex.issuer)});
    let results = ex
        .run(json!([
            case("basic", BATCH, "basic", &subject, api.clone()),
            case("post", BATCH, "post", &subject, api.clone()),
            case("resource URL", BATCH, "basic", &subject, by_url),
            case("opaque subject", BATCH, "basic", &opaque, api.clone()),
            case(
                "wrong secret",
                (BATCH.0, "nope"),
                "basic",
                &subject,
                api.clone()
            ),
            case(
                "unknown client",
                ("nobody", "x"),
                "post",
                &subject,
                api.clone()
            ),
            case("narrow on /api", NARROW, "basic", &subject, api.clone()),
            case(
                "narrow on /other",
                NARROW,
                "basic",
                &for_other,
                json!({"audience": "https://other.test"})
            ),
            case(
                "unknown audience",
                BATCH,
                "basic",
                &subject,
                json!({"audience": "https://nowhere.test"})
            ),
            case(
                "foreign resource",
                BATCH,
                "basic",
                &subject,
                json!({"resource": "https://elsewhere.test/api/x"})
            ),
            case(
                "verify route",
                BATCH,
                "basic",
                &subject,
                json!({"resource": format!("{}verify", ex.issuer)})
            ),
            case("expired subject", BATCH, "basic", &expired, api.clone()),
            case("garbage subject", BATCH, "basic", "a.b.c", api.clone()),
            case(
                "missing scope",
                BATCH,
                "basic",
                &no_write,
                json!({"resource": format!("{}writes/x", ex.issuer)})
            ),
        ]))
        .await;
    let by_name = |name: &str| -> &Value {
        results
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {results:#?}"))
    };
    assert_eq!(
        by_name("basic")["token_endpoint"],
        format!("{}oauth/token", ex.issuer),
        "discovered from the issuer"
    );
    for name in ["basic", "post", "resource URL", "opaque subject"] {
        let result = by_name(name);
        assert_eq!(result["ok"], true, "{name}: {result:#}");
        let tokens = &result["tokens"];
        let token_type = tokens["token_type"].as_str().unwrap_or_default();
        assert!(
            token_type.eq_ignore_ascii_case("bearer"),
            "{name}: {tokens}"
        );
        assert_eq!(tokens["issued_token_type"], ACCESS_TOKEN, "{name}");
        assert!(tokens.get("refresh_token").is_none(), "{name}");
        let expires_in = tokens["expires_in"].as_i64().unwrap();
        assert!(
            (1..=300).contains(&expires_in),
            "{name}: max_ttl 5m: {expires_in}"
        );
        let access_token = tokens["access_token"].as_str().unwrap();
        let (header, claims) = decoded(access_token);
        assert_eq!(header["kid"], fx.proxy.active_kid(), "{name}");
        assert_eq!(claims["iss"], ex.issuer.as_str(), "{name}");
        assert_eq!(claims["aud"], AUDIENCE, "{name}");
        assert_eq!(claims["act"], json!({"sub": BATCH.0}), "{name}");
        if name != "opaque subject" {
            assert!(claims["exp"].as_i64().unwrap() <= subject_exp, "{name}");
            assert_eq!(claims["sub"], "user-42", "{name}");
        } else {
            assert_eq!(claims["client_id"], "batch", "{name}");
        }
    }
    // npm jose verifies an issued token against the published JWKS.
    let issued = by_name("basic")["tokens"]["access_token"].as_str().unwrap();
    let jwks = fx.url("/.well-known/jwks.json");
    jose_verify(jwks, issued.to_string(), AUDIENCE, &ex.issuer, Alg::ES256).await;
    // One subject token, one client, one route: the cached token; never the proxy's.
    assert_eq!(
        by_name("basic")["tokens"]["access_token"],
        by_name("post")["tokens"]["access_token"]
    );
    fx.expect("the proxy", "/api/x", &subject, 200, "").await;
    let (_, proxied) = decoded(&fx.upstream.last().bearer());
    assert!(proxied.get("act").is_none(), "{proxied}");
    let narrow = by_name("narrow on /other");
    assert_eq!(narrow["ok"], true, "{narrow:#}");
    assert_eq!(
        decoded(narrow["tokens"]["access_token"].as_str().unwrap()).1["aud"],
        "https://other.test"
    );

    for (name, error, status) in [
        ("wrong secret", "invalid_client", 401),
        ("unknown client", "invalid_client", 401),
        ("narrow on /api", "invalid_target", 400),
        ("unknown audience", "invalid_target", 400),
        ("foreign resource", "invalid_target", 400),
        ("verify route", "invalid_target", 400),
        ("expired subject", "invalid_request", 400),
        ("garbage subject", "invalid_request", 400),
        ("missing scope", "invalid_scope", 400),
    ] {
        let result = by_name(name);
        assert_eq!(result["ok"], false, "{name}: {result:#}");
        assert_eq!(result["error"], error, "{name}: {result:#}");
        assert_eq!(result["status"], status, "{name}: {result:#}");
    }
    assert_eq!(
        by_name("expired subject")["error_description"],
        "subject_token: token expired"
    );
    assert_eq!(by_name("wrong secret")["challenge"], json!(["basic"]));
    assert_eq!(fx.upstream.count(), 1, "an exchange reaches no upstream");
}

#[tokio::test]
async fn hand_written_requests_get_rfc_6749_errors() {
    let ex = exchange().await;
    let fx = &ex.fixture;
    let url = fx.url("/oauth/token");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", BATCH.0, BATCH.1)
        )
    );
    let form = "application/x-www-form-urlencoded";
    let subject = fx.token();
    let good = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={subject}\
         &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=https%3A%2F%2Fapi.test"
    );
    let post = |headers: Vec<(&'static str, String)>, body: String| {
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(Method::POST, &url, &headers, body.as_bytes()).await
        }
    };
    let ok = post(
        vec![
            ("authorization", basic.clone()),
            ("content-type", form.into()),
        ],
        good.clone(),
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.headers["cache-control"], "no-store");
    assert_eq!(ok.json()["token_type"], "Bearer");

    let wrong_method = send(Method::GET, &url, &[], b"").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.headers["allow"], "POST");
    for (name, headers, body, status, error) in [
        (
            "no client",
            vec![("content-type", form.to_string())],
            good.clone(),
            401,
            "invalid_client",
        ),
        (
            "JSON body",
            vec![
                ("authorization", basic.clone()),
                ("content-type", "application/json".into()),
            ],
            json!({"grant_type": "x"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "repeated parameter",
            vec![
                ("authorization", basic.clone()),
                ("content-type", form.into()),
            ],
            format!("{good}&audience=https%3A%2F%2Fother.test"),
            400,
            "invalid_request",
        ),
        (
            "other grant",
            vec![
                ("authorization", basic.clone()),
                ("content-type", form.into()),
            ],
            good.replace("token-exchange", "client_credentials"),
            400,
            "unsupported_grant_type",
        ),
        (
            "no subject token",
            vec![
                ("authorization", basic.clone()),
                ("content-type", form.into()),
            ],
            good.replace("subject_token=", "other="),
            400,
            "invalid_request",
        ),
        (
            "actor token",
            vec![
                ("authorization", basic.clone()),
                ("content-type", form.into()),
            ],
            format!(
                "{good}&actor_token=x&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt"
            ),
            400,
            "invalid_request",
        ),
        (
            "both auth methods",
            vec![
                ("authorization", basic.clone()),
                ("content-type", form.into()),
            ],
            format!("{good}&client_id={}&client_secret={}", BATCH.0, BATCH.1),
            400,
            "invalid_request",
        ),
    ] {
        let reply = post(headers, body).await;
        assert_eq!(reply.status, status, "{name}: {:?}", reply.body);
        assert_eq!(reply.json()["error"], error, "{name}");
        assert_eq!(reply.headers["cache-control"], "no-store", "{name}");
        if status == 401 {
            assert_eq!(
                reply.headers["www-authenticate"],
                "Basic realm=\"resigner\""
            );
        }
    }
    // The discovery documents name the endpoint and the grant.
    let doc = get(&fx.url("/.well-known/oauth-authorization-server"), &[])
        .await
        .json();
    assert_eq!(doc["token_endpoint"], format!("{}oauth/token", ex.issuer));
    assert_eq!(
        doc["grant_types_supported"],
        json!(["urn:ietf:params:oauth:grant-type:token-exchange"])
    );
}
