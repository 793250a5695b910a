//! When what the proxy depends on fails, one named row per failure.
//!
//! The IdP's JWKS endpoint (behind a [`TcpGate`], so it can also refuse connections): down,
//! slower than `fetch_timeout`, HTML, 500, 10 MB, 10,000 keys (over the byte limit, and small
//! ones under it: the key-count limit), an empty set, a set with no usable key, no `keys`.
//! After start, none of them replaces the last good set: valid tokens still pass, a token with
//! an unknown kid gets 401 (not 503) without waiting longer than the fetch timeout, the key
//! generation and the published JWKS stay, `/readyz` stays 200 and `/admin/status` names the
//! error. Before any good set, the same failures give 503 with `Retry-After` until the IdP
//! heals. A well-formed set without the current kid is the IdP rotating (or revoking) keys:
//! it replaces the set, and tokens under the removed kid get 401, never 503.
//!
//! The upstream (a [`RawUpstream`] behind a gate): refused, reset before the response head,
//! not HTTP → 502; silent → 504; reset or closed mid-body → the client has the 200 head and
//! `Content-Length` already, so it gets a cut-off body and the connection closes (an HTTP/1
//! proxy cannot change the status once sent). After each, 20 requests succeed on at most two
//! new upstream connections, and no connection is left open beyond those pooled.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::gate::TcpGate;
use crate::common::idp::{Mode, b64};
use crate::common::raw_client::exchange;
use crate::common::raw_upstream::{Answer, RawUpstream};
use crate::common::*;

/// How the IdP's JWKS endpoint fails.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Refused,
    Slow,
    Html,
    Error500,
    Huge,
    ManyFullKeys,
    ManySmallKeys,
    EmptySet,
    NoUsableKey,
    NoKeysMember,
}

/// Name, fault, and what `/admin/status` says about the failed fetch.
const IDP_ROWS: [(&str, Fault, &str); 10] = [
    ("down (connection refused)", Fault::Refused, "refused"),
    ("slower than fetch_timeout", Fault::Slow, "did not answer"),
    ("an HTML page with 200", Fault::Html, "JWKS is"),
    ("HTTP 500", Fault::Error500, "HTTP 500"),
    ("a 10 MB body", Fault::Huge, "larger than"),
    ("10,000 keys (4 MB)", Fault::ManyFullKeys, "larger than"),
    (
        "10,000 small keys",
        Fault::ManySmallKeys,
        "10000 keys; at most 100",
    ),
    ("an empty set", Fault::EmptySet, "no key usable"),
    ("only an HMAC key", Fault::NoUsableKey, "no key usable"),
    (
        "no \"keys\" member",
        Fault::NoKeysMember,
        "no \"keys\" array",
    ),
];

/// The fixture's IdP (kid `k1`), its key and the gate before it.
struct Idp<'a> {
    key: &'a IdpKey,
    idp: &'a TestIdp,
    gate: &'a TcpGate,
}

/// A fixture whose proxy fetches the IdP keys through a gate, refreshing every 100 ms, giving
/// up after 300 ms. With a `fault`, the IdP has it from the start and the proxy is not ready.
async fn gated(fault: Option<Fault>) -> (Fixture, TcpGate) {
    let builder = Fixture::builder_with(IdpKey::rs256("k1")).await;
    let gate = TcpGate::start(builder.idp.addr).await;
    let builder = builder
        .jwks_uri(&format!("http://{}/jwks.json", gate.addr))
        .idp("fetch_timeout", "300ms")
        .idp("refresh", "100ms")
        .idp("refresh_min", "100ms");
    let Some(fault) = fault else {
        return (builder.start().await, gate);
    };
    let (idp, key) = (&builder.idp, builder.key());
    Idp {
        key,
        idp,
        gate: &gate,
    }
    .apply(fault)
    .await;
    (builder.start_not_ready().await, gate)
}

impl<'a> Idp<'a> {
    fn of(fixture: &'a Fixture, gate: &'a TcpGate) -> Idp<'a> {
        Idp {
            key: &fixture.key,
            idp: &fixture.idp,
            gate,
        }
    }

    async fn apply(&self, fault: Fault) {
        let many = |jwk: &dyn Fn(usize) -> Value| {
            let keys: Vec<Value> = (0..10_000).map(jwk).collect();
            self.idp.set_jwks(json!({ "keys": keys }));
        };
        match fault {
            Fault::Refused => self.gate.close().await,
            Fault::Slow => self.idp.set_delay(Duration::from_secs(5)),
            Fault::Html => self.idp.set_mode(Mode::Html),
            Fault::Error500 => self.idp.set_mode(Mode::Error500),
            Fault::Huge => self.idp.set_mode(Mode::Huge),
            Fault::ManyFullKeys => many(&|i| {
                let mut jwk = self.key.jwk.clone();
                jwk["kid"] = json!(if i == 0 {
                    "k1".into()
                } else {
                    format!("k1-{i}")
                });
                jwk
            }),
            Fault::ManySmallKeys => many(&|i| match i {
                0 => self.key.jwk.clone(),
                _ => json!({"kty": "EC", "kid": format!("x{i}")}),
            }),
            Fault::EmptySet => self.idp.set_jwks(json!({"keys": []})),
            Fault::NoUsableKey => self
                .idp
                .set_jwks(json!({"keys": [{"kty": "oct", "kid": "k1", "k": b64(b"secret")}]})),
            Fault::NoKeysMember => self.idp.set_jwks(json!({"issuer": self.idp.issuer})),
        }
    }

    async fn heal(&self) {
        self.gate.close().await;
        self.gate.open().await;
        self.idp.set_delay(Duration::ZERO);
        self.idp.set_mode(Mode::Up);
        self.idp.set_keys(&[self.key]);
    }

    fn token(&self) -> String {
        mint(self.key, &claims(&self.idp.issuer, AUDIENCE))
    }
}

/// Polls `done` every 20 ms for up to `limit`; returns whether it became true.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// `GET /api/x` with `token`: status, `WWW-Authenticate` and how long it took.
async fn timed(proxy: &TestProxy, token: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let reply = get_bearer(&proxy.url("/api/x"), token).await;
    (reply.status.as_u16(), reply.www(), started.elapsed())
}

#[tokio::test]
async fn a_failing_idp_never_replaces_the_last_good_key_set() {
    let mut failures = vec![];
    for (name, fault, error) in IDP_ROWS {
        let (fixture, gate) = gated(None).await;
        let (proxy, idp) = (&fixture.proxy, Idp::of(&fixture, &gate));
        let current = || {
            proxy.running.state.idps.all()[0]
                .current()
                .expect("a key set")
        };
        let generation = current().generation;
        let failed = || proxy.counter(|m| &m.idp_fetch_failed);
        let before = failed();
        let mut problems = vec![];
        idp.apply(fault).await;
        if !eventually(Duration::from_secs(5), || failed() > before).await {
            problems.push("no failed fetch".to_string());
        }

        let (status, _, took) = timed(proxy, &idp.token()).await;
        if status != 200 || took > Duration::from_secs(2) {
            problems.push(format!("valid token: {status} after {took:?}"));
        }
        let stranger = IdpKey::rs256("k-new");
        let token = mint(&stranger, &claims(&idp.idp.issuer, "https://api.test"));
        let (status, www, took) = timed(proxy, &token).await;
        if status != 401 || !www.contains("invalid_token") || took > Duration::from_secs(3) {
            problems.push(format!("unknown kid: {status} {www} after {took:?}"));
        }
        if current().generation != generation || current().kids() != ["k1"] {
            problems.push(format!("key set replaced: {:?}", current().kids()));
        }
        let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await;
        if !String::from_utf8_lossy(&jwks.body).contains("\"k1\"") {
            problems.push("k1 left the published JWKS".into());
        }
        let ready = get(&proxy.admin_url("/readyz"), &[]).await.status;
        let status = get(&proxy.admin_url("/admin/status"), &[]).await.json();
        let last_error = status["idps"][0]["last_error"].as_str().unwrap_or_default();
        if ready != 200 || !last_error.contains(error) {
            problems.push(format!("readyz {ready}, last_error {last_error:?}"));
        }

        eprintln!("{name}: last_error {last_error:?}");
        idp.heal().await;
        let state = &proxy.running.state;
        if !eventually(Duration::from_secs(10), || {
            state.idps.all()[0].last_error().is_none()
        })
        .await
            || timed(proxy, &idp.token()).await.0 != 200
        {
            problems.push("did not recover".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn without_a_good_key_set_yet_the_proxy_answers_503_until_the_idp_heals() {
    let mut failures = vec![];
    for (name, fault, _) in IDP_ROWS {
        let (fixture, gate) = gated(Some(fault)).await;
        let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
        let idp = Idp::of(&fixture, &gate);
        let mut problems = vec![];
        let failed = || proxy.counter(|m| &m.idp_fetch_failed);
        if !eventually(Duration::from_secs(5), || failed() >= 1).await {
            problems.push("no failed fetch".to_string());
        }
        let reply = get_bearer(&proxy.url("/api/x"), &idp.token()).await;
        if reply.status != 503 || !reply.headers.contains_key("retry-after") {
            problems.push(format!("got {} {:?}", reply.status, reply.headers));
        }
        if proxy.running.state.idps.all()[0].current().is_some() || upstream.count() != 0 {
            problems.push("a key set was installed or a request forwarded".into());
        }
        let ready = get(&proxy.admin_url("/readyz"), &[]).await.status;
        let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await.status;
        if ready != 503 || jwks != 200 {
            problems.push(format!("readyz {ready}, public JWKS {jwks}"));
        }
        idp.heal().await;
        if !proxy.running.wait_ready(Duration::from_secs(10)).await
            || timed(proxy, &idp.token()).await.0 != 200
        {
            problems.push("did not recover".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_set_without_the_current_kid_is_a_rotation_and_replaces_the_set() {
    let (fixture, gate) = gated(None).await;
    let (proxy, idp) = (&fixture.proxy, Idp::of(&fixture, &gate));
    let rotated = IdpKey::rs256("k2");
    idp.idp.set_keys(&[&rotated]);
    let state = &proxy.running.state;
    let replaced = eventually(Duration::from_secs(5), || {
        state.idps.all()[0]
            .current()
            .is_some_and(|keys| keys.kids() == ["k2"])
    });
    assert!(replaced.await, "the rotated set was installed");
    let (status, www, _) = timed(proxy, &idp.token()).await;
    assert_eq!(status, 401, "a token under the removed kid: {www}");
    assert!(www.contains("invalid_token"), "{www}");
    let token = mint(&rotated, &claims(&idp.idp.issuer, "https://api.test"));
    assert_eq!(timed(proxy, &token).await.0, 200);
    let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await;
    let text = String::from_utf8_lossy(&jwks.body);
    assert!(
        text.contains("\"k2\"") && !text.contains("\"k1\""),
        "{text}"
    );
    assert_eq!(get(&proxy.admin_url("/readyz"), &[]).await.status, 200);
}

/// How the upstream fails, and what the client then gets.
#[derive(Debug, Clone, Copy)]
enum UpFault {
    Refused,
    Answer(Answer),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ClientSees {
    Status(u16),
    /// The 200 head with `Content-Length: 1000000`, fewer bytes, then the close.
    CutOffBody,
}

const UPSTREAM_ROWS: [(&str, UpFault, ClientSees); 6] = [
    (
        "connection refused",
        UpFault::Refused,
        ClientSees::Status(502),
    ),
    (
        "reset before the response head",
        UpFault::Answer(Answer::ResetBeforeHead),
        ClientSees::Status(502),
    ),
    (
        "an answer that is not HTTP",
        UpFault::Answer(Answer::Garbage),
        ClientSees::Status(502),
    ),
    (
        "silent past the route timeout",
        UpFault::Answer(Answer::Silent),
        ClientSees::Status(504),
    ),
    (
        "reset mid-body",
        UpFault::Answer(Answer::ResetMidBody),
        ClientSees::CutOffBody,
    ),
    (
        "closed mid-body",
        UpFault::Answer(Answer::CloseMidBody),
        ClientSees::CutOffBody,
    ),
];

#[tokio::test]
async fn upstream_failures_give_502_504_or_a_cut_off_body_and_the_pool_recovers() {
    let raw = RawUpstream::start(Answer::Ok(2)).await;
    let gate = TcpGate::start(raw.addr).await;
    let route = Route::new("/api")
        .upstream(format!("http://{}", gate.addr))
        .set("timeout", "500ms");
    let fixture = Fixture::builder().await.route(route).start().await;
    let (proxy, token) = (&fixture.proxy, fixture.token());
    let request = format!(
        "GET /api/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let mut failures = vec![];
    for (name, fault, expected) in UPSTREAM_ROWS {
        let mut problems = vec![];
        // A pooled connection exists when the fault strikes.
        assert_eq!(
            get_bearer(&proxy.url("/api/warm"), &token).await.status,
            200
        );
        match fault {
            UpFault::Refused => gate.close().await,
            UpFault::Answer(answer) => raw.set_answer(answer),
        }
        let reply = exchange(
            proxy.running.public_addr,
            request.as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        let sees = match reply.status() {
            Some(200) if reply.header("content-length").as_deref() == Some("1000000") => {
                (reply.body().len() < 1_000_000 && reply.closed).then_some(ClientSees::CutOffBody)
            }
            status => status.map(ClientSees::Status),
        };
        if sees != Some(expected) {
            problems.push(format!("client saw {sees:?}: {:?}", reply.head()));
        }

        match fault {
            UpFault::Refused => gate.open().await,
            UpFault::Answer(_) => raw.set_answer(Answer::Ok(2)),
        }
        let accepted = raw.accepted();
        for _ in 0..20 {
            let status = get_bearer(&proxy.url("/api/x"), &token).await.status;
            if status != 200 {
                problems.push(format!("after recovery: {status}"));
                break;
            }
        }
        let new = raw.accepted() - accepted;
        let open = raw.wait_open_at_most(new, Duration::from_secs(5)).await;
        eprintln!(
            "{name}: client saw {sees:?} ({} body bytes); then {new} new connections, {open} open",
            reply.body().len()
        );
        if new > 2 || open > 2 {
            problems.push(format!(
                "{new} new upstream connections for 20 requests, {open} open"
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{name}: {}", problems.join("; ")));
        }
    }
    assert!(raw.malformed().is_empty(), "{:?}", raw.malformed());
    assert!(proxy.counter(|m| &m.upstream_errors) >= 4);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
