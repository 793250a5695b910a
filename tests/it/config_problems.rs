//! A config with misspelt keys, values of the wrong type, a missing key and semantic mistakes
//! gets every problem reported in one run, each with its line: by `resigner check` (exit 1)
//! and by a hot reload, which keeps the running config and shows the same list in
//! `/admin/status`.

use resigner::reload::Reloader;

use crate::cli::resigner;
use crate::common::*;

/// The builder's config with two typos, a mistyped and a badly written duration, a missing
/// required key and two semantic mistakes.
fn broken(idp: &TestIdp) -> ProxyBuilder {
    ProxyBuilder::new(idp)
        .idp("leway = \"30s\"")
        .idp("refresh = 600")
        .idp("max_stale = \"1 fortnight\"")
        .idp("algorithms = [\"none\"]")
        .route("prefix = \"api\"\nupstream = \"http://127.0.0.1:9\"\naudience = \"https://api.test\"\nstrip_prefx = true")
        .route("prefix = \"/b\"\naudience = \"https://api.test\"")
}

/// Every problem of [`broken`], as "line N: field: text" with N found in `text`.
fn expected(text: &str) -> Vec<String> {
    let line = |start: &str, nth: usize| {
        let found = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(start));
        found.map(|(number, _)| number + 1).nth(nth).unwrap()
    };
    [
        (
            line("leway", 0),
            "idp.leway: unknown key; did you mean `leeway`?",
        ),
        (
            line("refresh", 0),
            "idp.refresh: expected a string like \"10m\", found integer 600",
        ),
        (
            line("max_stale", 0),
            "idp.max_stale: \"1 fortnight\" is not a duration",
        ),
        (
            line("algorithms", 0),
            "idp.algorithms: \"none\" is never accepted",
        ),
        (line("prefix", 0), "routes[0].prefix: must start with '/'"),
        (
            line("strip_prefx", 0),
            "routes[0].strip_prefx: unknown key; did you mean `strip_prefix`?",
        ),
        (
            line("[[routes]]", 1),
            "routes[1].upstream: is required (a URL string",
        ),
    ]
    .into_iter()
    .map(|(number, problem)| format!("line {number}: {problem}"))
    .collect()
}

fn assert_all_reported(problems: &[&str], text: &str) {
    let want = expected(text);
    for problem in &want {
        assert!(
            problems.iter().any(|p| p.starts_with(problem.as_str())),
            "missing {problem:?} in {problems:#?}"
        );
    }
    assert_eq!(problems.len(), want.len(), "{problems:#?}");
}

#[tokio::test]
async fn check_lists_unknown_mistyped_missing_and_semantic_problems_at_once() {
    let key = IdpKey::rs256("idp-1");
    let idp = TestIdp::start(&[&key]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = broken(&idp).write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let text = std::fs::read_to_string(&config).unwrap();

    let run = resigner(&["check", "--config", config.to_str().unwrap()], "", &[]).await;

    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("7 problem(s)"), "{}", run.stderr);
    let listed: Vec<&str> = run
        .stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    assert_all_reported(&listed, &text);
}

#[tokio::test]
async fn a_refused_reload_reports_every_problem_with_its_line() {
    let (proxy, _upstream, _token, idp) = proxy_with(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let broken_path = broken(&idp).write_config(dir.path(), "127.0.0.1:0", "127.0.0.1:0");
    let text = std::fs::read_to_string(&broken_path).unwrap();
    std::fs::write(&proxy.config_path, &text).unwrap();
    let reloader = Reloader::new(&proxy.config_path, proxy.running.state.clone());

    let problems = reloader.reload("test").unwrap_err();

    let problems: Vec<&str> = problems.iter().map(String::as_str).collect();
    assert_all_reported(&problems, &text);
    let status = get(&proxy.admin_url("/admin/status"), &[]).await.json();
    assert_eq!(status["reload"]["ok"], false);
    let shown: Vec<&str> = status["reload"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert_eq!(shown, problems, "the status shows the same list");
}
