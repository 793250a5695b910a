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

    /// A SHA-256 written as 64 hex digits (what `resigner token hash` prints).
    pub(super) fn sha256_hex(&mut self, field: &str, text: &str) -> Option<[u8; 32]> {
        let hex = text.trim().to_ascii_lowercase();
        // Hex digits checked first: slicing a non-ASCII string by byte index can panic (found
        // by fuzz/ target config), and from_str_radix would take "+f" as a digit pair.
        let is_hex = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        let mut out = [0u8; 32];
        let parsed = is_hex
            && out.iter_mut().enumerate().all(|(i, byte)| {
                u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                    .map(|value| *byte = value)
                    .is_ok()
            });
        if !parsed {
            self.push(
                field,
                "must be 64 hex digits (resigner token hash prints them)",
            );
            return None;
        }
        Some(out)
    }

    /// Every problem noted, in the order found; empty when the config is valid.
    pub(super) fn into_vec(self) -> Vec<String> {
        self.0
    }
}
