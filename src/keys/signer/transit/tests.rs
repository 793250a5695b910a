use std::time::Duration;

use http::StatusCode;

use super::circuit::CircuitSettings;
use super::endpoint::{base_address, segment};
use super::*;

#[test]
fn addresses() {
    for (given, want) in [
        ("http://127.0.0.1:8200", Some("http://127.0.0.1:8200")),
        (
            "https://vault.example:8200/",
            Some("https://vault.example:8200"),
        ),
        ("http://127.0.0.1:8200/v1", None),
        ("ftp://vault", None),
        ("vault:8200", None),
        ("http://vault?x=1", None),
        ("", None),
    ] {
        assert_eq!(base_address(given).ok().as_deref(), want, "{given}");
    }
}

#[test]
fn names() {
    for (name, nested, ok) in [
        ("transit", true, true),
        ("team/transit", true, true),
        ("team/transit", false, false),
        ("../sys", true, false),
        ("a//b", true, false),
        ("key.v1-x_y", false, true),
        ("key?x", false, false),
        ("", false, false),
    ] {
        assert_eq!(segment(name, nested).is_ok(), ok, "{name}");
    }
}

#[test]
fn the_token_is_never_printed() {
    let token = TransitToken::new("  s.secret-token-value\n").unwrap();
    assert_eq!(format!("{token:?}"), "TransitToken(<redacted>)");
    assert!(token.0.is_sensitive());
    let settings = TransitSettings {
        address: "http://127.0.0.1:1".into(),
        mount: "transit".into(),
        key: "k".into(),
        token,
        tls: None,
        timeout: Duration::from_secs(1),
        key_version: None,
        circuit: CircuitSettings::default(),
    };
    assert!(!format!("{settings:?}").contains("secret-token-value"));
    assert!(TransitToken::new(" \n").is_err());
    assert!(TransitToken::new("bad\ntoken").is_err());
}

#[test]
fn error_kinds_and_what_they_say_about_availability() {
    let status = |code: u16| TransitError::Status {
        status: StatusCode::from_u16(code).unwrap(),
        errors: String::new(),
    };
    let connect = TransitError::Connect {
        address: "a".into(),
        reason: "refused".into(),
    };
    let cases: [(TransitError, &str, Option<bool>, bool); 6] = [
        (connect, "connect", Some(false), true),
        (
            TransitError::Timeout(Duration::from_secs(1)),
            "timeout",
            Some(false),
            false,
        ),
        (status(503), "status", Some(false), true),
        (status(400), "status", None, false),
        (
            TransitError::NotFound("/v1/t/sign/k".into()),
            "not_found",
            None,
            false,
        ),
        (TransitError::Mismatch(1), "mismatch", None, false),
    ];
    for (err, kind, available, retry) in cases {
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(err.availability(), available, "{err}");
        assert_eq!(err.retryable(), retry, "{err}");
    }
}
