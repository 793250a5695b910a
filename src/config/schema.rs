//! The keys the config file may hold, per table, and the first pass over a parsed file: every
//! unknown key (with a "did you mean" hint), every value of the wrong type and every missing
//! required key is reported, so `resigner check` lists them together with the semantic
//! problems instead of stopping at the first one as serde's strict deserialize does.
//!
//! [`check`] leaves a table the strict [`super::file::FileConfig`] deserialize accepts: a key
//! it reports is removed, or replaced by a stand-in when the file shape requires it. The
//! tests in `schema/tests.rs` keep this list equal to the fields serde knows.

use toml::{Table, Value};

/// What a key's value must be; mirrors the serde type of the field in `file.rs`.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A string; the text says which kind ("a string like \"10m\"").
    Text(&'static str),
    Bool,
    /// A non-negative integer (`usize`/`u64`).
    Count,
    Texts,
    TextOrTexts,
    /// A table whose values are strings (`claims.rename`).
    TextMap,
    /// A table of any values (`claims.set`).
    AnyTable,
    Table(&'static [Key]),
    Tables(&'static [Key]),
    /// One table or a list of them (`[idp]` or `[[idp]]`); [`normalize`] makes it a list.
    TableOrTables(&'static [Key]),
}

/// One key a table may hold.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn opt(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: false,
    }
}

const fn req(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        required: true,
    }
}

const TEXT: Kind = Kind::Text("a string");
const PATH: Kind = Kind::Text("a file path string");
const DURATION: Kind = Kind::Text("a string like \"10m\"");
const ADDRESS: Kind = Kind::Text("a string like \"127.0.0.1:8080\"");
const URL: Kind = Kind::Text("a URL string");

const SERVER: &[Key] = &[
    req("listen", ADDRESS),
    opt("header_read_timeout", DURATION),
    opt("tls_cert", PATH),
    opt("tls_key", PATH),
    opt("max_header_bytes", Kind::Count),
    opt("max_headers", Kind::Count),
    opt("body_read_timeout", DURATION),
    opt("max_connections", Kind::Count),
    opt("listen_backlog", Kind::Count),
    opt("drain_timeout", DURATION),
    opt("workers", Kind::Count),
    opt("scheduler", TEXT),
    opt("public_url", URL),
];

const STATIC_TOKEN: &[Key] = &[
    req("name", TEXT),
    req("sha256", TEXT),
    req("scopes", Kind::Texts),
];

const ADMIN: &[Key] = &[
    opt("listen", ADDRESS),
    opt("audience", TEXT),
    opt("tokens", Kind::Tables(STATIC_TOKEN)),
    opt("tls_cert", PATH),
    opt("tls_key", PATH),
    opt("issuers", Kind::Texts),
];

const IDP: &[Key] = &[
    opt("name", TEXT),
    req(
        "issuer",
        Kind::Text("a URL string like \"https://idp.example.com/\""),
    ),
    opt("jwks_uri", URL),
    opt("algorithms", Kind::Texts),
    opt("leeway", DURATION),
    opt("require_typ", TEXT),
    opt("refresh", DURATION),
    opt("refresh_min", DURATION),
    opt("refresh_max", DURATION),
    opt("unknown_kid_cooldown", DURATION),
    opt("max_stale", DURATION),
    opt("fetch_timeout", DURATION),
    opt("ca_file", PATH),
    opt("scope_claims", Kind::Texts),
    opt("introspection", Kind::Table(INTROSPECTION)),
];

const INTROSPECTION: &[Key] = &[
    req("endpoint", URL),
    req("client_id", TEXT),
    opt("client_secret_file", PATH),
    opt("client_secret_env", TEXT),
    opt("timeout", DURATION),
    opt("cache_max", DURATION),
    opt("negative_ttl", DURATION),
];

const PKCS11: &[Key] = &[
    req("module", PATH),
    req("token_label", TEXT),
    req("key_label", TEXT),
    opt("pin_file", PATH),
    opt("pin_env", TEXT),
];

const TRANSIT: &[Key] = &[
    req("address", URL),
    opt("mount", TEXT),
    req("key", TEXT),
    opt("token_file", PATH),
    opt("token_env", TEXT),
    opt("ca_file", PATH),
    opt("key_version", Kind::Count),
    opt("timeout", DURATION),
];

/// Exactly one of `path`, `pkcs11`, `transit` (checked by `validate::signing`).
const SIGNING_KEY: &[Key] = &[
    opt("path", PATH),
    opt("pkcs11", Kind::Table(PKCS11)),
    opt("transit", Kind::Table(TRANSIT)),
    req("alg", TEXT),
    opt("kid", TEXT),
];

const MANAGED_PKCS11: &[Key] = &[
    req("module", PATH),
    req("token_label", TEXT),
    opt("pin_file", PATH),
    opt("pin_env", TEXT),
];

const MANAGED_TRANSIT: &[Key] = &[
    req("address", TEXT),
    opt("mount", TEXT),
    opt("token_file", PATH),
    opt("token_env", TEXT),
    opt("ca_file", PATH),
    opt("timeout", DURATION),
];

/// Exactly one of `kek_file`, `kek_env`, `pkcs11`, `transit` (checked by `validate::managed`).
const MANAGED: &[Key] = &[
    req("alg", TEXT),
    opt("kek_file", PATH),
    opt("kek_env", TEXT),
    opt("pkcs11", Kind::Table(MANAGED_PKCS11)),
    opt("transit", Kind::Table(MANAGED_TRANSIT)),
    opt("rotate_every", DURATION),
    opt("keep_previous", Kind::Count),
];

const SIGNING: &[Key] = &[
    req(
        "issuer",
        Kind::Text("a URL string like \"https://auth.example.com/\""),
    ),
    opt("max_ttl", DURATION),
    opt("min_published_age", DURATION),
    opt("active", TEXT),
    opt("keys", Kind::Tables(SIGNING_KEY)),
    opt("managed", Kind::Table(MANAGED)),
];

const CLAIMS: &[Key] = &[
    opt("audience", Kind::TextOrTexts),
    opt("copy", Kind::Texts),
    opt("rename", Kind::TextMap),
    opt("set", Kind::AnyTable),
    opt("remove", Kind::Texts),
];

const ROUTE: &[Key] = &[
    req("prefix", Kind::Text("a string like \"/orders\"")),
    req(
        "upstream",
        Kind::Text("a URL string like \"http://orders.internal\""),
    ),
    opt("mode", TEXT),
    opt("audience", TEXT),
    opt("strip_prefix", Kind::Bool),
    opt("header", TEXT),
    opt("timeout", DURATION),
    opt("ca_file", PATH),
    opt("client_cert", PATH),
    opt("client_key", PATH),
    opt("claims", Kind::Table(CLAIMS)),
    opt("required_scopes", Kind::Texts),
    opt("issuers", Kind::Texts),
    opt("require", Kind::Tables(REQUIRE)),
];

/// Exactly one of `equals`, `one_of`, `contains` (checked by `validate::routes`).
const REQUIRE: &[Key] = &[
    req("claim", TEXT),
    opt("equals", TEXT),
    opt("one_of", Kind::Texts),
    opt("contains", TEXT),
    opt("methods", Kind::Texts),
];

const CACHE: &[Key] = &[
    opt("max_bytes", Kind::Count),
    opt("max_entries", Kind::Count),
];

const UPSTREAM: &[Key] = &[
    opt("connect_timeout", DURATION),
    opt("timeout", DURATION),
    opt("pool_idle_timeout", DURATION),
];

const KEYS: &[Key] = &[
    opt("store", Kind::Text("a file path or postgres:// URL string")),
    opt("store_password_file", PATH),
    opt("cache", PATH),
    opt("poll_interval", DURATION),
];

const JWKS: &[Key] = &[opt("max_age", DURATION)];

const EXCHANGE_CLIENT: &[Key] = &[
    req("client_id", TEXT),
    req("secret_sha256", TEXT),
    opt("routes", Kind::Texts),
];

const TOKEN_EXCHANGE: &[Key] = &[opt("clients", Kind::Tables(EXCHANGE_CLIENT))];

/// The whole file: the top-level tables.
pub const FILE: &[Key] = &[
    req("server", Kind::Table(SERVER)),
    opt("admin", Kind::Table(ADMIN)),
    req("idp", Kind::TableOrTables(IDP)),
    req("signing", Kind::Table(SIGNING)),
    opt("routes", Kind::Tables(ROUTE)),
    opt("cache", Kind::Table(CACHE)),
    opt("upstream", Kind::Table(UPSTREAM)),
    opt("keys", Kind::Table(KEYS)),
    opt("jwks", Kind::Table(JWKS)),
    opt("token_exchange", Kind::Table(TOKEN_EXCHANGE)),
];

/// Checks `table` against [`FILE`]; returns every problem as "field: message" and leaves
/// only keys of the right type, with stand-ins for required ones that were missing or wrong.
pub fn check(table: &mut Table) -> Vec<String> {
    let mut found = Vec::new();
    walk(table, FILE, "", &mut found);
    normalize(table);
    found
}

/// Turns every [`Kind::TableOrTables`] key holding one table into a list of that table, the
/// shape `FileConfig` reads (`[idp]` becomes `[[idp]]`).
pub fn normalize(table: &mut Table) {
    for key in FILE {
        if let Kind::TableOrTables(_) = key.kind
            && let Some(value) = table.get_mut(key.name)
            && value.is_table()
        {
            let single = std::mem::replace(value, Value::Array(Vec::new()));
            *value = Value::Array(vec![single]);
        }
    }
}

fn walk(table: &mut Table, keys: &[Key], path: &str, found: &mut Vec<String>) {
    table.retain(|name, value| {
        let field = join(path, name);
        let Some(key) = keys.iter().find(|key| key.name == name) else {
            found.push(format!("{field}: unknown key{}", hint(name, keys)));
            return false;
        };
        if !fits(key.kind, value) {
            found.push(format!(
                "{field}: expected {}, found {}",
                describe(key.kind, &field),
                show(value)
            ));
            if !key.required {
                return false;
            }
            *value = stand_in(key.kind);
        }
        match (key.kind, value) {
            (Kind::Table(inner) | Kind::TableOrTables(inner), Value::Table(sub)) => {
                walk(sub, inner, &field, found)
            }
            (Kind::Tables(inner) | Kind::TableOrTables(inner), Value::Array(items)) => {
                // One `[[idp]]` is named `idp.<key>`, as validation names it.
                let single = matches!(key.kind, Kind::TableOrTables(_)) && items.len() == 1;
                for (index, item) in items.iter_mut().enumerate() {
                    if let Value::Table(sub) = item {
                        let path = match single {
                            true => field.clone(),
                            false => format!("{field}[{index}]"),
                        };
                        walk(sub, inner, &path, found);
                    }
                }
            }
            _ => {}
        }
        true
    });
    for key in keys.iter().filter(|key| key.required) {
        if !table.contains_key(key.name) {
            let field = join(path, key.name);
            found.push(format!(
                "{field}: is required ({})",
                describe(key.kind, &field)
            ));
            table.insert(key.name.to_string(), stand_in(key.kind));
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn fits(kind: Kind, value: &Value) -> bool {
    let all_text = |items: &[Value]| items.iter().all(Value::is_str);
    match (kind, value) {
        (Kind::Text(_), Value::String(_)) | (Kind::Bool, Value::Boolean(_)) => true,
        (Kind::Count, Value::Integer(number)) => *number >= 0,
        (Kind::Texts | Kind::TextOrTexts, Value::Array(items)) => all_text(items),
        (Kind::TextOrTexts, Value::String(_)) => true,
        (Kind::TextMap, Value::Table(table)) => table.values().all(Value::is_str),
        (Kind::AnyTable | Kind::Table(_), Value::Table(_)) => true,
        (Kind::Tables(_) | Kind::TableOrTables(_), Value::Array(items)) => {
            items.iter().all(Value::is_table)
        }
        (Kind::TableOrTables(_), Value::Table(_)) => true,
        _ => false,
    }
}

/// What `kind` expects, for messages; `field` names the table for `[[...]]` arrays.
fn describe(kind: Kind, field: &str) -> String {
    match kind {
        Kind::Text(text) => text.to_string(),
        Kind::Bool => "true or false".into(),
        Kind::Count => "a whole number, 0 or more".into(),
        Kind::Texts => "a list of strings".into(),
        Kind::TextOrTexts => "a string or a list of strings".into(),
        Kind::TextMap => "a table of strings".into(),
        Kind::AnyTable => "a table".into(),
        Kind::Table(_) => format!("a table [{field}]"),
        Kind::Tables(_) => format!("[[{field}]] tables"),
        Kind::TableOrTables(_) => format!("a table [{field}] or [[{field}]] tables"),
    }
}

/// A value of `kind` the strict deserialize accepts, holding stand-ins for its required keys.
fn stand_in(kind: Kind) -> Value {
    match kind {
        Kind::Text(_) | Kind::TextOrTexts => Value::String(String::new()),
        Kind::Bool => Value::Boolean(false),
        Kind::Count => Value::Integer(0),
        Kind::Texts | Kind::Tables(_) => Value::Array(Vec::new()),
        Kind::TextMap | Kind::AnyTable => Value::Table(Table::new()),
        Kind::Table(keys) | Kind::TableOrTables(keys) => Value::Table(
            keys.iter()
                .filter(|key| key.required)
                .map(|key| (key.name.to_string(), stand_in(key.kind)))
                .collect(),
        ),
    }
}

/// "integer 600", "string \"10 minutes\"": the type and (shortened) value found.
fn show(value: &Value) -> String {
    const LONGEST: usize = 40;
    let text = match value {
        Value::String(text) => format!("{text:?}"),
        other => other.to_string(),
    };
    let short: String = text.chars().take(LONGEST).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!("{} {short}{ellipsis}", value.type_str())
}

/// "; did you mean `leeway`?" for the closest known key, else the keys this table takes.
fn hint(name: &str, keys: &[Key]) -> String {
    let limit = if name.chars().count() <= 3 { 1 } else { 2 };
    let close = keys
        .iter()
        .map(|key| (distance(name, key.name), key.name))
        .filter(|(distance, known)| {
            *distance <= limit
                || (name.len() >= 3 && (known.starts_with(name) || name.starts_with(known)))
        })
        .min_by_key(|(distance, _)| *distance);
    match close {
        Some((_, known)) => format!("; did you mean `{known}`?"),
        None => {
            let known: Vec<&str> = keys.iter().map(|key| key.name).collect();
            format!(" (known here: {})", known.join(", "))
        }
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// two neighbouring characters each cost 1 ("leway" and "leewya" are 1 from "leeway").
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// Whether a later (semantic) problem only repeats one [`check`] reported: it is about a
/// reported field or something inside it, or its message names a reported key (a check
/// between two settings, one of which was unreadable and fell back to its default).
pub fn follows_from(reported: &[String], problem: &str) -> bool {
    let (field, message) = problem.split_once(": ").unwrap_or((problem, ""));
    reported.iter().any(|earlier| {
        let earlier = earlier.split(": ").next().unwrap_or_default();
        let inside = field
            .strip_prefix(earlier)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['));
        inside || (earlier.contains('.') && names(message, earlier))
    })
}

/// `text` contains `key` as a whole key path ("idp.refresh" is not in "idp.refresh_max").
fn names(text: &str, key: &str) -> bool {
    let is_key_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(key).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + key.len()..].chars().next();
        !before.is_some_and(|c| is_key_char(c) || c == '.') && !after.is_some_and(is_key_char)
    })
}

#[cfg(test)]
mod tests;
