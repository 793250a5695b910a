//! Fuzz target `jwk_set`: arbitrary bytes as a management API PUT body, through
//! `resigner::keys::import::parse_body`. Besides "never panics": an accepted set holds 1 to
//! 10 keys with unique kids, none the IdP's, no private or unknown member survives, and the
//! stored JWKs validate again to the same keys (what a restart does with the store file).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use resigner::keys::import::{self, MAX_KEYS};
use serde_json::Value;

const PRIVATE: [&str; 9] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "x5u"];

fuzz_target!(|data: &[u8]| {
    let idp_kids = HashSet::from(["idp-kid".to_string()]);
    let Ok(keys) = import::parse_body(data, &idp_kids) else {
        return;
    };
    assert!((1..=MAX_KEYS).contains(&keys.len()));
    let kids: HashSet<&str> = keys.iter().map(|key| key.kid.as_str()).collect();
    assert_eq!(kids.len(), keys.len(), "duplicate kids accepted");
    assert!(!kids.contains("idp-kid"), "an IdP kid accepted");
    for key in &keys {
        assert_eq!(key.json["kid"], key.kid.as_str());
        for name in PRIVATE {
            assert!(!key.json.contains_key(name), "{name} stored");
        }
    }
    let stored: Vec<Value> = keys
        .iter()
        .map(|key| Value::Object(key.json.clone()))
        .collect();
    let again = import::validate_keys(&stored, &idp_kids).expect("stored set validates again");
    assert_eq!(again, keys, "stored set re-validates to different keys");
});
