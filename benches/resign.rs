//! Re-sign throughput: the cache hit path, the cache miss path per output algorithm, and the
//! raw aws-lc-rs sign/verify rates those figures are compared against.
//! Only the crate's public API is called; see `benches/README.md` for what each id measures
//! and the figures measured on the reference machine.
//!
//! Run: `cargo bench --bench resign -- --warm-up-time 1 --measurement-time 3`

use std::error::Error;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::HeaderValue;
use serde_json::{Map, Value, json};

use resigner::cache::{self, CacheKey, ResignCache, Resigned};
use resigner::config::{CacheSettings, ClaimMapping, IdpSettings};
use resigner::idp::IdpClient;
use resigner::jose::alg::Alg;
use resigner::jose::time::now_unix;
use resigner::keys::{SigningKey, VerifyKey};
use resigner::proxy::claims;
use resigner::proxy::verify;

const IDP_ISSUER: &str = "https://idp.example.com/";
const ROUTE_AUDIENCE: &str = "https://api.example.com/orders";
const OUTPUT_ISSUER: &str = "https://resigner.example.com/";
const MAX_TTL_SECS: i64 = 300;
const ROUTE_ID: u32 = 1;
const CONFIG_GENERATION: u64 = 7;
const IDP_GENERATION: u64 = 3;
/// Entries in the cache besides the one that is looked up.
const PREFILL: usize = 100_000;
/// Size of the message for the raw sign/verify reference figures.
const RAW_MESSAGE_BYTES: usize = 700;
/// The output algorithms measured.
const OUTPUT_ALGS: [Alg; 5] = [Alg::RS256, Alg::PS256, Alg::ES256, Alg::ES384, Alg::EdDSA];

/// Everything the miss path needs, built once.
struct Fixture {
    /// The IdP's private key, used to mint the incoming token and for the raw RS256 figures.
    idp_key: SigningKey,
    /// The IdP key as the proxy sees it: parsed from its public JWK.
    verify_key: VerifyKey,
    idp: Arc<IdpSettings>,
    mapping: ClaimMapping,
    /// The incoming RS256 access token (RFC 9068 claims).
    token: String,
}

fn fixture() -> Fixture {
    let der = SigningKey::generate_pkcs8(Alg::RS256).expect("generate IdP key");
    let idp_key = SigningKey::from_pkcs8(&der, Alg::RS256, Some("idp-2025-01".into()))
        .expect("parse IdP key");
    let jwk = idp_key.public_jwk().to_json();
    let verify_key = VerifyKey::from_jwk(&jwk, &[Alg::RS256])
        .expect("IdP JWK parses")
        .expect("IdP JWK is usable for RS256");
    let idp = Arc::new(IdpSettings {
        name: "bench".into(),
        issuer: IDP_ISSUER.into(),
        jwks_uri: None,
        algorithms: vec![Alg::RS256],
        leeway: Duration::from_secs(30),
        require_typ: Some("at+jwt".into()),
        refresh: Duration::from_secs(600),
        refresh_min: Duration::from_secs(60),
        refresh_max: Duration::from_secs(86_400),
        unknown_kid_cooldown: Duration::from_secs(30),
        max_stale: Duration::from_secs(86_400),
        fetch_timeout: Duration::from_secs(5),
        max_response_bytes: 1024 * 1024,
        max_keys: 100,
        scope_claims: vec!["scope".into()],
        tls: None,
        introspection: None,
    });
    let mapping = ClaimMapping {
        audience: json!("legacy-orders"),
        copy: Some(
            [
                "sub",
                "client_id",
                "scope",
                "jti",
                "auth_time",
                "acr",
                "email",
            ]
            .map(String::from)
            .to_vec(),
        ),
        rename: vec![
            ("https://idp.example.com/roles".into(), "roles".into()),
            ("scope".into(), "scp".into()),
        ],
        set: object(json!({"tenant": "acme", "legacy_level": 2})),
        remove: vec!["email".into()],
    };
    let now = now_unix();
    // An RFC 9068 access token as a typical IdP issues it (~900 bytes with the RS256 header
    // and signature).
    let incoming = json!({
        "iss": IDP_ISSUER,
        "sub": "248289761001",
        "aud": [ROUTE_AUDIENCE],
        "exp": now + 3600,
        "iat": now,
        "auth_time": now - 120,
        "jti": "8f3kQ2xZ9wLmA1bC7dE5gH",
        "client_id": "s6BhdRkqt3",
        "scope": "orders:read orders:write",
        "acr": "urn:mace:incommon:iap:silver",
        "email": "jane.doe@example.com",
        "https://idp.example.com/roles": ["orders-admin", "auditor"],
    });
    let payload = serde_json::to_vec(&incoming).expect("serialize incoming claims");
    let token = idp_key.sign_compact(&payload).expect("mint incoming token");
    Fixture {
        idp_key,
        verify_key,
        idp,
        mapping,
        token,
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("literal is an object"),
    }
}

fn output_key(alg: Alg) -> SigningKey {
    let der = SigningKey::generate_pkcs8(alg).expect("generate output key");
    SigningKey::from_pkcs8(&der, alg, None).expect("parse output key")
}

/// The cache miss path, as `proxy::pipeline::run` runs it once the IdP key is known:
/// parse + verify + map claims + serialize + sign. Not included: the IdP key-set lookup by
/// kid, the `Bearer ` prefix and `HeaderValue` check, the `spawn_blocking` hop for RSA
/// output keys, and the moka insert.
fn miss(fx: &Fixture, out: &SigningKey, token: &str) -> Result<String, Box<dyn Error>> {
    let now = now_unix();
    let parsed = verify::parse(token)?;
    let verified = verify::verify(parsed, &fx.verify_key, &fx.idp, ROUTE_AUDIENCE, now)?;
    let claims = claims::map_claims(
        &verified.claims,
        verified.exp,
        &fx.mapping,
        OUTPUT_ISSUER,
        MAX_TTL_SECS,
        now,
    );
    let payload = serde_json::to_vec(&claims)?;
    Ok(out.sign_compact(&payload)?)
}

/// Checks that a re-signed token verifies under the output key's published JWK and carries
/// the mapped claims, so the benchmark cannot be measuring a broken path.
fn assert_resigned(out: &SigningKey, resigned: &str) {
    let (input, sig) = resigned.rsplit_once('.').expect("compact JWS");
    let sig = resigner::jose::b64::decode(sig).expect("signature is base64url");
    out.public_jwk()
        .material
        .parse_for(out.alg())
        .expect("output key parses")
        .verify_sig(input.as_bytes(), &sig)
        .expect("re-signed token verifies under the output key");
    let payload = input.split('.').nth(1).expect("payload segment");
    let claims: Map<String, Value> = serde_json::from_slice(
        &resigner::jose::b64::decode(payload).expect("payload is base64url"),
    )
    .expect("payload is JSON");
    assert_eq!(claims["iss"], OUTPUT_ISSUER);
    assert_eq!(claims["aud"], "legacy-orders");
    assert_eq!(claims["roles"], json!(["orders-admin", "auditor"]));
    assert_eq!(claims["tenant"], "acme");
    assert!(!claims.contains_key("email"));
}

fn bench_hit(c: &mut Criterion) {
    let fx = fixture();
    let token = fx.token.as_str();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime");
    // Byte-bounded like the default configuration, but large enough (256 MiB) that the
    // prefill is not evicted: each entry weighs its header value plus 160 bytes.
    let cache: ResignCache = cache::build(&CacheSettings {
        max_bytes: Some(256 * 1024 * 1024),
        max_entries: None,
    });
    // A realistic cached value: `Bearer ` + an ES256 re-signed token.
    let es256 = output_key(Alg::ES256);
    let resigned = miss(&fx, &es256, token).expect("miss path succeeds");
    let header_value = HeaderValue::from_str(&format!("Bearer {resigned}")).expect("header");
    let idp_client = Arc::new(IdpClient::new(
        fx.idp.clone(),
        resigner::http::client::fetch_client(Duration::from_secs(5), None),
        Arc::new(resigner::metrics::Metrics::default()),
        Default::default(),
    ));
    let entry = |header_value: &HeaderValue| {
        Arc::new(Resigned {
            header_value: header_value.clone(),
            expires_at: std::time::Instant::now() + Duration::from_secs(3600),
            exp: 0,
            verified_with_keys: true,
            idp: idp_client.clone(),
        })
    };
    let hot_key = CacheKey::new(token, ROUTE_ID, CONFIG_GENERATION, IDP_GENERATION);
    rt.block_on(async {
        for i in 0..PREFILL {
            let other = format!("{}{i}", &token[..token.len() - 8]);
            let key = CacheKey::new(&other, ROUTE_ID, CONFIG_GENERATION, IDP_GENERATION);
            cache.insert(key, entry(&header_value)).await;
        }
        cache.insert(hot_key, entry(&header_value)).await;
        cache.run_pending_tasks().await;
        assert!(cache.get(&hot_key).await.is_some(), "hot entry present");
    });
    assert_eq!(cache.entry_count(), PREFILL as u64 + 1, "nothing evicted");

    let mut group = c.benchmark_group("hit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cache_key", |b| {
        b.iter(|| {
            CacheKey::new(
                black_box(token),
                ROUTE_ID,
                CONFIG_GENERATION,
                IDP_GENERATION,
            )
        })
    });
    // One `block_on` per criterion batch: the loop of `iters` lookups runs inside a single
    // future, so the figure is key + get without runtime entry/exit per lookup.
    group.bench_function("key_and_get", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let key = CacheKey::new(
                        black_box(token),
                        ROUTE_ID,
                        CONFIG_GENERATION,
                        IDP_GENERATION,
                    );
                    let value = cache.get(&key).await.expect("cache hit");
                    black_box(value);
                }
                start.elapsed()
            })
        })
    });
    // The token work of a hit from the request's headers on: the bearer extraction, then
    // key + get. Checked: the per-character b64token check before the lookup (what every hit
    // paid before the check moved to the miss path); unchecked: what a hit does now.
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
    );
    type Extract = fn(&http::HeaderMap) -> Result<&[u8], resigner::proxy::ProxyError>;
    let checked: Extract = |headers| resigner::proxy::bearer_token(headers).map(str::as_bytes);
    let extractors: [(&str, Extract); 2] = [
        ("from_headers_checked", checked),
        ("from_headers_unchecked", resigner::proxy::bearer_unchecked),
    ];
    for (name, extract) in extractors {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let token = extract(black_box(&headers)).expect("bearer token");
                        let key = CacheKey::new(token, ROUTE_ID, CONFIG_GENERATION, IDP_GENERATION);
                        black_box(cache.get(&key).await.expect("cache hit"));
                    }
                    start.elapsed()
                })
            })
        });
    }
    // The same with a `block_on` per lookup: shows what entering the runtime costs.
    group.bench_function("key_and_get_block_on_each", |b| {
        b.iter(|| {
            rt.block_on(async {
                let key = CacheKey::new(
                    black_box(token),
                    ROUTE_ID,
                    CONFIG_GENERATION,
                    IDP_GENERATION,
                );
                cache.get(&key).await.expect("cache hit")
            })
        })
    });
    group.finish();
}

fn bench_miss(c: &mut Criterion) {
    let fx = fixture();
    let token = fx.token.as_str();
    assert!(
        (800..=1000).contains(&token.len()),
        "incoming token is {} bytes, expected ~900",
        token.len()
    );
    let keys: Vec<SigningKey> = OUTPUT_ALGS.into_iter().map(output_key).collect();
    for key in &keys {
        let resigned = miss(&fx, key, token)
            .unwrap_or_else(|err| panic!("miss path for {} failed: {err}", key.alg()));
        assert_resigned(key, &resigned);
        eprintln!(
            "miss/{}: incoming RS256 token {} bytes -> re-signed token {} bytes",
            key.alg(),
            token.len(),
            resigned.len()
        );
    }

    let mut group = c.benchmark_group("miss");
    group.throughput(Throughput::Elements(1));
    group.sample_size(50);
    for key in &keys {
        group.bench_function(key.alg().name(), |b| {
            b.iter(|| miss(&fx, key, black_box(token)).expect("miss path"))
        });
    }
    group.finish();

    // The signature-independent part of the miss path, to split the figures above.
    let mut group = c.benchmark_group("miss_stages");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_verify_RS256", |b| {
        b.iter(|| {
            let parsed = verify::parse(black_box(token)).expect("parse");
            verify::verify(parsed, &fx.verify_key, &fx.idp, ROUTE_AUDIENCE, now_unix())
                .expect("verify")
        })
    });
    let verified = {
        let parsed = verify::parse(token).expect("parse");
        verify::verify(parsed, &fx.verify_key, &fx.idp, ROUTE_AUDIENCE, now_unix()).expect("verify")
    };
    group.bench_function("map_claims_to_vec", |b| {
        b.iter(|| {
            let claims = claims::map_claims(
                black_box(&verified.claims),
                verified.exp,
                &fx.mapping,
                OUTPUT_ISSUER,
                MAX_TTL_SECS,
                now_unix(),
            );
            serde_json::to_vec(&claims).expect("serialize")
        })
    });
    group.finish();
}

fn bench_raw(c: &mut Criterion) {
    let message: Vec<u8> = (0..RAW_MESSAGE_BYTES)
        .map(|i| b'A' + (i % 26) as u8)
        .collect();
    let mut group = c.benchmark_group("raw_sign");
    group.throughput(Throughput::Elements(1));
    group.sample_size(50);
    for alg in OUTPUT_ALGS {
        let key = output_key(alg);
        group.bench_function(alg.name(), |b| {
            b.iter(|| key.sign_raw(black_box(&message)).expect("sign"))
        });
    }
    group.finish();

    let idp_key = fixture().idp_key;
    let public = idp_key
        .public_jwk()
        .material
        .parse_for(Alg::RS256)
        .expect("RS256 public key");
    let signature = idp_key.sign_raw(&message).expect("sign");
    public
        .verify_sig(&message, &signature)
        .expect("raw RS256 verifies");
    let mut group = c.benchmark_group("raw_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("RS256", |b| {
        b.iter(|| {
            public
                .verify_sig(black_box(&message), black_box(&signature))
                .expect("verify")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_hit, bench_miss, bench_raw);
criterion_main!(benches);
