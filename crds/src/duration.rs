//! k6 / Go duration strings (`30s`, `1m30s`, `500ms`, `1.5h`) parsed into `std::time::Duration`.
//!
//! Manifests keep durations as the text the user wrote (so `kubectl get -o yaml` shows `1m30s`,
//! not a number); every reader parses them with [`parse`], and validation reports the ones
//! that do not parse with the field's path.

use std::time::Duration;

/// Why a duration string was rejected; rendered into a validation problem by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration (write 30s, 1m30s, 500ms)")]
    Malformed(String),
    #[error("{0:?} has no unit (write {0}s for seconds or {0}ms for milliseconds)")]
    MissingUnit(String),
    #[error("{0:?} is negative; durations count forward from the start of the test")]
    Negative(String),
}

/// Parses a Go-style duration as k6 does (`time.ParseDuration`): a sequence of decimal numbers,
/// each with a unit among `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`; `0` alone is allowed.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if body.is_empty() {
        return Err(DurationError::Malformed(text.to_string()));
    }
    if body.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(DurationError::MissingUnit(body.to_string()));
    }
    let mut total_nanos: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(DurationError::Malformed(text.to_string()));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| DurationError::Malformed(text.to_string()))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(DurationError::Malformed(text.to_string())),
        };
        total_nanos += value * nanos_per_unit;
        rest = next;
    }
    // Go rejects durations above ~292 years; anything that large in a manifest is a typo.
    if total_nanos > 1e18 {
        return Err(DurationError::Malformed(text.to_string()));
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// Renders a duration the way k6 prints option values (`1m30s`, `500ms`, `0s`).
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        return if duration.is_zero() {
            "0s".to_string()
        } else {
            format!("{}µs", duration.as_micros())
        };
    }
    if !millis.is_multiple_of(1000) {
        return if millis < 1000 {
            format!("{millis}ms")
        } else {
            format!("{}s", duration.as_secs_f64())
        };
    }
    let secs = duration.as_secs();
    let (hours, minutes, seconds) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 || out.is_empty() {
        out.push_str(&format!("{seconds}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse("10µs"), Ok(Duration::from_micros(10)));
    }

    #[test]
    fn rejects_what_go_rejects() {
        assert_eq!(parse("30"), Err(DurationError::MissingUnit("30".into())));
        assert!(matches!(parse("3x"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse(""), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("s"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("1..5s"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("-1s"), Err(DurationError::Negative(_))));
        assert!(matches!(parse("1 s"), Err(DurationError::Malformed(_))));
    }

    #[test]
    fn formats_like_k6() {
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_millis(1500)), "1.5s");
    }
}
