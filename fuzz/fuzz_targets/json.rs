//! Fuzz target `json`: arbitrary bytes through `resigner::jose::json::parse_value`, the strict
//! parser every token header, payload and key import goes through, differentially against
//! plain serde_json: the strict parser accepts exactly what serde_json accepts minus
//! documents with a repeated member, and then yields the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resigner::jose::json::{self, JsonError};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let strict = json::parse_value(data);
    let plain = serde_json::from_slice::<Value>(data);
    match (strict, plain) {
        (Ok(strict), Ok(plain)) => assert_eq!(strict, plain),
        (Ok(value), Err(err)) => panic!("strict parser accepted {value:?}; serde_json: {err}"),
        (Err(JsonError::Duplicate(_)), Ok(_)) => {}
        (Err(err), Ok(value)) => panic!("strict parser refused ({err}) {value:?}"),
        // A duplicate may be seen before a later syntax error: refused either way.
        (Err(_), Err(_)) => {}
    }
});
