//! [`Problems`]: what validation collects instead of stopping at the first mistake, one
//! "field: message" line each, and the helpers that read a value and note a problem with it
//! (durations, addresses, URLs), so every section's validator reports the same way.

use std::net::SocketAddr;
use std::time::Duration;

use http::uri::Uri;

use crate::jose::time::parse_duration;

/// Collects problems as "field: message" lines.
#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    pub(super) fn push(&mut self, field: impl AsRef<str>, message: impl AsRef<str>) {
        self.0
            .push(format!("{}: {}", field.as_ref(), message.as_ref()));
    }

    pub(super) fn duration(
        &mut self,
        field: &str,
        value: &Option<String>,
        default: Duration,
    ) -> Duration {
        match value.as_deref().map(parse_duration) {
            None => default,
            Some(Ok(duration)) => duration,
            Some(Err(message)) => {
                self.push(field, message);
                default
            }
        }
    }

    /// Like [`Problems::duration`], and at least `min`.
    pub(super) fn duration_min(
        &mut self,
        field: &str,
        value: &Option<String>,
        default: Duration,
        min: Duration,
    ) -> Duration {
        let duration = self.duration(field, value, default);
        if duration < min {
            self.push(field, format!("must be at least {min:?}"));
        }
        duration
    }

    pub(super) fn addr(&mut self, field: &str, value: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.push(
                    field,
                    format!("{value:?} is not an address like \"127.0.0.1:8080\""),
                );
                None
            }
        }
    }

    /// `text` as an http:// or https:// URL with an authority.
    pub(super) fn http_url(&mut self, field: &str, text: &str) -> Option<Uri> {
        match text.parse::<Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http") | Some("https"))
                    && uri.authority().is_some() =>
            {
                Some(uri)
            }
            _ => {
                self.push(field, format!("{text:?} is not an http:// or https:// URL"));
                None
            }
        }
    }

    /// Every problem noted, in the order found; empty when the config is valid.
    pub(super) fn into_vec(self) -> Vec<String> {
        self.0
    }
}
