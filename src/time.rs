//! Wall-clock seconds for JWT claims, and the duration syntax used in the config file
//! (`"500ms"`, `"30s"`, `"10m"`, `"1h"`, `"1d"`, or a bare number of seconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as JWT `NumericDate` (RFC 7519 §2).
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Parses `"250ms"`, `"30s"`, `"10m"`, `"2h"`, `"1d"` or `"45"` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like \"30s\", \"10m\" or \"1h\""))?;
    let millis = match unit.trim() {
        "ms" => value,
        "" | "s" => value.saturating_mul(1_000),
        "m" => value.saturating_mul(60_000),
        "h" => value.saturating_mul(3_600_000),
        "d" => value.saturating_mul(86_400_000),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {text:?} (use ms, s, m, h or d)"
            ));
        }
    };
    Ok(Duration::from_millis(millis))
}

/// A NumericDate as RFC 3339 UTC, e.g. `2026-11-25T21:40:00Z` (proleptic Gregorian).
pub fn format_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// `delta` seconds from now in words: "in 4m 30s", "2h 5m ago", "now".
pub fn describe_relative(delta: i64) -> String {
    if delta == 0 {
        return "now".into();
    }
    let abs = delta.unsigned_abs();
    let (d, h, m, s) = (
        abs / 86_400,
        abs % 86_400 / 3_600,
        abs % 3_600 / 60,
        abs % 60,
    );
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    };
    if delta > 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_times() {
        assert_eq!(super::format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::format_utc(1_795_641_600), "2026-11-25T21:20:00Z");
        assert_eq!(super::format_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(super::describe_relative(270), "in 4m 30s");
        assert_eq!(super::describe_relative(-7_500), "2h 5m ago");
        assert_eq!(super::describe_relative(90_000), "in 1d 1h");
        assert_eq!(super::describe_relative(0), "now");
    }

    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10y").is_err());
        assert!(parse_duration("").is_err());
    }
}
