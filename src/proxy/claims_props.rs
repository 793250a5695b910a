//! Property tests for [`map_claims`] (proptest, 256 cases each).
//!
//! For any mapping, even one config validation would refuse: `iss`, `aud`, `iat` and `exp`
//! are resigner's, and `exp` is never later than the incoming `exp` nor than now + max_ttl.
//! For mappings that went through the real config validation (rendered as a TOML config and
//! loaded with `parse_config`): validation accepts exactly what its documented rules allow;
//! `remove`d claims are absent; `set` values are present with their JSON types; renamed and
//! copied claims keep their values and types exactly; `nbf` is never forged; and no claim
//! appears from nowhere. Precedence, as documented in `config/example.toml`:
//! copy -> rename -> remove -> set -> iss, aud, iat, exp.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::map_claims;
use crate::config::{ClaimMapping, RESERVED, parse_config};
use crate::jose::alg::Alg;
use crate::keys::{SigningKey, pem};

/// The claims resigner writes itself, whatever the mapping says.
const OWNED: [&str; 4] = ["iss", "aud", "iat", "exp"];
const ISSUER: &str = "https://resigner.test/";
const ROUTE_AUDIENCE: &str = "api";

/// A small pool so that copy, rename, set and remove collide often; a few need TOML quoting.
fn plain_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "sub",
        "scope",
        "email",
        "roles",
        "a",
        "b",
        "c",
        "https://idp/roles",
        "x y\"q\\",
        "é",
    ])
    .prop_map(str::to_string)
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => plain_name(),
        1 => prop::sample::select(RESERVED.to_vec()).prop_map(str::to_string),
    ]
}

/// Any JSON value; `null` and integers above `i64::MAX` only when `toml_safe` is false
/// (TOML, and so a config `set`, has neither).
fn json_value(toml_safe: bool) -> BoxedStrategy<Value> {
    let mut leaves = vec![
        any::<bool>().prop_map(Value::from).boxed(),
        any::<i64>().prop_map(Value::from).boxed(),
        (-1e15f64..1e15).prop_map(Value::from).boxed(),
        "[a-z \"\\\\é]{0,6}".prop_map(Value::from).boxed(),
    ];
    if !toml_safe {
        leaves.push(Just(Value::Null).boxed());
        leaves.push(any::<u64>().prop_map(Value::from).boxed());
    }
    prop::strategy::Union::new(leaves)
        .prop_recursive(2, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,2}", inner, 0..3)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
        .boxed()
}

fn incoming() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(name(), json_value(false), 0..10)
        .prop_map(|map| map.into_iter().collect())
}

/// A mapping in the config file's shape: `rename` is a TOML table (unique sources).
#[derive(Debug, Clone)]
struct RawMapping {
    copy: Option<Vec<String>>,
    rename: BTreeMap<String, String>,
    set: Map<String, Value>,
    remove: Vec<String>,
}

fn raw_mapping() -> impl Strategy<Value = RawMapping> {
    (
        prop::option::of(prop::collection::vec(name(), 0..5)),
        prop::collection::btree_map(name(), name(), 0..3),
        prop::collection::btree_map(name(), json_value(true), 0..3),
        prop::collection::vec(name(), 0..3),
    )
        .prop_map(|(copy, rename, set, remove)| RawMapping {
            copy,
            rename,
            set: set.into_iter().collect(),
            remove,
        })
}

impl RawMapping {
    /// What the documented validation rules allow.
    fn allowed(&self) -> bool {
        let reserved = |name: &String| RESERVED.contains(&name.as_str());
        let mut targets: Vec<&String> = self.rename.values().collect();
        targets.sort();
        targets.dedup();
        !self.set.keys().any(reserved)
            && !self
                .rename
                .iter()
                .any(|(from, to)| reserved(from) || reserved(to))
            && !self
                .remove
                .iter()
                .any(|name| reserved(name) && name != "nbf")
            && targets.len() == self.rename.len()
    }

    /// The same mapping, unvalidated.
    fn unchecked(&self, audience: Value) -> ClaimMapping {
        ClaimMapping {
            audience,
            copy: self.copy.clone(),
            rename: self.rename.clone().into_iter().collect(),
            set: self.set.clone(),
            remove: self.remove.clone(),
        }
    }

    /// A complete config file with one route carrying this mapping.
    fn config_toml(&self) -> String {
        let mut claims = json!({ "rename": self.rename, "set": self.set, "remove": self.remove });
        if let Some(copy) = &self.copy {
            claims["copy"] = json!(copy);
        }
        let document = json!({
            "server": { "listen": "127.0.0.1:8080" },
            "idp": { "issuer": "https://idp.test/" },
            "signing": {
                "issuer": ISSUER,
                "keys": [{ "path": "signing.pem", "alg": "ES256" }],
            },
            "routes": [{
                "prefix": "/",
                "upstream": "http://127.0.0.1:9",
                "audience": ROUTE_AUDIENCE,
                "claims": claims,
            }],
        });
        toml::to_string(&document).expect("a JSON document without null renders as TOML")
    }
}

/// A directory holding `signing.pem`, for the configs above.
static BASE: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let der = SigningKey::generate_pkcs8(Alg::ES256).unwrap();
    std::fs::write(
        dir.path().join("signing.pem"),
        pem::encode(&der, "PRIVATE KEY"),
    )
    .unwrap();
    dir
});

/// Loads `raw` through the real config validation: `Some(mapping)` when it is accepted.
fn validated(raw: &RawMapping) -> Option<ClaimMapping> {
    let base: &Path = BASE.path();
    parse_config(&raw.config_toml(), base)
        .ok()
        .map(|config| config.routes[0].claims.clone())
}

/// `now`, `exp` and `max_ttl` near the edges as well as in the usual range.
fn instant() -> impl Strategy<Value = i64> {
    prop_oneof![
        0i64..4_000_000_000,
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>()
    ]
}

fn max_ttl() -> impl Strategy<Value = i64> {
    // `[signing] max_ttl` as seconds: a `Duration` of at most u64::MAX milliseconds.
    prop_oneof![0i64..100_000, Just((u64::MAX / 1_000) as i64)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn resigner_owns_iss_aud_iat_exp_for_any_mapping(
        incoming in incoming(),
        raw in raw_mapping(),
        audience in prop_oneof![
            Just(json!(ROUTE_AUDIENCE)),
            Just(json!(["x", "y"]))
        ],
        incoming_exp in instant(),
        now in instant(),
        ttl in max_ttl(),
    ) {
        let mapping = raw.unchecked(audience.clone());
        let out = map_claims(&incoming, incoming_exp, &mapping, ISSUER, ttl, now);
        prop_assert_eq!(&out["iss"], &json!(ISSUER));
        prop_assert_eq!(&out["aud"], &audience);
        prop_assert_eq!(&out["iat"], &json!(now));
        let exp = out["exp"].as_i64().expect("exp is an integer");
        prop_assert!(exp <= incoming_exp, "exp {} later than incoming {}", exp, incoming_exp);
        prop_assert!(exp <= now.saturating_add(ttl), "exp {} later than now + max_ttl", exp);
        prop_assert_eq!(exp, incoming_exp.min(now.saturating_add(ttl)));
    }

    #[test]
    fn validated_mappings_keep_values_types_and_names(
        incoming in incoming(),
        raw in raw_mapping(),
        now in 0i64..4_000_000_000,
    ) {
        let mapping = validated(&raw);
        prop_assert_eq!(mapping.is_some(), raw.allowed(), "validation of {:?}", raw);
        let Some(mapping) = mapping else { return Ok(()) };
        prop_assert_eq!(&mapping, &raw.unchecked(json!(ROUTE_AUDIENCE)));
        let out = map_claims(&incoming, now + 3_600, &mapping, ISSUER, 300, now);
        check_mapping(&incoming, &mapping, &out)?;
    }

    #[test]
    fn copy_all_keeps_every_claim_but_the_owned_ones(incoming in incoming()) {
        let mapping = RawMapping {
            copy: None,
            rename: BTreeMap::new(),
            set: Map::new(),
            remove: vec![],
        };
        let mapping = validated(&mapping).expect("the default mapping is valid");
        let out = map_claims(&incoming, 2_000, &mapping, ISSUER, 300, 1_000);
        for (name, value) in &incoming {
            if !OWNED.contains(&name.as_str()) {
                prop_assert_eq!(out.get(name), Some(value), "{} not copied as is", name);
            }
        }
        prop_assert_eq!(out.len(), incoming.keys().chain(OWNED.map(String::from).iter())
            .collect::<std::collections::BTreeSet<_>>().len());
    }
}

/// The per-claim rules for a validated mapping.
fn check_mapping(
    incoming: &Map<String, Value>,
    mapping: &ClaimMapping,
    out: &Map<String, Value>,
) -> Result<(), TestCaseError> {
    let set = |name: &str| mapping.set.contains_key(name);
    let removed = |name: &str| mapping.remove.iter().any(|r| r == name);
    let renamed_from = |name: &str| mapping.rename.iter().any(|(from, _)| from == name);
    let renamed_to = |name: &str| mapping.rename.iter().any(|(_, to)| to == name);
    let copied = |name: &str| {
        mapping
            .copy
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    };
    for (name, value) in &mapping.set {
        prop_assert_eq!(
            out.get(name),
            Some(value),
            "set {} missing or changed",
            name
        );
    }
    for name in &mapping.remove {
        if !set(name) {
            prop_assert!(!out.contains_key(name), "removed {} present", name);
        }
    }
    for (from, to) in &mapping.rename {
        if set(to) || removed(to) {
            continue;
        }
        if let Some(value) = incoming.get(from) {
            prop_assert_eq!(
                out.get(to),
                Some(value),
                "{} -> {} lost or changed",
                from,
                to
            );
        }
        if !set(from) && !renamed_to(from) {
            prop_assert!(!out.contains_key(from), "old name {} kept", from);
        }
    }
    for (name, value) in out {
        let name = name.as_str();
        if OWNED.contains(&name) || set(name) {
            continue;
        }
        let from_rename = mapping
            .rename
            .iter()
            .any(|(from, to)| to == name && incoming.contains_key(from));
        if !from_rename {
            // Copied (a rename target whose source is absent keeps its copied value).
            prop_assert!(
                copied(name) && !renamed_from(name),
                "{} appeared from nowhere",
                name
            );
            prop_assert_eq!(incoming.get(name), Some(value), "copied {} changed", name);
        }
        if name == "nbf" {
            prop_assert_eq!(incoming.get("nbf"), Some(value), "nbf forged");
        }
    }
    for (name, value) in incoming {
        let name = name.as_str();
        let untouched = !OWNED.contains(&name)
            && !renamed_from(name)
            && !renamed_to(name)
            && !removed(name)
            && !set(name);
        if untouched && copied(name) {
            prop_assert_eq!(out.get(name), Some(value), "copied {} missing", name);
        }
        if untouched && !copied(name) {
            prop_assert!(!out.contains_key(name), "{} not in copy but present", name);
        }
    }
    Ok(())
}

/// Found by `validated_mappings_keep_values_types_and_names`: with renames `c -> roles` and
/// `roles -> sub` (a mapping validation accepts), the claim renamed into `roles` was removed
/// again as the old name of the second rename, so the token lost it.
#[test]
fn chained_renames_keep_every_renamed_claim() {
    let incoming = json!({ "c": false, "roles": ["admin"] });
    let incoming = incoming.as_object().unwrap();
    let mapping = ClaimMapping {
        audience: json!(ROUTE_AUDIENCE),
        copy: None,
        rename: vec![("c".into(), "roles".into()), ("roles".into(), "sub".into())],
        set: Map::new(),
        remove: vec![],
    };
    let out = map_claims(incoming, 2_000, &mapping, ISSUER, 300, 1_000);
    assert_eq!(out.get("roles"), Some(&json!(false)));
    assert_eq!(out.get("sub"), Some(&json!(["admin"])));
    assert!(!out.contains_key("c"));
}
