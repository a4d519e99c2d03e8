//! The HTML report as a person opens it: `stampede demo --report` and a failed `stampede run
//! --report`, opened in Debian's headless Chromium. Every chart draws its points, no script
//! fails, the page can fetch nothing, a hostile check name stays text, and the page's numbers
//! are the summary's.

use serde_json::Value;
use stampede_tests::browser::{
    assert_final_event, assert_live_page, assert_renders, next_event, open_events, rendered_dom,
    rendered_dom_at, screenshot,
};
use stampede_tests::demo_target::DemoTarget;
use stampede_tests::stampede;

/// Runs `manifest` against the demo target with `--report page`, checks its exit code and
/// that the report renders; returns the report's data.
fn run_with_report(
    demo: &DemoTarget,
    manifest: &std::path::Path,
    page: &std::path::Path,
    exit: i32,
) -> Value {
    let base_url = format!("BASE_URL={}", demo.base_url());
    let output = stampede(&[
        "run",
        &manifest.to_string_lossy(),
        "-e",
        &base_url,
        "--report",
        &page.to_string_lossy(),
    ]);
    assert_eq!(output.status.code(), Some(exit), "{output:?}");
    assert_renders(page)
}

#[test]
fn the_demo_report_opens_offline_and_every_chart_draws_the_summary_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("demo.html");
    let export = dir.path().join("summary.json");
    let output = stampede(&[
        "demo",
        "--duration-scale",
        "0.2",
        "--report",
        &page.to_string_lossy(),
        "--summary-export",
        &export.to_string_lossy(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let data = assert_renders(&page);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    let metric =
        |name: &str, stat: &str| summary["metrics"][name]["values"][stat].as_f64().unwrap();

    assert_eq!(data["passed"], true);
    assert_eq!(
        data["headline"]["requests"].as_f64(),
        Some(metric("http_reqs", "count"))
    );
    let p95 = data["headline"]["p95Ms"].as_f64().unwrap();
    assert!(
        (p95 - metric("http_req_duration", "p(95)")).abs() < 1e-6,
        "{p95}"
    );
    // The series adds up to every request of the run, the last partial second included.
    let column = |name: &str| -> Vec<f64> {
        data["series"][name]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect()
    };
    let seconds = column("t");
    assert!(seconds.len() >= 6, "{seconds:?}");
    let mut previous = 0.0;
    let mut in_series = 0.0;
    for (t, rps) in seconds.iter().zip(column("rps")) {
        in_series += (rps * (t - previous)).round();
        previous = *t;
    }
    assert_eq!(Some(in_series), data["headline"]["requests"].as_f64());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<strong>PASSED</strong>"));
    assert!(html.contains("6 of 6 thresholds held"));
    for step in ["login", "search", "buy", "logout"] {
        assert!(html.contains(&format!("<td>{step}</td>")), "step {step}");
    }
    eprintln!(
        "demo report: {} bytes, screenshot {}",
        html.len(),
        screenshot(&page).display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_reports_the_broken_threshold_and_shows_a_hostile_name_as_text() {
    let demo = DemoTarget::in_process().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("failing.yaml");
    // A check name that would end the data's <script> element and open an element of its own,
    // were it not escaped.
    std::fs::write(
        &manifest,
        r#"apiVersion: stampede.dev/v1alpha1
kind: LoadTest
metadata: {name: checkout-slo}
spec:
  scenarios:
    browse: {executor: constant-arrival-rate, rate: 40, timeUnit: 1s, duration: 3s, preAllocatedVUs: 4}
  flows:
    default:
      - name: products
        request: {url: "${env.BASE_URL}/get"}
        checks: {"</script><i id=injected>status is 200</i>": "status == 200"}
      - group: checkout
        steps:
          - name: missing
            request: {url: "${env.BASE_URL}/status/503"}
          - group: pay
            steps:
              - name: refused
                request: {url: "http://127.0.0.1:1/"}
  thresholds:
    http_req_failed: ["rate<0.01"]
    http_req_duration: ["p(95)<500"]
"#,
    )
    .unwrap();
    let page = dir.path().join("failed.html");
    let data = run_with_report(&demo, &manifest, &page, 99);
    assert_eq!(data["passed"], false);
    let failed: Vec<&Value> = data["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["metric"], "http_req_failed");
    assert_eq!(failed[0]["observed"], "rate=66.67%");
    assert_eq!(failed[0]["margin"], "65.67% over");
    // Two requests in three failed, and the series shows it, by kind: every 503, and every
    // refused connection as a request with no response.
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(
            "in all 0 4xx, 120 5xx and 120 with no response (1212 connection refused: 120)"
        ),
        "{}",
        &html[html.find("Errors per second").unwrap_or(0)..][..400]
    );
    let failed_per_second: f64 = data["series"]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .sum();
    assert!(failed_per_second > 0.0);
    let refused = &data["series"]["noResponseByCode"][0];
    assert_eq!(refused["code"], 1212, "{refused}");
    assert_eq!(refused["total"], 120);
    // The top errors: each kind with its k6 code, its step, its count and a sample message.
    let errors = data["errors"].as_array().expect("the error table");
    let kind = |code: u64| {
        errors
            .iter()
            .find(|e| e["code"] == code)
            .unwrap_or_else(|| panic!("no error {code}: {errors:?}"))
    };
    assert_eq!(kind(1503)["place"], "missing");
    assert_eq!(kind(1503)["count"], 120);
    assert_eq!(kind(1503)["meaning"], "HTTP 503 Service Unavailable");
    assert_eq!(kind(1212)["place"], "refused");
    assert_eq!(kind(1212)["count"], 120);
    assert!(
        kind(1212)["message"]
            .as_str()
            .unwrap()
            .starts_with("GET http://127.0.0.1:1/ (to 127.0.0.1:1): "),
        "{errors:?}"
    );

    // The groups table: each nested group with its passes (one per iteration here).
    let groups = data["groups"].as_array().expect("the groups table");
    let names: Vec<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(names, ["checkout", "checkout › pay"], "{groups:?}");
    assert_eq!(groups[0]["passes"], 120);
    assert!(groups[0]["avgMs"].as_f64().unwrap() >= groups[1]["avgMs"].as_f64().unwrap());

    let dom = rendered_dom(&page);
    assert!(dom.contains("<td>checkout › pay</td>"), "no groups table");
    assert!(
        dom.contains("<td>connection refused</td>"),
        "no error table"
    );
    assert!(dom.contains("<strong>FAILED</strong>"));
    assert!(dom.contains("1 of 2 thresholds held"));
    assert!(
        !dom.contains("id=\"injected\""),
        "the check name became markup"
    );
    assert!(dom.contains("&lt;/script&gt;&lt;i id=injected&gt;status is 200&lt;/i&gt;"));
    eprintln!("failed-run screenshot {}", screenshot(&page).display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_dashboard_updates_while_the_run_goes_and_ends_on_the_final_report() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let demo = DemoTarget::in_process().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("live.yaml");
    std::fs::write(
        &manifest,
        r#"apiVersion: stampede.dev/v1alpha1
kind: LoadTest
metadata: {name: live}
spec:
  scenarios:
    browse: {executor: constant-arrival-rate, rate: 50, timeUnit: 1s, duration: 8s, preAllocatedVUs: 5}
  flows:
    default:
      - {name: get, request: {url: "${env.BASE_URL}/get"}}
  thresholds:
    http_req_failed: ["rate<0.01"]
"#,
    )
    .unwrap();
    let export = dir.path().join("summary.json");
    let mut child = Command::new(stampede_tests::stampede_bin())
        .args([
            "run",
            &manifest.to_string_lossy(),
            "--dashboard",
            "--dashboard-addr",
        ])
        .arg("127.0.0.1:0")
        .arg("-e")
        .arg(format!("BASE_URL={}", demo.base_url()))
        .arg("--summary-export")
        .arg(&export)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stampede run");
    // The dashboard's address is the first line on stderr.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("web dashboard: http://")
        .unwrap_or_else(|| panic!("no dashboard line: {first:?}"))
        .to_string();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let mut events = open_events(&addr, "/events");
    let early = next_event(&mut events, "update");
    let later = next_event(&mut events, "update");
    let requests = |update: &Value| update["data"]["headline"]["requests"].as_f64().unwrap();
    assert!(
        requests(&later) > requests(&early),
        "live values did not change: {} then {}",
        requests(&early),
        requests(&later)
    );
    assert!(
        early["sections"]["header"]
            .as_str()
            .unwrap()
            .contains("RUNNING")
    );

    // The page, opened while the run goes, draws every chart and takes updates.
    let dom = rendered_dom_at(&format!("http://{addr}/"));
    assert!(dom.contains("data-live=\"/events\""), "{dom}");
    assert_live_page(&dom);

    // At the end: the final report, then the stream ends; the run exits on its own.
    let done = assert_final_event(&mut events, "PASSED");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(
        Some(requests(&done)),
        summary["metrics"]["http_reqs"]["values"]["count"].as_f64()
    );
}

/// Requests in flight: six VUs each waiting 400 ms on every response keep six requests in
/// flight at nearly every second's end, and the load chart draws them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_chart_draws_the_requests_awaiting_a_response() {
    let demo = DemoTarget::in_process().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("slow.yaml");
    std::fs::write(
        &manifest,
        r#"apiVersion: stampede.dev/v1alpha1
kind: LoadTest
metadata: {name: slow-backend}
spec:
  scenarios:
    waiting: {executor: constant-vus, vus: 6, duration: 4s}
  flows:
    default:
      - name: slow
        request: {url: "${env.BASE_URL}/delay/400"}
"#,
    )
    .unwrap();
    let page = dir.path().join("slow.html");
    let data = run_with_report(&demo, &manifest, &page, 0);
    let in_flight: Vec<f64> = serde_json::from_value(data["series"]["inFlight"].clone()).unwrap();
    let full = in_flight.iter().filter(|n| **n == 6.0).count();
    assert!(
        in_flight.iter().all(|n| *n <= 6.0) && full >= 2,
        "requests in flight per interval: {in_flight:?}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("requests in flight up to 6;"), "no caption");
}
