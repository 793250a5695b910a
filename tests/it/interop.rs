//! A second opinion from an independent JOSE implementation in another language: PyJWT
//! fetches the proxy's JWKS over HTTP and verifies forwarded tokens of every output algorithm.
//! PyJWT is installed by `scripts/test.sh`; this test fails (never skips) without it.

use resigner::jose::alg::Alg;

use crate::common::*;

const VERIFY_PY: &str = r#"
import json, sys
import jwt
url, token, audience, issuer = sys.argv[1:5]
key = jwt.PyJWKClient(url).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["RS256", "PS256", "ES256", "ES384", "EdDSA"],
                    audience=audience, issuer=issuer, options={"require": ["exp", "iat", "iss", "aud"]})
header = jwt.get_unverified_header(token)
print(json.dumps({"claims": claims, "header": header}))
"#;

#[tokio::test]
async fn pyjwt_verifies_forwarded_tokens_for_every_output_algorithm() {
    for alg in [Alg::RS256, Alg::PS256, Alg::ES256, Alg::ES384, Alg::EdDSA] {
        let fixture = Fixture::builder().await.signing_alg(alg).start().await;
        let (proxy, upstream, token) = (&fixture.proxy, &fixture.upstream, fixture.token());
        assert_eq!(get_bearer(&proxy.url("/api/x"), &token).await.status, 200);
        let forwarded = upstream.last().bearer();
        let jwks_url = proxy.url("/.well-known/jwks.json");
        let verdict = python::run_json(
            &format!("PyJWT verifying the {alg} token"),
            VERIFY_PY,
            vec![
                jwks_url,
                forwarded,
                "https://api.test".into(),
                "https://resigner.test/".into(),
            ],
        )
        .await;
        assert_eq!(verdict["header"]["alg"], alg.name());
        assert_eq!(verdict["header"]["typ"], "at+jwt");
        assert_eq!(verdict["claims"]["sub"], "user-42");
    }
}
