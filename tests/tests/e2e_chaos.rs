//! Chaos that loses nothing, end to end on the stand-in (faults injected at its HTTP edge and
//! through its process kubelet, so every test skips on a real cluster): an API server outage of
//! 30 s over the end of a run, watch streams cut every 700 ms, write conflicts on a report and
//! on the status, corrupted and hostile reports, the operator killed between a run's result and
//! its verdict, two of three runners lost, a target that never answers, and the worst manifests
//! beside a valid test. Each ends with the right verdict and the figures the target counted.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};
use stampede_crds::status::{LoadTestStatus, Phase};
use stampede_runner::cluster::REPORT_KEY;
use stampede_tests::apiserver::ApiServer;
use stampede_tests::world::{World, condition, phase, steady};

/// The world of a chaos test: None (skipped) on a real cluster, whose API server and kubelets
/// take no injected faults.
async fn chaos_world(prefix: &str, what: &str) -> Option<World> {
    World::start_with_fault(prefix, 60, what, &[]).await
}

fn stand_in(world: &World) -> &ApiServer {
    world.cluster.stand_in().expect("the stand-in")
}

/// The requests the demo target served on the products route the `steady` flow loads.
fn served(world: &World) -> u64 {
    let stats = world.demo.stats().expect("the in-process demo target");
    stats
        .by_route
        .get("GET /v1/products/{id}")
        .copied()
        .unwrap_or(0)
}

/// The requests the status's summary counts.
fn counted(status: &LoadTestStatus) -> u64 {
    status
        .summary
        .as_ref()
        .map_or(0, |s| u64::try_from(s.http_reqs).unwrap_or(0))
}

/// `http_reqs` of the run's result ConfigMap (the k6-style export in it).
async fn result_requests(world: &World, name: &str) -> u64 {
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let map = maps.get(&format!("{name}-result")).await.unwrap();
    let export = map
        .data
        .unwrap_or_default()
        .remove("summary-export.json")
        .expect("the k6-style export");
    let export: Value = serde_json::from_str(&export).unwrap();
    export["metrics"]["http_reqs"]["values"]["count"]
        .as_f64()
        .unwrap_or_else(|| panic!("no http_reqs count in {export}")) as u64
}

/// Waits (bounded) until the operator's log says `what` at least `times` times.
async fn wait_log(world: &World, what: &str, times: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while world.operator.log().matches(what).count() < times {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the operator did not log {what:?} {times} time(s):\n{}",
            world.operator.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The operator process started once and still serves: nothing crashed it.
fn assert_never_restarted(world: &World) {
    let log = world.operator.log();
    assert_eq!(
        log.matches("starting the controller").count(),
        1,
        "the operator restarted:\n{log}"
    );
    let ready = world.operator.http_get("/readyz").map(|(code, _)| code);
    assert_eq!(ready, Some(200), "/readyz of the operator:\n{log}");
}

/// Ends `name` Succeeded on the first run, and checks every figure against the target's count.
async fn assert_nothing_lost(world: &World, name: &str) -> LoadTestStatus {
    world.kubectl_wait_complete(name, "180s");
    let status = world.get(name).await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    assert_eq!(status.run, Some(1), "no second run was started");
    let served = served(world);
    assert!(served > 0);
    assert_eq!(
        counted(&status),
        served,
        "the status counts what the target served"
    );
    assert_eq!(
        result_requests(world, name).await,
        served,
        "and so does the result"
    );
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_of_30s_over_the_end_of_a_run_loses_nothing() {
    let Some(world) = chaos_world("outage", "an API server outage").await else {
        return;
    };
    let gates = json!({"http_req_failed": ["rate<0.01"], "checks": ["rate>0.99"]});
    world.apply("outage", steady(2, "10s", 2, gates));
    world.wait_running_with_progress("outage").await;
    let chaos = stand_in(&world).chaos();
    chaos.set_outage(true);
    // The outage itself: 30 s of 503s to the operator, the runners and the kubelet, over the
    // run's planned end, so the runners' final reports wait for the API server to return.
    tokio::time::sleep(Duration::from_secs(30)).await;
    chaos.set_outage(false);
    let back = std::time::Instant::now();
    let status = assert_nothing_lost(&world, "outage").await;
    eprintln!(
        "verdict {:.1} s after the API server came back",
        back.elapsed().as_secs_f64()
    );
    assert_eq!(condition(&status, "Passed").0, "True");
    assert_never_restarted(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_cut_every_700ms_lose_nothing() {
    let Some(world) = chaos_world("cuts", "watch cuts").await else {
        return;
    };
    world.apply("cuts", steady(2, "8s", 2, json!({"checks": ["rate>0.99"]})));
    let chaos = stand_in(&world).chaos();
    let finished = world.wait_status("cuts", Duration::from_secs(120), "finished", |s| {
        s.phase.is_some_and(Phase::is_finished)
    });
    tokio::pin!(finished);
    let mut ticker = tokio::time::interval(Duration::from_millis(700));
    let mut cuts = 0;
    loop {
        tokio::select! {
            _ = &mut finished => break,
            _ = ticker.tick() => {
                chaos.cut_watches();
                cuts += 1;
            }
        }
    }
    assert!(cuts >= 10, "only {cuts} cuts");
    assert_nothing_lost(&world, "cuts").await;
    assert_never_restarted(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_conflicts_on_a_report_and_the_status_are_retried() {
    let Some(world) = chaos_world("conflict", "write conflicts").await else {
        return;
    };
    world.apply(
        "conflict",
        steady(2, "6s", 2, json!({"checks": ["rate>0.99"]})),
    );
    world.wait_running_with_progress("conflict").await;
    let chaos = stand_in(&world).chaos();
    let report = "/configmaps/conflict-run1-report-0";
    let status = "/loadtests/conflict/status";
    chaos.fail_writes(report, 409, Some(3));
    chaos.fail_writes(status, 409, Some(3));
    assert_nothing_lost(&world, "conflict").await;
    assert_eq!(chaos.write_fault_hits(report), 3, "every conflict was met");
    assert_eq!(chaos.write_fault_hits(status), 3, "every conflict was met");
    assert_never_restarted(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_and_hostile_reports_are_refused_and_replaced() {
    let Some(world) = chaos_world("corrupt", "corrupted reports").await else {
        return;
    };
    world.apply(
        "corrupt",
        steady(2, "15s", 2, json!({"checks": ["rate>0.99"]})),
    );
    world.wait_running_with_progress("corrupt").await;
    let chaos = stand_in(&world).chaos();
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let name = "corrupt-run1-report-1";
    // A trend whose 40-byte histogram declares a 4 GiB payload: decoded naively, it would
    // allocate before reading.
    let mut header = Vec::new();
    header.extend(0x1c84_9313u32.to_be_bytes());
    header.extend(u32::MAX.to_be_bytes());
    header.extend(0u32.to_be_bytes());
    header.extend(3u32.to_be_bytes());
    header.extend(1u64.to_be_bytes());
    header.extend(2u64.to_be_bytes());
    header.extend(1.0f64.to_be_bytes());
    use base64::Engine as _;
    let hdr = base64::engine::general_purpose::STANDARD.encode(&header);
    let hostile = format!(
        r#"{{"run":1,"runner":1,"state":"Finished","metrics":{{"http_req_duration":{{"type":"trend","count":1,"sum":1.0,"hdr":"{hdr}"}}}}}}"#
    );
    let truncated = r#"{"run":1,"runner":1,"state":"Fin"#.to_string();
    for (round, text) in [truncated, hostile].into_iter().enumerate() {
        // The runner's own writes (patches) wait while the bad report stands, so the operator
        // reads it; the test replaces the report with a PUT.
        chaos.fail_patches(name, 500, None);
        let mut map = maps.get(name).await.unwrap();
        map.data
            .get_or_insert_default()
            .insert(REPORT_KEY.into(), text);
        maps.replace(name, &PostParams::default(), &map)
            .await
            .unwrap();
        wait_log(&world, "unreadable report", round + 1).await;
        chaos.clear_write_faults();
    }
    assert!(
        chaos.write_fault_hits(name) >= 1,
        "the runner tried to write meanwhile"
    );
    assert_nothing_lost(&world, "corrupt").await;
    assert_never_restarted(&world);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_between_the_result_and_the_verdict_ends_consistent() {
    let Some(mut world) = chaos_world("finish", "a refused status write").await else {
        return;
    };
    world.apply(
        "finish",
        steady(2, "4s", 2, json!({"checks": ["rate>0.99"]})),
    );
    world.wait_running_with_progress("finish").await;
    let chaos = stand_in(&world).chaos();
    let status_path = "/loadtests/finish/status";
    chaos.fail_writes(status_path, 500, None);
    // The result is written first; the verdict that points at it is refused.
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let written = await_condition(maps, "finish-result", |m: Option<&ConfigMap>| m.is_some());
    tokio::time::timeout(Duration::from_secs(60), written)
        .await
        .expect("the result ConfigMap is written")
        .unwrap();
    wait_log(&world, "writing the LoadTest status", 1).await;
    assert_eq!(
        phase(&world.get("finish").await.status.unwrap()),
        Phase::Running,
        "no verdict reached the API server"
    );
    world.operator.kill();
    let chaos = stand_in(&world).chaos();
    chaos.clear_write_faults();
    assert!(chaos.write_fault_hits(status_path) >= 1);
    world.operator.restart();
    let status = assert_nothing_lost(&world, "finish").await;
    assert_eq!(
        status.result_ref.as_ref().map(|r| r.config_map.as_str()),
        Some("finish-result")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_runners_lost_error_the_run_and_keep_partial_results() {
    let Some(world) = chaos_world("lost", "killing runners").await else {
        return;
    };
    world.apply(
        "lost",
        steady(3, "40s", 3, json!({"checks": ["rate>0.99"]})),
    );
    world.wait_running_with_progress("lost").await;
    let pods: Api<Pod> = Api::namespaced(world.cluster.client().await, &world.namespace);
    let runner_pods = pods
        .list(&ListParams::default().labels("stampede.dev/loadtest=lost"))
        .await
        .unwrap()
        .items;
    let index = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
            .cloned()
            .unwrap_or_default()
    };
    // Two runners killed back to back (a node lost under them). The run's Job fails with the
    // first, which stops the rest: the operator names the loss it sees (both when it sees both,
    // as the unit test of the state machine shows) and keeps what the fleet measured.
    let kubelet = world.cluster.kubelet().expect("the process kubelet");
    let victims: Vec<String> = runner_pods
        .iter()
        .filter(|p| index(p) != "0")
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(victims.len(), 2);
    for victim in &victims {
        assert!(kubelet.faults().kill_pod(&world.namespace, victim));
    }
    let status = world
        .wait_status("lost", Duration::from_secs(60), "Errored", |s| {
            s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Errored, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        (message.starts_with("runner 1")
            || message.starts_with("runner 2")
            || message.starts_with("2 of 3 runners lost: runner 1"))
            && message.contains("exit code 137"),
        "{message}"
    );
    assert_eq!(condition(&status, "Passed").1, "Errored");
    let partial = counted(&status);
    assert!(partial > 0, "the partial figures are kept: {status:?}");
    assert_eq!(result_requests(&world, "lost").await, partial);
    assert!(partial <= served(&world));
    assert_never_restarted(&world);
}

/// A loopback server that accepts connections and never answers, until dropped.
struct Silent {
    address: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Silent {
    async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Silent { address, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_fails_the_run_in_a_cluster() {
    let Some(world) = chaos_world("dead", "a silent target on the test's loopback").await else {
        return;
    };
    let silent = Silent::start().await;
    let spec = json!({
        "scenarios": {"s": {"executor": "constant-vus", "vus": 1, "duration": "2s", "gracefulStop": "1s"}},
        "flows": {"default": [{"name": "home", "request": {"url": "/"}, "checks": {"ok": "status == 200"}}]},
        "thresholds": {
            "http_req_failed": ["rate<0.01"],
            "http_req_duration": ["p(95)<500"],
            "checks": ["rate>0.99"],
        },
        "runners": {"count": 1},
    });
    world.apply_to("dead", spec, &format!("http://{}", silent.address));
    world.kubectl_wait_complete("dead", "120s");
    let status = world.get("dead").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Failed, "{status:?}");
    assert_eq!(condition(&status, "Passed").1, "ThresholdsFailed");
    assert_eq!(
        counted(&status),
        1,
        "the request the hard stop cut is counted"
    );
    let failed: Vec<&str> = status
        .thresholds
        .iter()
        .filter(|t| !t.ok)
        .map(|t| t.metric.as_str())
        .collect();
    for metric in ["http_req_failed", "http_req_duration", "checks"] {
        assert!(failed.contains(&metric), "{metric} must fail: {failed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_manifests_leave_the_operator_running_a_valid_test_beside_them() {
    let Some(world) = chaos_world("worst", "the operator's restarts are watched").await else {
        return;
    };
    let capture = |path: String| {
        json!({
            "flows": {"default": [{"name": "home", "request": {"url": "/v1/products/1"}, "capture": {"x": {"json": path}}}]},
            "scenarios": {"s": {"executor": "shared-iterations", "vus": 1, "iterations": 1}},
        })
    };
    let ramp = |start: u64, target: u64| {
        json!({
            "flows": {"default": [{"name": "home", "request": {"url": "/v1/products/1"}}]},
            "scenarios": {"s": {"executor": "ramping-vus", "startVUs": start, "stages": [{"duration": "4s", "target": target}]}},
        })
    };
    let hostile = [
        // Exponential (depth 24) and stack-overflowing (depth 1 500 within maxLength) JSONPaths.
        ("jsonpath-deep", capture(format!("${}", "[?(@".repeat(24)))),
        (
            "jsonpath-deeper",
            capture(format!("${}", "[?(@".repeat(250))),
        ),
        ("jsonpath-escape", capture("$.s['\\u".to_string())),
        // Over the operator's default cap of 100 000 VUs per test.
        ("ramp-over-cap", ramp(0, 200_000)),
        ("start-huge", ramp(i64::MAX as u64, 1)),
    ];
    for (name, spec) in &hostile {
        world.apply(name, spec.clone());
    }
    // A valid test with a TTL at the end of time finishes beside them.
    let mut valid = steady(2, "3s", 2, json!({"checks": ["rate>0.99"]}));
    valid["ttlSecondsAfterFinished"] = json!(i64::MAX);
    world.apply("valid", valid);
    for (name, _) in &hostile {
        let status = world
            .wait_status(name, Duration::from_secs(60), "Invalid", |s| {
                s.phase.is_some_and(Phase::is_finished)
            })
            .await;
        assert_eq!(phase(&status), Phase::Invalid, "{name}: {status:?}");
        let message = status.message.unwrap_or_default();
        assert!(message.contains("spec"), "{name}: {message}");
    }
    world.kubectl_wait_complete("valid", "120s");
    let status = world.get("valid").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    assert_eq!(counted(&status), served(&world));
    assert_never_restarted(&world);
}
