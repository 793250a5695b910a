//! `keys jwks|import --config`: the configured signing keys are published under the kid and
//! alg the config gives them (a PEM alone only knows its thumbprint), and the warning of
//! `resigner serve` about an unpublished key names the exact command that fixes it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::cli::{Run, kids, resigner};
use crate::common::serve::{Serve, wait_for};
use crate::common::*;

const TOKEN_ENV: &str = "RESIGNER_ADMIN_TOKEN";

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// `resigner ARGS` with the management token in the environment.
async fn with_token(args: &[&str]) -> Run {
    resigner(args, "", &[(TOKEN_ENV, ADMIN_TOKEN)]).await
}

async fn run_owned(args: Vec<String>) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    with_token(&args).await
}

/// The kids stored at the admin listener `admin`, in order.
async fn stored_kids(admin: &str) -> Vec<String> {
    let listed = with_token(&["keys", "list", "--admin", admin]).await;
    kids(&serde_json::from_str(&listed.ok().stdout).unwrap())
}

/// An IdP, an upstream and a directory for key and config files.
async fn setup() -> (IdpKey, TestIdp, TestUpstream, tempfile::TempDir) {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    let upstream = TestUpstream::start().await;
    (key, idp, upstream, tempfile::tempdir().unwrap())
}

/// A config around `idp` whose signing key is the PEM `key_file` with kid `primary`.
fn config_with_kid(idp: &TestIdp, upstream: &TestUpstream, dir: &Path, key_file: &str) -> String {
    let (listen, admin) = (free_addr(), free_addr());
    let config = ProxyBuilder::new(idp)
        .api_route(upstream)
        .set("signing.keys.0", "path", key_file)
        .set("signing.keys.0", "kid", "primary")
        .write_config(dir, &listen, &admin);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("kid = \"primary\""), "{text}");
    config.display().to_string()
}

/// The command between backticks in the last "re-signing is paused" line of the log that
/// names one, once there are at least `count` such lines.
async fn import_command_in_log(log: &Path, count: usize) -> String {
    for _ in 0..400 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let commands: Vec<&str> = text
            .lines()
            .filter(|line| line.contains("re-signing is paused"))
            .filter_map(|line| line.split('`').nth(1))
            .collect();
        if commands.len() >= count {
            return commands[count - 1].to_string();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no import command in the log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test]
async fn the_serve_warning_names_the_command_that_publishes_the_configured_kid() {
    let (key, idp, upstream, dir) = setup().await;
    let d = dir.path();
    // Issue #10 item 4: a key generated without --kid, listed in the config as "primary".
    resigner(
        &[
            "keys",
            "generate",
            "--alg",
            "ES256",
            "--out",
            &path(d, "primary"),
        ],
        "",
        &[],
    )
    .await
    .ok();
    let config = config_with_kid(&idp, &upstream, d, "primary.pem");
    let parsed = resigner::load_config(Path::new(&config)).unwrap();
    let admin = format!("http://{}", parsed.admin_listen);
    let listen = format!("http://{}", parsed.server.listen);
    let log_path = d.join("serve.log");
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_resigner"))
            .args(["serve", "--config", "resigner.toml"])
            .current_dir(d)
            .env("RUST_LOG", "resigner=info")
            .env_remove(TOKEN_ENV)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("resigner serve starts"),
    );
    wait_for(&format!("{admin}/healthz"), 200).await;

    // The PEM alone publishes its thumbprint kid, which changes nothing ...
    let thumbprint =
        with_token(&["keys", "import", "--admin", &admin, &path(d, "primary.pem")]).await;
    thumbprint.ok();
    assert!(
        !thumbprint.stdout.contains("kid primary"),
        "{}",
        thumbprint.stdout
    );
    // ... and the warning after that import still names the command that fixes it.
    let command = import_command_in_log(&log_path, 2).await;
    assert_eq!(
        command,
        format!("resigner keys import --config {config} --admin {admin}"),
        "the log names the absolute config path and the bound admin listener"
    );
    let not_ready = get(&format!("{admin}/readyz"), &[]).await;
    assert_eq!(not_ready.status, 503);
    assert!(
        not_ready.json()["reason"]
            .as_str()
            .unwrap()
            .contains(&command),
        "{:?}",
        not_ready.body
    );

    // Run exactly that command, from another directory, with the token in the environment.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_resigner")).parent().unwrap();
    let path_var = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let fixed = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-c", &command])
            .current_dir("/")
            .env("PATH", path_var)
            .env(TOKEN_ENV, ADMIN_TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(fixed.status.success(), "{fixed:?}");
    wait_for(&format!("{admin}/readyz"), 200).await;
    assert_eq!(stored_kids(&admin).await, ["primary"]);

    let token = mint(&key, &claims(&idp.issuer, "https://api.test"));
    let reply = get_bearer(&format!("{listen}/api/orders"), &token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let forwarded = upstream.last().bearer();
    let claims = crate::proxy::verify_with_jwks_at(
        &format!("{listen}/.well-known/jwks.json"),
        "https://resigner.test/",
        &forwarded,
        jsonwebtoken::Algorithm::ES256,
        &["https://api.test"],
    )
    .await;
    assert_eq!(claims["sub"], "user-42");
    let header = jsonwebtoken::decode_header(&forwarded).unwrap();
    assert_eq!(header.kid.as_deref(), Some("primary"));
}

#[tokio::test]
async fn import_with_config_uses_configured_kids_and_keep_existing_merges() {
    let (_key, idp, upstream, dir) = setup().await;
    let d = dir.path();
    for name in ["primary", "next", "other"] {
        let out = path(d, name);
        resigner(&["keys", "generate", "--out", &out], "", &[])
            .await
            .ok();
    }
    // Two configured keys, "primary" (active) and "next".
    let config = config_with_kid(&idp, &upstream, d, "primary.pem");
    let mut doc: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    let signing = doc["signing"].as_table_mut().unwrap();
    signing.insert("active".into(), "primary".into());
    let next: toml::Table = "path = \"next.pem\"\nalg = \"ES256\"\nkid = \"next\""
        .parse()
        .unwrap();
    signing["keys"].as_array_mut().unwrap().push(next.into());
    std::fs::write(&config, toml::to_string(&doc).unwrap()).unwrap();
    let running = resigner::start(resigner::load_config(Path::new(&config)).unwrap())
        .await
        .expect("proxy starts");
    let admin = format!("http://{}", running.admin_addr);
    let thumbprint = |name: &str| -> String {
        let jwk: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(name)).unwrap()).unwrap();
        jwk["kid"].as_str().unwrap().to_string()
    };
    let other = thumbprint("other.jwk.json");

    // `keys jwks --config`: every configured key, under its configured kid and alg.
    let jwks = resigner(&["keys", "jwks", "--config", &config], "", &[]).await;
    let doc: Value = serde_json::from_str(&jwks.ok().stdout).unwrap();
    assert_eq!(kids(&doc), ["primary", "next"]);
    assert_eq!(
        (&doc["keys"][0]["alg"], &doc["keys"][1]["alg"]),
        (&"ES256".into(), &"ES256".into())
    );
    assert!(!jwks.stdout.contains("\"d\""), "{}", jwks.stdout);

    // A configured PEM gets its configured kid; a file not in the config keeps its own.
    let (primary_pem, next_jwk, other_pem) = (
        path(d, "primary.pem"),
        path(d, "next.jwk.json"),
        path(d, "other.pem"),
    );
    let import = |extra: Vec<&str>| {
        let mut args = vec!["keys", "import", "--admin", &admin, "--config", &config];
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    run_owned(import(vec![&primary_pem])).await.ok();
    assert_eq!(stored_kids(&admin).await, ["primary"]);
    // The .jwk.json of a configured key (it holds the thumbprint kid) is matched by its key
    // material; --keep-existing keeps "primary".
    run_owned(import(vec!["--keep-existing", &next_jwk, &other_pem]))
        .await
        .ok();
    assert_eq!(
        stored_kids(&admin).await,
        ["primary", "next", other.as_str()]
    );
    // Without FILE: exactly the configured keys, replacing the whole set.
    run_owned(import(vec![])).await.ok();
    assert_eq!(stored_kids(&admin).await, ["primary", "next"]);

    // --kid and --alg cannot contradict the config, and something must be named: usage errors.
    for bad in [
        vec![
            "keys", "import", "--admin", &admin, "--config", &config, "--kid", "x",
        ],
        vec![
            "keys",
            "jwks",
            "--config",
            &config,
            "--alg",
            "ES384",
            &primary_pem,
        ],
        vec!["keys", "import", "--admin", &admin],
    ] {
        let run = with_token(&bad).await;
        assert_eq!(run.code, Some(2), "{bad:?}: {}", run.stderr);
    }
    assert_eq!(stored_kids(&admin).await, ["primary", "next"]);
    running.shutdown(Duration::from_secs(5)).await;
}
