//! The proxy's config file as a TOML document that the test builders set by key and render
//! once with `toml::to_string`, so no test assembles or patches config text. Sections come
//! out in the order of `config/example.toml`; keys within a section in name order.

use serde::Serialize;
use serde::ser::SerializeMap;
use toml::{Table, Value};

/// The order sections are written in; any other section follows them.
const SECTIONS: [&str; 6] = ["server", "keys", "admin", "idp", "signing", "routes"];

/// A config document: tables of keys, arrays of tables for `[[routes]]` and the like.
#[derive(Clone, Debug)]
pub struct ConfigDoc {
    /// Always a table.
    root: Value,
}

/// Any serde value as TOML (`20`, `"5m"`, `["RS256"]`, a path, a `json!` object).
pub fn value(value: impl Serialize) -> Value {
    Value::try_from(value).unwrap_or_else(|e| panic!("not a TOML value: {e}"))
}

/// A table from any serde map (`json!({"path": "signing.pem", "alg": "ES256"})`).
pub fn table(map: impl Serialize) -> Table {
    match value(map) {
        Value::Table(table) => table,
        other => panic!("a {} is not a table", other.type_str()),
    }
}

impl Default for ConfigDoc {
    fn default() -> Self {
        ConfigDoc {
            root: Value::Table(Table::new()),
        }
    }
}

impl ConfigDoc {
    /// Sets `key` in the table at `path`: a section (`"server"`) or a dotted path through
    /// tables and array indexes (`"routes.0.claims.set"`); missing tables are created.
    pub fn set(&mut self, path: &str, key: &str, to: impl Serialize) {
        self.table(path).insert(key.to_string(), value(to));
    }

    /// Removes `key` from the table at `path`, if it is there.
    pub fn remove(&mut self, path: &str, key: &str) {
        self.table(path).remove(key);
    }

    /// Appends `table` to the array of tables `key` in the table at `path` (`""` is the
    /// document): `push("", "routes", route)`, `push("admin", "tokens", token)`.
    pub fn push(&mut self, path: &str, key: &str, table: Table) {
        let slot = self
            .table(path)
            .entry(key.to_string())
            .or_insert_with(|| Value::Array(vec![]));
        match slot {
            Value::Array(items) => items.push(Value::Table(table)),
            other => panic!("{path}.{key} is a {}, not an array", other.type_str()),
        }
    }

    /// Appends `table` to `key` in the table at `path` as an array of tables, turning a table
    /// already there into the array's first item: `[idp]` becomes `[[idp]]`.
    pub fn push_item(&mut self, path: &str, key: &str, table: Table) {
        let parent = self.table(path);
        if let Some(Value::Table(_)) = parent.get(key) {
            let single = parent.remove(key).expect("present");
            parent.insert(key.to_string(), Value::Array(vec![single]));
        }
        self.push(path, key, table);
    }

    /// Parses `text` as TOML under the table header `header` (`"[server]"`, `"[[routes]]"`)
    /// and merges it in: tables key by key, arrays of tables appended, values replaced. For
    /// builders that take a line of TOML (`max_headers = 20`).
    pub fn merge(&mut self, header: &str, text: &str) {
        let parsed: Table = format!("{header}\n{text}\n")
            .parse()
            .unwrap_or_else(|e| panic!("not TOML under {header}: {e}\n{text}"));
        merge_into(self.table(""), parsed);
    }

    /// The document as TOML text.
    pub fn render(&self) -> String {
        let root = self.root.as_table().expect("the root is a table");
        toml::to_string(&Ordered(root)).unwrap_or_else(|e| panic!("render config: {e}"))
    }

    fn table(&mut self, path: &str) -> &mut Table {
        let mut cursor = &mut self.root;
        for step in path.split('.').filter(|step| !step.is_empty()) {
            cursor = match cursor {
                Value::Table(table) => table
                    .entry(step.to_string())
                    .or_insert_with(|| Value::Table(Table::new())),
                Value::Array(items) => step
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| items.get_mut(index))
                    .unwrap_or_else(|| panic!("{path}: no item {step}")),
                other => panic!("{path}: {step} is inside a {}", other.type_str()),
            };
        }
        match cursor {
            Value::Table(table) => table,
            other => panic!("{path} is a {}, not a table", other.type_str()),
        }
    }
}

fn merge_into(into: &mut Table, from: Table) {
    for (key, new) in from {
        match (into.get_mut(&key), new) {
            (Some(Value::Table(old)), Value::Table(new)) => merge_into(old, new),
            (Some(Value::Array(old)), Value::Array(new)) if new.iter().all(Value::is_table) => {
                old.extend(new)
            }
            (_, new) => {
                into.insert(key, new);
            }
        }
    }
}

/// The root table with its sections in [`SECTIONS`] order.
struct Ordered<'a>(&'a Table);

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        let known = SECTIONS
            .iter()
            .filter_map(|name| self.0.get_key_value(*name));
        let others = self
            .0
            .iter()
            .filter(|(name, _)| !SECTIONS.contains(&name.as_str()));
        for (name, section) in known.chain(others) {
            map.serialize_entry(name, section)?;
        }
        map.end()
    }
}

/// A `[[routes]]` table built by key: `Route::new("/v1").set("header", "X-Legacy-Token")`.
#[derive(Clone, Debug)]
pub struct Route(Table);

impl Route {
    /// A route for `prefix` with audience `https://api.test` (a [`crate::common::Fixture`]
    /// points it at its upstream unless [`Route::upstream`] says otherwise).
    pub fn new(prefix: &str) -> Route {
        Route(Table::new())
            .set("prefix", prefix)
            .set("audience", crate::common::AUDIENCE)
    }

    /// The usual route: `/api`, prefix stripped.
    pub fn api() -> Route {
        Route::new("/api").set("strip_prefix", true)
    }

    /// Sets a key of the route (`timeout`, `mode`, `header`, `ca_file`, ...).
    pub fn set(mut self, key: &str, to: impl Serialize) -> Route {
        self.0.insert(key.to_string(), value(to));
        self
    }

    /// Leaves a key out (a route without `audience`).
    pub fn without(mut self, key: &str) -> Route {
        self.0.remove(key);
        self
    }

    /// The upstream URL; a path alone (`"/legacy"`) is a base path on the fixture's upstream.
    pub fn upstream(self, url: impl std::fmt::Display) -> Route {
        self.set("upstream", url.to_string())
    }

    /// Sets a key of `[routes.claims]` (`copy`, `rename`, `set`, `remove`, `audience`).
    pub fn claims(mut self, key: &str, to: impl Serialize) -> Route {
        let claims = self
            .0
            .entry("claims")
            .or_insert_with(|| Value::Table(Table::new()));
        match claims {
            Value::Table(claims) => claims.insert(key.to_string(), value(to)),
            other => panic!("claims is a {}, not a table", other.type_str()),
        };
        self
    }

    /// Points the route at `base` unless it names its own upstream host.
    pub fn on(self, base: &str) -> Route {
        match self.0.get("upstream").and_then(Value::as_str) {
            None => self.upstream(base),
            Some(path) if path.starts_with('/') => {
                let url = format!("{base}{path}");
                self.upstream(url)
            }
            Some(_) => self,
        }
    }

    pub fn into_table(self) -> Table {
        self.0
    }
}
