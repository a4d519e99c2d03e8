//! `stampede wait` against the API server stand-in (or a real cluster): it follows a LoadTest's
//! status as the operator writes it and exits with the code a pipeline gates on.

use std::process::{Command, Output, Stdio};

use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use stampede_crds::LoadTest;
use stampede_tests::cluster::Cluster;
use stampede_tests::stampede_bin;

async fn setup(prefix: &str) -> (Cluster, String, Api<LoadTest>) {
    let cluster = Cluster::start().await;
    cluster.install_crd("crds/loadtest.yaml", "loadtests.stampede.dev");
    let ns = cluster.namespace(prefix).await;
    let api: Api<LoadTest> = Api::namespaced(cluster.client().await, &ns);
    let test: LoadTest = serde_json::from_value(json!({
        "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest", "metadata": {"name": "gate"},
        "spec": {"vus": 2, "duration": "5s", "flows": {"default": [{"request": {"url": "http://127.0.0.1:1/"}}]}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &test).await.unwrap();
    (cluster, ns, api)
}

fn spawn_wait(cluster: &Cluster, ns: &str, extra: &[&str]) -> std::process::Child {
    Command::new(stampede_bin())
        .args(["wait", "gate", "-n", ns])
        .args(extra)
        .env("KUBECONFIG", cluster.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run stampede wait")
}

async fn set_status(api: &Api<LoadTest>, status: Value) {
    api.patch_status(
        "gate",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap();
}

async fn finish(child: std::process::Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn wait_exits_0_when_the_run_passed_and_99_when_thresholds_failed() {
    let (cluster, ns, api) = setup("wait-pass").await;
    let waiter = spawn_wait(&cluster, &ns, &["--timeout", "60s"]);
    set_status(&api, json!({"phase": "Running", "observedGeneration": 1, "runners": {"desired": 2, "ready": 2},
        "progress": {"elapsedSeconds": 2.0, "totalSeconds": 5.0, "vus": 2, "rps": 40.0, "httpReqs": 80,
                     "iterations": 80, "droppedIterations": 0, "p95": "3ms", "failed": "0.00%"}})).await;
    set_status(&api, json!({"phase": "Succeeded",
        "thresholds": [{"metric": "http_req_duration", "threshold": "p(95)<500", "value": 3.2, "ok": true}]})).await;
    let output = finish(waiter).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("✓ http_req_duration p(95)<500 (observed 3.2)"),
        "{stdout}"
    );
    assert!(stdout.contains("loadtest/gate: PASSED"), "{stdout}");

    // A new spec (generation 2): the old verdict does not count until the new run reports.
    api.patch(
        "gate",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"vus": 3}})),
    )
    .await
    .unwrap();
    let mut waiter = spawn_wait(&cluster, &ns, &["--timeout", "60s"]);
    // Its first line is the old run's status; it must keep waiting after printing it.
    let stdout = waiter.stdout.take().unwrap();
    let (first_line, mut rest) = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        (line, reader)
    })
    .await
    .unwrap();
    assert!(first_line.starts_with("Succeeded"), "{first_line}");
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "stampede wait took the old run's verdict"
    );
    set_status(
        &api,
        json!({"phase": "Running", "observedGeneration": 2, "run": 2}),
    )
    .await;
    set_status(&api, json!({"phase": "Failed", "message": "1 of 1 thresholds failed: http_req_duration p(95)<500 observed 812",
        "thresholds": [{"metric": "http_req_duration", "threshold": "p(95)<500", "value": 812.0, "ok": false}]})).await;
    let (code, stdout) = tokio::task::spawn_blocking(move || {
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut rest, &mut stdout).unwrap();
        (waiter.wait().unwrap().code(), stdout)
    })
    .await
    .unwrap();
    assert_eq!(code, Some(99), "{stdout}");
    assert!(
        stdout.contains("✗ http_req_duration p(95)<500 (observed 812)"),
        "{stdout}"
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn wait_reports_invalid_errored_timeouts_and_missing_tests() {
    let (cluster, ns, api) = setup("wait-codes").await;
    set_status(&api, json!({"phase": "Invalid", "observedGeneration": 1, "message": "spec.duration: \"soon\" is not a duration"})).await;
    let output = finish(spawn_wait(&cluster, &ns, &[])).await;
    assert_eq!(output.status.code(), Some(104));
    assert!(String::from_utf8_lossy(&output.stdout).contains("spec.duration"));

    set_status(
        &api,
        json!({"phase": "Errored", "message": "runner 1 was OOMKilled"}),
    )
    .await;
    let output = finish(spawn_wait(&cluster, &ns, &[])).await;
    assert_eq!(output.status.code(), Some(103));
    assert!(String::from_utf8_lossy(&output.stdout).contains("OOMKilled"));

    set_status(&api, json!({"phase": "Running"})).await;
    let output = finish(spawn_wait(&cluster, &ns, &["--timeout", "2s"])).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(102),
        "{}{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("loadtest/gate: timed out after 2s before the run finished"),
        "{stderr}"
    );

    // A --timeout that is not a duration: clap refuses it, as an invalid value (104).
    let output = finish(spawn_wait(&cluster, &ns, &["--timeout", "soon"])).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(104), "{stderr}");
    assert!(
        stderr.contains("(write it like 90s, 30m or 1h)"),
        "{stderr}"
    );

    let output = Command::new(stampede_bin())
        .args(["wait", "nope", "-n", &ns])
        .env("KUBECONFIG", cluster.kubeconfig())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    // An error: on stderr, not stdout.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("loadtest \"nope\" not found in namespace"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "{:?}", output.stdout);
    cluster.drop_namespace(&ns).await;
}
