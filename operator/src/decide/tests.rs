//! Unit tests of the decision, one per arm: a new run (planned and recorded), an invalid spec or
//! one over the caps, a spec edit, provisioning from the recorded plan, a running and a
//! finishing run (whatever the policy says now), clean-up, TTL, a deleted LoadTest, and a run
//! whose status records no plan.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use stampede_crds::LoadTest;
use stampede_crds::status::{CONDITION_COMPLETE, CONDITION_PASSED, LoadTestStatus, Phase};
use stampede_runner::cluster::{RunnerReport, RunnerState};
use stampede_runner::metrics::snapshot::Trend;
use stampede_runner::metrics::{Registry, Snapshot, Value};
use stampede_runner::summary::SecondPoint;

use super::*;
use crate::desired::{Owned, runner_container};
use crate::policy::Policy;

/// A whole second, so `metav1.Time` round trips are exact.
const T0: i64 = 1_700_000_000;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn loadtest_with(spec: serde_json::Value, generation: i64) -> LoadTest {
    serde_json::from_value(json!({
        "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "u-1", "generation": generation},
        "spec": spec,
    }))
    .unwrap()
}

/// 3 VUs for 30 s on 3 runners, one threshold every run here passes.
fn spec() -> serde_json::Value {
    json!({
        "vus": 3, "duration": "30s",
        "flows": {"default": [{"name": "login", "request": {"url": "http://127.0.0.1:1/login"}}]},
        "thresholds": {"http_req_failed": ["rate<0.5"]},
        "runners": {"count": 3},
    })
}

fn loadtest() -> LoadTest {
    loadtest_with(spec(), 1)
}

/// The policy the run started under.
fn policy() -> Policy {
    Policy {
        runner_image: "registry.local/stampede:1.0".into(),
        ..Policy::default()
    }
}

fn condition<'a>(status: &'a LoadTestStatus, kind: &str) -> &'a Condition {
    status
        .condition(kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {:?}", status.conditions))
}

fn nothing(second: i64) -> Observation {
    Observation::nothing(at(second))
}

fn report(runner: u64, state: RunnerState) -> RunnerReport {
    RunnerReport {
        run: 1,
        runner,
        state,
        ..RunnerReport::default()
    }
}

/// Runner `runner`'s report after 30 s: 120 requests, 100 of them in the first 10 s.
fn measured(runner: u64, state: RunnerState) -> RunnerReport {
    let mut metrics = Snapshot::empty(&Registry::new());
    let mut trend = Trend::default();
    for i in 0..120 {
        trend.record(10.0 + f64::from(i % 7));
    }
    let values = &mut metrics.values;
    values.insert("http_reqs".into(), Value::Counter(120.0));
    values.insert("http_req_duration".into(), Value::Trend(Box::new(trend)));
    values.insert(
        "http_req_failed".into(),
        Value::Rate {
            passes: 0,
            total: 120,
        },
    );
    let point = |t: f64, requests: u64| SecondPoint {
        t,
        requests,
        ..SecondPoint::default()
    };
    RunnerReport {
        elapsed_seconds: 30.0,
        metrics: Some(metrics),
        series: vec![point(10.0, 100), point(30.0, 20)],
        ..report(runner, state)
    }
}

fn job_named(name: &str, image: &str, completions: i32) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"completions": completions, "template": {"spec": {"containers": [
            {"name": "runner", "image": image, "resources": {"limits": {"memory": "1Gi"}}}]}}},
    }))
    .unwrap()
}

fn jobs(decision: &Decision) -> Vec<&Job> {
    decision
        .apply
        .iter()
        .filter_map(|object| match object {
            Owned::Job(job) => Some(job.as_ref()),
            _ => None,
        })
        .collect()
}

fn image(job: &Job) -> &str {
    runner_container(job)
        .and_then(|container| container.image.as_deref())
        .expect("the runner container names its image")
}

fn config_maps(decision: &Decision) -> Vec<String> {
    let result = decision.result.iter().map(|map| map.as_ref());
    let applied = decision.apply.iter().filter_map(|object| match object {
        Owned::ConfigMap(map) => Some(map),
        _ => None,
    });
    result
        .chain(applied)
        .filter_map(|map| map.metadata.name.clone())
        .collect()
}

/// The status the first decision writes, as the API then returns it with the LoadTest.
fn provisioning(test: &LoadTest) -> LoadTestStatus {
    let decision = decide(test, &LoadTestStatus::default(), &nothing(T0), &policy());
    decision.status.expect("a new run's status")
}

/// The status once all three runners reported Ready at T0 + 10 (start at T0 + 14).
fn running(test: &LoadTest) -> LoadTestStatus {
    let ready = Observation {
        reports: (0..3)
            .map(|i| Some(report(i, RunnerState::Ready)))
            .collect(),
        ..nothing(T0 + 10)
    };
    let decision = decide(test, &provisioning(test), &ready, &policy());
    let status = decision.status.expect("the Running status");
    assert_eq!(status.phase, Some(Phase::Running));
    status
}

fn finished_reports(second: i64) -> Observation {
    Observation {
        reports: (0..3)
            .map(|i| Some(measured(i, RunnerState::Finished)))
            .collect(),
        ..nothing(second)
    }
}

#[test]
fn a_new_spec_is_planned_once_and_the_plan_recorded() {
    let test = loadtest();
    let decision = decide(&test, &LoadTestStatus::default(), &nothing(T0), &policy());
    let status = decision.status.as_ref().expect("a status");
    assert_eq!(status.phase, Some(Phase::Provisioning));
    assert_eq!(status.run, Some(1));
    let plan = status.plan.as_ref().expect("the recorded plan");
    assert_eq!(plan.runners, 3);
    assert_eq!(plan.peak_vus, 3);
    assert_eq!(plan.segments, ["0:1/3", "1/3:2/3", "2/3:1"]);
    assert_eq!(plan.image, "registry.local/stampede:1.0");
    assert_eq!(
        plan.planned_seconds, 60.0,
        "30 s + the default 30 s graceful stop"
    );
    // No verdict yet: Passed is Unknown, so a gate waiting on Passed=False does not fire.
    let passed = condition(status, CONDITION_PASSED);
    assert_eq!(
        (passed.status.as_str(), passed.reason.as_str()),
        ("Unknown", "Provisioning")
    );
    assert_eq!(condition(status, CONDITION_COMPLETE).status, "False");
    // Every object of the run, built from that plan.
    assert_eq!(
        config_maps(&decision),
        [
            "checkout-run1-report-0",
            "checkout-run1-report-1",
            "checkout-run1-report-2"
        ]
    );
    let kinds: Vec<&str> = decision
        .apply
        .iter()
        .map(|object| match object {
            Owned::ConfigMap(_) => "ConfigMap",
            Owned::ServiceAccount(_) => "ServiceAccount",
            Owned::Role(_) => "Role",
            Owned::RoleBinding(_) => "RoleBinding",
            Owned::Job(_) => "Job",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "ConfigMap",
            "ConfigMap",
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Job"
        ]
    );
    let job = jobs(&decision)[0];
    assert_eq!(image(job), "registry.local/stampede:1.0");
    assert_eq!(job.spec.as_ref().unwrap().completions, Some(3));
    assert_eq!(decision.events.len(), 1);
    assert_eq!(decision.events[0].reason, "Provisioning");
    assert!(!decision.events[0].warning);
    assert_eq!(
        decision.events[0].note,
        "run 1: 3 runner(s), segments 0:1/3 1/3:2/3 2/3:1"
    );
    assert!(decision.delete.is_empty(), "no previous run");
    assert_eq!(decision.requeue, Some(Duration::from_secs(1)));
}

#[test]
fn an_invalid_spec_is_invalid_and_creates_nothing() {
    let mut spec = spec();
    spec["duration"] = json!("soon");
    let test = loadtest_with(spec, 1);
    let decision = decide(&test, &LoadTestStatus::default(), &nothing(T0), &policy());
    let status = decision.status.expect("a status");
    assert_eq!(status.phase, Some(Phase::Invalid));
    assert!(status.plan.is_none());
    let message = status.message.unwrap();
    assert!(message.starts_with("spec.duration"), "{message}");
    assert_eq!(
        condition_status(&status.conditions, CONDITION_COMPLETE),
        "True"
    );
    assert_eq!(
        condition_status(&status.conditions, CONDITION_PASSED),
        "False"
    );
    assert!(decision.apply.is_empty() && decision.delete.is_empty());
    assert!(decision.events[0].warning && decision.events[0].reason == "Invalid");
    assert_eq!(decision.requeue, None);
}

fn condition_status<'a>(conditions: &'a [Condition], kind: &str) -> &'a str {
    conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map_or("", |c| c.status.as_str())
}

#[test]
fn a_new_spec_over_the_caps_is_invalid_with_the_fix() {
    let tight = Policy {
        max_runners: 2,
        ..policy()
    };
    let decision = decide(
        &loadtest(),
        &LoadTestStatus::default(),
        &nothing(T0),
        &tight,
    );
    let status = decision.status.expect("a status");
    assert_eq!(status.phase, Some(Phase::Invalid));
    assert_eq!(
        status.message.as_deref(),
        Some(
            "spec.runners.count: the test would use 3 runners, but this operator allows at most \
             2 per LoadTest: set spec.runners.count to at most 2"
        )
    );
    assert!(decision.apply.is_empty());
}

#[test]
fn a_spec_edit_starts_the_next_run_and_removes_the_previous_runs_objects() {
    let status = running(&loadtest());
    let mut edited = spec();
    edited["runners"]["count"] = json!(2);
    let test = loadtest_with(edited, 2);
    let decision = decide(&test, &status, &nothing(T0 + 20), &policy());
    let next = decision.status.as_ref().expect("the new run's status");
    assert_eq!((next.run, next.phase), (Some(2), Some(Phase::Provisioning)));
    assert_eq!(next.observed_generation, Some(2));
    assert_eq!(next.plan.as_ref().map(|p| p.runners), Some(2));
    assert_eq!(
        jobs(&decision)[0].metadata.name.as_deref(),
        Some("checkout-run2")
    );
    // The new run's objects stay; every other run's go (after they were applied).
    assert_eq!(decision.delete, [Deletion::RunObjects { keep: Some(2) }]);

    let mut broken = spec();
    broken["vus"] = json!(-1);
    let decision = decide(
        &loadtest_with(broken, 2),
        &status,
        &nothing(T0 + 20),
        &policy(),
    );
    assert_eq!(
        decision.status.as_ref().and_then(|s| s.phase),
        Some(Phase::Invalid)
    );
    assert_eq!(decision.delete, [Deletion::RunObjects { keep: None }]);
}

#[test]
fn provisioning_applies_the_run_objects_from_the_recorded_plan() {
    let test = loadtest();
    let status = provisioning(&test);
    // The operator restarted with another default image before the Job was created.
    let upgraded = Policy {
        runner_image: "registry.local/stampede:2.0".into(),
        ..policy()
    };
    let decision = decide(&test, &status, &nothing(T0 + 2), &upgraded);
    let applied = jobs(&decision);
    assert_eq!(applied.len(), 1);
    assert_eq!(
        image(applied[0]),
        "registry.local/stampede:1.0",
        "the recorded image"
    );
    assert_eq!(config_maps(&decision).len(), 3);
    assert!(
        decision.status.is_none(),
        "nothing changed: {:?}",
        decision.status
    );
    assert!(decision.events.is_empty() && decision.delete.is_empty());
    assert_eq!(decision.requeue, Some(Duration::from_secs(1)));
}

#[test]
fn the_operators_default_image_changed_the_existing_job_is_left_alone() {
    let test = loadtest();
    let status = provisioning(&test);
    let upgraded = Policy {
        runner_image: "registry.local/stampede:2.0".into(),
        ..policy()
    };
    let observation = Observation {
        job: Some(job_named("checkout-run1", "registry.local/stampede:1.0", 3)),
        reports: vec![Some(report(0, RunnerState::Ready)), None, None],
        ..nothing(T0 + 2)
    };
    let decision = decide(&test, &status, &observation, &upgraded);
    assert!(
        jobs(&decision).is_empty(),
        "an existing Job's pod template is immutable: it is not applied again"
    );
    // The rest of the run's objects are applied again (a restart may have cut them short).
    assert_eq!(config_maps(&decision).len(), 3);
    let written = decision.status.expect("the ready count changed");
    assert_eq!(
        written.plan.as_ref().map(|p| p.image.as_str()),
        Some("registry.local/stampede:1.0")
    );
    assert_eq!(
        written.plan, status.plan,
        "the recorded plan stays as it was"
    );
    assert_eq!(written.runners.as_ref().map(|r| r.ready), Some(1));
}

#[test]
fn caps_lowered_after_a_restart_the_running_test_finishes_with_its_recorded_plan() {
    let test = loadtest();
    let status = running(&test);
    // The operator restarted with caps the run no longer fits.
    let lowered = Policy {
        max_runners: 1,
        max_vus_per_test: 1,
        ..policy()
    };
    assert_eq!(
        watched_run(&test, &status),
        Some(WatchedRun { run: 1, runners: 3 })
    );
    let going = Observation {
        reports: (0..3)
            .map(|i| Some(measured(i, RunnerState::Running)))
            .collect(),
        ..nothing(T0 + 30)
    };
    let decision = decide(&test, &status, &going, &lowered);
    let written = decision.status.expect("progress");
    assert_eq!(written.phase, Some(Phase::Running), "{:?}", written.message);
    assert_eq!(written.plan, status.plan);
    assert_eq!(written.progress.as_ref().map(|p| p.http_reqs), Some(360));
    assert_eq!(condition(&written, CONDITION_PASSED).status, "Unknown");
    assert!(decision.apply.is_empty() && decision.delete.is_empty());

    let decision = decide(&test, &written, &finished_reports(T0 + 50), &lowered);
    let done = decision.status.as_ref().expect("the verdict");
    assert_eq!(done.phase, Some(Phase::Succeeded), "{:?}", done.message);
    assert_eq!(done.runners.as_ref().map(|r| r.succeeded), Some(3));
    assert_eq!(done.summary.as_ref().map(|s| s.http_reqs), Some(360));
    assert_eq!(condition(done, CONDITION_PASSED).status, "True");
    // The RPS column shows the run's average once it is over, not the last window's rate.
    let progress = done.progress.as_ref().unwrap();
    assert_eq!(progress.rps, 12.0, "360 requests in 30 s");
    assert_eq!(config_maps(&decision), ["checkout-result"]);
    assert!(
        decision.result.is_some() && decision.apply.is_empty(),
        "the result is written before the status that points at it"
    );
    assert_eq!(decision.delete, [Deletion::RunObjects { keep: None }]);
    assert_eq!(
        decision.events.last().map(|e| e.reason.as_str()),
        Some("Succeeded")
    );
    assert_eq!(decision.requeue, None);
}

/// The decision when every runner of `test`'s running run has finished (at T0 + 50).
fn finish(test: &LoadTest) -> Decision {
    decide(test, &running(test), &finished_reports(T0 + 50), &policy())
}

#[test]
fn cleanup_follows_the_spec() {
    for (cleanup, deletes) in [("runners", true), ("none", false), ("onSuccess", true)] {
        let mut spec = spec();
        spec["cleanup"] = json!(cleanup);
        let test = loadtest_with(spec, 1);
        let decision = finish(&test);
        assert_eq!(
            decision.delete == [Deletion::RunObjects { keep: None }],
            deletes,
            "{cleanup}: {:?}",
            decision.delete
        );
    }
    // onSuccess keeps a failed run's objects.
    let mut spec = spec();
    spec["cleanup"] = json!("onSuccess");
    spec["thresholds"] = json!({"http_req_duration": ["p(95)<1"]});
    let test = loadtest_with(spec, 1);
    let decision = finish(&test);
    assert_eq!(decision.status.and_then(|s| s.phase), Some(Phase::Failed));
    assert!(decision.delete.is_empty());
}

#[test]
fn an_operator_stopped_before_the_clean_up_does_it_when_it_sees_the_run_again() {
    for (cleanup, deletes) in [("runners", true), ("none", false), ("onSuccess", true)] {
        let mut spec = spec();
        spec["cleanup"] = json!(cleanup);
        let test = loadtest_with(spec, 1);
        let done = finish(&test).status.expect("the verdict");
        let again = decide(&test, &done, &nothing(T0 + 60), &policy());
        assert!(again.status.is_none() && again.result.is_none() && again.apply.is_empty());
        assert_eq!(
            again.delete == [Deletion::RunObjects { keep: None }],
            deletes,
            "{cleanup}: {:?}",
            again.delete
        );
    }
}

#[test]
fn a_finished_run_waits_for_its_ttl_then_deletes_the_loadtest() {
    let mut spec = spec();
    spec["ttlSecondsAfterFinished"] = json!(60);
    let test = loadtest_with(spec, 1);
    let finishing = finish(&test);
    assert_eq!(finishing.requeue, Some(Duration::from_secs(61)));
    let done = finishing.status.expect("the verdict");
    assert_eq!(done.completion_time, Some(Time(at(T0 + 50))));
    assert_eq!(watched_run(&test, &done), None, "nothing to observe");

    let waiting = decide(&test, &done, &nothing(T0 + 80), &policy());
    assert!(waiting.status.is_none() && waiting.apply.is_empty());
    // The clean-up is done again, in case an operator stopped before it (else a no-op).
    assert_eq!(waiting.delete, [Deletion::RunObjects { keep: None }]);
    assert_eq!(waiting.requeue, Some(Duration::from_secs(31)));
    let expired = decide(&test, &done, &nothing(T0 + 110), &policy());
    assert_eq!(expired.delete, [Deletion::LoadTest]);
    assert!(expired.status.is_none());

    // Without a TTL a finished run waits for a change.
    let kept = decide(&loadtest(), &done, &nothing(T0 + 10_000), &policy());
    assert!(kept.status.is_none() && kept.requeue.is_none());
    assert_eq!(kept.delete, [Deletion::RunObjects { keep: None }]);
}

#[test]
fn a_ttl_past_the_end_of_time_waits_in_hours_and_never_overflows() {
    let mut forever = spec();
    forever["ttlSecondsAfterFinished"] = json!(i64::MAX);
    let test = loadtest_with(forever, 1);
    let done = finish(&test).status.expect("the verdict");
    let later = decide(&test, &done, &nothing(T0 + 1_000_000), &policy());
    assert!(!later.delete.contains(&Deletion::LoadTest) && later.status.is_none());
    assert_eq!(later.requeue, None, "it never expires");

    // Ten years: expires, but the controller is woken at most hourly on the way.
    let mut ten_years = spec();
    ten_years["ttlSecondsAfterFinished"] = json!(10 * 365 * 86_400);
    let test = loadtest_with(ten_years, 1);
    let done = finish(&test).status.expect("the verdict");
    let waiting = decide(&test, &done, &nothing(T0 + 100), &policy());
    assert_eq!(waiting.requeue, Some(LONGEST_WAIT));
}

#[test]
fn an_operator_failure_ends_a_going_run_errored_and_keeps_a_finished_verdict() {
    let test = loadtest();
    let going = running(&test);
    let decision = failed(&test, &going, "deciding took over 10s", at(T0 + 5));
    let status = decision.status.expect("an Errored status");
    assert_eq!(status.phase, Some(Phase::Errored));
    assert_eq!(status.run, going.run);
    assert_eq!(status.plan, going.plan, "the plan stays on record");
    let message = "the operator failed on this LoadTest: deciding took over 10s";
    assert_eq!(status.message.as_deref(), Some(message));
    assert_eq!(condition(&status, CONDITION_COMPLETE).reason, "Errored");
    assert_eq!(condition(&status, CONDITION_PASSED).status, "False");
    assert_eq!(decision.delete, [Deletion::RunObjects { keep: None }]);
    assert!(
        decision
            .events
            .iter()
            .any(|e| e.warning && e.note == message)
    );
    // Errored is finished for this generation: the next reconcile does not start it again.
    assert!(!needs_new_run(&test, &status));
    assert_eq!(watched_run(&test, &status), None);

    let done = finish(&test).status.expect("the verdict");
    let kept = failed(&test, &done, "a panic", at(T0 + 60));
    assert!(kept.status.is_none() && kept.delete.is_empty());
    assert_eq!(kept.events.len(), 1);
    // A new spec that cannot be decided ends Errored, not retried forever.
    let fresh = failed(&test, &LoadTestStatus::default(), "a panic", at(T0));
    assert_eq!(fresh.status.and_then(|s| s.phase), Some(Phase::Errored));
}

#[test]
fn a_zero_ttl_deletes_the_loadtest_right_after_the_clean_up() {
    let mut spec = spec();
    spec["ttlSecondsAfterFinished"] = json!(0);
    let test = loadtest_with(spec, 1);
    let decision = finish(&test);
    assert_eq!(
        decision.delete,
        [Deletion::RunObjects { keep: None }, Deletion::LoadTest]
    );
}

#[test]
fn a_deleted_loadtest_gets_nothing() {
    let mut test = loadtest();
    test.metadata.deletion_timestamp = Some(Time(at(T0)));
    let decision = decide(&test, &LoadTestStatus::default(), &nothing(T0), &policy());
    assert!(decision.status.is_none() && decision.apply.is_empty());
    assert!(decision.delete.is_empty() && decision.events.is_empty());
    assert_eq!(decision.requeue, None);
    assert_eq!(watched_run(&test, &running(&loadtest())), None);
}

#[test]
fn a_run_without_a_recorded_plan_continues_with_what_its_job_shows() {
    let test = loadtest();
    // What an operator that recorded no plan wrote: 2 runners, the Job on an older image.
    let mut legacy = provisioning(&test);
    legacy.plan = None;
    legacy.runners.as_mut().unwrap().desired = 2;
    assert_eq!(
        watched_run(&test, &legacy),
        Some(WatchedRun { run: 1, runners: 2 })
    );
    let observation = Observation {
        job: Some(job_named("checkout-run1", "registry.local/stampede:0.9", 2)),
        ..nothing(T0 + 2)
    };
    let decision = decide(&test, &legacy, &observation, &policy());
    let written = decision
        .status
        .clone()
        .expect("the recovered plan is recorded");
    let plan = written.plan.expect("a plan");
    assert_eq!(plan.runners, 2);
    assert_eq!(plan.segments, ["0:1/2", "1/2:1"]);
    assert_eq!(plan.image, "registry.local/stampede:0.9");
    assert_eq!(
        serde_json::to_value(&plan.resources).unwrap(),
        json!({"limits": {"memory": "1Gi"}})
    );
    assert!(jobs(&decision).is_empty());
    assert_eq!(config_maps(&decision).len(), 2);
    let warning = &decision.events[0];
    assert!(warning.warning);
    assert_eq!(warning.reason, "PlanRecovered");
    assert!(
        warning
            .note
            .starts_with("the run's status records no plan; continuing run 1"),
        "{}",
        warning.note
    );

    // An unreadable record is recovered the same way, and says why.
    let mut edited = provisioning(&test);
    edited.plan.as_mut().unwrap().segments.pop();
    let decision = decide(&test, &edited, &observation, &policy());
    assert_eq!(
        decision.status.and_then(|s| s.plan).map(|p| p.runners),
        Some(3)
    );
    assert!(
        decision.events[0]
            .note
            .starts_with("status.plan.segments has 2 entries for 3 runners"),
        "{}",
        decision.events[0].note
    );
}

#[test]
fn only_a_going_run_is_observed() {
    let test = loadtest();
    assert_eq!(
        watched_run(&test, &LoadTestStatus::default()),
        None,
        "a new spec"
    );
    let status = provisioning(&test);
    assert_eq!(
        watched_run(&test, &status),
        Some(WatchedRun { run: 1, runners: 3 })
    );
    assert_eq!(
        watched_run(&loadtest_with(spec(), 2), &status),
        None,
        "an edited spec starts a new run"
    );
}
