//! README.md "Running it" stays true: the shell block after `<!-- running-it -->` runs with
//! bash exactly as written, with the built binary as `resigner` on `PATH`, in an empty
//! directory standing in for the repository root. Only its first lines (the reader's IdP
//! issuer, API URL, audience and access token) and its two listen addresses are replaced by
//! loopback stand-ins; a wrong flag, a missing step or a config the program refuses fails it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../../config/example.toml");

/// The marked block, without its fences.
fn running_it_block() -> String {
    let after = README
        .split("<!-- running-it -->")
        .nth(1)
        .expect("README.md has a <!-- running-it --> marker");
    let body = after
        .trim_start()
        .strip_prefix("```sh\n")
        .expect("a ```sh block follows the marker");
    let end = body.find("\n```").expect("the block is closed");
    format!("{}\n", &body[..end])
}

/// Gives the one line that assigns `name` the value `value` (its comment stays).
fn set_variable(script: &str, name: &str, value: &str) -> String {
    let prefix = format!("{name}=");
    let mut found = 0;
    let lines: Vec<String> = script
        .lines()
        .map(|line| match line.strip_prefix(&prefix) {
            Some(rest) => {
                found += 1;
                let comment = rest.find(" #").map_or("", |at| &rest[at..]);
                format!("{prefix}'{value}'{comment}")
            }
            None => line.to_string(),
        })
        .collect();
    assert_eq!(found, 1, "{name}= is assigned on {found} lines:\n{script}");
    lines.join("\n") + "\n"
}

/// Replaces every `from` (which must occur) with `to`.
fn replace_all(script: &str, from: &str, to: &str) -> String {
    assert!(script.contains(from), "{from} is not in:\n{script}");
    script.replace(from, to)
}

/// The bash process group running the block (its background `resigner serve` included),
/// terminated when dropped.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn running_it_runs_as_written() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    let (listen, admin) = (free_addr(), free_addr());
    let audience = "https://api.test";
    let access_token = mint(&key, &claims(&idp.issuer, audience));

    let mut script = running_it_block();
    for (name, value) in [
        ("IDP_ISSUER", idp.issuer.as_str()),
        ("API_URL", upstream.url.as_str()),
        ("API_AUDIENCE", audience),
        ("ACCESS_TOKEN", access_token.as_str()),
    ] {
        script = set_variable(&script, name, value);
    }
    script = replace_all(&script, "127.0.0.1:8080", &listen);
    script = replace_all(&script, "127.0.0.1:9090", &admin);

    let root = tempfile::tempdir().unwrap();
    let d = root.path();
    std::fs::create_dir(d.join("config")).unwrap();
    std::fs::write(d.join("running-it.sh"), &script).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_resigner")).parent().unwrap();
    let path_var = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let (out, err) = (d.join("stdout"), d.join("stderr"));
    let child = Command::new("bash")
        .args(["-euxo", "pipefail", "running-it.sh"])
        .current_dir(d)
        .env("PATH", path_var)
        .env_remove("RESIGNER_ADMIN_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let pid = child.id();
    let mut group = Group(child);
    let status = tokio::task::spawn_blocking(move || {
        let status = group.0.wait();
        (group, status)
    });
    let (group, status) = tokio::time::timeout(Duration::from_secs(120), status)
        .await
        .unwrap_or_else(|_| panic!("the block (bash pid {pid}) ran for over 2 minutes"))
        .unwrap();
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    let shown = format!("script:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(status.unwrap().success(), "{shown}");

    // The last command went through the proxy: 200, and the legacy API got a token signed
    // by the configured key, verifying against the published JWKS.
    assert!(stdout.contains("HTTP/1.1 200"), "{shown}");
    assert_eq!(upstream.count(), 1, "{shown}");
    let seen = upstream.last();
    assert!(seen.uri.ends_with("/orders/42"), "{}", seen.uri);
    let config = resigner::load_config(&d.join("config/resigner.toml")).unwrap();
    let forwarded = seen.bearer();
    let claims = crate::proxy::verify_with_jwks_at(
        &format!("http://{listen}/.well-known/jwks.json"),
        &config.signing.issuer,
        &forwarded,
        jsonwebtoken::Algorithm::ES256,
        &[audience],
    )
    .await;
    assert_eq!(claims["sub"], "user-42");
    // One kid throughout: the one config/example.toml makes active.
    let kid = jsonwebtoken::decode_header(&forwarded)
        .unwrap()
        .kid
        .unwrap();
    let example_active = EXAMPLE
        .lines()
        .find_map(|line| line.strip_prefix("active = "))
        .expect("config/example.toml names its active kid");
    assert_eq!(format!("\"{kid}\""), example_active, "{shown}");
    drop(group);
}
