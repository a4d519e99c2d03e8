//! Flows, checks, thresholds, abortOnFail, cookies and the JSON summary, on real HTTP against
//! the demo server on loopback.

mod common;

use common::{Demo, load, manifest, run_against};
use stampede_runner::exit::Exit;
use stampede_runner::metrics::{Metric, Value};
use stampede_runner::summary::{SUMMARY_SCHEMA, export_json, write_text};

fn rate(outcome: &stampede_runner::engine::RunOutcome, key: &str) -> (u64, u64) {
    match outcome.summary.metrics.get(key) {
        Some(Value::Rate { passes, total }) => (*passes, *total),
        other => panic!("{key} is not a rate: {other:?}"),
    }
}

const TRADING: &str = r#"  data:
    users: {rows: [{username: alice}, {username: bob}, {username: carol}], select: perVU}
  scenarios: {s: {executor: per-vu-iterations, vus: 3, iterations: 5}}
  flows:
    default:
      - name: login
        request: {method: POST, url: /api/login, json: {username: "${data.users.username}", password: secret}}
        checks: {"login ok": "status == 200"}
        capture: {session: {json: "$.session_id"}}
      - name: search
        request: {url: /api/stock/search, query: {query: Samsung}, headers: {Cookie: "session_id=${session}"}}
        checks: {"search ok": "status == 200", "found results": "body contains \"Samsung\""}
      - name: buy
        request: {method: POST, url: /api/stock/buy, headers: {Cookie: "session_id=${session}"}, json: {stock_id: "005930", quantity: 10}}
        checks: {"buy ok": "status == 200"}
      - name: search-without-session
        request: {url: /api/stock/search, query: {query: Samsung}, headers: {Cookie: "session_id=forged"}}
        checks: {"rejected": "status == 401"}
"#;

#[test]
fn a_captured_session_is_reused_and_checks_are_counted() {
    let demo = Demo::start();
    let yaml = manifest("trading", TRADING);
    let test = load(&yaml);
    let outcome = run_against(&test, &demo.base_url());
    let summary = &outcome.summary;
    assert_eq!(summary.metrics.count(Metric::Iterations.name()), 15.0);
    assert_eq!(summary.metrics.count("http_reqs{name:login}"), 15.0);
    // The captured session worked for search and buy; the forged one was refused.
    assert_eq!(rate(&outcome, "checks{check:search ok}"), (15, 15));
    assert_eq!(rate(&outcome, "checks{check:buy ok}"), (15, 15));
    assert_eq!(rate(&outcome, "checks{check:rejected}"), (15, 15));
    assert_eq!(rate(&outcome, Metric::Checks.name()), (75, 75));
    // 401 is not an expected status: http_req_failed counts exactly those 15.
    assert_eq!(rate(&outcome, Metric::HttpReqFailed.name()), (15, 60));
    assert_eq!(
        summary.steps,
        ["login", "search", "buy", "search-without-session"]
    );
}

#[test]
fn failing_thresholds_give_exit_code_99_and_passing_ones_0() {
    let demo = Demo::start();
    let base = "  scenarios: {s: {executor: shared-iterations, vus: 2, iterations: 20}}\n  flows: {default: [{name: slow, request: {url: /delay/30}}]}\n";
    let failing = load(&manifest(
        "fail",
        &format!(
            "{base}  thresholds:\n    http_req_duration: [\"p(95)<10\"]\n    http_reqs: [\"count==20\"]\n"
        ),
    ));
    let outcome = run_against(&failing, &demo.base_url());
    assert_eq!(outcome.exit, Exit::ThresholdsFailed);
    let p95 = &outcome.summary.thresholds[0];
    assert!(!p95.ok && p95.value.unwrap() >= 30.0, "{p95:?}");
    assert!(outcome.summary.thresholds[1].ok);
    let passing = load(&manifest(
        "pass",
        &format!(
            "{base}  thresholds:\n    \"http_req_duration{{name:slow}}\": [\"p(95)<5000\", \"min>=30\"]\n"
        ),
    ));
    let outcome = run_against(&passing, &demo.base_url());
    assert_eq!(outcome.exit, Exit::Ok, "{:?}", outcome.summary.thresholds);
    // k6 lists the sub-metric a threshold names under its metric; the series key comes with
    // the threshold's result.
    assert_eq!(
        outcome.summary.thresholds[0].series,
        "http_req_duration{name:slow}"
    );
    let mut text = Vec::new();
    write_text(&outcome.summary, false, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.lines()
            .any(|line| line.trim_start().starts_with("{ name:slow }")),
        "{text}"
    );
}

#[test]
fn abort_on_fail_stops_the_test_early() {
    let demo = Demo::start();
    let yaml = manifest(
        "abort",
        "  scenarios: {s: {executor: constant-vus, vus: 3, duration: 20s, gracefulStop: 1s}}\n  flows: {default: [{name: broken, request: {url: /status/500}}]}\n  thresholds:\n    http_req_failed: [{threshold: \"rate<0.5\", abortOnFail: true, delayAbortEval: 1s}]\n",
    );
    let outcome = run_against(&load(&yaml), &demo.base_url());
    assert_eq!(outcome.exit, Exit::ThresholdsFailed);
    assert!(
        outcome.summary.seconds() < 6.0,
        "ran {}s of 20s",
        outcome.summary.seconds()
    );
    assert!(
        outcome
            .summary
            .aborted
            .as_deref()
            .unwrap_or("")
            .contains("abortOnFail")
    );
}

#[test]
fn the_cookie_jar_is_reset_before_every_iteration() {
    let demo = Demo::start();
    let yaml = manifest(
        "cookies",
        r#"  scenarios: {s: {executor: per-vu-iterations, vus: 1, iterations: 3}}
  flows:
    default:
      - name: before
        request: {url: /cookies}
        checks: {"jar starts empty": "json(\"$.cookies.flavour\") == null"}
      - name: set
        request: {url: "/cookies/set?flavour=${iter}"}
      - name: after
        request: {url: /cookies}
        checks: {"jar sends it": "json(\"$.cookies.flavour\") == \"${iter}\""}
"#,
    );
    let outcome = run_against(&load(&yaml), &demo.base_url());
    assert_eq!(rate(&outcome, "checks{check:jar starts empty}"), (3, 3));
    assert_eq!(rate(&outcome, "checks{check:jar sends it}"), (3, 3));
}

#[test]
fn timing_phases_are_non_negative_and_sum_to_the_duration() {
    let demo = Demo::start();
    let yaml = manifest(
        "phases",
        "  scenarios: {s: {executor: shared-iterations, vus: 2, iterations: 40}}\n  flows: {default: [{request: {url: /delay/5}}]}\n",
    );
    let outcome = run_against(&load(&yaml), &demo.base_url());
    let trend = |name: &str| outcome.summary.metrics.trend(name).cloned().unwrap();
    let duration = trend("http_req_duration");
    let (sending, waiting, receiving) = (
        trend("http_req_sending"),
        trend("http_req_waiting"),
        trend("http_req_receiving"),
    );
    for phase in [
        "http_req_blocked",
        "http_req_connecting",
        "http_req_tls_handshaking",
        "http_req_sending",
        "http_req_waiting",
        "http_req_receiving",
    ] {
        assert!(trend(phase).min_or_zero() >= 0.0, "{phase}");
    }
    let sum = sending.sum + waiting.sum + receiving.sum;
    assert!(
        (sum - duration.sum).abs() < 1e-6 * duration.sum.max(1.0),
        "phases {sum} vs duration {}",
        duration.sum
    );
    // The server holds each answer 5 ms: that time lies in sending + waiting (a busy worker
    // may flush the request late, which moves a little of it into sending), so every
    // duration is at least 5 ms and a typical request spends it waiting.
    assert!(
        duration.min_or_zero() >= 5.0,
        "duration min {}",
        duration.min_or_zero()
    );
    assert!(
        waiting.percentile(50.0) >= 5.0,
        "waiting median {}",
        waiting.percentile(50.0)
    );
}

#[test]
fn a_missing_required_capture_skips_the_rest_of_the_iteration() {
    let demo = Demo::start();
    let yaml = manifest(
        "capture",
        r#"  scenarios: {s: {executor: per-vu-iterations, vus: 1, iterations: 2}}
  flows:
    default:
      - name: first
        request: {url: /json}
        capture: {missing: {json: "$.no.such.field"}}
      - name: never
        request: {url: /}
"#,
    );
    let outcome = run_against(&load(&yaml), &demo.base_url());
    assert_eq!(outcome.summary.metrics.count("http_reqs{name:first}"), 2.0);
    assert_eq!(outcome.summary.metrics.count("http_reqs{name:never}"), 0.0);
    assert_eq!(outcome.errors, 2);
}

#[test]
fn the_json_summary_matches_its_schema() {
    let demo = Demo::start();
    let yaml = manifest("trading", TRADING)
        + "  thresholds:\n    http_req_duration: [\"p(95)<2000\"]\n    checks: [\"rate>0.5\"]\n";
    let outcome = run_against(&load(&yaml), &demo.base_url());
    let exported = export_json(&outcome.summary);
    let schema: serde_json::Value = serde_json::from_str(SUMMARY_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&exported)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(exported["passed"], true);
    assert_eq!(exported["steps"][0]["name"], "login");
    assert_eq!(exported["metrics"]["http_reqs"]["values"]["count"], 60.0);
    // The schema is strict enough to catch a wrong document.
    let mut broken = exported.clone();
    broken["thresholds"][0]["ok"] = serde_json::json!("yes");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn redirect_hops_are_counted_and_groups_timed() {
    let demo = Demo::start();
    let yaml = manifest(
        "redirects",
        r#"  scenarios: {s: {executor: per-vu-iterations, vus: 1, iterations: 2}}
  flows:
    default:
      - group: browse
        steps:
          - name: hops
            request: {url: /redirect/3}
            checks: {"landed": "status == 200"}
"#,
    );
    let outcome = run_against(&load(&yaml), &demo.base_url());
    // k6 counts every hop: 3 redirects + the final request, per iteration.
    assert_eq!(outcome.summary.metrics.count("http_reqs"), 8.0);
    assert_eq!(rate(&outcome, "checks{check:landed}"), (2, 2));
    let group = outcome
        .summary
        .metrics
        .trend("group_duration{group:::browse}")
        .expect("group series");
    assert_eq!(group.count(), 2);
}

/// Credentials belong to the host the flow addressed: a redirect to another host carries no
/// `Authorization`, `Proxy-Authorization` or `Cookie` (as Go, so k6, decides), other headers
/// go on; a redirect on the same host keeps them all.
#[test]
fn a_redirect_to_another_host_carries_no_credentials() {
    let first = Demo::start();
    let other = Demo::start_on([127, 0, 0, 2]);
    let yaml = manifest(
        "cross-host-redirect",
        &format!(
            r#"  scenarios: {{s: {{executor: per-vu-iterations, vus: 1, iterations: 1}}}}
  flows:
    default:
      - name: elsewhere
        request: {{url: "/redirect-to?url={other}/headers", headers: {credentials}}}
        checks:
          "landed on the other host": "status == 200"
          "no authorization": "json(\"$.headers.authorization\") == null"
          "no proxy-authorization": "json(\"$.headers['proxy-authorization']\") == null"
          "no cookie": "json(\"$.headers.cookie\") == null"
          "other headers go on": "json(\"$.headers['x-trace']\") == \"kept\""
      - name: same host
        request: {{url: "/redirect-to?url=/headers", headers: {credentials}}}
        checks:
          "same host keeps authorization": "json(\"$.headers.authorization\") == \"Bearer s3cr3t\""
          "same host keeps the cookie": "json(\"$.headers.cookie\") == \"session=s3cr3t\""
"#,
            other = other.base_url(),
            credentials = r#"{authorization: "Bearer s3cr3t", proxy-authorization: "Basic cHg=", cookie: "session=s3cr3t", x-trace: kept}"#,
        ),
    );
    let outcome = run_against(&load(&yaml), &first.base_url());
    for check in [
        "landed on the other host",
        "no authorization",
        "no proxy-authorization",
        "no cookie",
        "other headers go on",
        "same host keeps authorization",
        "same host keeps the cookie",
    ] {
        assert_eq!(
            rate(&outcome, &format!("checks{{check:{check}}}")),
            (1, 1),
            "{check}"
        );
    }
    assert_eq!(outcome.summary.metrics.count("http_reqs"), 4.0);
}

/// The operator's target policy, applied by the runner on every connection: a redirect into a
/// denied range fails with k6's 1110 without a byte sent there, a denied host pattern fails with
/// 1111 before any lookup, and the allowed target is loaded as usual.
#[test]
fn denied_targets_fail_with_k6s_codes_even_behind_a_redirect() {
    let allowed = Demo::start();
    let denied = Demo::start_on([127, 0, 0, 2]);
    let yaml = manifest(
        "denied-targets",
        &format!(
            r#"  scenarios: {{s: {{executor: per-vu-iterations, vus: 1, iterations: 2}}}}
  flows:
    default:
      - name: allowed
        request: {{url: /get}}
      - name: redirected
        request: {{url: "/redirect-to?url={denied}/get"}}
      - name: blocked-host
        request: {{url: "http://metadata.google.internal/computeMetadata/v1/"}}
  thresholds:
    "http_reqs{{error_code:1110}}": ["count==2"]
    "http_reqs{{error_code:1111}}": ["count==2"]
    "http_reqs{{name:allowed,status:200}}": ["count==2"]
"#,
            denied = denied.base_url()
        ),
    );
    let options = stampede_runner::engine::RunOptions {
        env: std::collections::BTreeMap::from([("BASE_URL".to_string(), allowed.base_url())]),
        progress: stampede_runner::engine::progress::ProgressMode::Off,
        print_errors: false,
        targets: stampede_runner::http::TargetPolicy {
            allowed: Vec::new(),
            denied: stampede_runner::http::target_policy::parse_list(
                "127.0.0.2/32,metadata.google.internal",
            )
            .unwrap(),
        },
        ..Default::default()
    };
    let outcome = stampede_runner::engine::run(&load(&yaml), options).expect("run completes");
    let thresholds = &outcome.summary.thresholds;
    assert!(thresholds.iter().all(|t| t.ok), "{thresholds:?}");
    assert_eq!(outcome.exit, Exit::Ok);
    // Per iteration: the allowed request, the redirect hop, the refused hop, the blocked host.
    assert_eq!(outcome.summary.metrics.count("http_reqs"), 8.0);
}

#[test]
fn an_unvalidated_spec_naming_a_missing_flow_is_refused_not_spun() {
    let yaml = "apiVersion: stampede.dev/v1alpha1\nkind: LoadTest\nmetadata: {name: x}\nspec:\n  scenarios: {s: {executor: constant-vus, vus: 1, duration: 1s, flow: nope}}\n";
    let test: stampede_crds::LoadTest = serde_yaml_ng::from_str(yaml).unwrap();
    let options = stampede_runner::engine::RunOptions {
        progress: stampede_runner::engine::progress::ProgressMode::Off,
        ..Default::default()
    };
    let error = stampede_runner::engine::run(&test, options).expect_err("missing flow");
    assert!(
        error.to_string().contains("spec.scenarios.s.flow"),
        "{error}"
    );
}

/// A 65 536-character step name once panicked the summary printer ("Formatting argument out of
/// range"). It is now refused where the API server would refuse it, with the field and the
/// limit; the longest name the CRD allows is cut in the summary table.
#[test]
fn a_step_name_over_the_crd_limit_is_refused_and_the_longest_allowed_is_cut_in_the_table() {
    let step = |name: &str| {
        manifest(
            "long-step-name",
            &format!(
                "  scenarios: {{s: {{executor: shared-iterations, vus: 1, iterations: 2}}}}\n  flows: {{default: [{{name: {name}, request: {{url: /}}}}]}}\n"
            ),
        )
    };
    let report = stampede_runner::manifest::check_str(
        "test.yaml",
        &step(&"n".repeat(65_536)),
        &Default::default(),
    );
    assert!(!report.is_valid());
    assert!(
        report.diagnostics.iter().any(|d| d.path == "spec.flows.default[0].name"
            && d.message
                == "is 65536 characters long; the CRD allows at most 256 (a Kubernetes API server refuses it)"),
        "{:#?}",
        report.diagnostics
    );

    let demo = Demo::start();
    let name = "n".repeat(256);
    let outcome = run_against(&load(&step(&name)), &demo.base_url());
    assert_eq!(outcome.summary.steps, std::slice::from_ref(&name));
    let mut text = Vec::new();
    write_text(&outcome.summary, false, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let row = text
        .lines()
        .find(|line| line.trim_start().starts_with("nnn"))
        .expect("the step's row");
    assert!(row.contains(&format!("{}…  ", "n".repeat(59))), "{row}");
    assert!(row.chars().count() < 200, "{row}");
}

/// A target that accepts connections and never answers: k6 records nothing for the request its
/// hard stop cuts and passes every usual gate (grafana/k6#4283). Stampede counts the cut request
/// as failed (error_code 1051, its wait as its duration), and a threshold whose metric got no
/// samples at all (the checks, which never ran) fails with "no data".
#[test]
fn a_target_that_never_answers_fails_the_gate() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        // Accept one connection (the one VU's) and hold it open without a byte until the run is
        // over: the request is cut by the hard stop, never answered.
        let held = listener.accept().map(|(socket, _)| socket);
        let _ = stopped.recv();
        drop(held);
    });
    let outcome = run_against(
        &load(&manifest(
            "dead-target",
            "  scenarios: {s: {executor: constant-vus, vus: 1, duration: 1s, gracefulStop: 0s}}\n  flows: {default: [{name: home, request: {url: /}, checks: {ok: status == 200}}]}\n  thresholds:\n    http_req_duration: [\"p(95)<500\"]\n    http_req_failed: [\"rate<0.01\"]\n    checks: [\"rate>0.99\"]\n    \"http_reqs{error_code:1051}\": [\"count<1\"]\n",
        )),
        &base_url,
    );
    let _ = stop.send(());
    holder.join().unwrap();
    let thresholds = &outcome.summary.thresholds;
    assert_eq!(outcome.exit, Exit::ThresholdsFailed, "{thresholds:?}");
    assert!(thresholds.iter().all(|t| !t.ok), "{thresholds:?}");
    let by_metric = |metric: &str| {
        thresholds
            .iter()
            .find(|t| t.metric == metric)
            .unwrap_or_else(|| panic!("{metric} in {thresholds:?}"))
    };
    // The one cut request: counted, failed, with its code, and its wait as its duration.
    assert_eq!(outcome.summary.metrics.count("http_reqs"), 1.0);
    assert_eq!(by_metric("http_reqs{error_code:1051}").value, Some(1.0));
    assert_eq!(by_metric("http_req_failed").value, Some(1.0));
    let p95 = by_metric("http_req_duration").value.expect("a duration");
    assert!((900.0..5_000.0).contains(&p95), "{p95}");
    assert!(outcome.errors >= 1);
    // The checks never ran: no data, which fails.
    let checks = by_metric("checks");
    assert!(checks.no_data && checks.value.is_none(), "{checks:?}");
    let mut text = Vec::new();
    write_text(&outcome.summary, false, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("rate=no data"), "{text}");
}

/// A sub-metric that rightly stays empty (a step behind an `if` that never holds): "no data"
/// fails by default and passes with `passWithoutData`.
#[test]
fn a_threshold_without_samples_fails_unless_it_passes_without_data() {
    let demo = Demo::start();
    let outcome = run_against(
        &load(&manifest(
            "no-data",
            "  scenarios: {s: {executor: shared-iterations, vus: 1, iterations: 2}}\n  flows: {default: [{name: home, request: {url: /}}, {name: never, if: \"1 == 2\", request: {url: /}}]}\n  thresholds:\n    \"http_req_duration{name:never}\": [\"p(95)<500\", {threshold: \"p(99)<900\", passWithoutData: true}]\n",
        )),
        &demo.base_url(),
    );
    let results: Vec<(&str, bool, bool)> = outcome
        .summary
        .thresholds
        .iter()
        .map(|t| (t.threshold.as_str(), t.ok, t.no_data))
        .collect();
    assert_eq!(
        results,
        [("p(95)<500", false, true), ("p(99)<900", true, true)]
    );
    assert_eq!(outcome.exit, Exit::ThresholdsFailed);
}
