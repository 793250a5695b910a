//! The key and token commands of the built binary: `keys generate`, `keys jwks`, `keys import`,
//! `keys list`, `keys delete` against an in-process proxy, and `token hash`. Each child runs
//! on the blocking pool so the test's current-thread runtime keeps serving the proxy.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;

pub const TOKEN_ENV: &str = "RESIGNER_ADMIN_TOKEN";

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs `resigner ARGS` with `stdin` and extra environment, off the async workers.
pub async fn resigner(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.to_string();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_resigner"))
            .args(&args)
            .env_remove(TOKEN_ENV)
            .env("RUST_LOG", "off")
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("resigner runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

/// Runs `resigner ARGS --admin ADMIN --token ADMIN_TOKEN`.
async fn with_admin(admin: &str, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--admin", admin, "--token", ADMIN_TOKEN]);
    resigner(&all, "", &[]).await
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

pub fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("not a JWKS: {jwks}"))
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn assert_public_only(text: &str) {
    for private in [
        "\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\"", "PRIVATE",
    ] {
        assert!(!text.contains(private), "{private} in {text}");
    }
}

/// The value of the `ETag: ...` line.
fn etag(text: &str) -> String {
    text.lines()
        .find_map(|line| {
            line.split_once("ETag: ")
                .map(|(_, tag)| tag.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no ETag in {text}"))
}

#[tokio::test]
async fn generate_jwks_import_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ec, rsa) = (path(d, "ec"), path(d, "rsa"));
    resigner(
        &["keys", "generate", "--alg", "ES256", "--out", &ec],
        "",
        &[],
    )
    .await
    .ok();
    resigner(
        &[
            "keys", "generate", "--alg", "PS256", "--out", &rsa, "--kid", "rsa-1",
        ],
        "",
        &[],
    )
    .await
    .ok();

    // The PEM and its .jwk.json give the same public JWKS.
    let from_pem = resigner(&["keys", "jwks", &format!("{ec}.pem")], "", &[]).await;
    let from_jwk = resigner(&["keys", "jwks", &format!("{ec}.jwk.json")], "", &[]).await;
    from_pem.ok();
    from_jwk.ok();
    assert_public_only(&from_pem.stdout);
    assert_public_only(&from_jwk.stdout);
    assert_eq!(from_pem.json(), from_jwk.json());
    let ec_kid = kids(&from_pem.json()).remove(0);
    let generated: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{ec}.jwk.json")).unwrap()).unwrap();
    assert_eq!(generated["kid"], ec_kid.as_str());
    assert_eq!(from_pem.json()["keys"][0]["alg"], "ES256");

    // RSA: RS256 unless --alg says otherwise; --kid for one file only.
    let rsa_pem = format!("{rsa}.pem");
    let rsa_jwk = format!("{rsa}.jwk.json");
    let inferred = resigner(&["keys", "jwks", &rsa_pem], "", &[]).await;
    assert_eq!(inferred.ok().json()["keys"][0]["alg"], "RS256");
    let overridden = resigner(
        &["keys", "jwks", &rsa_pem, "--alg", "PS256", "--kid", "rsa-1"],
        "",
        &[],
    )
    .await;
    assert_public_only(&overridden.ok().stdout);
    let from_rsa_jwk = resigner(&["keys", "jwks", &rsa_jwk], "", &[]).await;
    assert_eq!(overridden.json(), from_rsa_jwk.ok().json());
    let two_with_kid = resigner(&["keys", "jwks", &rsa_pem, &rsa_jwk, "--kid", "x"], "", &[]).await;
    assert_eq!(two_with_kid.code, Some(1));
    assert!(
        two_with_kid.stderr.contains("--kid"),
        "{}",
        two_with_kid.stderr
    );
    let wrong_alg = resigner(
        &["keys", "jwks", &format!("{ec}.pem"), "--alg", "PS256"],
        "",
        &[],
    )
    .await;
    assert_eq!(wrong_alg.code, Some(1));
    assert!(wrong_alg.stderr.contains("PS256"), "{}", wrong_alg.stderr);
    // A private JWK is refused, and its private member is not echoed.
    let mut private = generated.clone();
    private["d"] = Value::from("c2VjcmV0LXByaXZhdGUtbWF0ZXJpYWw");
    let private_path = path(d, "private.jwk.json");
    std::fs::write(&private_path, private.to_string()).unwrap();
    let refused = resigner(&["keys", "jwks", &private_path], "", &[]).await;
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("private key material"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("c2VjcmV0") && refused.stdout.is_empty());

    // Against a running proxy.
    let idp_key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&idp_key]).await;
    let proxy = ProxyBuilder::new(&idp).unpublished().start().await;
    proxy.ready().await;
    let admin = proxy.admin_url("");
    let none = with_admin(&admin, &["keys", "list"]).await;
    assert_eq!(none.ok().json()["keys"], Value::Array(vec![]));
    assert!(
        none.stderr.contains("no custom signing keys"),
        "{}",
        none.stderr
    );

    let imported = with_admin(&admin, &["keys", "import", &format!("{ec}.pem"), &rsa_jwk]).await;
    imported.ok();
    assert!(imported.stdout.contains(&ec_kid), "{}", imported.stdout);
    assert!(imported.stdout.contains("rsa-1"), "{}", imported.stdout);
    let first_etag = etag(&imported.stdout);
    assert!(first_etag.starts_with('"'), "{first_etag}");

    // `list` reads the token from the environment too.
    let listed = resigner(
        &["keys", "list", "--admin", &admin],
        "",
        &[(TOKEN_ENV, ADMIN_TOKEN)],
    )
    .await;
    assert_eq!(
        kids(&listed.ok().json()),
        vec![ec_kid.clone(), "rsa-1".to_string()]
    );
    assert_public_only(&listed.stdout);
    assert_eq!(etag(&listed.stderr), first_etag);

    // Replace the set, conditionally on the current ETag (given without its quotes).
    let unquoted = first_etag.trim_matches('"').to_string();
    let replaced = with_admin(
        &admin,
        &[
            "keys",
            "import",
            &format!("{ec}.jwk.json"),
            "--if-match",
            &unquoted,
        ],
    )
    .await;
    replaced.ok();
    let second_etag = etag(&replaced.stdout);
    assert_ne!(second_etag, first_etag);
    assert!(!replaced.stdout.contains("rsa-1"), "{}", replaced.stdout);

    // A stale ETag: exit 1 with the API's 412 message, nothing changed.
    let stale = with_admin(&admin, &["keys", "delete", "--if-match", &first_etag]).await;
    assert_eq!(stale.code, Some(1), "{}", stale.stderr);
    assert!(
        stale
            .stderr
            .contains("If-Match does not match the current ETag"),
        "{}",
        stale.stderr
    );
    assert!(stale.stderr.contains("412"), "{}", stale.stderr);
    let stale_import = with_admin(
        &admin,
        &["keys", "import", &rsa_jwk, "--if-match", &first_etag],
    )
    .await;
    assert_eq!(stale_import.code, Some(1));
    assert!(
        stale_import.stderr.contains("If-Match"),
        "{}",
        stale_import.stderr
    );
    let still = with_admin(&admin, &["keys", "list"]).await;
    assert_eq!(kids(&still.ok().json()), vec![ec_kid.clone()]);

    // A wrong token: exit 1 with the API's 401 message.
    let wrong = resigner(
        &[
            "keys",
            "list",
            "--admin",
            &admin,
            "--token",
            "not-the-token",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(wrong.code, Some(1));
    assert!(wrong.stderr.contains("Invalid token."), "{}", wrong.stderr);
    let missing = resigner(&["keys", "list", "--admin", &admin], "", &[]).await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains(TOKEN_ENV), "{}", missing.stderr);

    let deleted = with_admin(&admin, &["keys", "delete", "--if-match", &second_etag]).await;
    deleted.ok();
    let after = with_admin(&admin, &["keys", "list"]).await;
    assert_eq!(after.ok().json()["keys"], Value::Array(vec![]));
    assert!(
        after.stderr.contains("no custom signing keys"),
        "{}",
        after.stderr
    );
}

#[tokio::test]
async fn token_hash_matches_the_config_digest() {
    let hashed = resigner(&["token", "hash"], &format!("{ADMIN_TOKEN}\n"), &[]).await;
    assert_eq!(hashed.ok().stdout.trim(), sha256_hex(ADMIN_TOKEN));
    let bare = resigner(&["token", "hash"], ADMIN_TOKEN, &[]).await;
    assert_eq!(bare.ok().stdout, hashed.stdout);
    let empty = resigner(&["token", "hash"], "\n", &[]).await;
    assert_eq!(empty.code, Some(1));
    let spaced = resigner(&["token", "hash"], "two words\n", &[]).await;
    assert_eq!(spaced.code, Some(1), "{}", spaced.stdout);
}

#[tokio::test]
async fn config_options_have_help_text() {
    for command in [&["serve"][..], &["check"], &["token", "resign"]] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = resigner(&args, "", &[]).await;
        help.ok();
        // The option's line and the lines describing it, up to the next option.
        let described: String = help
            .stdout
            .lines()
            .skip_while(|line| !line.contains("--config <CONFIG>"))
            .skip(1)
            .take_while(|line| !line.trim_start().starts_with('-'))
            .collect();
        let line = help
            .stdout
            .lines()
            .find(|line| line.contains("--config <CONFIG>"))
            .unwrap_or_else(|| panic!("{command:?}: no --config in\n{}", help.stdout));
        let text = format!("{line} {described}");
        assert!(
            text.contains("config file"),
            "{command:?}: --config has no help text:\n{}",
            help.stdout
        );
    }
}
