//! The executors against k6's formulas, on real HTTP against the demo server on loopback:
//! iteration counts, VU counts over time, arrival counts, dropped iterations.

mod common;

use common::{Demo, load, manifest, run_against};
use stampede_crds::LoadTest;
use stampede_crds::model::scenario::Scenario;
use stampede_runner::exit::Exit;
use stampede_runner::metrics::Metric;
use stampede_runner::schedule::{ExecutionSegment, ScenarioPlan};

/// The compiled scenario named `s`.
fn scenario_s(test: &LoadTest) -> Scenario {
    stampede_crds::model::compile(test, &Default::default())
        .expect("the test compiles")
        .scenarios
        .into_iter()
        .find(|scenario| scenario.name == "s")
        .expect("a scenario named s")
}

fn count(outcome: &stampede_runner::engine::RunOutcome, key: &str) -> f64 {
    outcome.summary.metrics.count(key)
}

#[test]
fn shared_iterations_runs_exactly_the_iterations() {
    let demo = Demo::start();
    let test = load(&manifest(
        "shared",
        "  scenarios: {s: {executor: shared-iterations, vus: 7, iterations: 250, maxDuration: 30s}}\n  flows: {default: [{name: home, request: {url: /}}]}\n",
    ));
    let outcome = run_against(&test, &demo.base_url());
    assert_eq!(count(&outcome, Metric::Iterations.name()), 250.0);
    assert_eq!(count(&outcome, Metric::HttpReqs.name()), 250.0);
    assert_eq!(count(&outcome, Metric::DroppedIterations.name()), 0.0);
    assert_eq!(outcome.exit, Exit::Ok);
}

#[test]
fn per_vu_iterations_runs_iterations_per_vu() {
    let demo = Demo::start();
    let test = load(&manifest(
        "pervu",
        "  scenarios: {s: {executor: per-vu-iterations, vus: 4, iterations: 25}}\n  flows: {default: [{request: {url: /boards}}]}\n",
    ));
    let outcome = run_against(&test, &demo.base_url());
    assert_eq!(count(&outcome, Metric::Iterations.name()), 100.0);
}

#[test]
fn per_vu_iterations_counts_unfinished_iterations_as_dropped_at_max_duration() {
    let demo = Demo::start();
    let test = load(&manifest(
        "pervu-dropped",
        "  scenarios: {s: {executor: per-vu-iterations, vus: 2, iterations: 100, maxDuration: 1s, gracefulStop: 0s}}\n  flows: {default: [{request: {url: /delay/100}}]}\n",
    ));
    let outcome = run_against(&test, &demo.base_url());
    let done = count(&outcome, Metric::Iterations.name());
    let dropped = count(&outcome, Metric::DroppedIterations.name());
    assert!(done > 5.0 && done < 40.0, "completed {done}");
    // Each VU's unrun iterations (interrupted ones included) are dropped: together ≤ 200.
    assert!(
        done + dropped <= 200.0 && done + dropped >= 198.0,
        "done {done} + dropped {dropped}"
    );
}

#[test]
fn constant_vus_keeps_the_vus_busy_for_the_duration() {
    let demo = Demo::start();
    let test = load(&manifest(
        "constant",
        "  scenarios: {s: {executor: constant-vus, vus: 5, duration: 2s}}\n  flows: {default: [{request: {url: /delay/50}}]}\n",
    ));
    let outcome = run_against(&test, &demo.base_url());
    let iterations = count(&outcome, Metric::Iterations.name());
    // 5 VUs × 2 s / ~50 ms per iteration ≈ 200.
    assert!(
        (120.0..=210.0).contains(&iterations),
        "iterations {iterations}"
    );
    let peak = outcome
        .summary
        .series
        .iter()
        .map(|p| p.vus)
        .max()
        .unwrap_or(0);
    assert_eq!(peak, 5, "series {:?}", outcome.summary.series);
    assert!(outcome.summary.seconds() >= 2.0 && outcome.summary.seconds() < 3.5);
}

#[test]
fn ramping_vus_follows_k6_interpolation() {
    let demo = Demo::start();
    let yaml = manifest(
        "ramp",
        "  scenarios: {s: {executor: ramping-vus, startVUs: 0, stages: [{duration: 3s, target: 6}, {duration: 2s, target: 6}, {duration: 2s, target: 0}], gracefulRampDown: 0s}}\n  flows: {default: [{request: {url: /delay/20}}]}\n",
    );
    let test = load(&yaml);
    let outcome = run_against(&test, &demo.base_url());
    let scenario = scenario_s(&test);
    let plan = ScenarioPlan::new(&scenario, &ExecutionSegment::full());
    // Sampled once a second: the observed active VUs equal k6's count at that instant
    // (allowing the sample to land on either side of a change at the same instant).
    for point in &outcome.summary.series {
        let t = std::time::Duration::from_secs_f64(point.t);
        let before = plan.vus_at(t.saturating_sub(std::time::Duration::from_millis(150)));
        let after = plan.vus_at(t + std::time::Duration::from_millis(150));
        let (low, high) = (before.min(after), before.max(after));
        assert!(
            (low..=high).contains(&point.vus),
            "at {:.2}s: observed {} VUs, k6 plan {low}..={high}",
            point.t,
            point.vus
        );
    }
    assert!(outcome.summary.series.iter().any(|p| p.vus == 6));
}

#[test]
fn constant_arrival_rate_starts_the_scheduled_iterations() {
    let demo = Demo::start();
    let test = load(&manifest(
        "car",
        "  scenarios: {s: {executor: constant-arrival-rate, rate: 200, timeUnit: 1s, duration: 2s, preAllocatedVUs: 20, maxVUs: 50}}\n  flows: {default: [{request: {url: /}}]}\n",
    ));
    let outcome = run_against(&test, &demo.base_url());
    let started = count(&outcome, Metric::Iterations.name())
        + count(&outcome, Metric::DroppedIterations.name());
    // k6: starts k = 0.. at k·timeUnit/rate while < duration → exactly 400.
    assert_eq!(started, 400.0);
    assert_eq!(count(&outcome, Metric::DroppedIterations.name()), 0.0);
}

#[test]
fn ramping_arrival_rate_matches_the_integral_of_the_rate() {
    let demo = Demo::start();
    let yaml = manifest(
        "rar",
        "  scenarios: {s: {executor: ramping-arrival-rate, startRate: 0, timeUnit: 1s, preAllocatedVUs: 10, maxVUs: 20, stages: [{duration: 2s, target: 100}, {duration: 1s, target: 100}]}}\n  flows: {default: [{request: {url: /}}]}\n",
    );
    let test = load(&yaml);
    let outcome = run_against(&test, &demo.base_url());
    let scenario = scenario_s(&test);
    let plan = ScenarioPlan::new(&scenario, &ExecutionSegment::full());
    let expected = plan.global_arrival_count() as f64;
    assert_eq!(expected, 200.0, "∫ rate over 0→100 in 2s then 100 for 1s");
    let started = count(&outcome, Metric::Iterations.name())
        + count(&outcome, Metric::DroppedIterations.name());
    assert_eq!(started, expected);
}

#[test]
fn arrival_rate_drops_iterations_when_no_vu_is_free() {
    let demo = Demo::start();
    let test = load(&manifest(
        "drop",
        "  scenarios: {s: {executor: constant-arrival-rate, rate: 50, timeUnit: 1s, duration: 1s, preAllocatedVUs: 2, maxVUs: 2, gracefulStop: 2s}}\n  flows: {default: [{request: {url: /delay/500}}]}\n",
    ));
    let outcome = run_against(&test, &demo.base_url());
    let completed = count(&outcome, Metric::Iterations.name());
    let dropped = count(&outcome, Metric::DroppedIterations.name());
    // 2 VUs busy 500 ms each can start at most ~4 of the 50 scheduled; the rest are dropped,
    // never queued.
    assert!(completed <= 6.0, "completed {completed}");
    assert_eq!(
        completed + dropped,
        50.0,
        "completed {completed} dropped {dropped}"
    );
}

/// A ramp to 20 000 VUs used to walk every slot at every one of its 20 000 steps (still running
/// at 400 s for a 4 s plan); each step now touches only the slots it changes, and the
/// controller leaves at the hard stop.
#[test]
fn ramping_vus_to_20000_vus_ends_within_its_plan_and_graceful_stop() {
    let test = load(&manifest(
        "ramp-20k",
        "  scenarios: {s: {executor: ramping-vus, startVUs: 0, stages: [{duration: 4s, target: 20000}, {duration: 1s, target: 20000}], gracefulRampDown: 0s, gracefulStop: 1s}}\n  flows: {default: [{sleep: 200ms}]}\n",
    ));
    let started = std::time::Instant::now();
    let outcome = run_against(&test, "http://127.0.0.1:1");
    let took = started.elapsed();
    // Plan 5 s + gracefulStop 1 s; the margin is for a loaded CI machine, not the old 400 s.
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert_eq!(outcome.exit, Exit::Ok);
    let peak = outcome
        .summary
        .metrics
        .get(Metric::VusMax.name())
        .map(|value| match value {
            stampede_runner::metrics::Value::Gauge { max, .. } => *max,
            _ => 0.0,
        });
    // vus_max is sampled once a second; on a loaded machine the last VUs may still be starting
    // at the last sample (CI saw 19 918), so the ramp is checked to have got nearly all the way.
    assert!(
        peak.is_some_and(|peak| (19_000.0..=20_000.0).contains(&peak)),
        "{peak:?}"
    );
    assert!(count(&outcome, Metric::Iterations.name()) > 20_000.0);
}

/// `startVUs: 1000000` ran on for minutes and `startVUs: 2^63-1` allocated until the process
/// was killed; both are refused before a VU exists, naming the cap and the flag.
#[test]
fn a_test_over_the_local_vu_cap_is_refused_before_it_starts() {
    for (start_vus, needed) in [
        ("1000000", "1000000"),
        ("9223372036854775807", "9223372036854775807"),
    ] {
        let test = load(&manifest(
            "too-many-vus",
            &format!(
                "  scenarios: {{s: {{executor: ramping-vus, startVUs: {start_vus}, stages: [{{duration: 4s, target: 0}}]}}}}\n  flows: {{default: [{{sleep: 1s}}]}}\n"
            ),
        ));
        let started = std::time::Instant::now();
        let error = stampede_runner::engine::run(&test, Default::default()).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            error.to_string(),
            format!(
                "the test needs up to {needed} VUs at once here, over the local cap of 100000; lower the scenarios' VUs or raise the cap with --max-vus {needed} (each VU takes 8-20 KiB)"
            )
        );
    }
    // Two scenarios of 60 000 that overlap in time need 120 000 together.
    let test = load(&manifest(
        "overlap",
        "  scenarios:\n    a: {executor: constant-vus, vus: 60000, duration: 2s}\n    b: {executor: constant-vus, vus: 60000, duration: 2s}\n  flows: {default: [{sleep: 1s}]}\n",
    ));
    let error = stampede_runner::engine::run(&test, Default::default()).unwrap_err();
    assert!(
        error.to_string().contains("needs up to 120000 VUs"),
        "{error}"
    );
}
