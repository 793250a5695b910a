//! `resigner demo` from the built binary, driven exactly as its printed instructions say, and
//! refused with a port to try when one of its ports is taken.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use http::Method;
use serde_json::Value;

use crate::common::*;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A base port whose next three ports are free too.
fn free_ports() -> u16 {
    for attempt in 0..200u16 {
        let base = 20_000 + (std::process::id() as u16 % 2_000) * 10 + attempt * 7;
        let all_free = (0..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no four consecutive free ports");
}

#[tokio::test]
async fn demo_runs_the_whole_story() {
    let port = free_ports();
    let mut child = Command::new(env!("CARGO_BIN_EXE_resigner"))
        .args(["demo", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let stdout = child.stdout.take().unwrap();
    let guard = Child(child);
    let printed = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            if line.contains("Press Ctrl-C") {
                break;
            }
        }
        text
    })
    .await
    .unwrap();
    assert!(
        printed.contains("curl -s -d grant_type=client_credentials"),
        "{printed}"
    );

    let idp = format!("http://127.0.0.1:{}", port + 1);
    let token = send(
        Method::POST,
        &format!("{idp}/oauth/token"),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"grant_type=client_credentials",
    )
    .await;
    assert_eq!(token.status, 200);
    let token = token.json()["access_token"].as_str().unwrap().to_string();
    let wrong_grant = send(
        Method::POST,
        &format!("{idp}/oauth/token"),
        &[],
        b"grant_type=password",
    )
    .await;
    assert_eq!(wrong_grant.status, 400);

    let proxy = format!("http://127.0.0.1:{port}");
    let reply = get_bearer(&format!("{proxy}/api/orders?page=1"), &token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let echo: Value = reply.json();
    assert_eq!(echo["path"], "/orders");
    assert_eq!(echo["token_header"]["alg"], "ES256");
    assert_eq!(echo["token_claims"]["aud"], "legacy-orders");
    assert_eq!(echo["token_claims"]["tenant"], "demo");
    assert_eq!(echo["token_claims"]["legacy_level"], 2);
    assert!(echo["token_claims"]["roles"].is_array());
    assert!(echo["token_claims"].get("gty").is_none());
    let kid = echo["token_header"]["kid"].as_str().unwrap();
    assert!(
        printed.contains(kid),
        "the printed instructions name the customer kid"
    );

    let jwks = get(&format!("{proxy}/.well-known/jwks.json"), &[])
        .await
        .json();
    assert_eq!(jwks["keys"][0]["kid"], kid, "customer key first");
    assert_eq!(jwks["keys"][1]["kty"], "RSA", "then the IdP key");

    let rejected = get_bearer(&format!("{proxy}/api/orders"), "not.a.token").await;
    assert_eq!(rejected.status, 401);
    drop(guard);
}

/// `resigner demo --port PORT` with one port of its span taken: exit 1 before starting
/// anything, naming the busy port and a `--port` whose span is free.
async fn demo_refused(base: u16, busy: u16) -> String {
    let _taken = std::net::TcpListener::bind(("127.0.0.1", busy)).expect("port is free");
    let run = crate::cli::resigner(&["demo", "--port", &base.to_string()], "", &[]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let message = run.stderr.trim().to_string();
    assert!(
        message.starts_with(&format!("resigner: port {busy} is in use")),
        "{message}"
    );
    let suggested: u16 = message
        .split("try `resigner demo --port ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix('`'))
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no --port suggestion: {message}"));
    assert!(
        suggested > base + 3 || suggested + 3 < base,
        "{suggested} overlaps {base}: {message}"
    );
    let free = (0..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", suggested + i)).is_ok());
    assert!(free, "the suggested span is not free: {message}");
    message
}

#[tokio::test]
async fn a_busy_port_names_itself_and_a_free_port_to_try() {
    let base = free_ports();
    let message = demo_refused(base, base).await;
    assert!(
        message.contains(&format!("(the demo takes ports {base} to {})", base + 3)),
        "{message}"
    );
    // The IdP's port (PORT+1) counts too.
    demo_refused(base, base + 1).await;
}
