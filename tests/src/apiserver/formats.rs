//! The string `format`s kube-apiserver checks in custom resources (kube-openapi's strfmt
//! registry, restricted to the formats apiextensions-apiserver supports), with the checks
//! written after their Go implementations.

use base64::Engine;

/// Whether `text` is valid for `format`; `None` when the stand-in does not check that format
/// (it is unknown to the real server too, or one the stand-in leaves alone: `uri`, `email`,
/// `hostname`, `isbn*`, `creditcard`, `duration`, `quantity`, `password`).
pub fn check(format: &str, text: &str) -> Option<bool> {
    // go-openapi's name normalisation: `date-time` is `datetime`.
    let normalized = format.replace('-', "");
    let valid = match normalized.as_str() {
        "datetime" => is_date_time(text),
        "date" => is_date(text),
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_ok(),
        "uuid" => is_uuid(text, None),
        "uuid3" => is_uuid(text, Some('3')),
        "uuid4" => is_uuid(text, Some('4')),
        "uuid5" => is_uuid(text, Some('5')),
        "ipv4" => text.contains('.') && parse_ip(text),
        "ipv6" => text.contains(':') && parse_ip(text),
        "cidr" => is_cidr(text),
        "mac" => is_mac(text),
        "hexcolor" => is_hex_color(text),
        "bsonobjectid" => text.len() == 24 && text.chars().all(|c| c.is_ascii_hexdigit()),
        "ssn" => is_ssn(text),
        "k8sshortname" => is_short_name(text),
        "k8slongname" => is_long_name(text),
        _ => return None,
    };
    Some(valid)
}

/// strfmt's `IsDateTime`: a full date, a `t`, then `hh:mm:ss`, optional fraction and a zone,
/// matched on the lower-cased text split at every `t`.
fn is_date_time(text: &str) -> bool {
    if text.len() < 4 {
        return false;
    }
    let lower = text.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    is_time_of_day(parts[1])
}

/// `^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$` with hours up to
/// 23 and minutes and seconds up to 59 (the `.` is any character, as in the Go pattern).
fn is_time_of_day(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let two_digits = |at: usize| {
        chars.get(at).is_some_and(char::is_ascii_digit)
            && chars.get(at + 1).is_some_and(char::is_ascii_digit)
    };
    if chars.len() < 9 || !two_digits(0) || !two_digits(3) || !two_digits(6) {
        return false;
    }
    if chars[2] != ':' || chars[5] != ':' {
        return false;
    }
    let number = |at: usize| -> String { chars[at..at + 2].iter().collect() };
    if number(0).as_str() > "23" || number(3).as_str() > "59" || number(6).as_str() > "59" {
        return false;
    }
    let zone_ok = |rest: &[char]| match rest {
        ['z'] => true,
        [sign, h1, h2, ':', m1, m2] => {
            (*sign == '+' || *sign == '-') && [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    let rest = &chars[8..];
    if zone_ok(rest) {
        return true;
    }
    // An optional fraction: any one character, then digits, then the zone.
    if rest.len() >= 2 && rest[1].is_ascii_digit() {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        // The regex backtracks over the digits: any split that leaves a valid zone works.
        for used in 1..=digits {
            if zone_ok(&rest[1 + used..]) {
                return true;
            }
        }
    }
    false
}

/// Go's `time.Parse("2006-01-02", text)`: four-digit year, two-digit month and day, the day
/// within its month.
fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// `(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?V[0-9a-f]{3}-?[89ab]?[0-9a-f]{3,4}-?[0-9a-f]{12}$`-style
/// checks: 32 hex digits, hyphens optional at the usual places, the version digit when given.
fn is_uuid(text: &str, version: Option<char>) -> bool {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let groups: Vec<&str> = text.split('-').collect();
    let hyphens_ok = match groups.len() {
        1 => true,
        5 => groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]),
        _ => false,
    };
    if !hyphens_ok || hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return false;
    }
    let lower = hex.to_ascii_lowercase();
    match version {
        None => true,
        Some(v) => {
            let variant_ok = v == '3' || matches!(lower.as_bytes()[16], b'8' | b'9' | b'a' | b'b');
            lower.as_bytes()[12] == v as u8 && variant_ok
        }
    }
}

fn parse_ip(text: &str) -> bool {
    text.parse::<std::net::IpAddr>().is_ok()
}

/// Go's `net.ParseCIDR`: an address, a slash and a prefix length within the address size.
fn is_cidr(text: &str) -> bool {
    let Some((address, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(address) = address.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if address.is_ipv4() { 32 } else { 128 };
    !bits.is_empty()
        && bits.len() <= 3
        && bits.bytes().all(|b| b.is_ascii_digit())
        && bits.parse::<u32>().is_ok_and(|bits| bits <= max)
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `xx:xx…`, `xx-xx…` or `xxxx.xxxx…`.
fn is_mac(text: &str) -> bool {
    let octets_ok = |count: usize| [6, 8, 20].contains(&count);
    for separator in [':', '-'] {
        let parts: Vec<&str> = text.split(separator).collect();
        if parts.len() > 1 {
            return octets_ok(parts.len())
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
        }
    }
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() > 1
        && octets_ok(parts.len() * 2)
        && parts
            .iter()
            .all(|p| p.len() == 4 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_hex_color(text: &str) -> bool {
    let digits = text.strip_prefix('#').unwrap_or(text);
    (digits.len() == 3 || digits.len() == 6) && digits.chars().all(|c| c.is_ascii_hexdigit())
}

/// `^\d{3}[- ]?\d{2}[- ]?\d{4}$`.
fn is_ssn(text: &str) -> bool {
    let compact: String = text.chars().filter(|c| *c != '-' && *c != ' ').collect();
    let separators = text.len() - compact.len();
    let shape_ok = match separators {
        0 => true,
        1 => [3, 5].iter().any(|at| {
            text.as_bytes()
                .get(*at)
                .is_some_and(|b| *b == b'-' || *b == b' ')
        }),
        2 => {
            text.len() == 11
                && [3, 6]
                    .iter()
                    .all(|at| matches!(text.as_bytes()[*at], b'-' | b' '))
        }
        _ => false,
    };
    shape_ok && compact.len() == 9 && compact.bytes().all(|b| b.is_ascii_digit())
}

/// `k8s-short-name`: a DNS-1123 label (lower case, at most 63 characters).
fn is_short_name(text: &str) -> bool {
    text.len() <= 63 && is_label(text)
}

/// `k8s-long-name`: dot-separated DNS-1123 labels, at most 253 characters in all.
fn is_long_name(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_label)
}

fn is_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.first().is_some_and(edge_ok)
        && bytes.last().is_some_and(edge_ok)
        && bytes.iter().all(|b| edge_ok(b) || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_follow_strfmt() {
        for good in [
            "2024-01-01T10:00:00Z",
            "2024-01-01t10:00:00z",
            "2024-01-01T10:00:00.5+02:00",
            "2024-01-01T10:00:00X1Z",
            "2024-02-29T23:59:59Z",
        ] {
            assert_eq!(check("date-time", good), Some(true), "{good}");
        }
        for bad in [
            "garbage",
            "2024-01-01",
            "2024-01-01T10:00:00",
            "2024-02-30T10:00:00Z",
            "2024-01-01T25:00:00Z",
            "2024-01-01T10:00:00+0200",
            "2024-01-01 10:00:00Z",
            "2024-01-01T10:00:60Z",
            "2024-01-01T10:00:00ZZ",
            "2024-13-01T10:00:00Z",
            "24-01-01T10:00:00Z",
            "2024-01-01T10:00:00.Z",
            "99999-01-01T10:00:00Z",
        ] {
            assert_eq!(check("date-time", bad), Some(false), "{bad}");
        }
    }

    #[test]
    fn other_formats() {
        assert_eq!(check("date", "2023-02-29"), Some(false));
        assert_eq!(check("date", "2024-02-29"), Some(true));
        assert_eq!(
            check("uuid", "0b5fbd0e-4a9b-4c5e-9f3a-2f6d1c0e7a11"),
            Some(true)
        );
        assert_eq!(check("uuid", "not-a-uuid"), Some(false));
        assert_eq!(check("ipv4", "10.0.0.1"), Some(true));
        assert_eq!(check("ipv4", "10.0.0"), Some(false));
        assert_eq!(check("cidr", "10.0.0.0/33"), Some(false));
        assert_eq!(check("byte", "aGVsbG8="), Some(true));
        assert_eq!(check("byte", "???"), Some(false));
        assert_eq!(check("k8s-short-name", "Upper"), Some(false));
        assert_eq!(check("uri", "anything"), None);
        assert_eq!(check("int64", "1"), None);
    }
}
