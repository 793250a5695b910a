//! Operator commands of the built binary: `check` (every problem with its line, exit 1),
//! `token inspect`, `token resign` (verified against a live test IdP, or `--no-verify`),
//! `completions`.

use crate::cli::resigner;
use crate::common::*;

#[tokio::test]
async fn check_reports_every_problem_with_its_line() {
    let servers = Fixture::builder().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |builder: &FixtureBuilder| {
        let config = builder.write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
        let text = std::fs::read_to_string(&config).unwrap();
        (config, text)
    };
    let (config, _) = write(&servers);
    let path = config.to_str().unwrap();
    let good = resigner(&["check", "--config", path], "", &[]).await;
    good.ok();
    assert!(good.stdout.contains("config OK"), "{}", good.stdout);

    let servers = servers
        .idp("algorithms", ["none", "HS256"])
        .idp("leeway", "10h");
    let (_, semantic) = write(&servers);
    let run = resigner(&["check", "--config", path], "", &[]).await;
    assert_eq!(run.code, Some(1));
    let line_of = |key: &str| semantic.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    let (algorithms_line, leeway_line) = (line_of("algorithms"), line_of("leeway"));
    assert!(
        run.stderr
            .contains(&format!("line {algorithms_line}: idp.algorithms: \"none\"")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "line {algorithms_line}: idp.algorithms: \"HS256\""
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("line {leeway_line}: idp.leeway")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("3 problem(s)"), "{}", run.stderr);

    write(&servers.set("signing", "max_ttl_typo", "5m"));
    let unknown = resigner(&["check", "--config", path], "", &[]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown.stderr.contains("max_ttl_typo") && unknown.stderr.contains("line"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn token_inspect_and_resign_dry_run() {
    let route = Route::new("/api")
        .claims("audience", "legacy")
        .claims("set", serde_json::json!({"tier": 3}));
    let servers = Fixture::builder().await.route(route);
    let dir = tempfile::tempdir().unwrap();
    let config = servers.write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let path = config.to_str().unwrap();
    let (upstream, token) = (&servers.upstream, servers.token());
    let expired = servers.mint(|claims| claims["exp"] = serde_json::json!(1));

    let inspected = resigner(&["token", "inspect", "-"], &format!("{token}\n"), &[]).await;
    inspected.ok();
    assert!(inspected.stdout.starts_with("NOT VERIFIED"));
    assert!(
        inspected.stdout.contains("\"kid\": \"idp-1\"") && inspected.stdout.contains("exp: 20")
    );
    assert!(
        inspected.stdout.contains("(in 59m") || inspected.stdout.contains("(in 1h"),
        "{}",
        inspected.stdout
    );

    let resigned = resigner(
        &[
            "token", "resign", "--config", path, "--route", "/api", &token,
        ],
        "",
        &[],
    )
    .await;
    resigned.ok();
    assert!(
        resigned.stdout.starts_with("verified against the IdP keys"),
        "{}",
        resigned.stdout
    );
    assert!(
        resigned.stdout.contains("\"tier\": 3") && resigned.stdout.contains("\"aud\": \"legacy\"")
    );
    let header = resigned
        .stdout
        .lines()
        .find(|l| l.starts_with("authorization: Bearer "))
        .expect("the forwarded header");
    let forwarded = header.trim_start_matches("authorization: Bearer ");
    assert_eq!(
        jsonwebtoken::decode_header(forwarded).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    assert_eq!(upstream.count(), 0, "a dry run forwards nothing");

    let rejected = resigner(
        &[
            "token", "resign", "--config", path, "--route", "/api", &expired,
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(rejected.code, Some(1));
    assert!(
        rejected
            .stderr
            .contains("would reject this token: token expired"),
        "{}",
        rejected.stderr
    );
    let unverified = resigner(
        &[
            "token",
            "resign",
            "--config",
            path,
            "--route",
            "/api",
            "--no-verify",
            &expired,
        ],
        "",
        &[],
    )
    .await;
    unverified.ok();
    assert!(unverified.stdout.starts_with("NOT VERIFIED"));
    let no_route = resigner(
        &[
            "token", "resign", "--config", path, "--route", "/nope", &token,
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(no_route.code, Some(1));
    assert!(
        no_route
            .stderr
            .contains("no route has prefix \"/nope\" (routes: /api)"),
        "{}",
        no_route.stderr
    );
}

#[tokio::test]
async fn completions_and_usage_errors() {
    let bash = resigner(&["completions", "bash"], "", &[]).await;
    bash.ok();
    assert!(bash.stdout.contains("_resigner()") && bash.stdout.contains("inspect"));
    let version = resigner(&["--version"], "", &[]).await;
    version.ok();
    assert!(version.stdout.starts_with("resigner "));
    let usage = resigner(&["serve", "--no-such-flag"], "", &[]).await;
    assert_eq!(usage.code, Some(2), "usage errors exit 2");
}
