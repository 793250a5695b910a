//! Hot reload against a running proxy: 2,000+ requests while the config is rewritten 20
//! times (one rewrite invalid) see zero failures and then follow the new claims; an invalid
//! file keeps the running config and reports line numbers; a changed key file reloads;
//! listener changes wait for a restart; SIGHUP reloads `resigner serve`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use resigner::reload::Reloader;
use serde_json::{Value, json};

use crate::common::*;

/// Waits until the reloader reports `done(status)`, up to 5 s.
async fn until(reloader: &Reloader, done: impl Fn(&resigner::reload::ReloadStatus) -> bool) {
    for _ in 0..250 {
        if done(&reloader.status()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("reload did not happen: {:?}", reloader.status());
}

fn forwarded_claims(upstream: &TestUpstream) -> Value {
    let token = upstream.last().bearer();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine;
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_drops_nothing_and_applies_new_claims() {
    let fixture = Fixture::builder()
        .await
        .route(Route::new("/api").claims("set", json!({"rev": 0})))
        .start()
        .await;
    let (proxy, upstream) = (&fixture.proxy, &fixture.upstream);
    let (reloader, _tasks) = proxy.watch();
    let token = fixture.token();

    let done = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (done, sent, failed) = (done.clone(), sent.clone(), failed.clone());
            let (url, token) = (proxy.url("/api/load"), token.clone());
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) || sent.load(Ordering::Relaxed) < 2_000 {
                    let reply = get_bearer(&url, &token).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    if reply.status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed during reload: {} {:?}", reply.status, reply.body);
                    }
                }
            })
        })
        .collect();

    let claim = |rev: u32| move |doc: &mut ConfigDoc| doc.set("routes.0.claims.set", "rev", rev);
    for rev in 1..=20u32 {
        let before = reloader.status();
        if rev == 10 {
            // Invalid: a reserved claim in `set`. The running config must stay.
            proxy.rewrite_config(|doc| {
                claim(rev)(doc);
                doc.set("routes.0.claims.set", "exp", 1);
            });
            until(&reloader, |s| s.failed == before.failed + 1).await;
            let status = reloader.status();
            assert!(!status.ok);
            assert!(
                status
                    .errors
                    .iter()
                    .any(|e| e.contains("line ") && e.contains("\"exp\"")),
                "{:?}",
                status.errors
            );
        } else {
            proxy.rewrite_config(claim(rev));
            until(&reloader, |s| s.succeeded == before.succeeded + 1).await;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    done.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let total = sent.load(Ordering::Relaxed);
    println!(
        "reload under load: {total} requests, {} failed, 19 reloads + 1 refused",
        failed.load(Ordering::Relaxed)
    );
    assert!(total >= 2_000, "{total}");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );
    let status = reloader.status();
    assert_eq!((status.succeeded, status.failed), (19, 1));
    assert!(
        status.ok && status.errors.is_empty(),
        "a later valid reload clears the errors"
    );

    assert_eq!(
        get_bearer(&proxy.url("/api/after"), &token).await.status,
        200
    );
    assert_eq!(
        forwarded_claims(upstream)["rev"],
        20,
        "requests after the last reload follow the new claims"
    );
    let admin = get(&proxy.admin_url("/admin/status"), &[]).await.json();
    assert_eq!(admin["reload"]["succeeded"], 19);
    assert_eq!(admin["config_generation"], admin["reload"]["generation"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_file_change_reloads_and_listener_changes_wait_for_restart() {
    let fixture = Fixture::start().await;
    let proxy = &fixture.proxy;
    let (reloader, _tasks) = proxy.watch();
    let old_kid = proxy.active_kid();

    write_key(
        &proxy.dir.path().join("signing.pem"),
        resigner::jose::alg::Alg::ES256,
    );
    until(&reloader, |s| s.succeeded == 1).await;
    let new_kid = proxy.active_kid();
    assert_ne!(old_kid, new_kid, "the rewritten key file was loaded");
    let token = fixture.token();
    assert_eq!(
        get_bearer(&proxy.url("/api/x"), &token).await.status,
        503,
        "the new key is not published yet"
    );

    proxy.rewrite_config(|doc| doc.set("server", "listen", "127.0.0.1:1"));
    until(&reloader, |s| s.succeeded == 2).await;
    assert!(
        reloader
            .status()
            .needs_restart
            .iter()
            .any(|s| s.contains("server.listen")),
        "{:?}",
        reloader.status()
    );
    assert_eq!(get(&proxy.admin_url("/healthz"), &[]).await.status, 200);
    assert_eq!(
        get(&proxy.url("/.well-known/jwks.json"), &[]).await.status,
        200,
        "the old listener keeps serving"
    );
}

#[tokio::test]
async fn sighup_reloads_resigner_serve() {
    use std::process::{Command, Stdio};
    let servers = Fixture::builder().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = free_addr();
    let config = servers.write_config(dir.path(), "127.0.0.1:0", &admin);
    let mut child = Command::new(env!("CARGO_BIN_EXE_resigner"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status_url = format!("http://{admin}/admin/status");
    let mut up = false;
    for _ in 0..200 {
        if crate::common::client::try_send(http::Method::GET, &status_url, &[], b"")
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "resigner serve came up");
    let pid = child.id().to_string();
    let hup = tokio::task::spawn_blocking(move || {
        Command::new("kill").args(["-HUP", &pid]).status().unwrap()
    })
    .await
    .unwrap();
    assert!(hup.success());
    let mut reloaded = Value::Null;
    for _ in 0..100 {
        reloaded = get(&status_url, &[]).await.json();
        if reloaded["reload"]["trigger"] == "SIGHUP" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(reloaded["reload"]["trigger"], "SIGHUP", "{reloaded}");
    assert_eq!(reloaded["reload"]["ok"], true);
    assert_eq!(reloaded["config_generation"], 2);
}
