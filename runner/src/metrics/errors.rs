//! The errors a run met, grouped by k6 `error_code` and where they happened, each with how
//! often it occurred and the first message as a sample: what the report's "top errors" table
//! shows. Bounded: a run of a million distinct failures keeps [`MAX_ERROR_ROWS`] rows.

use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

/// The most rows a table keeps; further kinds of errors are counted in one last row.
pub const MAX_ERROR_ROWS: usize = 20;
/// The longest sample message kept, in bytes.
const MAX_MESSAGE_BYTES: usize = 300;
/// Where the errors beyond [`MAX_ERROR_ROWS`] kinds are counted.
pub const OTHER_ERRORS: &str = "(other errors)";

/// One kind of error: a k6 `error_code` (none for an iteration error) at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRow {
    /// k6's `error_code`: 1000 + status for an unexpected HTTP status, 1xxx for a request
    /// that got no response; none for an iteration error (a capture, a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    /// The step (its `name` tag) for a request error, `iteration` or `teardown` otherwise.
    pub place: String,
    /// How often it happened.
    pub count: u64,
    /// The first message of its kind (templates, never rendered values).
    pub message: String,
}

/// The places of errors that are not a request's.
const ITERATION_PLACES: [&str; 2] = ["iteration", "teardown"];

impl ErrorRow {
    /// What the error is: its code's meaning; without a code, an iteration error, or an
    /// unexpected status under 400 (k6 gives those no `error_code`).
    pub fn meaning(&self) -> String {
        match self.code {
            Some(code) => code_meaning(code),
            None if ITERATION_PLACES.contains(&self.place.as_str()) => "iteration error".into(),
            None if self.place == OTHER_ERRORS => "further kinds of error".into(),
            None => "unexpected status".into(),
        }
    }
}

/// What a k6 `error_code` means, in k6's words.
pub fn code_meaning(code: u32) -> String {
    match code {
        1000 => "generic error".into(),
        1020 => "invalid URL".into(),
        1050 => "request timeout".into(),
        1100 => "DNS error".into(),
        1101 => "no IP for the host".into(),
        1110 | 1111 => "blocked host".into(),
        1200 => "TCP error".into(),
        1201 => "broken pipe".into(),
        1202 => "TCP read/write error".into(),
        1210 => "dial error".into(),
        1211 => "dial timeout".into(),
        1212 => "connection refused".into(),
        1213 => "dial error (errno)".into(),
        1220 => "connection reset by peer".into(),
        1300 => "TLS error".into(),
        1301 => "TLS record header".into(),
        1310 => "TLS unknown authority".into(),
        1311 => "TLS hostname mismatch".into(),
        1400..=1599 => {
            let status = code - 1000;
            let reason = http::StatusCode::from_u16(status as u16)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            format!("HTTP {status} {reason}").trim_end().to_string()
        }
        _ => format!("error {code}"),
    }
}

/// Adds `count` errors of a kind to `rows`, keeping them bounded and sorted by count, most
/// first (ties in the order first seen).
fn add(
    rows: &mut Vec<ErrorRow>,
    code: Option<u32>,
    place: &str,
    count: u64,
    message: impl FnOnce() -> String,
) {
    let full = rows.len() >= MAX_ERROR_ROWS - 1 && place != OTHER_ERRORS;
    let (code, place) = match rows.iter().position(|r| r.code == code && r.place == place) {
        Some(_) => (code, place),
        None if full => (None, OTHER_ERRORS),
        None => (code, place),
    };
    if let Some(row) = rows.iter_mut().find(|r| r.code == code && r.place == place) {
        row.count = row.count.saturating_add(count);
    } else {
        let sample = message();
        let message = bounded(if place == OTHER_ERRORS && full {
            format!(
                "more than {} kinds of error; the first beyond them: {sample}",
                MAX_ERROR_ROWS - 1
            )
        } else {
            sample
        });
        rows.push(ErrorRow {
            code,
            place: place.to_string(),
            count,
            message,
        });
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.count));
}

fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// Merges tables (of runners, or of a runner's reports) into one: counts add by kind, the
/// first table's sample message stays.
pub fn merge_rows<'a>(tables: impl IntoIterator<Item = &'a [ErrorRow]>) -> Vec<ErrorRow> {
    let mut merged = Vec::new();
    for table in tables {
        for row in table {
            add(&mut merged, row.code, &row.place, row.count, || {
                row.message.clone()
            });
        }
    }
    merged
}

/// The table a run fills while it goes (shared by its VUs; errors are rare next to requests,
/// and the message is formatted only for a kind's first error).
#[derive(Debug, Default)]
pub struct ErrorLog {
    rows: Mutex<Vec<ErrorRow>>,
}

impl ErrorLog {
    /// Counts one error.
    pub fn record(&self, code: Option<u32>, place: &str, message: impl FnOnce() -> String) {
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        add(&mut rows, code, place, 1, message);
    }

    /// The table so far, most frequent first.
    pub fn rows(&self) -> Vec<ErrorRow> {
        self.rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_group_by_code_and_place_and_keep_the_first_message() {
        let log = ErrorLog::default();
        for i in 0..5 {
            log.record(Some(1212), "login", || format!("refused #{i}"));
        }
        log.record(Some(1503), "buy", || "503 from buy".into());
        log.record(None, "iteration", || "capture failed".into());
        log.record(Some(1212), "buy", || "refused on buy".into());
        let rows = log.rows();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            (rows[0].code, rows[0].place.as_str(), rows[0].count),
            (Some(1212), "login", 5)
        );
        assert_eq!(rows[0].message, "refused #0");
        assert_eq!(code_meaning(1212), "connection refused");
        let meaning = |code: Option<u32>, place: &str| {
            ErrorRow {
                code,
                place: place.into(),
                count: 1,
                message: String::new(),
            }
            .meaning()
        };
        assert_eq!(meaning(Some(1212), "login"), "connection refused");
        assert_eq!(meaning(None, "iteration"), "iteration error");
        assert_eq!(meaning(None, "login"), "unexpected status");
        assert_eq!(code_meaning(1503), "HTTP 503 Service Unavailable");
    }

    #[test]
    fn a_flood_of_distinct_errors_stays_bounded_and_counts_everything() {
        let log = ErrorLog::default();
        for i in 0..1000u32 {
            log.record(Some(1000 + i), "step", || "x".repeat(10_000));
        }
        let rows = log.rows();
        assert_eq!(rows.len(), MAX_ERROR_ROWS);
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 1000);
        let other = rows
            .iter()
            .find(|r| r.place == OTHER_ERRORS)
            .expect("other");
        assert_eq!(other.count, 1000 - (MAX_ERROR_ROWS as u64 - 1));
        assert!(
            rows.iter()
                .all(|r| r.message.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8())
        );
    }

    #[test]
    fn merged_tables_add_counts_by_kind() {
        let a = vec![ErrorRow {
            code: Some(1212),
            place: "login".into(),
            count: 3,
            message: "a".into(),
        }];
        let b = vec![
            ErrorRow {
                code: Some(1212),
                place: "login".into(),
                count: 4,
                message: "b".into(),
            },
            ErrorRow {
                code: Some(1504),
                place: "buy".into(),
                count: 9,
                message: "c".into(),
            },
        ];
        let merged = merge_rows([a.as_slice(), b.as_slice()]);
        assert_eq!(merged[0].count, 9);
        assert_eq!(merged[1].count, 7);
        assert_eq!(merged[1].message, "a");
    }
}
