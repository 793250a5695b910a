//! Strict JSON for security decisions: a parser that rejects a repeated member name at any
//! depth. serde_json keeps the last of two equal names, so `{"aud":"a","aud":"b"}` would be
//! checked against one value and re-signed with another. RFC 7515 §4 and RFC 7519 §4 let a
//! parser either reject duplicates or keep the last; a re-signer must reject.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a document was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsonError {
    #[error("not valid JSON")]
    Syntax,
    #[error("member {0:?} appears more than once")]
    Duplicate(String),
    #[error("not a JSON object")]
    NotObject,
}

/// Parses `bytes` as a JSON object whose members (at every depth) are unique.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    match parse_value(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotObject),
    }
}

/// Parses any JSON value whose objects (at every depth) have unique members.
pub fn parse_value(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match Unique::deserialize(&mut de) {
        Ok(Unique(value)) => value,
        Err(err) => return Err(classify(err)),
    };
    de.end().map_err(|_| JsonError::Syntax)?;
    Ok(value)
}

const DUPLICATE_MARK: &str = "resigner-duplicate-member:";

fn classify(err: serde_json::Error) -> JsonError {
    let text = err.to_string();
    match text.find(DUPLICATE_MARK) {
        Some(at) => {
            let rest = &text[at + DUPLICATE_MARK.len()..];
            let name = rest.split(" at line").next().unwrap_or(rest);
            JsonError::Duplicate(name.to_string())
        }
        None => JsonError::Syntax,
    }
}

struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let Unique(value) = access.next_value()?;
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARK}{key}")));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_unique_members_and_keeps_types() {
        let map = parse_object(br#"{"a":1,"b":[true,null,{"c":"d"}],"e":1.5}"#).unwrap();
        assert_eq!(map["a"], Value::from(1));
        assert_eq!(map["b"][2]["c"], Value::from("d"));
        assert_eq!(map["e"], Value::from(1.5));
    }

    #[test]
    fn rejects_duplicates_at_any_depth() {
        assert_eq!(
            parse_object(br#"{"aud":"a","aud":"b"}"#),
            Err(JsonError::Duplicate("aud".into()))
        );
        assert_eq!(
            parse_object(br#"{"x":{"y":1,"y":2}}"#),
            Err(JsonError::Duplicate("y".into()))
        );
        assert_eq!(
            parse_object(br#"{"x":[{"k":1,"k":1}]}"#),
            Err(JsonError::Duplicate("k".into()))
        );
    }

    #[test]
    fn rejects_non_objects_and_trailing_garbage() {
        assert_eq!(parse_object(b"[1]"), Err(JsonError::NotObject));
        assert_eq!(parse_object(b"{} x"), Err(JsonError::Syntax));
        assert_eq!(parse_object(b"{"), Err(JsonError::Syntax));
    }
}
