//! Status writes (merge patch and the operator's server-side apply, malformed date-times
//! included) and the `kubectl get lt` table.

use serde_json::{Value, json};

use super::fixtures::{APPLY, MERGE, OPERATOR, TABLE, loadtests, small_loadtest};
use super::harness::{Pair, Request, not_kept, verbatim};

/// A status with every field the operator writes.
fn full_status() -> Value {
    json!({
        "phase": "Succeeded", "run": 2, "observedGeneration": 1,
        "runners": {"desired": 3, "ready": 3, "running": 0, "succeeded": 3, "failed": 0},
        "startTime": "2026-01-02T10:00:00Z", "completionTime": "2026-01-02T10:05:00Z",
        "progress": {"elapsedSeconds": 300.5, "totalSeconds": 300.0, "vus": 10, "rps": 41.5,
                     "httpReqs": 12450, "iterations": 4150, "droppedIterations": 2,
                     "p95Ms": 182.25, "failedRate": 0.0015, "p95": "182ms", "failed": "0.15%"},
        "summary": {"vusMax": 10, "httpReqs": 12450, "rps": 41.5, "failedRate": 0.0015,
                    "iterations": 4150, "droppedIterations": 2,
                    "checks": {"passes": 12430, "fails": 20},
                    "durationMs": {"avg": 80.5, "min": 3.25, "med": 70.0, "p90": 150.5,
                                   "p95": 182.25, "p99": 240.0, "max": 812.5},
                    "dataSent": 1234567, "dataReceived": 9876543},
        "steps": [{"name": "home", "reqs": 12450, "failedRate": 0.0015,
                   "p50Ms": 70.0, "p95Ms": 182.25, "p99Ms": 240.0}],
        "thresholds": [{"metric": "http_req_duration", "threshold": "p(95)<500", "value": 182.25, "ok": true},
                       {"metric": "http_req_failed", "threshold": "rate<0.01", "ok": true}],
        "conditions": [
            {"type": "Complete", "status": "True", "reason": "Finished", "message": "the run is over",
             "lastTransitionTime": "2026-01-02T10:05:00Z", "observedGeneration": 1},
            {"type": "Passed", "status": "True", "reason": "ThresholdsPassed",
             "message": "every threshold passed", "lastTransitionTime": "2026-01-02T10:05:00Z",
             "observedGeneration": 1}],
        "resultRef": {"configMap": "status-target-result"},
        "message": "2 thresholds passed"
    })
}

/// Creates `name` on both servers.
pub async fn create_both(pair: &mut Pair, manifest: &Value) {
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    let (real, stand_in) = pair
        .compare(
            &format!("create {name}"),
            &Request::json("POST", &loadtests("default"), manifest),
            &verbatim,
        )
        .await;
    assert_eq!((real.code, stand_in.code), (201, 201), "{}", real.message);
}

/// Compares a status write and, when both accepted it, that both kept all of `status`.
async fn status_write(pair: &mut Pair, label: &str, request: Request, status: &Value) {
    let (real, stand_in) = pair.compare(label, &request, &verbatim).await;
    if real.code != 200 || stand_in.code != 200 {
        return;
    }
    for (server, outcome) in [("real", &real), ("stand-in", &stand_in)] {
        let mut dropped = Vec::new();
        not_kept(status, &outcome.body["status"], ".status", &mut dropped);
        if !dropped.is_empty() {
            pair.content(
                label,
                format!("the {server} server did not keep {dropped:?}"),
            );
        }
    }
}

/// Status writes, on both servers.
pub async fn writes(pair: &mut Pair) {
    create_both(pair, &small_loadtest("status-target")).await;
    let status_path = format!("{}/status-target/status", loadtests("default"));
    let status = full_status();
    status_write(
        pair,
        "a full status by merge patch",
        Request::patch(&status_path, MERGE, &json!({"status": status})),
        &status,
    )
    .await;
    let applied =
        json!({"apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest", "status": status});
    let apply_path = format!("{status_path}?fieldManager={OPERATOR}&force=true");
    status_write(
        pair,
        "a full status by server-side apply",
        Request::patch(&apply_path, APPLY, &applied),
        &status,
    )
    .await;
    let malformed = [
        (
            "a completionTime that is no date-time",
            json!({"completionTime": "garbage"}),
        ),
        (
            "a date without a time",
            json!({"completionTime": "2026-01-02"}),
        ),
        (
            "a date-time without a zone",
            json!({"startTime": "2026-01-02T10:00:00"}),
        ),
        (
            "the 30th of February",
            json!({"startTime": "2026-02-30T10:00:00Z"}),
        ),
        ("hour 25", json!({"completionTime": "2026-01-02T25:00:00Z"})),
        (
            "a zone without a colon",
            json!({"completionTime": "2026-01-02T10:00:00+0200"}),
        ),
        (
            "a lower-case date-time (valid)",
            json!({"completionTime": "2026-01-02t10:00:00z"}),
        ),
        (
            "a fractional date-time with an offset (valid)",
            json!({"completionTime": "2026-01-02T10:00:00.25+02:00"}),
        ),
        ("a number for a date-time", json!({"completionTime": 5})),
        (
            "a condition with a malformed lastTransitionTime and another bad date",
            json!({"startTime": "soon", "conditions": [{"type": "Complete", "status": "True",
                   "reason": "Finished", "message": "m", "lastTransitionTime": "yesterday"}]}),
        ),
        (
            "a condition without its required fields",
            json!({"conditions": [{"type": "Complete"}]}),
        ),
        ("an unknown phase", json!({"phase": "Sleeping"})),
    ];
    for (label, bad) in &malformed {
        status_write(
            pair,
            &format!("status by merge patch: {label}"),
            Request::patch(&status_path, MERGE, &json!({"status": bad})),
            bad,
        )
        .await;
    }
    for (label, bad) in malformed.iter().take(3) {
        let applied =
            json!({"apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest", "status": bad});
        status_write(
            pair,
            &format!("status by server-side apply: {label}"),
            Request::patch(&apply_path, APPLY, &applied),
            bad,
        )
        .await;
    }
}

/// The operator's own status writes, recorded from the end-to-end tests (one per phase and
/// shape of status; `STAMPEDE_STATUS_WRITE_CORPUS=DIR` records them anew), applied on both
/// servers as the operator applies them.
pub async fn recorded_writes(pair: &mut Pair) {
    let text = std::fs::read_to_string(stampede_tests::cluster::repo_path(RECORDED))
        .expect("the recorded status writes");
    let recorded: Vec<Value> = serde_json::from_str(&text).expect("a JSON list");
    assert!(recorded.len() >= 8, "{RECORDED}: {} writes", recorded.len());
    create_both(pair, &small_loadtest("recorded-target")).await;
    let apply_path = format!(
        "{}/recorded-target/status?fieldManager={OPERATOR}&force=true",
        loadtests("default")
    );
    for write in &recorded {
        let body = &write["body"];
        let phase = body["status"]["phase"].as_str().unwrap_or("no phase");
        let content_type = write["contentType"].as_str().unwrap_or(APPLY);
        let request = if content_type == APPLY {
            Request::patch(&apply_path, APPLY, body)
        } else {
            Request::patch(&apply_path, content_type, body)
        };
        status_write(
            pair,
            &format!("the operator's {phase} status write"),
            request,
            &body["status"],
        )
        .await;
    }
}

/// Where the recorded status writes are kept.
const RECORDED: &str = "tests/fixtures/e2e-status-writes.json";

/// The table of LoadTests, on both servers.
pub async fn table(pair: &mut Pair) {
    create_both(pair, &small_loadtest("table-a")).await;
    create_both(pair, &small_loadtest("table-b")).await;
    let status = full_status();
    let status_path = format!("{}/table-a/status", loadtests("default"));
    status_write(
        pair,
        "a status for the table",
        Request::patch(&status_path, MERGE, &json!({"status": status})),
        &status,
    )
    .await;
    let request = Request::get(&loadtests("default")).accepting(TABLE);
    let (real, stand_in) = pair.compare("kubectl get lt", &request, &verbatim).await;
    let columns = |table: &Value| -> Vec<Value> {
        table["columnDefinitions"]
            .as_array()
            .map(|c| c.to_vec())
            .unwrap_or_default()
    };
    if columns(&real.body) != columns(&stand_in.body) {
        pair.content(
            "kubectl get lt",
            format!(
                "columns differ:\n    real:     {}\n    stand-in: {}",
                json!(columns(&real.body)),
                json!(columns(&stand_in.body))
            ),
        );
    }
    let age = columns(&real.body).iter().position(|c| c["name"] == "Age");
    let rows = |table: &Value| -> Vec<Vec<Value>> {
        let mut rows: Vec<Vec<Value>> = table["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                row["cells"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != age)
                    .map(|(_, cell)| cell.clone())
                    .collect()
            })
            .collect();
        rows.sort_by_key(|r| r.first().map(Value::to_string));
        rows
    };
    let (expected, got) = (rows(&real.body), rows(&stand_in.body));
    if expected != got {
        pair.content(
            "kubectl get lt",
            format!("cells differ:\n    real:     {expected:?}\n    stand-in: {got:?}"),
        );
    }
    assert!(
        expected.len() >= 2,
        "the table lists the LoadTests: {expected:?}"
    );
}
