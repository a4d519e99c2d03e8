//! Number formatting as k6 prints it: times with units (µs, ms, s, m), bytes in kB/MB, counts.

use stampede_crds::metrics;

/// True when a series key names a time trend (its values are milliseconds).
pub fn is_time_key(key: &str) -> bool {
    metrics::is_time_metric(key.split('{').next().unwrap_or(key))
}

/// A duration in ms as k6 prints it: `35.36ms`, `1.57s`, `21.9µs`, `0s`.
pub fn format_ms(ms: f64) -> String {
    if ms == 0.0 {
        return "0s".to_string();
    }
    let trim = |x: f64| {
        let text = format!("{x:.2}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_string()
    };
    if ms < 1.0 {
        format!("{}µs", trim(ms * 1000.0))
    } else if ms < 1000.0 {
        format!("{}ms", trim(ms))
    } else if ms < 60_000.0 {
        format!("{}s", trim(ms / 1000.0))
    } else {
        let minutes = (ms / 60_000.0).floor();
        format!("{}m{}s", minutes, trim((ms - minutes * 60_000.0) / 1000.0))
    }
}

/// A byte count as k6 prints data: `13 MB`, `138 kB`, `512 B`.
pub fn format_bytes(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else if bytes >= 1e3 {
        format!("{:.0} kB", bytes / 1e3)
    } else {
        format!("{bytes:.0} B")
    }
}

/// A plain number: integers without decimals, others with up to 6 significant decimals.
pub fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.6}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_k6() {
        assert_eq!(format_ms(35.36), "35.36ms");
        assert_eq!(format_ms(1570.0), "1.57s");
        assert_eq!(format_ms(0.0219), "21.9µs");
        assert_eq!(format_ms(0.0), "0s");
        assert_eq!(format_ms(90_500.0), "1m30.5s");
        assert_eq!(format_bytes(13_000_000.0), "13.0 MB");
        assert_eq!(format_bytes(138_000.0), "138 kB");
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(998.384223), "998.384223");
        assert!(is_time_key("http_req_duration{name:login}"));
        assert!(!is_time_key("http_reqs"));
    }
}
