//! The Argo CD health check for LoadTest (examples/gitops/argocd/loadtest-health.lua), run by
//! `lua5.4` in an environment like Argo CD's (see `stampede_tests::argocd`): every phase, the
//! older-generation rule, missing and partial statuses, statuses built from the typed structs,
//! and the copy inlined in argocd-cm-patch.yaml.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};
use stampede_crds::status::{
    LoadTestStatus, Phase, Progress, RunnerCounts, SummaryStatus, ThresholdStatus, TrendStats,
};
use stampede_runner::manifest;
use stampede_tests::argocd::{
    ARGOCD_CM_KEY, ARGOCD_CM_PATCH, HEALTH_SCRIPT, argocd_health, argocd_health_with,
};
use stampede_tests::repo_root;

/// A LoadTest as the API server returns it, at `generation`, with `status`.
fn loadtest(generation: Option<i64>, status: Option<Value>) -> Value {
    let mut object = json!({
        "apiVersion": "stampede.dev/v1alpha1",
        "kind": "LoadTest",
        "metadata": {
            "name": "checkout", "namespace": "shop", "uid": "5f1c8d2e-0000-4000-8000-000000000001",
            "resourceVersion": "4711", "creationTimestamp": "2025-06-01T10:00:00Z",
            "annotations": {"argocd.argoproj.io/hook": "PostSync"},
            "managedFields": [{"manager": "argocd-controller", "operation": "Apply"}]
        },
        "spec": {"vus": 10, "duration": "1m", "flows": {"default": [{"request": {"url": "http://shop/"}}]}}
    });
    if let Some(generation) = generation {
        object["metadata"]["generation"] = json!(generation);
    }
    if let Some(status) = status {
        object["status"] = status;
    }
    object
}

/// A status of the current generation (1).
fn current(status: Value) -> Value {
    let mut status = status;
    status["observedGeneration"] = json!(1);
    loadtest(Some(1), Some(status))
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": message,
           "observedGeneration": 1, "lastTransitionTime": "2025-06-01T10:01:00Z"})
}

fn finished(passed: bool, reason: &str, message: &str) -> Vec<Value> {
    vec![
        condition("Complete", "True", "Finished", "run 1 finished"),
        condition(
            "Passed",
            if passed { "True" } else { "False" },
            reason,
            message,
        ),
    ]
}

fn health(object: &Value) -> (String, String) {
    argocd_health(object)
}

fn assert_health(object: &Value, status: &str, message: &str) {
    assert_eq!(
        health(object),
        (status.to_string(), message.to_string()),
        "on {object:#}"
    );
}

fn running_progress() -> Value {
    json!({"elapsedSeconds": 12.4, "totalSeconds": 60.0, "vus": 40, "rps": 350.0, "httpReqs": 4200,
           "iterations": 1050, "droppedIterations": 0, "p95Ms": 12.3, "failedRate": 0.001,
           "p95": "12.3ms", "failed": "0.10%"})
}

#[test]
fn no_status_yet_is_progressing() {
    assert_health(
        &loadtest(Some(1), None),
        "Progressing",
        "waiting for the Stampede operator to pick up the LoadTest",
    );
    // kubectl and kube-rs may also hand over an explicit null.
    assert_health(
        &loadtest(Some(1), Some(Value::Null)),
        "Progressing",
        "waiting for the Stampede operator to pick up the LoadTest",
    );
}

#[test]
fn pending_and_provisioning_are_progressing() {
    assert_health(
        &current(json!({"phase": "Pending"})),
        "Progressing",
        "Pending",
    );
    assert_health(
        &current(json!({
            "phase": "Provisioning", "run": 1,
            "runners": {"desired": 3, "ready": 1, "running": 0, "succeeded": 0, "failed": 0},
            "message": "starting 3 runner(s) for 300 VUs at peak",
            "conditions": [condition("Complete", "False", "Provisioning", "starting 3 runner(s) for 300 VUs at peak"),
                           condition("Passed", "Unknown", "Provisioning", "the run has not finished")]
        })),
        "Progressing",
        "Provisioning, 1/3 runners ready: starting 3 runner(s) for 300 VUs at peak",
    );
}

#[test]
fn running_shows_the_live_progress() {
    assert_health(
        &current(json!({
            "phase": "Running", "run": 1,
            "runners": {"desired": 3, "ready": 3, "running": 3},
            "startTime": "2025-06-01T10:00:30Z",
            "message": "3 runner(s) ready; starting together",
            "progress": running_progress(),
            "conditions": [condition("Complete", "False", "Running", "running"),
                           condition("Passed", "Unknown", "Running", "the run has not finished")]
        })),
        "Progressing",
        "Running 12s/60s, 40 VUs, 350 req/s, p95=12.3ms, failed=0.10%",
    );
    // Fractions are rounded; a p95 without its display form comes from p95Ms.
    assert_health(
        &current(json!({"phase": "Running", "progress": {
            "elapsedSeconds": 59.6, "totalSeconds": 90.0, "vus": 1999, "rps": 731.94, "p95Ms": 512.349}})),
        "Progressing",
        "Running 60s/90s, 1999 VUs, 731.9 req/s, p95=512.3ms",
    );
    // Before the first report: the runner counts and the message.
    assert_health(
        &current(
            json!({"phase": "Running", "runners": {"desired": 2, "ready": 2},
                        "message": "2 runner(s) ready; starting together"}),
        ),
        "Progressing",
        "Running, 2/2 runners ready: 2 runner(s) ready; starting together",
    );
}

#[test]
fn aborting_shows_progress_and_why() {
    assert_health(
        &current(json!({
            "phase": "Aborting",
            "progress": {"elapsedSeconds": 20.0, "totalSeconds": 60.0, "vus": 40, "rps": 80.5, "p95": "1.2s"},
            "message": "threshold http_req_duration 'p(95)<1' failed with p(95)=1.2s (abortOnFail)"
        })),
        "Progressing",
        "Aborting 20s/60s, 40 VUs, 80.5 req/s, p95=1.2s: threshold http_req_duration 'p(95)<1' failed with p(95)=1.2s (abortOnFail)",
    );
}

#[test]
fn succeeded_is_healthy_with_the_figures() {
    assert_health(
        &current(json!({
            "phase": "Succeeded", "run": 1,
            "runners": {"desired": 4, "ready": 4, "running": 0, "succeeded": 4, "failed": 0},
            "summary": {"vusMax": 2000, "httpReqs": 51234, "rps": 731.94, "failedRate": 0.0012,
                        "iterations": 12001, "droppedIterations": 0, "checks": {"passes": 48001, "fails": 3},
                        "durationMs": {"avg": 20.1, "med": 15.2, "p90": 30.0, "p95": 35.44, "p99": 90.2, "max": 130.0},
                        "dataSent": 1000, "dataReceived": 2000},
            "thresholds": [
                {"metric": "http_req_duration", "threshold": "p(95)<500", "value": 35.44, "ok": true},
                {"metric": "http_req_failed", "threshold": "rate<0.01", "value": 0.0012, "ok": true}
            ],
            "conditions": finished(true, "ThresholdsPassed", "all thresholds passed"),
            "message": "all thresholds passed",
            "resultRef": {"configMap": "checkout-result"}
        })),
        "Healthy",
        "passed: 2 thresholds held; 51234 requests, 731.9 req/s, p95=35.4ms, 0.12% failed",
    );
    assert_health(
        &current(json!({"phase": "Succeeded", "thresholds": [
            {"metric": "checks", "threshold": "rate>0.99", "value": 1.0, "ok": true}]})),
        "Healthy",
        "passed: 1 threshold held",
    );
}

#[test]
fn failed_errored_invalid_and_aborted_are_degraded_with_the_message() {
    let failed_thresholds = json!([
        {"metric": "http_req_duration", "threshold": "p(95)<500", "value": 512.3, "ok": false},
        {"metric": "http_req_failed", "threshold": "rate<0.01", "value": 0.0, "ok": true}
    ]);
    assert_health(
        &current(json!({
            "phase": "Failed",
            "thresholds": failed_thresholds,
            "conditions": finished(false, "ThresholdsFailed", "http_req_duration p(95)=512.3ms, want <500"),
            "message": "http_req_duration p(95)=512.3ms, want <500"
        })),
        "Degraded",
        "Failed: http_req_duration p(95)=512.3ms, want <500",
    );
    assert_health(
        &current(json!({
            "phase": "Errored",
            "conditions": finished(false, "Errored", "runner 1 was OOM-killed (exit code 137)"),
            "message": "runner 1 was OOM-killed (exit code 137)"
        })),
        "Degraded",
        "Errored: runner 1 was OOM-killed (exit code 137)",
    );
    let invalid = "spec.scenarios.spike.stages[1].duration: \"3x\" is not a duration (write 30s, 1m30s, 500ms); spec.flows.buy[1].request.headers.Cookie: reads ${sesion}, which no earlier step captures (did you mean \"session\"?)";
    assert_health(
        &current(json!({
            "phase": "Invalid",
            "conditions": [condition("Complete", "True", "Invalid", invalid), condition("Passed", "False", "Invalid", invalid)],
            "message": invalid
        })),
        "Degraded",
        &format!("Invalid: {invalid}"),
    );
    assert_health(
        &current(json!({
            "phase": "Aborted",
            "thresholds": failed_thresholds,
            "message": "http_req_duration p(95)=512.3ms, want <500"
        })),
        "Degraded",
        "Aborted: http_req_duration p(95)=512.3ms, want <500",
    );
}

#[test]
fn every_phase_maps_to_its_health() {
    for (phase, health_status) in [
        ("Pending", "Progressing"),
        ("Invalid", "Degraded"),
        ("Provisioning", "Progressing"),
        ("Running", "Progressing"),
        ("Aborting", "Progressing"),
        ("Succeeded", "Healthy"),
        ("Failed", "Degraded"),
        ("Errored", "Degraded"),
        ("Aborted", "Degraded"),
    ] {
        let (status, message) = health(&current(json!({"phase": phase})));
        assert_eq!(status, health_status, "{phase}: {message}");
    }
    // A phase of a later Stampede version is not taken for a verdict.
    assert_health(
        &current(json!({"phase": "Paused"})),
        "Progressing",
        "unknown phase Paused",
    );
}

#[test]
fn a_status_of_an_older_generation_is_progressing() {
    for phase in ["Succeeded", "Failed", "Invalid", "Running"] {
        let mut object = loadtest(
            Some(3),
            Some(json!({"phase": phase, "observedGeneration": 2,
                        "conditions": finished(phase == "Succeeded", "x", "old verdict"),
                        "message": "old verdict"})),
        );
        assert_health(
            &object,
            "Progressing",
            "waiting for the operator to pick up generation 3",
        );
        // Once the operator writes generation 3's status, its phase counts.
        object["status"]["observedGeneration"] = json!(3);
        let expected = match phase {
            "Succeeded" => "Healthy",
            "Running" => "Progressing",
            _ => "Degraded",
        };
        assert_eq!(health(&object).0, expected, "{phase}");
    }
    // No observedGeneration at all: also not the current spec's verdict (as for `stampede wait`).
    assert_health(
        &loadtest(Some(1), Some(json!({"phase": "Succeeded"}))),
        "Progressing",
        "waiting for the operator to pick up generation 1",
    );
}

#[test]
fn partial_statuses() {
    // Without metadata.generation (e.g. a status fed in by hand), the phase is read as is.
    assert_health(&loadtest(None, Some(json!({}))), "Progressing", "Pending");
    assert_health(
        &loadtest(None, Some(json!({"phase": "Running"}))),
        "Progressing",
        "Running",
    );
    assert_health(
        &loadtest(None, Some(json!({"phase": "Succeeded"}))),
        "Healthy",
        "passed: no thresholds",
    );
    assert_health(
        &loadtest(None, Some(json!({"phase": "Failed"}))),
        "Degraded",
        "Failed",
    );
    // No message: the failed thresholds, then the Passed condition's message.
    assert_health(
        &loadtest(
            None,
            Some(json!({"phase": "Failed", "thresholds": [
            {"metric": "http_req_duration", "threshold": "p(95)<500", "value": 512.25, "ok": false},
            {"metric": "http_req_duration{name:login}", "threshold": "p(99)<1000", "ok": false},
            {"metric": "checks", "threshold": "rate>0.99", "value": 1, "ok": true}]})),
        ),
        "Degraded",
        "Failed: http_req_duration p(95)<500 (observed 512.25); http_req_duration{name:login} p(99)<1000 (no samples)",
    );
    assert_health(
        &loadtest(
            None,
            Some(
                json!({"phase": "Errored", "conditions": finished(false, "Errored", "runner 0 could not pull its image")}),
            ),
        ),
        "Degraded",
        "Errored: runner 0 could not pull its image",
    );
    // Conditions without a phase.
    assert_health(
        &loadtest(
            None,
            Some(
                json!({"conditions": finished(true, "ThresholdsPassed", "all thresholds passed")}),
            ),
        ),
        "Healthy",
        "passed: no thresholds",
    );
    assert_health(
        &loadtest(
            None,
            Some(
                json!({"conditions": finished(false, "ThresholdsFailed", "checks rate=0.9, want >0.99")}),
            ),
        ),
        "Degraded",
        "Finished: checks rate=0.9, want >0.99",
    );
    assert_health(
        &loadtest(
            None,
            Some(
                json!({"conditions": [condition("Complete", "False", "Running", "running")], "runners": {"desired": 2}}),
            ),
        ),
        "Progressing",
        "Pending, 0/2 runners ready",
    );
    // Progress with only some fields.
    assert_health(
        &loadtest(
            None,
            Some(json!({"phase": "Running", "progress": {"elapsedSeconds": 5}})),
        ),
        "Progressing",
        "Running 5s",
    );
}

#[test]
fn integers_and_floats_read_the_same() {
    // Argo CD hands every number to Lua as a float; a status may carry either form in JSON.
    let as_ints = current(json!({"phase": "Running", "progress": {
        "elapsedSeconds": 12, "totalSeconds": 60, "vus": 40, "rps": 350, "p95Ms": 12}}));
    let as_floats = current(json!({"phase": "Running", "progress": {
        "elapsedSeconds": 12.0, "totalSeconds": 60.0, "vus": 40.0, "rps": 350.0, "p95Ms": 12.0}}));
    assert_eq!(health(&as_ints), health(&as_floats));
    assert_eq!(
        health(&as_ints).1,
        "Running 12s/60s, 40 VUs, 350 req/s, p95=12ms"
    );
}

#[test]
fn messages_pass_through_byte_for_byte() {
    let message =
        "runner 2: can't reach \"shop\" → connection refused\n\tat 10.0.0.1:8080 \\ ]] [[ %d %s";
    assert_health(
        &current(json!({"phase": "Errored", "message": message})),
        "Degraded",
        &format!("Errored: {message}"),
    );
}

/// The status the operator's own types serialize to, for every phase.
#[test]
fn statuses_built_from_the_typed_structs() {
    let path = repo_root().join("examples/gitops/ci/loadtest.yaml");
    let mut test = manifest::load_file(&path, &Default::default())
        .expect("the CI example is valid")
        .remove(0);
    test.metadata.generation = Some(2);
    test.metadata.namespace = Some("shop".into());
    let time = Time("2025-06-01T10:00:00Z".parse().unwrap());
    let condition = |kind: &str, status: &str, reason: &str, message: &str| Condition {
        type_: kind.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: Some(2),
        last_transition_time: time.clone(),
    };
    for (phase, expected) in [
        (Phase::Pending, "Progressing"),
        (Phase::Invalid, "Degraded"),
        (Phase::Provisioning, "Progressing"),
        (Phase::Running, "Progressing"),
        (Phase::Aborting, "Progressing"),
        (Phase::Succeeded, "Healthy"),
        (Phase::Failed, "Degraded"),
        (Phase::Errored, "Degraded"),
        (Phase::Aborted, "Degraded"),
    ] {
        let passed = phase == Phase::Succeeded;
        let over = phase.is_finished();
        test.status = Some(LoadTestStatus {
            phase: Some(phase),
            run: Some(1),
            observed_generation: Some(2),
            runners: Some(RunnerCounts {
                desired: 2,
                ready: 2,
                ..RunnerCounts::default()
            }),
            start_time: Some(time.clone()),
            progress: Some(Progress {
                elapsed_seconds: 30.0,
                total_seconds: 60.0,
                vus: 10,
                rps: 9.5,
                http_reqs: 285,
                p95_ms: 4.25,
                p95: "4.25ms".into(),
                failed: "0.00%".into(),
                ..Progress::default()
            }),
            summary: over.then(|| SummaryStatus {
                http_reqs: 570,
                rps: 9.5,
                duration_ms: TrendStats {
                    p95: 4.25,
                    ..TrendStats::default()
                },
                ..SummaryStatus::default()
            }),
            thresholds: vec![ThresholdStatus {
                metric: "http_req_duration".into(),
                threshold: "p(95)<500".into(),
                value: Some(4.25),
                ok: passed || !over,
            }],
            conditions: vec![
                condition("Complete", if over { "True" } else { "False" }, "x", "y"),
                // No verdict before the run is over: Unknown, as the operator writes it.
                condition(
                    "Passed",
                    match (over, passed) {
                        (false, _) => "Unknown",
                        (true, true) => "True",
                        (true, false) => "False",
                    },
                    "x",
                    "why",
                ),
            ],
            message: Some(format!("{phase:?} message")),
            ..LoadTestStatus::default()
        });
        let object = serde_json::to_value(&test).unwrap();
        let (status, message) = argocd_health(&object);
        assert_eq!(status, expected, "{phase:?}: {message}");
        match phase {
            Phase::Succeeded => assert_eq!(
                message,
                "passed: 1 threshold held; 570 requests, 9.5 req/s, p95=4.3ms, 0% failed"
            ),
            Phase::Running | Phase::Aborting => assert!(
                message.starts_with(&format!(
                    "{phase:?} 30s/60s, 10 VUs, 9.5 req/s, p95=4.25ms, failed=0.00%"
                )),
                "{message}"
            ),
            _ => assert!(
                message.starts_with(&format!("{phase:?}")) && message.ends_with("message"),
                "{message}"
            ),
        }
        // The object kubectl prints (`kubectl get lt -o json`) reads the same.
        let through_text: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&test).unwrap()).unwrap();
        assert_eq!(argocd_health(&through_text), (status, message));
    }
}

#[test]
fn the_argocd_cm_copy_equals_the_script() {
    let root = repo_root();
    let script = std::fs::read_to_string(root.join(HEALTH_SCRIPT)).unwrap();
    let text = std::fs::read_to_string(root.join(ARGOCD_CM_PATCH)).unwrap();
    let config_map: ConfigMap = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(config_map.metadata.name.as_deref(), Some("argocd-cm"));
    assert_eq!(config_map.metadata.namespace.as_deref(), Some("argocd"));
    let inlined = config_map
        .data
        .as_ref()
        .and_then(|data| data.get(ARGOCD_CM_KEY))
        .unwrap_or_else(|| panic!("{ARGOCD_CM_PATCH} has no data key {ARGOCD_CM_KEY}"));
    assert!(
        *inlined == script,
        "{ARGOCD_CM_PATCH} inlines a stale copy of {HEALTH_SCRIPT}; re-inline it with\n  \
         f={ARGOCD_CM_PATCH}; sed -i '/^  {key}: |$/q' $f; sed 's/^./    &/' {HEALTH_SCRIPT} >> $f",
        key = ARGOCD_CM_KEY.replace('.', "\\.")
    );

    // And the inlined copy, run as is, gives the same answers.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("from-argocd-cm.lua");
    std::fs::write(&copy, inlined).unwrap();
    for object in [
        loadtest(Some(1), None),
        current(json!({"phase": "Running", "progress": running_progress()})),
        current(json!({"phase": "Failed", "message": "checks rate=0.5, want >0.99"})),
        current(json!({"phase": "Succeeded"})),
    ] {
        assert_eq!(argocd_health_with(&copy, &object), argocd_health(&object));
    }
}

/// Argo CD runs the script with gopher-lua, a Lua 5.1: no 5.3+ operators or libraries.
#[test]
fn the_script_keeps_to_what_gopher_lua_runs() {
    let script = std::fs::read_to_string(repo_root().join(HEALTH_SCRIPT)).unwrap();
    for (number, line) in script.lines().enumerate() {
        let code = line.split("--").next().unwrap_or_default();
        for token in [
            "//", " & ", " | ", "<<", ">>", "goto ", "utf8.", "math.", "string.", "io.", "os.",
            "require",
        ] {
            assert!(
                !code.contains(token),
                "{HEALTH_SCRIPT}:{}: {token:?} is not available to an Argo CD health check: {line}",
                number + 1
            );
        }
        // `~` only as part of `~=` (no 5.3 bitwise xor / not).
        assert!(
            code.replace("~=", "").find('~').is_none(),
            "{HEALTH_SCRIPT}:{}: bitwise ~: {line}",
            number + 1
        );
    }
    assert!(script.trim_end().ends_with("return hs"));
}
