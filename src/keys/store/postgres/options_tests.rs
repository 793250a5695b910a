//! Unit tests of the PostgreSQL settings: URL parameters, sslmode, password sources.

use super::*;

fn options(url: &str) -> PgOptions {
    PgOptions {
        env_password: None,
        ..PgOptions::new(url)
    }
}

fn refusal(options: &PgOptions) -> String {
    match Settings::from_options(options) {
        Ok(_) => panic!("{:?} was accepted", options.url),
        Err(err) => err.to_string(),
    }
}

#[test]
fn sslmode_values_map_to_libpq_semantics_and_unknown_ones_are_refused() {
    for (mode, expected) in [
        ("disable", SslMode::Disable),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
    ] {
        let url = format!("postgres://u@127.0.0.1:5432/db?sslmode={mode}");
        let settings = Settings::from_options(&options(&url)).unwrap();
        assert_eq!(settings.config.get_ssl_mode(), expected, "{mode}");
    }
    let default = Settings::from_options(&options("postgres://u@db.example/keys")).unwrap();
    assert_eq!(
        default.config.get_ssl_mode(),
        SslMode::Prefer,
        "libpq's default"
    );
    assert_eq!(default.location, "postgres://u@db.example:5432/keys");
    for mode in ["verify-ca", "verify-full"] {
        let err = refusal(&options(&format!("postgres://u@h/db?sslmode={mode}")));
        assert!(err.contains(mode) && err.contains("sslrootcert"), "{err}");
    }
    let system = "postgres://u@h/db?sslmode=verify-full&sslrootcert=system";
    let settings = Settings::from_options(&options(system)).unwrap();
    assert_eq!(settings.config.get_ssl_mode(), SslMode::Require);
    let err = refusal(&options("postgres://u@h/db?sslmode=allow"));
    assert!(err.contains("sslmode=allow is not supported"), "{err}");
    let err = refusal(&options("postgres://u@h/db?sslcert=/c.pem"));
    assert!(err.contains("sslcert is not supported"), "{err}");
    let err = refusal(&options("/var/lib/resigner/keys.json"));
    assert!(err.contains("not a postgres:// URL"), "{err}");
}

#[test]
fn a_missing_or_bad_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let mut opts = options("postgres://u@h/db?sslmode=verify-full");
    opts.ca_file = Some(missing.clone());
    assert!(refusal(&opts).contains("missing.pem"));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let url = format!(
        "postgres://u@h/db?sslmode=verify-ca&sslrootcert={}",
        garbage.display()
    );
    assert!(refusal(&options(&url)).contains("garbage.pem"));
    let mut both = options(&url);
    both.ca_file = Some(missing);
    assert!(refusal(&both).contains("two CA files"));
}

#[test]
fn the_password_comes_from_the_url_the_file_or_pgpassword_and_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "from-file\n").unwrap();

    let mut opts = options("postgres://u@h/db");
    opts.env_password = Some("from-env".into());
    let settings = Settings::from_options(&opts).unwrap();
    assert_eq!(settings.config.get_password(), Some(&b"from-env"[..]));

    opts.password_file = Some(file.clone());
    let settings = Settings::from_options(&opts).unwrap();
    assert_eq!(
        settings.config.get_password(),
        Some(&b"from-file"[..]),
        "the configured file wins over the environment"
    );

    let mut in_url = options("postgres://u:from-url@h/db");
    in_url.env_password = Some("from-env".into());
    let settings = Settings::from_options(&in_url).unwrap();
    assert_eq!(settings.config.get_password(), Some(&b"from-url"[..]));
    in_url.password_file = Some(file);
    let err = refusal(&in_url);
    assert!(err.contains("two passwords"), "{err}");

    std::fs::write(dir.path().join("empty"), "\n").unwrap();
    let mut empty = options("postgres://u@h/db");
    empty.password_file = Some(dir.path().join("empty"));
    assert!(refusal(&empty).contains("is empty"));

    let shown = format!(
        "{in_url:?} {}",
        Settings::from_options(&opts).unwrap().location
    );
    assert!(
        !shown.contains("from-url") && !shown.contains("from-env"),
        "{shown}"
    );
    assert!(
        !refusal(&options("postgres://u:s3cret@h/db?sslmode=bogus")).contains("s3cret"),
        "errors never echo the password"
    );
}

#[test]
fn urls_are_redacted_and_timeouts_reach_the_session() {
    assert_eq!(
        redact_url("postgres://u:pw@h:5/db?password=x"),
        "postgres://u:<redacted>@h:5/db"
    );
    assert_eq!(redact_url("postgresql://h/db"), "postgresql://h/db");
    let mut opts = options("postgres://u@h/db?options=-c%20search_path%3Dkeys");
    opts.statement_timeout = Duration::from_millis(1500);
    opts.connect_timeout = Duration::from_secs(2);
    let settings = Settings::from_options(&opts).unwrap();
    assert_eq!(
        settings.config.get_options(),
        Some("-c search_path=keys -c statement_timeout=1500")
    );
    assert_eq!(settings.connect_timeout, Duration::from_secs(2));
    let url_timeout = Settings::from_options(&options("postgres://u@h/db?connect_timeout=7"));
    assert_eq!(url_timeout.unwrap().connect_timeout, Duration::from_secs(7));
}
