//! Size budgets at 100 runners: the LoadTest object with its final status stays under 64 KiB
//! and every runner report under 256 KiB, measured on what a heavy 1-hour soak produces.
//!
//! Nothing runs: the reports are built as the agent builds its final one — the engine's series
//! (every step, check, group and threshold sub-metric), filled through the engine's recorder
//! with a wide spread of latencies, and the per-second series downsampled — then read back from
//! their JSON by the operator's state machine, whose final status goes into the LoadTest.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value as Json, json};
use stampede_crds::LoadTest;
use stampede_crds::model::flow::FlowNames;
use stampede_crds::status::{LoadTestStatus, Phase};
use stampede_operator::advance::{self, Observation};
use stampede_operator::compiled::compile_started;
use stampede_operator::desired;
use stampede_operator::plan::plan;
use stampede_operator::policy::Policy;
use stampede_operator::runner_policy::{Pattern, RunnerPolicy};
use stampede_runner::cluster::{
    RunId, RunnerReport, RunnerState, SetupKey, downsample, seal_setup, series_width,
};
use stampede_runner::engine::{PreparedRun, RunOptions};
use stampede_runner::html_report::render_html;
use stampede_runner::metrics::errors::{ErrorRow, MAX_ERROR_ROWS};
use stampede_runner::metrics::recorder::{HttpFigures, flush_current_thread};
use stampede_runner::metrics::sketch::LatencySketch;
use stampede_runner::metrics::{Metric, Registry, SampleTags, Shards, Snapshot};
use stampede_runner::summary::SecondPoint;

const RUNNERS: u64 = 100;
/// The design's budget for the LoadTest object (every runner and `kubectl get -w` watches it).
const LOADTEST_BUDGET: usize = 64 * 1024;
/// The design's budget for one runner's report ConfigMap value.
const REPORT_BUDGET: usize = 256 * 1024;
/// A 1-hour soak.
const SOAK_SECONDS: u64 = 3600;
/// Requests one runner sends in the soak (~55 req/s), recorded once and shared by all runners.
/// The reports grow with it (more histogram buckets filled, larger counts): with deflated
/// histograms they measured 128 KB here and 216 KB at 2 000 000 (~550 req/s per runner for an
/// hour); uncompressed they were 187 KB and 326 KB (over the budget).
const REQUESTS_PER_RUNNER: u64 = 200_000;
/// Requests recorded on top for each runner, so no two reports are alike.
const OWN_REQUESTS: u64 = 500;
/// Shortest and longest latency drawn, ms: histograms as wide as a real soak's.
const FASTEST_MS: f64 = 0.5;
const SLOWEST_MS: f64 = 5000.0;
/// Seconds since the epoch when the run starts (a whole second).
const T0: i64 = 1_796_000_000;

/// A login → search → product → add-to-cart → buy shop, as the seed scenarios are written.
fn manifest() -> Json {
    let users: Vec<Json> = (1..=40)
        .map(|i| json!({"username": format!("soak-user-{i:03}"), "cardId": format!("card-{:06}", 100_000 + i * 7)}))
        .collect();
    let check = |name: &str| {
        Json::Object(serde_json::Map::from_iter([(
            name.to_string(),
            json!("status == 200"),
        )]))
    };
    json!({
        "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
        "metadata": {
            "name": "shop-checkout-soak", "namespace": "shop",
            "labels": {"app.kubernetes.io/part-of": "shop", "team": "checkout", "test-type": "soak"},
        },
        "spec": {
            "defaults": {
                "baseUrl": "${env.BASE_URL}",
                "timeout": "10s",
                "headers": {"Accept": "application/json", "X-Load-Test": "shop-checkout-soak"},
                "userAgent": "stampede (shop checkout soak)",
                "expectedStatuses": ["200-299", 409],
            },
            "env": [
                {"name": "BASE_URL", "value": "https://shop.staging.example.com"},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "shop-soak-users", "key": "password"}}},
                {"name": "ADMIN_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "shop-soak-users", "key": "admin-password"}}},
            ],
            "tags": {"team": "checkout", "env": "staging"},
            "data": {
                "users": {"select": "random", "rows": users},
                "queries": {"select": "sequential", "csv": "query,category\nrunning shoes,sport\nrain jacket,outdoor\ncoffee grinder,kitchen\nusb-c cable,electronics\ndesk lamp,home\nyoga mat,sport\nbackpack,outdoor\n"},
            },
            "setup": [{
                "name": "admin-token",
                "request": {"method": "POST", "url": "/auth/token",
                    "json": {"username": "soak-admin", "password": "${env.ADMIN_PASSWORD}"}},
                "checks": check("admin token issued"),
                "capture": {"adminToken": {"json": "$.token"}},
            }],
            "flows": {
                "shop": [
                    {"group": "auth", "steps": [{
                        "name": "login",
                        "request": {"method": "POST", "url": "/api/login",
                            "json": {"username": "${data.users.username}", "password": "${env.PASSWORD}"}},
                        "checks": {"login status is 200": "status == 200", "session returned": "json(\"$.session_id\") != null"},
                        "capture": {"session": {"json": "$.session_id"}, "csrf": {"header": "X-CSRF-Token", "optional": true, "default": "none"}},
                    }]},
                    {"group": "browse", "steps": [
                        {
                            "name": "search",
                            "request": {"method": "GET", "url": "/api/products",
                                "query": {"q": "${data.queries.query}", "category": "${data.queries.category}", "limit": "20"},
                                "headers": {"Cookie": "session_id=${session}"}},
                            "checks": {"search status is 200": "status == 200", "search has results": "json(\"$.items[0].id\") != null"},
                            "capture": {"productId": {"json": "$.items[0].id"}},
                        },
                        {
                            "name": "product",
                            "request": {"method": "GET", "url": "/api/products/${productId}",
                                "headers": {"Cookie": "session_id=${session}"}},
                            "checks": check("product status is 200"),
                        },
                    ]},
                    {"group": "checkout", "steps": [
                        {
                            "name": "add-to-cart",
                            "request": {"method": "POST", "url": "/api/cart/items",
                                "headers": {"Cookie": "session_id=${session}", "X-CSRF-Token": "${csrf}"},
                                "json": {"productId": "${productId}", "quantity": 1}},
                            "checks": check("cart updated"),
                        },
                        {
                            "name": "buy",
                            "request": {"method": "POST", "url": "/api/orders",
                                "headers": {"Cookie": "session_id=${session}", "X-CSRF-Token": "${csrf}"},
                                "json": {"cardId": "${data.users.cardId}", "items": [{"productId": "${productId}", "quantity": 1}]}},
                            "checks": {"order placed": "status in [200, 201]", "order id returned": "json(\"$.orderId\") != null"},
                            "capture": {"orderId": {"json": "$.orderId"}},
                        },
                    ]},
                    {"sleep": {"min": "1s", "max": "3s"}},
                ],
                "browse": [
                    {"group": "auth", "steps": [{
                        "name": "login",
                        "request": {"method": "POST", "url": "/api/login",
                            "json": {"username": "${data.users.username}", "password": "${env.PASSWORD}"}},
                        "checks": {"login status is 200": "status == 200"},
                        "capture": {"session": {"json": "$.session_id"}},
                    }]},
                    {"group": "browse", "steps": [{
                        "name": "search",
                        "request": {"method": "GET", "url": "/api/products",
                            "query": {"q": "${data.queries.query}"},
                            "headers": {"Cookie": "session_id=${session}"}},
                        "checks": check("search status is 200"),
                    }]},
                    {"sleep": "2s"},
                ],
            },
            "scenarios": {
                "browsers": {"executor": "constant-vus", "vus": 2000, "duration": "1h",
                    "flow": "browse", "tags": {"journey": "browse"}},
                "buyers": {"executor": "constant-arrival-rate", "rate": 50, "timeUnit": "1s",
                    "duration": "1h", "preAllocatedVUs": 200, "maxVUs": 1000,
                    "flow": "shop", "tags": {"journey": "buy"}},
                "lunch-peak": {"executor": "ramping-arrival-rate", "startTime": "20m",
                    "startRate": 10, "timeUnit": "1s", "preAllocatedVUs": 100, "maxVUs": 2000,
                    "stages": [
                        {"duration": "10m", "target": 200},
                        {"duration": "10m", "target": 200},
                        {"duration": "10m", "target": 0},
                    ],
                    "flow": "shop", "tags": {"journey": "buy"}},
            },
            "thresholds": {
                "http_req_duration": ["p(95)<500",
                    {"threshold": "p(99)<1500", "abortOnFail": true, "delayAbortEval": "5m"}],
                "http_req_duration{name:login}": ["p(95)<300"],
                "http_req_duration{name:buy}": ["avg<800", "p(99)<2000"],
                "http_req_failed": ["rate<0.01"],
                "http_req_failed{scenario:buyers}": ["rate<0.005"],
                "checks": ["rate>0.99"],
            },
            "runners": {"count": RUNNERS, "resources": {
                "requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}},
            "ttlSecondsAfterFinished": 604_800,
        }
    })
}

/// SplitMix64: a deterministic pseudo-random sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in [low, high).
    fn log_uniform(&mut self, low: f64, high: f64) -> f64 {
        low * (high / low).powf(self.unit())
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }

    /// A request latency around `median` ms: log-normal, with a tail over the whole range.
    fn latency(&mut self, median: f64) -> f64 {
        let ms = if self.unit() < 0.03 {
            self.log_uniform(FASTEST_MS, SLOWEST_MS)
        } else {
            median * (0.7 * self.normal()).exp()
        };
        ms.clamp(FASTEST_MS, SLOWEST_MS)
    }
}

/// The series the engine registers for `test` (the root metrics, per-step http_reqs /
/// http_req_failed / http_req_duration, per-check checks, per-group group_duration, and the
/// thresholds' series) and the names of its flows.
fn engine_registry(test: &LoadTest) -> (Registry, FlowNames) {
    let compiled =
        stampede_crds::model::compile(test, &Default::default()).expect("the test compiles");
    (Registry::for_test(&compiled), compiled.flows.names())
}

/// One step of an iteration: its name, group, method, median latency and checks.
struct StepModel {
    name: &'static str,
    group: &'static str,
    method: &'static str,
    median_ms: f64,
    checks: &'static [&'static str],
}

const SHOP: [StepModel; 5] = [
    StepModel {
        name: "login",
        group: "::auth",
        method: "POST",
        median_ms: 90.0,
        checks: &["login status is 200", "session returned"],
    },
    StepModel {
        name: "search",
        group: "::browse",
        method: "GET",
        median_ms: 140.0,
        checks: &["search status is 200", "search has results"],
    },
    StepModel {
        name: "product",
        group: "::browse",
        method: "GET",
        median_ms: 45.0,
        checks: &["product status is 200"],
    },
    StepModel {
        name: "add-to-cart",
        group: "::checkout",
        method: "POST",
        median_ms: 70.0,
        checks: &["cart updated"],
    },
    StepModel {
        name: "buy",
        group: "::checkout",
        method: "POST",
        median_ms: 260.0,
        checks: &["order placed", "order id returned"],
    },
];

/// Records `requests` requests of soak traffic through the engine's recorder (iterations of
/// the three scenarios, with checks, groups, phases, bytes and a few failures) and returns the
/// cumulative snapshot.
fn soak_snapshot(registry: &Registry, requests: u64, seed: u64) -> Snapshot {
    let shards = Shards::new(std::sync::Arc::new(registry.clone()));
    let recorder = shards.recorder();
    let mut rng = Rng(seed);
    let mut sent = 0;
    while sent < requests {
        let (scenario, journey, steps) = match rng.next() % 10 {
            0..=3 => ("browsers", "browse", &SHOP[..2]),
            4..=7 => ("buyers", "buy", &SHOP[..]),
            _ => ("lunch-peak", "buy", &SHOP[..]),
        };
        let custom = vec![
            ("env".to_string(), "staging".to_string()),
            ("journey".to_string(), journey.to_string()),
            ("team".to_string(), "checkout".to_string()),
        ];
        let mut iteration_ms = 0.0;
        let mut group_ms: BTreeMap<&str, f64> = BTreeMap::new();
        for step in steps {
            let duration = rng.latency(step.median_ms);
            let new_connection = rng.unit() < 0.002;
            let (blocked, connecting, tls) = if new_connection {
                (
                    rng.log_uniform(1.0, 40.0),
                    rng.log_uniform(0.3, 15.0),
                    rng.log_uniform(3.0, 60.0),
                )
            } else {
                (rng.log_uniform(0.001, 0.02), 0.0, 0.0)
            };
            let sending = rng.log_uniform(0.004, 0.3).min(duration / 4.0);
            let receiving = rng.log_uniform(0.01, 0.1 * duration + 0.02);
            let waiting = (duration - sending - receiving).max(0.0);
            let roll = rng.unit();
            let status: u16 = if roll < 0.004 {
                503
            } else if roll < 0.005 {
                500
            } else if step.name == "buy" {
                201
            } else {
                200
            };
            let failed = status >= 500;
            let tags = SampleTags {
                name: Some(step.name),
                method: Some(step.method),
                status: Some(status),
                scenario: Some(scenario),
                group: Some(step.group),
                check: None,
                expected_response: Some(!failed),
                error_code: failed.then_some(1000 + u32::from(status)),
                custom: &custom,
            };
            recorder.http(
                &tags,
                &HttpFigures {
                    failed,
                    phases: [blocked, connecting, tls, sending, waiting, receiving],
                    duration,
                    sent: 350 + rng.next() % 600,
                    received: 800 + rng.next() % 24_000,
                },
            );
            // The browse flow checks only the status.
            let checks = if scenario == "browsers" {
                &step.checks[..1]
            } else {
                step.checks
            };
            for check in checks {
                let passed = !failed && rng.unit() > 0.0005;
                let tags = SampleTags {
                    scenario: Some(scenario),
                    group: Some(step.group),
                    check: Some(check),
                    custom: &custom,
                    ..SampleTags::default()
                };
                recorder.add(Metric::Checks, &tags, if passed { 1.0 } else { 0.0 });
            }
            let overhead = rng.log_uniform(0.05, 2.0);
            *group_ms.entry(step.group).or_default() += duration + blocked + overhead;
            iteration_ms += duration + blocked + overhead;
            sent += 1;
        }
        for (group, ms) in group_ms {
            let tags = SampleTags {
                scenario: Some(scenario),
                group: Some(group),
                custom: &custom,
                ..SampleTags::default()
            };
            recorder.add(Metric::GroupDuration, &tags, ms);
        }
        let sleep_ms = if scenario == "browsers" {
            2000.0
        } else {
            1000.0 + 2000.0 * rng.unit()
        };
        let tags = SampleTags {
            scenario: Some(scenario),
            group: Some(""),
            custom: &custom,
            ..SampleTags::default()
        };
        recorder.iteration(&tags, iteration_ms + sleep_ms);
        if scenario != "browsers" && rng.unit() < 0.01 {
            recorder.dropped(&tags, 1 + rng.next() % 3);
        }
    }
    for vus in [0.0, 18.0, 24.0, 21.0, 0.0] {
        shards.set_gauge(Metric::Vus, vus);
    }
    for vus_max in [3.0, 30.0] {
        shards.set_gauge(Metric::VusMax, vus_max);
    }
    flush_current_thread();
    shards.snapshot()
}

/// The agent's per-second series of a soak, downsampled as the agent sends it.
fn soak_series(seed: u64) -> Vec<SecondPoint> {
    let mut rng = Rng(seed);
    let seconds: Vec<SecondPoint> = (1..=SOAK_SECONDS)
        .map(|second| {
            let median = 60.0 + 40.0 * rng.unit();
            let requests = 40 + rng.next() % 30;
            let failed = u64::from(rng.unit() < 0.3);
            let latency =
                LatencySketch::from_values((0..requests).map(|_| (rng.latency(median), 1)))
                    .expect("requests");
            let at = latency.percentiles();
            SecondPoint {
                t: second as f64 + rng.unit() * 0.003,
                vus: 15 + rng.next() % 15,
                in_flight: rng.next() % 15,
                requests,
                failed,
                server_errors: failed,
                client_errors: 0,
                no_response: 0,
                no_response_by_code: Default::default(),
                iterations: requests / 4,
                dropped: u64::from(rng.unit() < 0.01),
                p50_ms: at.p50,
                p90_ms: at.p90,
                p95_ms: at.p95,
                p99_ms: at.p99,
                // A soak plans 30 VUs looping and a 14.5/s arrival rate beside them.
                planned_vus: 30,
                planned_rate: 14.5,
                latency: Some(latency),
            }
        })
        .collect();
    downsample(&seconds, series_width(SOAK_SECONDS as f64))
}

/// A field set in `managedFields` form (`f:` keys; lists and scalars atomic), as the API
/// server keeps one per writer.
fn fields_v1(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut fields: serde_json::Map<String, Json> = map
                .iter()
                .map(|(key, value)| (format!("f:{key}"), fields_v1(value)))
                .collect();
            fields.insert(".".into(), json!({}));
            Json::Object(fields)
        }
        _ => json!({}),
    }
}

#[test]
fn a_100_runner_soak_keeps_the_loadtest_and_every_report_within_budget() {
    let applied = manifest();
    let mut object = applied.clone();
    // What the API server holds after `kubectl apply`: the applied manifest again as an
    // annotation, and the appliers' managed fields.
    object["metadata"]["annotations"] = json!({
        "kubectl.kubernetes.io/last-applied-configuration": serde_json::to_string(&applied).unwrap(),
    });
    object["metadata"]["uid"] = json!("5f0c2a5e-8d7b-4c1e-9a63-2b1f0e7d4c11");
    object["metadata"]["generation"] = json!(1);
    object["metadata"]["resourceVersion"] = json!("918273645");
    object["metadata"]["creationTimestamp"] = json!("2026-12-01T08:59:50Z");
    object["metadata"]["managedFields"] = json!([{
        "manager": "kubectl-client-side-apply", "operation": "Update",
        "apiVersion": "stampede.dev/v1alpha1", "time": "2026-12-01T08:59:50Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": fields_v1(&object["metadata"]), "f:spec": fields_v1(&applied["spec"])},
    }]);
    let mut test: LoadTest = serde_json::from_value(object).unwrap();
    assert!(
        stampede_crds::validate(&test).is_empty(),
        "{:?}",
        stampede_crds::validate(&test)
    );
    let policy = Policy {
        max_runners: RUNNERS,
        // The soak reads its users from a Secret, as a cluster's admin may allow.
        runners: RunnerPolicy {
            allowed_secrets: vec![Pattern::new("shop-*")],
            ..RunnerPolicy::default()
        },
        ..Policy::default()
    };
    let run_plan = plan(&test, &policy).unwrap();
    assert_eq!(run_plan.runners, RUNNERS);

    // The engine's series, as the runners register them.
    let (registry, names) = engine_registry(&test);
    let prepared = PreparedRun::prepare(
        &test,
        RunOptions {
            env: BTreeMap::from([
                ("PASSWORD".to_string(), "x".to_string()),
                ("ADMIN_PASSWORD".to_string(), "x".to_string()),
            ]),
            print_errors: false,
            ..RunOptions::default()
        },
    )
    .unwrap();
    let engine_keys: Vec<String> = prepared.live().snapshot().values.into_keys().collect();
    let our_keys: Vec<String> = Snapshot::empty(&registry).values.into_keys().collect();
    assert_eq!(our_keys, engine_keys, "the engine registers other series");
    assert_eq!(prepared.step_names(), names.steps);
    assert_eq!(prepared.check_names(), names.checks);
    assert_eq!(names.steps.len(), 6, "{:?}", names.steps);
    assert_eq!(names.groups.len(), 3, "{:?}", names.groups);

    // Runner reports: one soak's traffic, plus each runner's own.
    let soak = soak_snapshot(&registry, REQUESTS_PER_RUNNER, 0x5EED);
    let trends = soak
        .values
        .values()
        .filter(|v| matches!(v, stampede_runner::metrics::Value::Trend(_)))
        .count();
    let widest = soak.trend("http_req_duration").unwrap();
    assert!(widest.min < 1.0 && widest.max > 4000.0);
    // setup()'s token, sealed by runner 0 for the 99 others.
    let setup = BTreeMap::from([(
        "adminToken".to_string(),
        format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "x".repeat(600)),
    )]);
    let runner_keys: BTreeMap<u64, String> = (1..RUNNERS)
        .map(|runner| (runner, SetupKey::generate().public()))
        .collect();
    let run_id = RunId {
        namespace: "shop",
        loadtest: "soak",
        run: 1,
    };
    let sealed_setup = seal_setup(&setup, &runner_keys, run_id).unwrap();
    let mut json_reports = Vec::new();
    for runner in 0..RUNNERS {
        let mut metrics = soak.clone();
        metrics.merge(&soak_snapshot(&registry, OWN_REQUESTS, runner + 1));
        let report = RunnerReport {
            run: 1,
            runner,
            state: RunnerState::Finished,
            message: None,
            started_at: Some("2026-12-01T09:00:04.012Z".into()),
            elapsed_seconds: SOAK_SECONDS as f64 + 30.0 + runner as f64 * 0.0137,
            vus: 0,
            vus_max: 30,
            setup_key: runner_keys.get(&runner).cloned(),
            sealed_setup: (runner == 0).then(|| sealed_setup.clone()),
            metrics: Some(metrics),
            series: soak_series(runner),
            steps: names.steps.clone(),
            checks: names.checks.clone(),
            groups: names.groups.clone(),
            errors: 1000 + runner,
            // The error table at its bound, every sample message at its longest.
            top_errors: (0..MAX_ERROR_ROWS as u32)
                .map(|kind| ErrorRow {
                    code: Some(1400 + kind),
                    place: format!("step-{kind}"),
                    count: 50 + u64::from(kind),
                    message: format!(
                        "GET /v1/orders/${{id}} (to shop.shop.svc:8080): {}",
                        "x".repeat(260)
                    ),
                })
                .collect(),
            aborted: None,
        };
        json_reports.push(report.to_json());
    }
    let sizes: Vec<usize> = json_reports.iter().map(String::len).collect();
    let largest = sizes.iter().copied().max().unwrap();
    let mean = sizes.iter().sum::<usize>() / sizes.len();
    // Where a report's bytes go: the metrics (histograms) and the series.
    let first: Json = serde_json::from_str(&json_reports[0]).unwrap();
    let bytes = |value: &Json| serde_json::to_string(value).unwrap().len();
    let mut by_series: Vec<(usize, &String)> = first["metrics"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| (bytes(value), key))
        .collect();
    by_series.sort_unstable_by(|a, b| b.cmp(a));
    eprintln!(
        "report 0: metrics {} bytes (largest series {:?}), series {} bytes ({} points)",
        bytes(&first["metrics"]),
        &by_series[..4],
        bytes(&first["series"]),
        first["series"].as_array().map_or(0, Vec::len),
    );

    // The operator reads them back and ends the run.
    let reports: Vec<RunnerReport> = json_reports
        .iter()
        .map(|text| RunnerReport::from_json(text).unwrap())
        .collect();
    let requests: f64 = reports
        .iter()
        .map(|r| r.metrics.as_ref().unwrap().count("http_reqs"))
        .sum();
    assert!(requests >= (RUNNERS * REQUESTS_PER_RUNNER) as f64);
    let provisioning = advance::new_run(
        &test,
        &LoadTestStatus::default(),
        &run_plan,
        Timestamp::from_second(T0).unwrap(),
    );
    let ready: Vec<Option<RunnerReport>> = reports
        .iter()
        .map(|r| {
            Some(RunnerReport {
                state: RunnerState::Ready,
                metrics: None,
                series: Vec::new(),
                ..r.clone()
            })
        })
        .collect();
    let observe = |second: i64, reports: Vec<Option<RunnerReport>>| Observation {
        now: Timestamp::from_second(second).unwrap(),
        reports,
        faults: Vec::new(),
        start_deadline: Duration::from_secs(policy.start_deadline_seconds),
    };
    let compiled = compile_started(&test).expect("the 100-runner test compiles");
    let active = advance::ActiveRun {
        test: &test,
        plan: &run_plan,
        thresholds: &compiled.thresholds,
        trend_stats: &compiled.model.summary_trend_stats,
    };
    let running = advance::advance(&active, &provisioning, &observe(T0 + 10, ready)).status;
    assert_eq!(running.phase, Some(Phase::Running));
    let finished = advance::advance(
        &active,
        &running,
        &observe(
            T0 + 14 + SOAK_SECONDS as i64 + 32,
            reports.into_iter().map(Some).collect(),
        ),
    );
    let status = finished.status;
    assert!(
        matches!(status.phase, Some(Phase::Succeeded | Phase::Failed)),
        "{:?}: {:?}",
        status.phase,
        status.message
    );
    let summary = finished.finished.expect("the merged summary");
    assert_eq!(summary.metrics.count("http_reqs"), requests);
    assert_eq!(
        status.summary.as_ref().map(|s| s.http_reqs as f64),
        Some(requests)
    );
    assert_eq!(status.steps.len(), 5, "the setup step sent no request");
    assert_eq!(status.thresholds.len(), 8);

    // The HTML report of the merged result stays under 1 MB, and the result ConfigMap (which
    // keeps it when it fits) under the API server's 1 MiB.
    let html = render_html(&summary);
    let result = desired::result_config_map(&test, &summary);
    let result_values: Vec<(&String, usize)> = result
        .data
        .as_ref()
        .unwrap()
        .iter()
        .map(|(key, value)| (key, value.len()))
        .collect();
    let result_bytes: usize = result_values.iter().map(|(k, v)| k.len() + v).sum();
    eprintln!(
        "HTML report {} bytes; result ConfigMap {result_bytes} bytes: {result_values:?}",
        html.len()
    );
    assert!(html.len() < 1_000_000, "the report is {} bytes", html.len());
    assert!(result_bytes <= desired::MAX_RESULT_BYTES, "{result_bytes}");
    assert!(
        result_values.iter().any(|(key, _)| *key == "report.html"),
        "the report did not fit: {result_values:?}"
    );

    // The operator's status write adds its own managed fields.
    let status_json = serde_json::to_value(&status).unwrap();
    test.metadata.managed_fields.get_or_insert_default().push(
        serde_json::from_value(json!({
            "manager": "stampede-operator", "operation": "Apply",
            "apiVersion": "stampede.dev/v1alpha1", "time": "2026-12-01T10:00:50Z",
            "fieldsType": "FieldsV1", "subresource": "status",
            "fieldsV1": {"f:status": fields_v1(&status_json)},
        }))
        .unwrap(),
    );
    test.status = Some(status);
    let loadtest_bytes = serde_json::to_vec(&test).unwrap().len();

    eprintln!(
        "{RUNNERS} runners, {} series ({trends} trends) per report: LoadTest {loadtest_bytes} bytes \
         (spec {}, status {}, metadata {}); reports max {largest} bytes, mean {mean} bytes; \
         phase {:?}: {}",
        registry.len(),
        serde_json::to_vec(&test.spec).unwrap().len(),
        serde_json::to_vec(&test.status).unwrap().len(),
        serde_json::to_vec(&test.metadata).unwrap().len(),
        test.status.as_ref().and_then(|s| s.phase),
        test.status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .unwrap_or_default(),
    );
    assert!(
        loadtest_bytes < LOADTEST_BUDGET,
        "the LoadTest is {loadtest_bytes} bytes, over the {LOADTEST_BUDGET}-byte budget"
    );
    assert!(
        largest < REPORT_BUDGET,
        "a report is {largest} bytes, over the {REPORT_BUDGET}-byte budget"
    );
}
