//! Every manifest in examples/ runs end to end through the real CLI: `stampede demo-server` in
//! one process, `stampede run` in another, with the scenario times compressed to a few seconds
//! by `--duration-scale` (VU counts, rates, sleeps and thresholds as written).

use std::process::{Child, Command, Stdio};

use stampede_runner::manifest;
use stampede_runner::schedule::{ExecutionSegment, TestPlan};
use stampede_tests::{files_in, first_url, repo_root, stampede_bin};

/// How long each example may run once compressed.
const TARGET_SECONDS: f64 = 3.0;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_demo_server() -> (Server, String) {
    let mut child = Command::new(stampede_bin())
        .args(["demo-server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start stampede demo-server");
    let (url, _) = first_url(&mut child);
    (Server(child), url)
}

#[test]
fn every_example_runs_against_the_demo_server() {
    let (_server, base_url) = start_demo_server();
    let scratch = std::env::temp_dir().join(format!("stampede-examples-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let mut failures = Vec::new();
    let examples = files_in("examples", "yaml");
    assert!(examples.len() >= 15);
    for example in &examples {
        let report = manifest::check_file(example, &Default::default()).expect("example loads");
        let compiled = report.compiled.first().expect("example compiles");
        let planned = TestPlan::for_test(compiled, &ExecutionSegment::full()).regular_duration();
        let scale = (TARGET_SECONDS / planned.as_secs_f64().max(0.001)).min(1.0);
        let export = scratch.join(format!(
            "{}.json",
            example.file_stem().unwrap().to_string_lossy()
        ));
        let output = Command::new(stampede_bin())
            .current_dir(repo_root())
            .args(["run", &example.to_string_lossy(), "--quiet", "-e"])
            .arg(format!("BASE_URL={base_url}"))
            .arg("--duration-scale")
            .arg(scale.to_string())
            .arg("--summary-export")
            .arg(&export)
            .output()
            .expect("run stampede");
        let name = example.file_name().unwrap().to_string_lossy().to_string();
        let code = output.status.code();
        // 0 passed, 99 a threshold failed: both are completed runs (compressed ramps may
        // break latency budgets); anything else is a failure to run.
        if !matches!(code, Some(0) | Some(99)) {
            failures.push(format!(
                "{name}: exit {code:?}\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
            continue;
        }
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&export).expect("summary exported"))
                .expect("summary JSON");
        let requests = summary["metrics"]["http_reqs"]["values"]["count"]
            .as_f64()
            .unwrap_or(0.0);
        if requests < 1.0 {
            failures.push(format!("{name}: sent no request"));
        }
        // The flows are correct against the demo API: checks pass (a race for one seat is
        // counted as expected by the example itself).
        if let Some(rate) = summary["metrics"]["checks"]["values"]["rate"].as_f64()
            && rate < 0.95
        {
            failures.push(format!(
                "{name}: only {:.1}% of checks passed\n{}",
                rate * 100.0,
                String::from_utf8_lossy(&output.stdout)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        failures.is_empty(),
        "{} example(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
