//! Line numbers for validation problems: finds where a field path such as
//! `routes[1].claims.set` or `idp.algorithms` is written in the TOML text, so `resigner
//! check` and reload errors can say "line 42: ...". A small scanner of table headers and
//! keys is enough: the file already parsed, so only its layout matters here.

/// The 1-based line of `field` in `text`: the key's own line, else its table's header.
pub fn locate(text: &str, field: &str) -> Option<usize> {
    let target: Vec<(String, Option<usize>)> = field.split('.').map(segment).collect();
    let (key, table) = target.split_last()?;
    let mut context: Vec<(String, Option<usize>)> = Vec::new();
    let mut array_counts: std::collections::HashMap<String, usize> = Default::default();
    let mut table_line = None;
    let mut whole_line = None;
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            let names: Vec<&str> = header.split('.').map(str::trim).collect();
            let joined = names.join(".");
            let count = array_counts
                .entry(joined)
                .and_modify(|c| *c += 1)
                .or_insert(0);
            context = with_indices(&names, &context, Some(*count));
        } else if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            let names: Vec<&str> = header.split('.').map(str::trim).collect();
            context = with_indices(&names, &context, None);
        } else if let Some((name, _)) = line.split_once('=') {
            let name = name.trim().trim_matches('"');
            if matches(&context, table) && name == key.0 {
                return Some(number + 1);
            }
            continue;
        } else {
            continue;
        }
        if table_line.is_none() && matches(&context, table) {
            table_line = Some(number + 1);
        }
        if whole_line.is_none() && matches(&context, &target) {
            whole_line = Some(number + 1);
        }
    }
    whole_line.or(table_line)
}

/// `routes[1]` -> ("routes", Some(1)).
fn segment(text: &str) -> (String, Option<usize>) {
    match text.split_once('[') {
        Some((name, rest)) => (name.to_string(), rest.trim_end_matches(']').parse().ok()),
        None => (text.to_string(), None),
    }
}

/// The new header's path, carrying array indices over from the enclosing context; the last
/// name gets `last_index` (for `[[...]]` headers).
fn with_indices(
    names: &[&str],
    context: &[(String, Option<usize>)],
    last_index: Option<usize>,
) -> Vec<(String, Option<usize>)> {
    let mut out = Vec::with_capacity(names.len());
    for (position, name) in names.iter().enumerate() {
        let index = if position + 1 == names.len() {
            last_index
        } else {
            context
                .get(position)
                .filter(|(n, _)| n == name)
                .and_then(|(_, i)| *i)
        };
        out.push((name.to_string(), index));
    }
    out
}

fn matches(context: &[(String, Option<usize>)], target: &[(String, Option<usize>)]) -> bool {
    context.len() == target.len()
        && context
            .iter()
            .zip(target)
            .all(|((name, index), (want, want_index))| {
                name == want && (want_index.is_none() || index == want_index)
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"[server]
listen = "x"

[idp]
issuer = "i"
algorithms = ["none"]

[[routes]]
prefix = "/a"

[[routes]]
prefix = "b"
upstream = "u"
[routes.claims]
set = { exp = 1 }

[cache]
max_bytes = 0
"#;

    #[test]
    fn finds_keys_tables_and_array_elements() {
        assert_eq!(locate(TEXT, "server.listen"), Some(2));
        assert_eq!(locate(TEXT, "idp.algorithms"), Some(6));
        assert_eq!(locate(TEXT, "routes[0].prefix"), Some(9));
        assert_eq!(locate(TEXT, "routes[1].prefix"), Some(12));
        assert_eq!(locate(TEXT, "routes[1].claims.set"), Some(15));
        assert_eq!(
            locate(TEXT, "routes[1].timeout"),
            Some(11),
            "missing key: its table's header"
        );
        assert_eq!(locate(TEXT, "cache"), Some(17));
        assert_eq!(locate(TEXT, "admin.listen"), None);
    }
}
