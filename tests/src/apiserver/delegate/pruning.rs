//! Whether the real server kept what a status write sent: a field that the CRD's schema does
//! not declare is pruned silently on a cluster, and a status that loses fields there would
//! break `kubectl wait`, Argo CD's health check or `stampede report` without an error. The
//! stand-in compares each forwarded status write with the stored answer and keeps the paths
//! that were dropped, for the end-to-end tests to assert on.

use serde_json::{Value, json};

/// Names a directory where every forwarded status write is kept as a JSON file (content type
/// and body): how the differential test's corpus of the operator's real status writes is made.
pub const CORPUS_ENV: &str = "STAMPEDE_STATUS_WRITE_CORPUS";

/// Keeps one status write in `dir` (best effort: a corpus is an aid, not a check).
pub fn record(dir: &std::path::Path, content_type: &str, sent: &Value) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    let file = dir.join(format!("{}-{number:06}.json", std::process::id()));
    let entry = json!({"contentType": content_type, "body": sent});
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(file, entry.to_string());
}

/// Paths under `status` that `sent` (a status write's body: an object, a merge patch or an
/// applied configuration) set and `stored` (the server's answer) lacks or changed. Nulls in a
/// merge patch delete, so they are not expected back; numbers compare by value (`12.0` and
/// `12` are one number to a Go server).
pub fn pruned_status(sent: &Value, stored: &Value) -> Vec<String> {
    let mut missing = Vec::new();
    if let Some(status) = sent.get("status") {
        compare(status, &stored["status"], "status", &mut missing);
    }
    missing
}

fn compare(sent: &Value, stored: &Value, path: &str, missing: &mut Vec<String>) {
    match sent {
        Value::Null => {}
        Value::Object(fields) => {
            for (key, value) in fields {
                let child = format!("{path}.{key}");
                match stored.get(key) {
                    None if !value.is_null() => missing.push(child),
                    None => {}
                    Some(kept) => compare(value, kept, &child, missing),
                }
            }
        }
        Value::Array(items) => {
            let kept = stored.as_array().map(Vec::as_slice).unwrap_or_default();
            for (index, item) in items.iter().enumerate() {
                // Lists of maps merge with other writers' entries: any stored entry that holds
                // everything this one sent will do.
                let found = kept.iter().any(|k| {
                    let mut lost = Vec::new();
                    compare(item, k, "", &mut lost);
                    lost.is_empty()
                });
                if !found {
                    missing.push(format!("{path}[{index}]"));
                }
            }
        }
        Value::Number(number) => {
            if stored.as_f64() != number.as_f64() {
                missing.push(path.to_string());
            }
        }
        other => {
            if stored != other {
                missing.push(path.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_kept_whole_has_nothing_pruned() {
        let sent = json!({"status": {"phase": "Running", "rps": 12.0, "runners": {"desired": 3},
                                     "conditions": [{"type": "Complete", "status": "False"}],
                                     "startTime": null}});
        let stored = json!({"status": {"phase": "Running", "rps": 12, "runners": {"desired": 3, "ready": 0},
                                       "conditions": [{"type": "Passed", "status": "Unknown"},
                                                      {"type": "Complete", "status": "False", "reason": "Running"}]}});
        assert_eq!(pruned_status(&sent, &stored), Vec::<String>::new());
    }

    #[test]
    fn dropped_and_changed_fields_are_named() {
        let sent = json!({"status": {"phase": "Failed", "extra": {"a": 1},
                                     "steps": [{"name": "login", "p95Ms": 3.5}],
                                     "conditions": [{"type": "Complete", "status": "True"}]}});
        let stored = json!({"status": {"phase": "Failed",
                                       "steps": [{"name": "login"}],
                                       "conditions": [{"type": "Complete", "status": "False"}]}});
        let mut pruned = pruned_status(&sent, &stored);
        pruned.sort();
        assert_eq!(
            pruned,
            ["status.conditions[0]", "status.extra", "status.steps[0]"]
        );
        assert!(pruned_status(&json!({"spec": {}}), &json!({})).is_empty());
    }
}
