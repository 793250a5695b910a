//! Wall-clock seconds for JWT claims, RFC 3339 formatting, and the duration syntax used in
//! the config file (humantime's: `"500ms"`, `"1m30s"`, `"1.5s"`, `"1d"`, or a bare number of
//! seconds).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as JWT `NumericDate` (RFC 7519 §2).
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Parses a config duration: humantime's syntax (`"250ms"`, `"30s"`, `"10m"`, `"1h"`, `"1d"`,
/// `"1m30s"`, `"1.5s"`, `"2h 30min"`) or a bare number of seconds (`"45"`). Months and years
/// are refused: their length is not fixed, and `"5M"` (months) next to `"5m"` (minutes) is a
/// trap in a token lifetime.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{text:?} is too large a number of seconds"));
    }
    let units = text
        .split(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
        .filter(|unit| !unit.is_empty());
    for unit in units {
        if matches!(
            unit,
            "M" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years"
        ) {
            return Err(format!(
                "{text:?}: months and years have no fixed length; use days (\"30d\")"
            ));
        }
    }
    humantime::parse_duration(text).map_err(|err| {
        format!("{text:?} is not a duration like \"30s\", \"10m\", \"1h30m\" or \"1.5s\" ({err})")
    })
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
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(
            parse_duration("2h 30min").unwrap(),
            Duration::from_secs(9000)
        );
        assert_eq!(
            parse_duration(" 7d ").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5s").is_err());
        for ambiguous in ["10y", "5M", "1month", "2 years"] {
            let err = parse_duration(ambiguous).unwrap_err();
            assert!(err.contains("no fixed length"), "{ambiguous}: {err}");
        }
        let err = parse_duration("10 parsecs").unwrap_err();
        assert!(err.contains("\"10 parsecs\" is not a duration"), "{err}");
    }
}
