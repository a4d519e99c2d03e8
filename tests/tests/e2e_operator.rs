//! End to end through `kubectl`: the real operator binary reconciles LoadTests on the API
//! server stand-in, the process kubelet runs the runner pods as `stampede agent` processes,
//! and they load the demo server on loopback — or, with `STAMPEDE_E2E_KUBECONFIG`, on a real
//! cluster, whose runner pods (image `STAMPEDE_E2E_IMAGE`) load the chart's demo server deployed
//! in each test's namespace. The scenarios of the operator issue: a 3-runner spike with a
//! synchronized start and exactly merged figures, a failing threshold gated by `stampede
//! wait`, an invalid spec, a killed runner, an operator restart mid-run (also one with lower
//! caps and another default image, which do not reach the started run), abortOnFail stopping
//! the fleet, and a spec edit starting a new run. The faults (killed, OOM-killed, stuck
//! runners) are injected through the process kubelet, so those tests skip on a real cluster.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use serde_json::json;
use stampede_crds::LoadTest;
use stampede_crds::status::Phase;
use stampede_runner::cluster::{RunnerReport, RunnerState};
use stampede_tests::browser::assert_renders;
use stampede_tests::stampede_bin;
use stampede_tests::world::{World, condition, health, phase, report_of, steady};

fn parse_time(text: &str) -> k8s_openapi::jiff::Timestamp {
    text.parse().unwrap()
}

/// The nearest-rank p95 of values with their counts.
fn nearest_rank_p95(mut samples: Vec<(f64, u64)>) -> f64 {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = samples.iter().map(|s| s.1).sum();
    let rank = ((0.95 * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (value, count) in samples {
        seen += count;
        if seen >= rank {
            return value;
        }
    }
    0.0
}

/// The p95 of every sample the runners recorded (their histograms' values pooled).
fn pooled_p95(reports: &[RunnerReport]) -> f64 {
    nearest_rank_p95(
        reports
            .iter()
            .filter_map(|r| {
                r.metrics
                    .as_ref()?
                    .trend("http_req_duration")
                    .map(|t| t.recorded())
            })
            .flatten()
            .collect(),
    )
}

/// The p95 of point `index` of the series, from every runner's samples of that interval
/// (their latency sketches' values pooled); none when no runner sent a request then.
fn pooled_point_p95(reports: &[RunnerReport], index: usize) -> Option<f64> {
    let samples: Vec<(f64, u64)> = reports
        .iter()
        .filter_map(|r| r.series.get(index)?.latency.as_ref())
        .flat_map(|sketch| sketch.values())
        .collect();
    (!samples.is_empty()).then(|| nearest_rank_p95(samples))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_runner_spike_starts_together_and_merges_exactly() {
    let world = World::start("spike", 60).await;
    world.apply(
        "spike",
        json!({
            "scenarios": {"spike": {"executor": "ramping-vus", "startVUs": 0, "flow": "browse",
                "stages": [{"duration": "2s", "target": 9}, {"duration": "2s", "target": 30}, {"duration": "2s", "target": 0}]}},
            "flows": {"browse": [
                {"name": "product", "request": {"url": "/v1/products/2"}, "checks": {"product ok": "status == 200"}},
                {"sleep": "10ms"},
            ]},
            "thresholds": {"http_req_duration": ["p(95)<2000"], "checks": ["rate>0.99"]},
            "runners": {"count": 3},
            "cleanup": "none",
        }),
    );
    world.kubectl_wait_complete("spike", "120s");
    let status = world.get("spike").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    assert_eq!(condition(&status, "Passed").0, "True");
    assert_eq!(status.runners.as_ref().unwrap().desired, 3);
    assert_eq!(health(&world, "spike").await.0, "Healthy");

    let reports = world.reports("spike", 1, 3).await;
    assert!(reports.iter().all(|r| r.state == RunnerState::Finished));
    // Every runner started within one second of the others.
    let starts: Vec<_> = reports
        .iter()
        .map(|r| parse_time(r.started_at.as_deref().expect("a start time")))
        .collect();
    let first = starts.iter().min().unwrap();
    let last = starts.iter().max().unwrap();
    let spread = last.duration_since(*first);
    assert!(
        spread.as_secs_f64() < 1.0,
        "runners started {spread:?} apart: {starts:?}"
    );
    // The merged count is the sum of the runners' counts, and each runner did part of it.
    let counts: Vec<f64> = reports
        .iter()
        .map(|r| r.metrics.as_ref().unwrap().count("http_reqs"))
        .collect();
    assert!(counts.iter().all(|c| *c > 0.0), "{counts:?}");
    let summary = status.summary.as_ref().unwrap();
    eprintln!(
        "start spread {:.1} ms; runner counts {counts:?}; merged {}; merged p95 {} ms vs pooled {} ms",
        spread.as_secs_f64() * 1000.0,
        summary.http_reqs,
        summary.duration_ms.p95,
        pooled_p95(&reports)
    );
    assert_eq!(summary.http_reqs as f64, counts.iter().sum::<f64>());
    // The merged p95 is the p95 of all samples, within histogram precision.
    let expected = pooled_p95(&reports);
    let p95 = summary.duration_ms.p95;
    assert!(
        (p95 - expected).abs() <= expected * 0.002 + 0.002,
        "merged p95 {p95} vs pooled {expected}"
    );
    assert_eq!(status.steps[0].name, "product");
    assert_eq!(status.steps[0].reqs, summary.http_reqs);
    // The full result is kept for `stampede report`.
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let result = maps.get("spike-result").await.unwrap().data.unwrap();
    assert!(result["summary.txt"].contains("http_req_duration"));
    let merged: stampede_runner::summary::Summary =
        serde_json::from_str(&result["result.json"]).unwrap();
    assert_eq!(merged.metrics.count("http_reqs") as i64, summary.http_reqs);
    assert!(!merged.series.is_empty());
    // The report's per-interval p95 is that of every runner's samples of the interval, not
    // the largest runner's.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("spike.html");
    std::fs::write(&page, &result["report.html"]).unwrap();
    let data = assert_renders(&page);
    let shown: Vec<Option<f64>> = serde_json::from_value(data["series"]["p95"].clone()).unwrap();
    assert_eq!(shown.len(), merged.series.len());
    let mut above_pooled = 0;
    for (index, shown) in shown.iter().enumerate() {
        let pooled = pooled_point_p95(&reports, index);
        assert_eq!(
            shown.map(|v| (v * 1e6).round()),
            pooled.map(|v| (v * 1e6).round()),
            "interval {index}: the report shows p95 {shown:?}, every sample's is {pooled:?}"
        );
        let largest = reports
            .iter()
            .filter_map(|r| r.series.get(index).filter(|p| p.requests > 0))
            .map(|p| p.p95_ms)
            .fold(0.0, f64::max);
        above_pooled += usize::from(pooled.is_some_and(|p| largest > p * 1.01));
    }
    eprintln!(
        "{} intervals: the largest runner's p95 was over the fleet's in {above_pooled}",
        shown.len()
    );
    // The operator's Events (written as events.k8s.io/v1) are what `kubectl describe` shows.
    let described =
        world
            .cluster
            .kubectl_ok(&["describe", "loadtest", "spike", "-n", &world.namespace]);
    let events = described.split("Events:").nth(1).unwrap_or_default();
    for reason in ["Provisioning", "Started", "Succeeded"] {
        assert!(events.contains(reason), "no {reason} Event:\n{described}");
    }
    // The operator's own telemetry.
    assert_eq!(world.operator.http_get("/healthz").map(|r| r.0), Some(200));
    assert_eq!(world.operator.http_get("/readyz").map(|r| r.0), Some(200));
    let (code, metrics) = world
        .operator
        .http_get("/metrics")
        .expect("/metrics answers");
    assert_eq!(code, 200);
    let reconciles = metrics
        .lines()
        .find(|l| l.starts_with("stampede_reconciles_total{result=\"ok\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(reconciles >= 3.0, "{metrics}");
    assert!(metrics.contains("stampede_loadtests{"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_threshold_fails_the_run_and_stampede_wait_exits_99() {
    let world = World::start("failing", 60).await;
    world.apply(
        "failing",
        steady(
            4,
            "2s",
            2,
            json!({"http_req_duration": ["p(95)<0.001"], "checks": ["rate>0.99"]}),
        ),
    );
    let output = Command::new(stampede_bin())
        .args([
            "wait",
            "failing",
            "-n",
            &world.namespace,
            "--timeout",
            "120s",
        ])
        .env("KUBECONFIG", world.cluster.kubeconfig())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(99),
        "stampede wait: {stdout}\n{}\noperator log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        world.operator.log()
    );
    let status = world.get("failing").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Failed);
    let (passed, reason, message) = condition(&status, "Passed");
    assert_eq!((passed, reason), ("False", "ThresholdsFailed"));
    let (health_status, health_message) = health(&world, "failing").await;
    assert_eq!(health_status, "Degraded");
    assert!(health_message.contains("p(95)"), "{health_message}");
    assert!(message.starts_with("http_req_duration p(95)="), "{message}");
    assert!(message.ends_with("want <0.001"), "{message}");
    let failed: Vec<_> = status.thresholds.iter().filter(|t| !t.ok).collect();
    assert_eq!(failed.len(), 1);
    // `stampede report` prints the merged k6-style summary from the result ConfigMap, and
    // writes the HTML report of the 2 runners' merged result.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("failing.html");
    let report = Command::new(stampede_bin())
        .args(["report", "failing", "-n", &world.namespace, "--html"])
        .arg(&page)
        .env("KUBECONFIG", world.cluster.kubeconfig())
        .output()
        .unwrap();
    let data = assert_renders(&page);
    assert_eq!(data["passed"], false);
    // The run's identity and both runners' parts, started together.
    assert_eq!(data["fleet"]["namespace"], world.namespace.as_str());
    assert_eq!(data["fleet"]["run"], 1);
    let runners = data["fleet"]["runners"].as_array().unwrap();
    assert_eq!(runners.len(), 2);
    let shares: f64 = runners.iter().filter_map(|r| r["share"].as_f64()).sum();
    assert!((shares - 1.0).abs() < 1e-9, "{runners:?}");
    let spread = data["fleet"]["startSpreadMs"].as_f64().unwrap();
    assert!(spread < 1000.0, "runners started {spread} ms apart");
    assert_eq!(
        data["headline"]["requests"].as_f64(),
        status.summary.as_ref().map(|s| s.http_reqs as f64)
    );
    // The operator kept the page of the same result in the result ConfigMap.
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let result = maps.get("failing-result").await.unwrap();
    let kept = result
        .data
        .as_ref()
        .and_then(|d| d.get("report.html"))
        .expect("report.html in the result ConfigMap");
    assert!(kept.contains("<strong>FAILED</strong>"));
    let requests = format!(
        "\"requests\":{:?}",
        data["headline"]["requests"].as_f64().unwrap()
    );
    assert!(kept.contains(&requests), "{requests}");
    let text = String::from_utf8_lossy(&report.stdout);
    assert_eq!(
        report.status.code(),
        Some(99),
        "{text}{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(text.contains("✗ 'p(95)<0.001'"), "{text}");
    assert!(text.contains("http_reqs"), "{text}");
    assert!(
        status
            .thresholds
            .iter()
            .any(|t| t.metric == "checks" && t.ok)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_is_invalid_and_creates_nothing() {
    let world = World::start("invalid", 60).await;
    let mut spec = steady(2, "2s", 1, json!({}));
    spec["scenarios"]["steady"]["flow"] = json!("checkout");
    world.apply("invalid", spec);
    world.kubectl_wait_complete("invalid", "60s");
    let status = world.get("invalid").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Invalid);
    assert_eq!(health(&world, "invalid").await.0, "Degraded");
    let (complete, reason, message) = condition(&status, "Complete");
    assert_eq!((complete, reason), ("True", "Invalid"));
    assert!(message.contains("spec.scenarios.steady.flow"), "{message}");
    assert_eq!(condition(&status, "Passed").0, "False");
    assert!(world.jobs().await.is_empty());
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let owned = maps
        .list(&ListParams::default().labels("stampede.dev/loadtest=invalid"))
        .await
        .unwrap();
    assert!(owned.items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runner_errors_the_run_with_the_reason() {
    let Some(world) = World::start_with_fault("killed", 60, "killing a runner", &[]).await else {
        return;
    };
    world.apply("killed", steady(2, "40s", 2, json!({})));
    world
        .wait_status("killed", Duration::from_secs(60), "Running", |s| {
            s.phase == Some(Phase::Running) && s.runners.as_ref().is_some_and(|r| r.running == 2)
        })
        .await;
    let pods: Api<Pod> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let victim = pods
        .list(&ListParams::default().labels("stampede.dev/loadtest=killed"))
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|p| {
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
                .is_some_and(|i| i == "1")
        })
        .expect("runner 1's pod");
    let name = victim.metadata.name.unwrap();
    assert_eq!(health(&world, "killed").await.0, "Progressing");
    let kubelet = world.cluster.kubelet().expect("the process kubelet");
    assert!(kubelet.faults().kill_pod(&world.namespace, &name));
    let status = world
        .wait_status("killed", Duration::from_secs(20), "Errored", |s| {
            s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Errored, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("runner 1") && message.contains("exit code 137"),
        "{message}"
    );
    assert_eq!(condition(&status, "Passed").1, "Errored");
    assert_eq!(health(&world, "killed").await.0, "Degraded");
    // The other runner stops too instead of loading on for 40 s.
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let finished = await_condition(maps, "killed-run1-report-0", |m: Option<&ConfigMap>| {
        report_of(m).is_some_and(|r| r.state == RunnerState::Finished)
    });
    let map = tokio::time::timeout(Duration::from_secs(20), finished)
        .await
        .expect("runner 0 stops")
        .unwrap();
    let survivor = report_of(map.as_ref()).unwrap();
    assert!(
        survivor.elapsed_seconds < 30.0,
        "{}",
        survivor.elapsed_seconds
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restarted_mid_run_completes_it_with_the_right_verdict() {
    let mut world = World::start("restart", 60).await;
    world.apply(
        "restart",
        steady(
            3,
            "8s",
            2,
            json!({"http_req_failed": ["rate<0.01"], "checks": ["rate>0.99"]}),
        ),
    );
    world.wait_running_with_progress("restart").await;
    world.operator.restart();
    world.kubectl_wait_complete("restart", "120s");
    let status = world.get("restart").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    assert_eq!(
        status.run,
        Some(1),
        "the restart resumed the run, it did not start another"
    );
    let reports = world.reports("restart", 1, 2).await;
    let sum: f64 = reports
        .iter()
        .map(|r| r.metrics.as_ref().unwrap().count("http_reqs"))
        .sum();
    assert_eq!(status.summary.as_ref().unwrap().http_reqs as f64, sum);
    assert!(
        world
            .operator
            .log()
            .matches("starting the controller")
            .count()
            >= 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restarted_with_lower_caps_finishes_the_running_test_as_planned() {
    let mut world = World::start("caps", 60).await;
    world.apply("caps", steady(4, "8s", 2, json!({"checks": ["rate>0.99"]})));
    let running = world.wait_running_with_progress("caps").await;
    assert_eq!(running.plan.as_ref().map(|p| p.runners), Some(2));
    assert_eq!(condition(&running, "Passed").0, "Unknown", "no verdict yet");
    // Caps the running test does not fit, and another default image.
    world.operator.restart_with(&[
        ("--max-runners", "1"),
        ("--max-vus-per-test", "1"),
        ("--runner-image", "ghcr.io/stampede-dev/stampede:other"),
    ]);
    world.kubectl_wait_complete("caps", "120s");
    let status = world.get("caps").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    assert_eq!(
        status.run,
        Some(1),
        "the same run, not a new or an invalid one"
    );
    assert_eq!(status.plan, running.plan, "the recorded plan, unchanged");
    assert_eq!(status.runners.as_ref().unwrap().desired, 2);
    let reports = world.reports("caps", 1, 2).await;
    let sum: f64 = reports
        .iter()
        .map(|r| r.metrics.as_ref().unwrap().count("http_reqs"))
        .sum();
    assert_eq!(status.summary.as_ref().unwrap().http_reqs as f64, sum);
    // Finished: the RPS column is the run's average.
    let summary = status.summary.as_ref().unwrap();
    let progress = status.progress.as_ref().unwrap();
    assert!(
        (progress.rps - summary.rps).abs() <= 0.051,
        "progress.rps {} vs summary.rps {}",
        progress.rps,
        summary.rps
    );
    let log = world.operator.log();
    assert!(
        log.contains("max_runners=1 "),
        "the restart took the new flags:\n{log}"
    );
    assert!(!log.contains("reason=Invalid"), "{log}");
    let images: Vec<String> = world
        .jobs()
        .await
        .iter()
        .filter_map(|job| {
            job.spec.as_ref()?.template.spec.as_ref()?.containers[0]
                .image
                .clone()
        })
        .collect();
    assert_eq!(images, [stampede_tests::cluster::runner_image()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_every_runner_early() {
    let world = World::start("abort", 60).await;
    world.apply(
        "abort",
        steady(
            2,
            "60s",
            2,
            json!({"http_req_duration": [{"threshold": "p(95)<0.001", "abortOnFail": true}]}),
        ),
    );
    world.kubectl_wait_complete("abort", "90s");
    let status = world.get("abort").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Aborted, "{status:?}");
    assert_eq!(condition(&status, "Passed").1, "ThresholdsFailed");
    assert!(status.thresholds.iter().any(|t| !t.ok));
    let reports = world.reports("abort", 1, 2).await;
    for report in &reports {
        assert_eq!(report.state, RunnerState::Finished);
        assert!(
            report.elapsed_seconds < 20.0,
            "runner {} ran {}s of 60s",
            report.runner,
            report.elapsed_seconds
        );
        assert!(
            report.aborted.is_some(),
            "runner {} says why it stopped",
            report.runner
        );
    }
    // `stampede wait` gates on it like a failed threshold.
    let output = Command::new(stampede_bin())
        .args(["wait", "abort", "-n", &world.namespace, "--timeout", "10s"])
        .env("KUBECONFIG", world.cluster.kubeconfig())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(99),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_edit_aborts_the_old_run_and_starts_a_new_one() {
    let world = World::start("edit", 60).await;
    world.apply("edit", steady(2, "60s", 1, json!({})));
    world
        .wait_status("edit", Duration::from_secs(60), "run 1 Running", |s| {
            s.phase == Some(Phase::Running) && s.run == Some(1)
        })
        .await;
    world.apply("edit", steady(2, "2s", 2, json!({"checks": ["rate>0.99"]})));
    let status = world
        .wait_status("edit", Duration::from_secs(90), "run 2 finished", |s| {
            s.run == Some(2) && s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.runners.as_ref().unwrap().desired, 2);
    let names: BTreeMap<String, ()> = world
        .jobs()
        .await
        .into_iter()
        .map(|j| (j.metadata.name.unwrap(), ()))
        .collect();
    assert!(
        !names.contains_key("edit-run1"),
        "the old run's Job is gone: {names:?}"
    );
    assert!(names.contains_key("edit-run2"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_runner_errors_the_run_with_oom_killed() {
    let Some(world) = World::start_with_fault("oom", 60, "an OOM kill", &[]).await else {
        return;
    };
    world.apply("oom", steady(2, "40s", 1, json!({})));
    world
        .wait_status("oom", Duration::from_secs(60), "Running", |s| {
            s.phase == Some(Phase::Running) && s.runners.as_ref().is_some_and(|r| r.running == 1)
        })
        .await;
    let pods: Api<Pod> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let pod = pods
        .list(&ListParams::default().labels("stampede.dev/loadtest=oom"))
        .await
        .unwrap()
        .items
        .remove(0);
    let kubelet = world.cluster.kubelet().expect("the process kubelet");
    assert!(
        kubelet
            .faults()
            .oom_kill_pod(&world.namespace, &pod.metadata.name.unwrap())
    );
    let status = world
        .wait_status("oom", Duration::from_secs(20), "finished", |s| {
            s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Errored);
    let (complete, reason, message) = condition(&status, "Complete");
    assert_eq!((complete, reason), ("True", "Errored"));
    assert!(
        message.contains("runner 0") && message.contains("OOMKilled"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_runners_error_the_run_at_the_start_deadline() {
    // A 4 s start deadline: unschedulable pods and unpullable images end the run soon after.
    let Some(world) = World::start_with_fault(
        "stuck",
        4,
        "an unschedulable Job and a failing image pull",
        &["--allowed-runner-images=ghcr.io/stampede-dev/stampede:*"],
    )
    .await
    else {
        return;
    };
    let kubelet = world.cluster.kubelet().expect("the process kubelet");
    kubelet.faults().unschedulable_job("nowhere-run1");
    let broken = "ghcr.io/stampede-dev/stampede:does-not-exist";
    kubelet.faults().fail_image_pull(broken);
    world.apply("nowhere", steady(1, "5s", 2, json!({})));
    let mut spec = steady(1, "5s", 1, json!({}));
    spec["runners"]["image"] = json!(broken);
    world.apply("unpullable", spec);
    for (name, reason) in [
        ("nowhere", "is unschedulable"),
        ("unpullable", "cannot start: ImagePullBackOff"),
    ] {
        let status = world
            .wait_status(name, Duration::from_secs(30), "finished", |s| {
                s.phase.is_some_and(Phase::is_finished)
            })
            .await;
        assert_eq!(phase(&status), Phase::Errored, "{name}: {status:?}");
        let message = status.message.clone().unwrap_or_default();
        assert!(
            message.contains("start deadline of 4s"),
            "{name}: {message}"
        );
        assert!(message.contains(reason), "{name}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_and_teardown_run_once_per_test_with_secret_env_and_configmap_data() {
    let world = World::start_with_operator_args(
        "seed",
        60,
        &[
            "--allowed-secrets=shop-user",
            "--allowed-config-maps=test-users",
        ],
    )
    .await;
    world.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "shop-user",
        "-n",
        &world.namespace,
        "--from-literal=password=s3cret-pw",
    ]);
    world.cluster.kubectl_ok(&[
        "create",
        "configmap",
        "test-users",
        "-n",
        &world.namespace,
        "--from-literal=users.csv=username\nuser-a\nuser-b\nuser-c\nuser-d\n",
    ]);
    world.apply(
        "seed",
        json!({
            "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "shop-user", "key": "password"}}}],
            "data": {"users": {"configMapRef": {"name": "test-users", "key": "users.csv"}, "select": "sequential"}},
            "setup": [{"name": "issue-token",
                "request": {"method": "POST", "url": "/auth/token", "json": {"username": "admin", "password": "${env.PASSWORD}"}},
                "capture": {"token": {"json": "$.token"}}}],
            "teardown": [{"name": "reset", "request": {"method": "POST", "url": "/anything/reset",
                "headers": {"Authorization": "Bearer ${setup.token}"}}}],
            "scenarios": {"shop": {"executor": "per-vu-iterations", "vus": 2, "iterations": 5, "flow": "shop"}},
            "flows": {"shop": [
                {"name": "whoami", "request": {"url": "/get?user=${data.users.username}",
                    "headers": {"Authorization": "Bearer ${setup.token}", "X-Password": "${env.PASSWORD}"}},
                 "checks": {"user from the ConfigMap": "body contains \"user-\"",
                            "token from setup": "body contains \"${setup.token}\"",
                            "password from the Secret": "body contains \"${env.PASSWORD}\""}},
            ]},
            "thresholds": {"checks": ["rate==1"]},
            "runners": {"count": 2},
        }),
    );
    world.kubectl_wait_complete("seed", "120s");
    let status = world.get("seed").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    let summary = status.summary.as_ref().unwrap();
    // 2 runners × 1 VU × 5 iterations, every check true.
    assert_eq!(summary.checks.passes, 30);
    assert_eq!(summary.checks.fails, 0);
    // The demo server's own count of what reached it.
    match world.demo.stats() {
        Some(stats) => {
            assert_eq!(
                stats.by_route.get("POST /auth/token"),
                Some(&1),
                "setup once per test"
            );
            assert_eq!(
                stats.by_route.get("ANY /anything"),
                Some(&1),
                "teardown once per test"
            );
            assert_eq!(stats.by_route.get("GET /get"), Some(&10));
        }
        None => eprintln!(
            "not checked on a real cluster: the demo server's request counts (setup and \
             teardown once per test), which it keeps in memory and serves no endpoint for"
        ),
    }
    // The default cleanup removed the runners' Job and reports; the result stays.
    assert!(world.jobs().await.is_empty());
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, &world.namespace);
    assert!(maps.get_opt("seed-run1-report-0").await.unwrap().is_none());
    assert!(maps.get_opt("seed-result").await.unwrap().is_some());
    // No secret in the status or the Events.
    let everything = world.cluster.kubectl_ok(&[
        "get",
        "loadtest,events",
        "-n",
        &world.namespace,
        "-o",
        "yaml",
    ]);
    assert!(!everything.contains("s3cret-pw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_loadtest_stops_its_runners_and_a_ttl_deletes_a_finished_one() {
    let world = World::start("delete", 60).await;
    world.apply("long", steady(2, "60s", 2, json!({})));
    let mut short = steady(1, "1s", 1, json!({}));
    short["ttlSecondsAfterFinished"] = json!(2);
    world.apply("short", short);
    world
        .wait_status("long", Duration::from_secs(60), "Running", |s| {
            s.phase == Some(Phase::Running) && s.runners.as_ref().is_some_and(|r| r.running == 2)
        })
        .await;
    world.cluster.kubectl_ok(&[
        "delete",
        "loadtest",
        "long",
        "-n",
        &world.namespace,
        "--wait=false",
    ]);
    let pods: Api<Pod> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let gone = tokio::time::timeout(Duration::from_secs(45), async {
        loop {
            let left = pods
                .list(&ListParams::default().labels("stampede.dev/loadtest=long"))
                .await
                .unwrap()
                .items;
            if left.is_empty() {
                return;
            }
            let name = left[0].metadata.name.clone().unwrap();
            let uid = left[0].metadata.uid.clone().unwrap();
            let watch = await_condition(
                pods.clone(),
                &name,
                kube::runtime::conditions::is_deleted(&uid),
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), watch).await;
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "the runner pods of a deleted LoadTest stay:\n{}",
        world.operator.log()
    );
    let jobs: Vec<String> = world
        .jobs()
        .await
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect();
    assert!(!jobs.iter().any(|j| j.starts_with("long-")), "{jobs:?}");
    // The short one finished and its TTL removed it.
    let tests = world.tests().await;
    let deleted = await_condition(tests, "short", |t: Option<&LoadTest>| t.is_none());
    tokio::time::timeout(Duration::from_secs(60), deleted)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the TTL did not delete the LoadTest:\n{}",
                world.operator.log()
            )
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_that_cannot_prepare_errors_the_run_with_its_own_reason() {
    let world =
        World::start_with_operator_args("prepare", 60, &["--allowed-config-maps=no-such-*"]).await;
    let mut spec = steady(1, "5s", 2, json!({}));
    spec["data"] =
        json!({"users": {"configMapRef": {"name": "no-such-users", "key": "users.csv"}}});
    spec["flows"]["browse"][0]["request"]["url"] = json!("/get?user=${data.users.username}");
    world.apply("prepare", spec);
    world.kubectl_wait_complete("prepare", "60s");
    let status = world.get("prepare").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Errored, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("spec.data.users.configMapRef") && message.contains("no-such-users"),
        "{message}"
    );
    assert!(status.thresholds.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loadtest_with_a_long_name_runs_with_valid_labels() {
    let world = World::start("long", 60).await;
    // A valid LoadTest name (a DNS subdomain) longer than a label value may be (63).
    let name = format!("checkout-{}-soak", "x".repeat(60));
    world.apply(&name, steady(1, "2s", 2, json!({})));
    world.kubectl_wait_complete(&name, "60s");
    let status = world.get(&name).await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    assert!(status.summary.as_ref().unwrap().http_reqs > 0);
    // Every object the operator made carries a label value an API server accepts.
    let jobs = world.jobs().await;
    assert_eq!(jobs.len(), 1);
    let label = jobs[0].metadata.labels.as_ref().unwrap()["stampede.dev/loadtest"].clone();
    assert!(
        label.len() <= 63 && label.starts_with("checkout-x"),
        "{label}"
    );
}
