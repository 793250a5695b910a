//! A test IdP on loopback: serves an OpenID configuration and a JWKS it can change, go down
//! (500), turn slow, or answer HTML or 10 MB at will, counts JWKS fetches, and records any
//! other request (so tests can prove that a `jku`/`x5u` in a token was never dereferenced).
//! Tokens are minted from raw JSON text with aws-lc-rs directly, independent of the proxy's
//! own JOSE code, so hostile tokens (duplicate members, odd headers) can be built byte for
//! byte.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::client::serve;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Pair {
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair),
}

/// An IdP signing key and its public JWK.
pub struct IdpKey {
    pub kid: String,
    pub alg: &'static str,
    pair: Pair,
    pub jwk: Value,
}

impl IdpKey {
    /// RSA key of `bits` bits; `alg` is RS256 or PS256, and `pin_alg` puts `alg` in the JWK.
    pub fn rsa(kid: &str, alg: &'static str, bits: usize, pin_alg: bool) -> Self {
        let size = match bits {
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => KeySize::Rsa2048,
        };
        let pair = RsaKeyPair::generate(size).expect("rsa key");
        let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let mut jwk =
            json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&parts.n), "e": b64(&parts.e)});
        if pin_alg {
            jwk["alg"] = Value::from(alg);
        }
        let encoding: &'static dyn signature::RsaEncoding = if alg == "PS256" {
            &signature::RSA_PSS_SHA256
        } else {
            &signature::RSA_PKCS1_SHA256
        };
        IdpKey {
            kid: kid.into(),
            alg,
            pair: Pair::Rsa(pair, encoding),
            jwk,
        }
    }

    /// The default IdP key: RS256, 2048 bits, `alg` pinned in the JWK.
    pub fn rs256(kid: &str) -> Self {
        Self::rsa(kid, "RS256", 2048, true)
    }

    pub fn es256(kid: &str) -> Self {
        let pair =
            EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("ec key");
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        IdpKey {
            kid: kid.into(),
            alg: "ES256",
            pair: Pair::Ec(pair),
            jwk,
        }
    }

    /// The raw JWS signature of `input`.
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Rsa(pair, encoding) => {
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(*encoding, &rng, input, &mut sig)
                    .expect("rsa sign");
                sig
            }
            Pair::Ec(pair) => pair.sign(&rng, input).expect("ec sign").as_ref().to_vec(),
        }
    }

    /// The RSA modulus bytes (for HMAC-with-public-key confusion tests).
    pub fn public_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.jwk).unwrap()
    }
}

/// Signs raw header and payload JSON text with `key`.
pub fn raw_token(key: &IdpKey, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", b64(sig))
}

/// A standard access token: header `{alg, kid, typ: at+jwt}` and `claims`.
pub fn mint(key: &IdpKey, claims: &Value) -> String {
    let header = json!({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"});
    raw_token(key, &header.to_string(), &claims.to_string())
}

/// Valid RFC 9068 claims for `issuer` and audience `aud`, expiring in an hour.
pub fn claims(issuer: &str, aud: &str) -> Value {
    let now = resigner::jose::time::now_unix();
    json!({
        "iss": issuer, "sub": "user-42", "aud": aud, "iat": now - 5, "exp": now + 3600,
        "jti": format!("jti-{}", COUNTER.fetch_add(1, Ordering::Relaxed)), "client_id": "client-1",
        "scope": "read:orders", "https://idp.test/roles": ["admin"], "email": "u@example.com",
        "level": 7, "flag": true,
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How the IdP answers JWKS requests.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    Error500,
    /// 200 with an HTML page (`text/html`) instead of a JWKS.
    Html,
    /// 200 with a 10 MB body that starts like a JWKS.
    Huge,
}

struct State {
    issuer: Mutex<String>,
    /// The JWKS document, rendered once when set (a 10,000-key set is megabytes).
    jwks: Mutex<String>,
    mode: Mutex<Mode>,
    delay: Mutex<Duration>,
    cache_control: Mutex<Option<String>>,
    fetches: AtomicUsize,
    /// Every request, whatever its path.
    requests: AtomicUsize,
    other: Mutex<Vec<String>>,
}

/// The running test IdP.
pub struct TestIdp {
    pub issuer: String,
    pub addr: std::net::SocketAddr,
    state: Arc<State>,
}

impl TestIdp {
    pub async fn start(keys: &[&IdpKey]) -> TestIdp {
        let state = Arc::new(State {
            issuer: Mutex::new(String::new()),
            jwks: Mutex::new(String::new()),
            mode: Mutex::new(Mode::Up),
            delay: Mutex::new(Duration::ZERO),
            cache_control: Mutex::new(None),
            fetches: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            other: Mutex::new(vec![]),
        });
        let shared = state.clone();
        let addr = serve(move |request| {
            let state = shared.clone();
            async move { answer(&state, request.uri().path()).await }
        })
        .await;
        let issuer = format!("http://{addr}/");
        *state.issuer.lock().unwrap() = issuer.clone();
        let idp = TestIdp {
            issuer,
            addr,
            state,
        };
        idp.set_keys(keys);
        idp
    }

    pub fn jwks_uri(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    pub fn set_keys(&self, keys: &[&IdpKey]) {
        let list: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.state.jwks.lock().unwrap() = json!({"keys": list}).to_string();
    }

    /// Serves `document` verbatim as the JWKS.
    pub fn set_jwks(&self, document: Value) {
        *self.state.jwks.lock().unwrap() = document.to_string();
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    pub fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    pub fn set_cache_control(&self, value: Option<&str>) {
        *self.state.cache_control.lock().unwrap() = value.map(str::to_string);
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// Requests of any path (discovery, JWKS, anything else) so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Paths requested other than the JWKS and the OpenID configuration.
    pub fn other_requests(&self) -> Vec<String> {
        self.state.other.lock().unwrap().clone()
    }
}

async fn answer(state: &State, path: &str) -> Response<Full<Bytes>> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let issuer = state.issuer.lock().unwrap().clone();
    let (status, body, cache) = match path {
        "/.well-known/openid-configuration" => {
            let doc = json!({"issuer": issuer, "jwks_uri": format!("{issuer}jwks.json")});
            (StatusCode::OK, doc.to_string(), None)
        }
        "/jwks.json" => {
            state.fetches.fetch_add(1, Ordering::SeqCst);
            match *state.mode.lock().unwrap() {
                Mode::Up => {
                    let cache = state.cache_control.lock().unwrap().clone();
                    (StatusCode::OK, state.jwks.lock().unwrap().clone(), cache)
                }
                Mode::Error500 => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<html>down</html>".into(),
                    None,
                ),
                Mode::Html => {
                    let page = "<!DOCTYPE html><html><body>Sign in</body></html>";
                    let mut response = Response::new(Full::new(Bytes::from(page)));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        "text/html; charset=utf-8".parse().unwrap(),
                    );
                    return response;
                }
                Mode::Huge => {
                    let mut body = String::from("{\"keys\": [\"");
                    body.push_str(&"a".repeat(10 * 1024 * 1024));
                    body.push_str("\"]}");
                    (StatusCode::OK, body, None)
                }
            }
        }
        other => {
            state.other.lock().unwrap().push(other.to_string());
            (StatusCode::NOT_FOUND, String::new(), None)
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    if let Some(cache) = cache {
        response
            .headers_mut()
            .insert(http::header::CACHE_CONTROL, cache.parse().unwrap());
    }
    response
}
