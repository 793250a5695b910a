//! `resigner keys list --signing`, `keys rotate` and `keys revoke KID` (issue #14) against a
//! proxy with managed signing keys: the token from `RESIGNER_ADMIN_TOKEN`, `--if-match` with
//! the listed ETag (a stale one refused, nothing rotated), the API's JSON on stdout, and the
//! API's own message as the error when a revocation is not allowed.

use serde_json::Value;

use crate::cli::{TOKEN_ENV, resigner};
use crate::common::*;
use crate::managed_keys::kid_where;

const SK_TOKEN: &str = "test-cli-signing-token-0123456789";

#[tokio::test]
async fn rotate_revoke_and_list_the_managed_keys() {
    let f = Fixture::builder()
        .await
        .with_proxy(|proxy| {
            proxy
                .managed(resigner::jose::alg::Alg::ES256)
                .min_published_age("0s")
                .admin_token("signing", SK_TOKEN, &SIGNING_SCOPES)
        })
        .start()
        .await;
    let admin = f.admin_url("");
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        resigner(&args, "", &[(TOKEN_ENV, SK_TOKEN)]).await
    };
    let with = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--admin".to_string(), admin.clone()]);
        all
    };

    let listed = run(with(&["keys", "list", "--signing"])).await;
    listed.ok();
    let keys = listed.json();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let (current, next) = (kid_where(keys, "current"), kid_where(keys, "next"));
    assert!(
        listed.stderr.contains(&format!("{current} current")),
        "{}",
        listed.stderr
    );
    assert!(
        listed.stderr.contains("ETag: \"sk-1\""),
        "{}",
        listed.stderr
    );

    let stale = run(with(&["keys", "rotate", "--if-match", "sk-0"])).await;
    assert_eq!(stale.code, Some(1), "{}", stale.stderr);
    assert!(stale.stderr.contains("If-Match"), "{}", stale.stderr);

    let rotated = run(with(&["keys", "rotate", "--if-match", "sk-1"])).await;
    rotated.ok();
    let new_next = rotated.json()["kid"].as_str().unwrap().to_string();
    assert!(
        rotated.json()["cert"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert!(rotated.stderr.contains(&new_next), "{}", rotated.stderr);

    let refused = run(with(&["keys", "revoke", &next])).await;
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .contains("only a previous key can be revoked")
            && refused.stderr.contains("HTTP 409"),
        "{}",
        refused.stderr
    );
    let revoked = run(with(&["keys", "revoke", &current])).await;
    revoked.ok();
    assert_eq!(revoked.json()["kid"], current.as_str());

    let listed = run(with(&["keys", "list", "--signing"])).await;
    listed.ok();
    let keys: Value = listed.json();
    let keys = keys.as_array().unwrap();
    assert_eq!(kid_where(keys, "current"), next);
    assert_eq!(kid_where(keys, "next"), new_next);
    assert_eq!(kid_where(keys, "revoked"), current);
    assert!(
        listed.stderr.contains("ETag: \"sk-3\""),
        "{}",
        listed.stderr
    );
}
