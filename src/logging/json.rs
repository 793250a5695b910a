//! The `--log-format json` line: one object per event, `{"timestamp", "level", "fields",
//! "target", "span", "spans"}` (the shape tracing-subscriber's own JSON format has), except
//! that a field recorded with `?` whose Debug text is a JSON array or object (a list of kids,
//! a map) is logged as that JSON value, not as a string holding JSON. Span fields are stored
//! by [`tracing_subscriber::fmt::format::JsonFields`] and embedded as objects.
//!
//! May use: tracing, tracing-subscriber, serde_json, [`crate::jose::time`].

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter installed for `--log-format json`.
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = FieldMap::default();
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp()));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("fields".into(), Value::Object(fields.0));
        line.insert("target".into(), Value::String(meta.target().to_string()));
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(current) = current {
            let spans: Vec<Value> = current
                .scope()
                .from_root()
                .map(|span| {
                    let mut object = span
                        .extensions()
                        .get::<FormattedFields<JsonFields>>()
                        .and_then(|stored| serde_json::from_str::<Map<String, Value>>(stored).ok())
                        .unwrap_or_default();
                    object.insert("name".into(), Value::String(span.name().to_string()));
                    Value::Object(object)
                })
                .collect();
            if let Some(leaf) = spans.last() {
                line.insert("span".into(), leaf.clone());
            }
            line.insert("spans".into(), Value::Array(spans));
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// The line [`super::fatal`] writes: an ERROR event with the message, target `resigner`.
pub fn fatal_line(message: &str) -> String {
    serde_json::json!({
        "timestamp": timestamp(),
        "level": "ERROR",
        "fields": {"message": message},
        "target": "resigner",
    })
    .to_string()
}

/// An event's fields as JSON values.
#[derive(Default)]
struct FieldMap(Map<String, Value>);

impl FieldMap {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for FieldMap {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        let structured =
            field.name() != "message" && (text.starts_with('[') || text.starts_with('{'));
        let value = structured
            .then(|| serde_json::from_str(&text).ok())
            .flatten()
            .unwrap_or(Value::String(text));
        self.put(field, value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

/// RFC 3339 UTC with microseconds, e.g. `2026-12-02T06:10:03.123456Z`.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = crate::jose::time::format_utc(now.as_secs() as i64);
    let whole = seconds.trim_end_matches('Z');
    format!("{whole}.{:06}Z", now.subsec_micros())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lists_are_json_arrays_and_spans_are_objects() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = "abc");
            let _entered = span.enter();
            let kids = vec!["idp-key-1", "idp-key-2"];
            tracing::info!(kids = ?kids, count = 2u64, ok = true, name = "x", text = ?"[not json", "installed [{kids:?}]");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let event: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(event["level"], "INFO");
        assert_eq!(
            event["fields"]["kids"],
            serde_json::json!(["idp-key-1", "idp-key-2"])
        );
        assert_eq!(event["fields"]["count"], 2);
        assert_eq!(event["fields"]["ok"], true);
        assert_eq!(event["fields"]["name"], "x");
        assert_eq!(event["fields"]["text"], "\"[not json\"");
        assert_eq!(
            event["fields"]["message"],
            "installed [[\"idp-key-1\", \"idp-key-2\"]]"
        );
        assert_eq!(event["span"]["request_id"], "abc");
        assert_eq!(event["span"]["name"], "request");
        assert_eq!(event["spans"][0]["request_id"], "abc");
        assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
