//! Start-up: a request that arrives while the first IdP key fetch is in flight waits for it
//! instead of getting 503, so a restart under steady traffic (in-process, and a new
//! `resigner serve` process) answers only 2xx even when the IdP is slow; the management API's
//! IdP tokens wait the same way. With the IdP down, the wait is bounded by `fetch_timeout`,
//! later requests get 503 at once, and `/readyz` says that no key set is loaded yet, with the
//! attempt number and when the next one runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use tokio::task::JoinSet;

use crate::common::client::try_send;
use crate::common::serve::{ServeChild, wait_for};
use crate::common::*;

/// How long the test IdP takes to answer, so the first fetch is in flight that long.
const JWKS_DELAY: Duration = Duration::from_millis(400);

/// What a request loop saw: each answer's status and time taken; connection failures apart.
#[derive(Default)]
struct Seen {
    answers: Vec<(u16, Duration)>,
    connection_errors: usize,
}

impl Seen {
    fn non_2xx(&self) -> Vec<u16> {
        let statuses = self.answers.iter().map(|(status, _)| *status);
        statuses.filter(|s| !(200..300).contains(s)).collect()
    }

    /// Answers that took long enough to have waited for the first key fetch.
    fn waited(&self) -> usize {
        let slow = |(_, took): &&(u16, Duration)| *took >= JWKS_DELAY / 2;
        self.answers.iter().filter(slow).count()
    }
}

/// Three clients sending `GET url` with `token`, each on a new connection, until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    clients: JoinSet<Seen>,
}

impl Traffic {
    fn start(url: String, token: &str) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = JoinSet::new();
        for _ in 0..3 {
            let (url, stop) = (url.clone(), stop.clone());
            let auth = format!("Bearer {token}");
            clients.spawn(async move {
                let mut seen = Seen::default();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let headers = [("authorization", auth.as_str())];
                    match try_send(Method::GET, &url, &headers, b"").await {
                        Ok(reply) => seen
                            .answers
                            .push((reply.status.as_u16(), started.elapsed())),
                        Err(_) => {
                            seen.connection_errors += 1;
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                }
                seen
            });
        }
        Traffic { stop, clients }
    }

    async fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Seen::default();
        for seen in self.clients.join_all().await {
            all.answers.extend(seen.answers);
            all.connection_errors += seen.connection_errors;
        }
        all
    }
}

fn assert_only_2xx(seen: &Seen) {
    eprintln!(
        "{} answers, {} waited for the first key fetch, {} connection errors",
        seen.answers.len(),
        seen.waited(),
        seen.connection_errors
    );
    assert!(seen.non_2xx().is_empty(), "non-2xx: {:?}", seen.non_2xx());
    assert!(
        seen.waited() >= 1,
        "no request arrived while the first fetch was in flight"
    );
}

#[tokio::test]
async fn a_restart_under_a_steady_request_loop_answers_only_2xx() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let (public, admin) = (free_addr(), free_addr());
    let builder = ProxyBuilder::new(&idp).api_route(&upstream);
    let proxy = builder.listen_on(&public, &admin).start().await;
    proxy.ready().await;
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    idp.set_delay(JWKS_DELAY);
    let traffic = Traffic::start(format!("http://{public}/api/x"), &token);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let proxy = proxy.restart().await;
    tokio::time::sleep(JWKS_DELAY * 3).await;
    let seen = traffic.stop().await;
    assert_only_2xx(&seen);
    assert!(proxy.running.state.idps.all()[0].current().is_some());
}

#[tokio::test]
async fn a_new_process_started_while_requests_arrive_answers_only_2xx() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let (public, admin) = (free_addr(), free_addr());
    let builder = ProxyBuilder::new(&idp).api_route(&upstream);
    // A first instance imports the signing key into the key store, then stops.
    let TestProxy {
        running,
        dir,
        config_path,
        ..
    } = builder.listen_on(&public, &admin).start().await;
    running.shutdown(Duration::from_secs(5)).await;
    idp.set_delay(JWKS_DELAY);
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    let traffic = Traffic::start(format!("http://{public}/api/x"), &token);
    let log = dir.path().join("serve.log");
    let _child = ServeChild::spawn(&config_path, &log, "resigner=info");
    wait_for(&format!("http://{admin}/readyz"), 200).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = traffic.stop().await;
    assert_only_2xx(&seen);
}

#[tokio::test]
async fn the_management_api_waits_for_the_first_fetch_too() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    idp.set_delay(JWKS_DELAY);
    let upstream = TestUpstream::start().await;
    let audience = "https://resigner.test/api/v2/";
    let proxy = ProxyBuilder::new(&idp)
        .api_route(&upstream)
        .admin(&format!("audience = \"{audience}\""))
        .start()
        .await;
    let mut admin_claims = claims(&idp.issuer, audience);
    admin_claims["scope"] = json!("read:custom_signing_keys");
    let token = mint(&key, &admin_claims);
    assert!(
        proxy.running.state.idps.all()[0].current().is_none(),
        "still fetching"
    );
    let url = proxy.admin_url("/api/v2/keys/custom-signing");
    let reply = get_bearer(&url, &token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test]
async fn with_the_idp_down_at_start_503_comes_within_the_fetch_timeout_and_says_why() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    idp.set_delay(Duration::from_secs(60));
    let upstream = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&idp)
        .api_route(&upstream)
        .idp("fetch_timeout = \"1s\"")
        .start()
        .await;
    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    let url = proxy.url("/api/x");
    let started = Instant::now();
    let first = get_bearer(&url, &token).await;
    let took = started.elapsed();
    assert_eq!(first.status, 503, "{:?}", first.body);
    assert!(first.headers.contains_key("retry-after"));
    assert!(took < Duration::from_millis(1700), "waited {took:?}");

    // The first attempt has failed: no more waiting while the IdP is down.
    let started = Instant::now();
    assert_eq!(get_bearer(&url, &token).await.status, 503);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "waited {took:?}");
    assert_eq!(upstream.count(), 0);

    let ready = get(&proxy.admin_url("/readyz"), &[]).await;
    assert_eq!(ready.status, 503);
    let reason = ready.json()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for words in [
        "did not answer within 1s",
        "(attempt ",
        "no key set is loaded yet",
        "next attempt in ",
    ] {
        assert!(reason.contains(words), "{words:?} not in {reason:?}");
    }
    assert!(
        !reason.contains("keeping the last good key set"),
        "{reason}"
    );
}
