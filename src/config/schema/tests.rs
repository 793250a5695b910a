//! The schema in `schema.rs` must say exactly what serde's `FileConfig` says: the same keys
//! (read from the derived `Deserialize` impls by walking them with a recording deserializer)
//! and, for every key, the same verdict on values of every TOML type. A field added to
//! `file.rs` without the schema, or the other way round, fails here.

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use toml::{Table, Value};

use super::*;
use crate::config::file::FileConfig;

/// A deserializer that hands every struct, list and option one plausible value, recording
/// the dotted path of each struct field it meets (list elements share their list's path).
struct Lister<'a> {
    path: String,
    out: &'a RefCell<BTreeSet<String>>,
}

impl Lister<'_> {
    fn child(&self, name: &str) -> Self {
        Lister {
            path: join(&self.path, name),
            out: self.out,
        }
    }
}

impl<'de> Deserializer<'de> for Lister<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("")
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(false)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(Element(Some(self)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Fields {
            lister: self,
            fields: &[],
            next: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        for field in fields {
            self.out.borrow_mut().insert(join(&self.path, field));
        }
        visitor.visit_map(Fields {
            lister: self,
            fields,
            next: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct tuple tuple_struct enum identifier ignored_any
    }
}

/// The one element of a list.
struct Element<'a>(Option<Lister<'a>>);

impl<'de> SeqAccess<'de> for Element<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .take()
            .map(|lister| seed.deserialize(lister))
            .transpose()
    }
}

/// Every field of a struct, each with a [`Lister`] for its value.
struct Fields<'a> {
    lister: Lister<'a>,
    fields: &'static [&'static str],
    next: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(field) = self.fields.get(self.next) else {
            return Ok(None);
        };
        let name: StrDeserializer<'_, Error> = field.into_deserializer();
        seed.deserialize(name).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = self.fields[self.next];
        self.next += 1;
        seed.deserialize(self.lister.child(field))
    }
}

/// Every key of the schema with its path, without list indices (`routes.claims.set`).
fn schema_keys(keys: &[Key], path: &str, out: &mut Vec<(String, Kind)>) {
    for key in keys {
        let field = join(path, key.name);
        if let Kind::Table(inner) | Kind::Tables(inner) | Kind::TableOrTables(inner) = key.kind {
            schema_keys(inner, &field, out);
        }
        out.push((field, key.kind));
    }
}

#[test]
fn the_schema_lists_exactly_the_fields_serde_knows() {
    let out = RefCell::new(BTreeSet::new());
    FileConfig::deserialize(Lister {
        path: String::new(),
        out: &out,
    })
    .expect("the lister satisfies every field");
    let mut keys = Vec::new();
    schema_keys(FILE, "", &mut keys);
    let listed: BTreeSet<String> = keys.into_iter().map(|(path, _)| path).collect();
    let known = out.into_inner();
    assert!(known.contains("routes.claims.set") && known.len() > 60);
    let unlisted: Vec<&String> = known.difference(&listed).collect();
    let not_fields: Vec<&String> = listed.difference(&known).collect();
    assert_eq!(
        unlisted,
        Vec::<&String>::new(),
        "fields missing from the schema"
    );
    assert_eq!(
        not_fields,
        Vec::<&String>::new(),
        "schema keys serde does not know"
    );
}

/// A value of `kind` that serde accepts, with every optional key present too.
fn sample(kind: Kind) -> Value {
    let text = |s: &str| Value::String(s.into());
    match kind {
        Kind::Text(_) | Kind::TextOrTexts => text("x"),
        Kind::Bool => Value::Boolean(true),
        Kind::Count => Value::Integer(1),
        Kind::Texts => Value::Array(vec![text("x")]),
        Kind::TextMap => Value::Table(Table::from_iter([("a".to_string(), text("b"))])),
        Kind::AnyTable => Value::Table(Table::from_iter([("a".to_string(), Value::Integer(1))])),
        Kind::Table(keys) => Value::Table(
            keys.iter()
                .map(|key| (key.name.to_string(), sample(key.kind)))
                .collect(),
        ),
        Kind::Tables(keys) | Kind::TableOrTables(keys) => {
            Value::Array(vec![sample(Kind::Table(keys))])
        }
    }
}

/// One value of each TOML type, and the edge cases of the kinds.
fn probes() -> Vec<Value> {
    let parsed: Table = r#"
        string = "x"
        integer = 5
        negative = -1
        float = 1.5
        boolean = true
        datetime = 1979-05-27T07:32:00Z
        empty_array = []
        strings = ["x"]
        integers = [1]
        empty_tables = [{}]
        tables = [{ a = "b" }]
        empty_table = {}
        string_table = { a = "b" }
        integer_table = { a = 1 }
        datetime_table = { a = 1979-05-27 }
    "#
    .parse()
    .expect("probes parse");
    parsed.into_iter().map(|(_, value)| value).collect()
}

/// The value at `path` (names; a list of tables is entered at its first element).
fn slot<'a>(table: &'a mut Table, path: &[&str]) -> &'a mut Value {
    let (last, parents) = path.split_last().expect("a path");
    let mut table = table;
    for name in parents {
        table = match table.get_mut(*name).expect("present in the sample") {
            Value::Table(inner) => inner,
            Value::Array(items) => items[0].as_table_mut().expect("a table"),
            other => panic!("{name}: {other}"),
        };
    }
    table.get_mut(*last).expect("present in the sample")
}

/// Whether the file as text passes serde's strict deserialize (the pre-schema behaviour),
/// after the one reshaping the schema does ([`normalize`]: `[idp]` to `[[idp]]`).
fn serde_accepts(table: &Table) -> bool {
    let mut table = table.clone();
    normalize(&mut table);
    let text = toml::to_string(&table).expect("serializes");
    toml::from_str::<FileConfig>(&text).is_ok()
}

#[test]
fn the_schema_accepts_exactly_the_values_serde_accepts() {
    let Value::Table(full) = sample(Kind::Table(FILE)) else {
        panic!("a table");
    };
    assert!(
        serde_accepts(&full),
        "every listed key, with its kind's sample"
    );
    assert_eq!(check(&mut full.clone()), Vec::<String>::new());
    let mut keys = Vec::new();
    schema_keys(FILE, "", &mut keys);
    for (path, kind) in &keys {
        let names: Vec<&str> = path.split('.').collect();
        for probe in probes() {
            let mut table = full.clone();
            *slot(&mut table, &names) = probe.clone();
            // serde also reads a struct from an array of its fields in order (`jwks =
            // ["5m"]`), and a TOML date-time as a one-entry table (`rename =
            // 1979-05-27`); the schema asks for the table a reader expects.
            let quirk = matches!(kind, Kind::Table(_) | Kind::TextMap | Kind::AnyTable)
                && (probe.is_array() || probe.is_datetime());
            let serde_ok = serde_accepts(&table) && !quirk;
            let found = check(&mut table);
            assert_eq!(
                found.is_empty(),
                serde_ok,
                "{path} = {probe}: serde accepts: {serde_ok}, schema: {found:?}"
            );
            assert!(serde_accepts(&table), "{path} = {probe}: left {table}");
        }
    }
}

/// Checks `text` and returns the problems and whether the strict deserialize accepts the rest.
fn checked(text: &str) -> (Vec<String>, bool) {
    let mut table: Table = text.parse().expect("valid TOML");
    let found = check(&mut table);
    (found, serde_accepts(&table))
}

#[test]
fn unknown_mistyped_and_missing_keys_are_all_reported() {
    let (found, clean) = checked(
        r#"
        [server]
        listen = 8080
        max_headers = -1
        [idp]
        leway = "30s"
        refresh = 600
        [[routes]]
        prefx = "/a"
        upstream = "http://u"
        strip_prefix = "yes"
        [routes.claims]
        rename = { a = 1 }
        [[routes]]
        [colour]
        "#,
    );
    let expected = [
        "server.listen: expected a string like \"127.0.0.1:8080\", found integer 8080",
        "server.max_headers: expected a whole number, 0 or more, found integer -1",
        "idp.leway: unknown key; did you mean `leeway`?",
        "idp.refresh: expected a string like \"10m\", found integer 600",
        "idp.issuer: is required (a URL string like \"https://idp.example.com/\")",
        "routes[0].claims.rename: expected a table of strings, found table { a = 1 }",
        "routes[0].prefx: unknown key; did you mean `prefix`?",
        "routes[0].strip_prefix: expected true or false, found string \"yes\"",
        "routes[0].prefix: is required (a string like \"/orders\")",
        "routes[1].prefix: is required (a string like \"/orders\")",
        "routes[1].upstream: is required (a URL string like \"http://orders.internal\")",
        "colour: unknown key (known here: server, admin, idp, signing, routes, cache, upstream, keys, jwks, token_exchange)",
        "signing: is required (a table [signing])",
    ];
    let mut found_sorted = found.clone();
    found_sorted.sort();
    let mut expected_sorted: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected_sorted.sort();
    assert_eq!(found_sorted, expected_sorted, "{found:#?}");
    assert!(clean, "what is left passes the strict deserialize");
}

#[test]
fn values_are_shown_short_and_whole_characters() {
    let long = format!("x = \"{}\"", "é".repeat(60));
    let table: Table = long.parse().unwrap();
    let shown = show(&table["x"]);
    assert!(
        shown.starts_with("string \"éé") && shown.ends_with('…'),
        "{shown}"
    );
    assert_eq!(shown.chars().count(), "string ".len() + 40 + 1);
}

#[test]
fn hints_find_typos_swaps_and_prefixes() {
    assert_eq!(distance("leway", "leeway"), 1);
    assert_eq!(distance("lewaey", "leeway"), 2);
    assert_eq!(distance("upstraem", "upstream"), 1, "a swap costs one");
    assert_eq!(distance("", "abc"), 3);
    assert_eq!(hint("leway", IDP), "; did you mean `leeway`?");
    assert_eq!(hint("refresh_mx", IDP), "; did you mean `refresh_max`?");
    assert_eq!(hint("max_ttl_typo", SIGNING), "; did you mean `max_ttl`?");
    assert_eq!(hint("workers_count", SERVER), "; did you mean `workers`?");
    assert_eq!(hint("kd", SIGNING_KEY), "; did you mean `kid`?");
    assert!(hint("zzz", SIGNING_KEY).starts_with(" (known here: path, pkcs11, transit, alg, kid"));
}

#[test]
fn semantic_problems_about_reported_fields_are_recognised() {
    let reported = vec![
        "idp.refresh_max: expected a string like \"10m\", found integer 5".to_string(),
        "signing: is required (a table [signing])".to_string(),
        "routes[0].prefix: is required (a string)".to_string(),
    ];
    let repeats = [
        "idp.refresh_max: must be at least 50ms",
        "idp.refresh_min: must not exceed idp.refresh_max",
        "signing.keys: at least one entry is required",
        "routes[0].prefix: must start with '/'",
    ];
    let new = [
        "routes[1].prefix: must start with '/'",
        "routes[0].prefixes: other",
        "idp.refresh: \"x\" is not a duration",
        "idp.leeway: mentions idp.refresh_maximum",
        "server.listen: about signing",
    ];
    for problem in repeats {
        assert!(follows_from(&reported, problem), "{problem}");
    }
    for problem in new {
        assert!(!follows_from(&reported, problem), "{problem}");
    }
}
