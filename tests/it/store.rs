//! Durability of the custom key set: a restart keeps it, edits of the store file by another
//! process are picked up (and invalid ones ignored), a corrupt file stops start-up naming the
//! file, and a `kill -9` in the middle of a PUT loop leaves the old or the new set.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::Method;
use resigner::jose::alg::Alg;
use serde_json::{Value, json};

use crate::common::client::try_send;
use crate::common::*;

const PATH: &str = "/api/v2/keys/custom-signing";

async fn stored(admin_url: &str) -> Value {
    let reply = get(
        &format!("{admin_url}{PATH}"),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await;
    if reply.status == 404 {
        json!({"keys": []})
    } else {
        reply.json()
    }
}

#[tokio::test]
async fn restart_keeps_the_set() {
    let mut fixture = Fixture::start().await;
    let extra = public_jwk(Alg::PS256);
    let signing = fixture.proxy.active_jwk();
    assert_eq!(
        fixture
            .proxy
            .put_keys(&json!({"keys": [signing, extra]}))
            .await
            .status,
        200
    );
    let before = stored(&fixture.admin_url("")).await;
    fixture.proxy = fixture.proxy.restart().await;
    let proxy = &fixture.proxy;
    proxy.ready().await;
    assert_eq!(stored(&proxy.admin_url("")).await, before);
    let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await.json();
    assert_eq!(jwks["keys"][1]["kid"], extra["kid"]);
}

#[tokio::test]
async fn edits_by_another_process_are_validated_and_picked_up() {
    let fixture = Fixture::start().await;
    let proxy = &fixture.proxy;
    let store_path = proxy.dir.path().join("keys.json");
    let signing = proxy.active_jwk();
    let added = public_jwk(Alg::ES384);
    let edited = json!({"version": 40, "keys": [signing, added], "published_at": {}});
    std::fs::write(&store_path, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    let mut picked_up = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stored(&proxy.admin_url("")).await["keys"]
            .as_array()
            .unwrap()
            .len()
            == 2
        {
            picked_up = true;
            break;
        }
    }
    assert!(picked_up, "the edited store file was picked up");
    let jwks = get(&proxy.url("/.well-known/jwks.json"), &[]).await.json();
    assert_eq!(jwks["keys"][1]["kid"], added["kid"], "and published");
    let good = stored(&proxy.admin_url("")).await;

    // An edit that a PUT would refuse (private member) and a broken file are both ignored.
    let mut private = added.clone();
    private["d"] = json!("AAAA");
    std::fs::write(
        &store_path,
        json!({"version": 41, "keys": [private]}).to_string(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(stored(&proxy.admin_url("")).await, good);
    std::fs::write(&store_path, b"{\"version\": 42, \"keys\": [").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(stored(&proxy.admin_url("")).await, good);
    assert!(
        !String::from_utf8_lossy(&get(&proxy.url("/.well-known/jwks.json"), &[]).await.body)
            .contains("\"d\"")
    );
}

#[tokio::test]
async fn corrupt_store_stops_start_up_naming_the_file() {
    let servers = Fixture::builder().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = servers.write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    std::fs::write(
        dir.path().join("keys.json"),
        b"{\"version\": 3, \"keys\": [{\"kty\"",
    )
    .unwrap();
    let config = resigner::load_config(&config_path).unwrap();
    let err = resigner::start(config)
        .await
        .err()
        .expect("start-up refuses a corrupt store")
        .to_string();
    assert!(
        err.contains("keys.json") && err.contains("corrupt"),
        "{err}"
    );

    let private = json!({"version": 3, "keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}]});
    std::fs::write(dir.path().join("keys.json"), private.to_string()).unwrap();
    let config = resigner::load_config(&config_path).unwrap();
    let err = resigner::start(config)
        .await
        .err()
        .expect("start-up refuses an invalid set")
        .to_string();
    assert!(
        err.contains("keys.json") && err.contains("private key material"),
        "{err}"
    );

    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_resigner"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("keys.json"));
}

async fn spawn_serve(config: &std::path::Path, admin: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_resigner"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("resigner serve starts");
    for _ in 0..200 {
        if try_send(Method::GET, &format!("http://{admin}/healthz"), &[], b"")
            .await
            .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("resigner serve did not come up");
}

#[tokio::test]
async fn kill_9_during_a_put_loop_leaves_the_old_or_the_new_set() {
    let servers = Fixture::builder().await;
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = (free_addr(), free_addr());
    let config = servers.write_config(dir.path(), &listen, &admin);
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let mut last_acked = json!({"keys": []});
    for round in 0..6u64 {
        let mut child = spawn_serve(&config, &admin).await;
        let before_round = stored(&format!("http://{admin}")).await;
        assert_eq!(
            before_round["keys"], last_acked["keys"],
            "round {round}: the restarted proxy holds the last acknowledged set"
        );
        let killer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150 + round * 97)).await;
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
        });
        let mut writes = 0;
        let in_flight = loop {
            let keys: Vec<Value> = (0..1 + (writes % 3))
                .map(|_| public_jwk(Alg::EdDSA))
                .collect();
            let body = json!({ "keys": keys });
            match try_send(
                Method::PUT,
                &format!("http://{admin}{PATH}"),
                &headers,
                body.to_string().as_bytes(),
            )
            .await
            {
                Ok(reply) if reply.status == 200 => {
                    last_acked = reply.json();
                    writes += 1;
                }
                Ok(reply) => panic!("unexpected {}: {:?}", reply.status, reply.body),
                Err(_) => break body,
            }
        };
        killer.await.unwrap();
        assert!(
            writes > 0,
            "round {round}: some writes landed before the kill"
        );
        let mut child = spawn_serve(&config, &admin).await;
        let after = stored(&format!("http://{admin}")).await;
        assert!(
            after["keys"] == last_acked["keys"] || after["keys"] == in_flight["keys"],
            "round {round}: after kill -9 the store holds neither the old nor the new set: {after}"
        );
        last_acked = after;
        let leftovers: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(".keys.json.tmp"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "interrupted temp files are removed at start: {leftovers:?}"
        );

        child.kill().unwrap();
        child.wait().unwrap();
    }
}
