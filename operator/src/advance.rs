//! The run's state machine, pure: from the run's recorded plan, the current status, the
//! runners' reports, their faults and the time, the next status — start barrier, live progress
//! and fleet-wide abortOnFail, the final verdict, and the Errored endings with their reasons
//! and deadlines. It is the active-run arm of [`crate::decide`].

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use stampede_crds::LoadTest;
use stampede_crds::model::summary::TrendColumn;
use stampede_crds::status::{
    CONDITION_COMPLETE, CONDITION_PASSED, LoadTestStatus, Phase, ResultRef, RunnerCounts,
};
use stampede_runner::cluster::{RunnerReport, RunnerState, merge_reports};
use stampede_runner::summary::Summary;
use stampede_runner::thresholds::Thresholds;

use crate::faults::{RunnerFault, Severity};
use crate::names::Names;
use crate::plan::RunPlan;
use crate::status::{self, ConditionStatus, reason};

/// How far ahead of "all Ready" the start is set, so every runner sees it before it comes.
pub const START_DELAY: Duration = Duration::from_secs(3);
/// How long after the planned end (graceful stops included) runners may take to report.
pub const END_GRACE: Duration = Duration::from_secs(60);

/// A started run as the state machine reads it: the LoadTest, the plan recorded when the run
/// started, and the thresholds.
#[derive(Debug, Clone, Copy)]
pub struct ActiveRun<'a> {
    /// The LoadTest.
    pub test: &'a LoadTest,
    /// The run's recorded plan.
    pub plan: &'a RunPlan,
    /// The test's thresholds.
    pub thresholds: &'a Thresholds,
    /// The summary's trend columns.
    pub trend_stats: &'a [TrendColumn],
}

/// What the operator sees of a run now.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Now.
    pub now: Timestamp,
    /// Runner i's latest report (None while it has written none).
    pub reports: Vec<Option<RunnerReport>>,
    /// The run's faults.
    pub faults: Vec<RunnerFault>,
    /// The start deadline (operator policy).
    pub start_deadline: Duration,
}

/// Something worth an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: String,
    /// The note.
    pub note: String,
}

/// The next step of a run.
#[derive(Debug, Clone)]
pub struct Step {
    /// The new status.
    pub status: LoadTestStatus,
    /// The final merged summary when the run ended in this step.
    pub finished: Option<Summary>,
    /// The merged summary so far while the run goes, thresholds as they stand (the fleet
    /// dashboard shows it).
    pub live: Option<Summary>,
    /// An Event to record.
    pub notice: Option<Notice>,
    /// When to look again.
    pub requeue: Option<Duration>,
}

fn time(at: Timestamp) -> Time {
    // metav1.Time has whole seconds on the wire; keep ours whole so reads compare equal.
    Time(Timestamp::from_second(at.as_second()).unwrap_or(at))
}

fn since(now: Timestamp, then: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(then)).unwrap_or(Duration::ZERO)
}

/// The status of a spec that cannot run: phase Invalid, both conditions with reason Invalid so
/// a pipeline waiting on `Complete` fails fast, and the problems as the message.
pub fn invalid(
    test: &LoadTest,
    previous: &LoadTestStatus,
    message: &str,
    now: Timestamp,
) -> LoadTestStatus {
    ended_without_verdict(
        test,
        previous,
        Phase::Invalid,
        reason::INVALID,
        message,
        now,
    )
}

/// The status of a LoadTest the operator failed on (deciding it panicked or overran its
/// deadline): phase Errored with the reason, so the run ends visibly instead of the operator
/// retrying it forever; a spec change starts a new run.
pub fn errored(
    test: &LoadTest,
    previous: &LoadTestStatus,
    message: &str,
    now: Timestamp,
) -> LoadTestStatus {
    let mut status = ended_without_verdict(
        test,
        previous,
        Phase::Errored,
        reason::ERRORED,
        message,
        now,
    );
    status.plan = previous.plan.clone();
    status.runners = previous.runners.clone();
    status.start_time = previous.start_time.clone();
    status.completion_time = Some(time(now));
    status
}

/// An ending with no verdict: `Complete` true and `Passed` false, both with `reason`, for the
/// current generation.
fn ended_without_verdict(
    test: &LoadTest,
    previous: &LoadTestStatus,
    phase: Phase,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> LoadTestStatus {
    let now = time(now);
    let generation = test.metadata.generation;
    let mut conditions = previous.conditions.clone();
    status::set_condition(
        &mut conditions,
        CONDITION_COMPLETE,
        true,
        reason,
        message,
        generation,
        &now,
    );
    status::set_condition(
        &mut conditions,
        CONDITION_PASSED,
        false,
        reason,
        message,
        generation,
        &now,
    );
    LoadTestStatus {
        phase: Some(phase),
        run: previous.run,
        observed_generation: generation,
        message: Some(message.to_string()),
        conditions,
        ..LoadTestStatus::default()
    }
}

/// The status of a new run of the current spec: run + 1, Provisioning, its plan recorded, fresh
/// conditions (their transition time is the run's start, which the start deadline counts
/// from). `Passed` is `Unknown` until there is a verdict, so a gate waiting on `Passed=False`
/// does not fire while the run goes.
pub fn new_run(
    test: &LoadTest,
    previous: &LoadTestStatus,
    plan: &RunPlan,
    now: Timestamp,
) -> LoadTestStatus {
    let now = time(now);
    let generation = test.metadata.generation;
    let mut conditions = Vec::new();
    let message = format!(
        "starting {} runner(s) for {} VUs at peak",
        plan.runners, plan.peak_vus
    );
    status::set_condition(
        &mut conditions,
        CONDITION_COMPLETE,
        false,
        reason::PROVISIONING,
        &message,
        generation,
        &now,
    );
    status::set_condition_to(
        &mut conditions,
        CONDITION_PASSED,
        ConditionStatus::Unknown,
        reason::PROVISIONING,
        NO_VERDICT_YET,
        generation,
        &now,
    );
    let record = plan.record();
    LoadTestStatus {
        phase: Some(Phase::Provisioning),
        run: Some(previous.run.unwrap_or(0) + 1),
        observed_generation: generation,
        runners: Some(RunnerCounts {
            desired: record.runners,
            ..RunnerCounts::default()
        }),
        plan: Some(record),
        message: Some(message),
        conditions,
        ..LoadTestStatus::default()
    }
}

/// The `Passed` message while the run goes.
const NO_VERDICT_YET: &str = "the run has not finished";

fn run_started(status: &LoadTestStatus) -> Option<Timestamp> {
    status
        .condition(CONDITION_COMPLETE)
        .map(|c| c.last_transition_time.0)
}

fn counts(desired: usize, observation: &Observation) -> RunnerCounts {
    let states: Vec<Option<RunnerState>> = observation
        .reports
        .iter()
        .map(|r| r.as_ref().map(|r| r.state))
        .collect();
    let count = |wanted: &[RunnerState]| {
        states
            .iter()
            .filter(|s| s.is_some_and(|s| wanted.contains(&s)))
            .count() as i64
    };
    let fatal = observation
        .faults
        .iter()
        .filter(|f| f.severity == Severity::Fatal)
        .count() as i64;
    RunnerCounts {
        desired: desired as i64,
        ready: count(&[
            RunnerState::Ready,
            RunnerState::Running,
            RunnerState::Finished,
        ]),
        running: count(&[RunnerState::Running]),
        succeeded: count(&[RunnerState::Finished]),
        failed: count(&[RunnerState::Failed]).max(fatal),
    }
}

/// Advances an active run (Provisioning, Running, Aborting) by one observation.
pub fn advance(run: &ActiveRun<'_>, current: &LoadTestStatus, observation: &Observation) -> Step {
    let test = run.test;
    let phase = current.phase.unwrap_or_default();
    let desired = usize::try_from(run.plan.runners).unwrap_or(usize::MAX);
    let mut status = current.clone();
    status.runners = Some(counts(desired, observation));
    let reports: Vec<&RunnerReport> = observation.reports.iter().flatten().collect();

    // A runner that failed ends the run, whatever the phase. Its own report says why better
    // than its pod's exit code does, so it comes first.
    let failed_report = reports
        .iter()
        .find(|r| r.state == RunnerState::Failed)
        .map(|r| {
            format!(
                "runner {} failed: {}",
                r.runner,
                r.message.as_deref().unwrap_or("no reason given")
            )
        });
    // A runner that stopped on its own (SIGTERM from a drain or eviction) while the run was
    // meant to go on: part of the load is missing, so the verdict would not be about the test.
    let stopped_early = (phase != Phase::Aborting)
        .then(|| {
            reports
                .iter()
                .find(|r| r.state == RunnerState::Finished && r.aborted.is_some())
        })
        .flatten()
        .map(|r| {
            format!(
                "runner {} stopped early: {}",
                r.runner,
                r.aborted.as_deref().unwrap_or_default()
            )
        });
    let fatal = fatal_message(&observation.faults, desired);
    if let Some(message) = failed_report.or(fatal).or(stopped_early) {
        return finish(
            run,
            status,
            &reports,
            Ending::Errored(message),
            observation.now,
        );
    }

    match phase {
        Phase::Provisioning => {
            let all_ready = reports.len() == desired
                && desired > 0
                && reports.iter().all(|r| r.state != RunnerState::Preparing);
            if all_ready {
                let start =
                    observation.now + SignedDuration::from_secs(START_DELAY.as_secs() as i64 + 1);
                status.phase = Some(Phase::Running);
                status.start_time = Some(time(start));
                status.message = Some(format!("{desired} runner(s) ready; starting together"));
                let now = time(observation.now);
                status::set_condition(
                    &mut status.conditions,
                    CONDITION_COMPLETE,
                    false,
                    reason::RUNNING,
                    "the run is going",
                    test.metadata.generation,
                    &now,
                );
                status::set_condition_to(
                    &mut status.conditions,
                    CONDITION_PASSED,
                    ConditionStatus::Unknown,
                    reason::RUNNING,
                    NO_VERDICT_YET,
                    test.metadata.generation,
                    &now,
                );
                return Step {
                    status,
                    finished: None,
                    live: None,
                    notice: Some(Notice {
                        warning: false,
                        reason: "Started".into(),
                        note: format!(
                            "run {}: {desired} runner(s) start at {}",
                            current.run.unwrap_or(0),
                            time(start).0
                        ),
                    }),
                    requeue: Some(START_DELAY),
                };
            }
            let started = run_started(current).unwrap_or(observation.now);
            if since(observation.now, started) > observation.start_deadline {
                let ready = status.runners.as_ref().map_or(0, |r| r.ready);
                let mut message = format!(
                    "only {ready} of {desired} runner(s) were ready within the start deadline of {}s",
                    observation.start_deadline.as_secs()
                );
                if let Some(stuck) = observation.faults.first() {
                    message.push_str(&format!(": {}", stuck.message));
                }
                return finish(
                    run,
                    status,
                    &reports,
                    Ending::Errored(message),
                    observation.now,
                );
            }
            Step {
                status,
                finished: None,
                live: None,
                notice: None,
                requeue: Some(Duration::from_secs(1)),
            }
        }
        Phase::Running | Phase::Aborting => {
            let all_done = reports.len() == desired
                && reports.iter().all(|r| r.state == RunnerState::Finished);
            if all_done {
                let ending = if phase == Phase::Aborting {
                    Ending::Aborted(current.message.clone().unwrap_or_default())
                } else {
                    Ending::Completed
                };
                return finish(run, status, &reports, ending, observation.now);
            }
            let start = current.start_time.as_ref().map_or(observation.now, |t| t.0);
            let deadline = run.plan.planned + END_GRACE;
            if since(observation.now, start) > deadline {
                let late: Vec<String> = (0..desired)
                    .filter(|i| {
                        observation
                            .reports
                            .get(*i)
                            .and_then(Option::as_ref)
                            .is_none_or(|r| r.state != RunnerState::Finished)
                    })
                    .map(|i| i.to_string())
                    .collect();
                let message = format!(
                    "runner(s) {} did not finish within {}s of the start (planned length + {}s)",
                    late.join(", "),
                    deadline.as_secs(),
                    END_GRACE.as_secs()
                );
                return finish(
                    run,
                    status,
                    &reports,
                    Ending::Errored(message),
                    observation.now,
                );
            }
            let mut merged = merge_reports(
                test.metadata.name.as_deref().unwrap_or_default(),
                run.trend_stats,
                &reports,
            );
            identify(&mut merged, test, &status);
            let vus = reports.iter().map(|r| r.vus).sum();
            // The rate of the last point every runner has reported (a later one holds only
            // the faster runners' requests).
            let complete = reports.iter().map(|r| r.series.len()).min().unwrap_or(0);
            let rps = status::recent_rps(&merged.series[..complete.min(merged.series.len())]);
            status.progress = Some(status::progress(
                &merged,
                vus,
                rps,
                run.plan.planned.as_secs_f64(),
            ));
            let mut notice = None;
            let thresholds = run.thresholds;
            let results = thresholds.evaluate(&merged.metrics, merged.seconds(), false);
            if phase == Phase::Running {
                let elapsed = Duration::from_secs_f64(merged.seconds().max(0.0));
                if let Some(failed) = thresholds.abort_reason(&results, elapsed) {
                    let message = format!(
                        "threshold {} '{}' failed with {} and has abortOnFail; stopping all runners",
                        failed.metric,
                        failed.threshold,
                        failed.observed()
                    );
                    status.phase = Some(Phase::Aborting);
                    status.message = Some(message.clone());
                    notice = Some(Notice {
                        warning: true,
                        reason: "Aborting".into(),
                        note: message,
                    });
                }
            }
            Step {
                status,
                finished: None,
                live: Some(Summary {
                    thresholds: results,
                    ..merged
                }),
                notice,
                requeue: Some(Duration::from_secs(
                    stampede_runner::cluster::REPORT_EVERY_SECONDS,
                )),
            }
        }
        _ => Step {
            status,
            finished: None,
            live: None,
            notice: None,
            requeue: None,
        },
    }
}

/// The status message of a run's fatal faults: the lost runner, or how many of the fleet were
/// lost and each one's reason (a drained node takes several at once); the Job's own failure
/// when no runner's pod says more.
fn fatal_message(faults: &[RunnerFault], desired: usize) -> Option<String> {
    let fatal: Vec<&RunnerFault> = faults
        .iter()
        .filter(|f| f.severity == Severity::Fatal)
        .collect();
    let mut lost: Vec<&RunnerFault> = fatal
        .iter()
        .copied()
        .filter(|f| f.runner.is_some())
        .collect();
    lost.sort_by_key(|f| f.runner);
    lost.dedup_by_key(|f| f.runner);
    match lost.as_slice() {
        [] => fatal.first().map(|f| f.message.clone()),
        [one] => Some(one.message.clone()),
        several => Some(format!(
            "{} of {desired} runners lost: {}",
            several.len(),
            several
                .iter()
                .map(|f| f.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// How a run ends.
#[derive(Debug, Clone)]
enum Ending {
    /// Every runner finished: Succeeded or Failed by the thresholds.
    Completed,
    /// Stopped by abortOnFail (the message says which threshold).
    Aborted(String),
    /// A runner failed or never started.
    Errored(String),
}

/// Names the run a merged summary is of: the LoadTest's namespace, the run and its spec
/// generation (the report shows them beside the runners' parts).
fn identify(merged: &mut Summary, test: &LoadTest, status: &LoadTestStatus) {
    if let Some(fleet) = merged.fleet.as_mut() {
        fleet.namespace = test.metadata.namespace.clone().unwrap_or_default();
        fleet.run = status.run.unwrap_or(0);
        fleet.generation = status.observed_generation;
    }
}

fn finish(
    run: &ActiveRun<'_>,
    mut status: LoadTestStatus,
    reports: &[&RunnerReport],
    ending: Ending,
    now: Timestamp,
) -> Step {
    let test = run.test;
    let name = test.metadata.name.clone().unwrap_or_default();
    let mut merged = merge_reports(&name, run.trend_stats, reports);
    identify(&mut merged, test, &status);
    merged.thresholds = run
        .thresholds
        .evaluate(&merged.metrics, merged.seconds(), true);
    let failed_message = status::failed_thresholds_message(&merged.thresholds);
    let generation = test.metadata.generation;
    let now_time = time(now);
    let (phase, complete_reason, passed, passed_reason, message) = match &ending {
        Ending::Completed => match &failed_message {
            None => (
                Phase::Succeeded,
                reason::FINISHED,
                true,
                reason::THRESHOLDS_PASSED,
                "all thresholds passed".to_string(),
            ),
            Some(failed) => (
                Phase::Failed,
                reason::FINISHED,
                false,
                reason::THRESHOLDS_FAILED,
                failed.clone(),
            ),
        },
        Ending::Aborted(why) => {
            let message = match &failed_message {
                Some(failed) => failed.clone(),
                None => why.clone(),
            };
            (
                Phase::Aborted,
                reason::ABORTED,
                false,
                reason::THRESHOLDS_FAILED,
                message,
            )
        }
        Ending::Errored(why) => (
            Phase::Errored,
            reason::ERRORED,
            false,
            reason::ERRORED,
            why.clone(),
        ),
    };
    let complete_message = match &ending {
        Ending::Completed => format!("run {} finished", status.run.unwrap_or(0)),
        Ending::Aborted(why) | Ending::Errored(why) => why.clone(),
    };
    status::set_condition(
        &mut status.conditions,
        CONDITION_COMPLETE,
        true,
        complete_reason,
        &complete_message,
        generation,
        &now_time,
    );
    status::set_condition(
        &mut status.conditions,
        CONDITION_PASSED,
        passed,
        passed_reason,
        &message,
        generation,
        &now_time,
    );
    let has_data = reports.iter().any(|r| r.metrics.is_some());
    status.phase = Some(phase);
    status.completion_time = Some(now_time);
    status.message = Some(message.clone());
    if has_data {
        status.summary = Some(status::summary_status(&merged));
        status.steps = status::step_statuses(&merged);
        // Once the run is over, the RPS column shows the run's average, not its last window.
        status.progress = Some(status::progress(
            &merged,
            0,
            status::average_rps(&merged),
            run.plan.planned.as_secs_f64(),
        ));
        status.thresholds = status::threshold_statuses(&merged.thresholds);
    } else {
        // Nothing ran: no threshold was evaluated on anything.
        status.thresholds.clear();
    }
    status.result_ref = Some(ResultRef {
        config_map: Names::new(&name).result(),
    });
    let notice = Notice {
        warning: phase != Phase::Succeeded,
        reason: format!("{phase:?}"),
        note: format!("run {}: {message}", status.run.unwrap_or(0)),
    };
    Step {
        status,
        finished: Some(merged),
        live: None,
        notice: Some(notice),
        requeue: None,
    }
}

#[cfg(test)]
mod tests {
    //! Unit tests of the run's state machine: each phase's transitions, deadlines and verdicts.

    use super::*;
    use crate::compiled::compile_started;
    use crate::plan::plan;
    use crate::policy::Policy;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use serde_json::json;
    use stampede_runner::metrics::snapshot::Trend;
    use stampede_runner::metrics::{Registry, Snapshot, Value};

    /// A whole second, so `metav1.Time` round trips are exact.
    const T0: i64 = 1_700_000_000;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn test_with(thresholds: serde_json::Value) -> LoadTest {
        serde_json::from_value(json!({
            "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
            "metadata": {"name": "checkout", "namespace": "shop", "uid": "u-1", "generation": 3},
            "spec": {
                "vus": 3, "duration": "30s",
                "flows": {"default": [{
                    "name": "login",
                    "request": {"method": "POST", "url": "http://127.0.0.1:1/login"},
                    "checks": {"status is 200": "status == 200"},
                }]},
                "thresholds": thresholds,
                "runners": {"count": 3},
            }
        }))
        .unwrap()
    }

    fn test() -> LoadTest {
        test_with(json!({"http_req_duration": ["p(95)<500"]}))
    }

    fn condition<'a>(status: &'a LoadTestStatus, kind: &str) -> &'a Condition {
        status
            .condition(kind)
            .unwrap_or_else(|| panic!("no {kind} condition in {:?}", status.conditions))
    }

    /// `requests` requests of about `millis` ms each (spread ±10 %), all passing their check,
    /// all sent by the step `login` (root series and its sub-metrics alike).
    fn metrics(requests: u64, millis: f64) -> Snapshot {
        let registry = Registry::new();
        let mut snapshot = Snapshot::empty(&registry);
        let mut trend = Trend::default();
        for i in 0..requests {
            trend.record(millis * (0.9 + 0.2 * (i % 11) as f64 / 10.0));
        }
        let failed = Value::Rate {
            passes: 0,
            total: requests,
        };
        for suffix in ["", "{name:login}"] {
            let values = &mut snapshot.values;
            values.insert(
                format!("http_reqs{suffix}"),
                Value::Counter(requests as f64),
            );
            values.insert(
                format!("http_req_duration{suffix}"),
                Value::Trend(Box::new(trend.clone())),
            );
            values.insert(format!("http_req_failed{suffix}"), failed.clone());
        }
        snapshot.values.insert(
            "checks".into(),
            Value::Rate {
                passes: requests,
                total: requests,
            },
        );
        snapshot
    }

    fn report(runner: u64, state: RunnerState) -> RunnerReport {
        RunnerReport {
            run: 1,
            runner,
            state,
            steps: vec!["login".into()],
            checks: vec!["status is 200".into()],
            ..RunnerReport::default()
        }
    }

    /// Runner `runner`'s report with `requests` requests of ~`millis` ms after `elapsed` s.
    fn measured(
        runner: u64,
        state: RunnerState,
        requests: u64,
        millis: f64,
        elapsed: f64,
    ) -> RunnerReport {
        RunnerReport {
            elapsed_seconds: elapsed,
            vus: if state == RunnerState::Running { 1 } else { 0 },
            metrics: Some(metrics(requests, millis)),
            ..report(runner, state)
        }
    }

    /// The state machine as the decide arm drives it: with the plan `status` recorded and the
    /// test's compiled thresholds.
    fn advance(test: &LoadTest, status: &LoadTestStatus, observation: &Observation) -> Step {
        let plan = RunPlan::from_record(status.plan.as_ref().expect("a recorded plan")).unwrap();
        let compiled = compile_started(test).expect("the test compiles");
        let run = ActiveRun {
            test,
            plan: &plan,
            thresholds: &compiled.thresholds,
            trend_stats: &compiled.model.summary_trend_stats,
        };
        super::advance(&run, status, observation)
    }

    fn planned_total(test: &LoadTest) -> Duration {
        compile_started(test).expect("the test compiles").planned()
    }

    fn observe(now: Timestamp, reports: Vec<Option<RunnerReport>>) -> Observation {
        Observation {
            now,
            reports,
            faults: Vec::new(),
            start_deadline: Duration::from_secs(300),
        }
    }

    fn provisioning(test: &LoadTest) -> LoadTestStatus {
        let plan = plan(test, &Policy::default()).unwrap();
        new_run(test, &LoadTestStatus::default(), &plan, at(T0))
    }

    /// The status once all three runners were Ready at T0 + 10 (start at T0 + 14).
    fn running(test: &LoadTest) -> LoadTestStatus {
        let ready = (0..3)
            .map(|i| Some(report(i, RunnerState::Ready)))
            .collect();
        let step = advance(test, &provisioning(test), &observe(at(T0 + 10), ready));
        assert_eq!(step.status.phase, Some(Phase::Running));
        step.status
    }

    fn fault(runner: u64, reason: &str, severity: Severity, message: &str) -> RunnerFault {
        RunnerFault {
            runner: Some(runner),
            pod: format!("checkout-run1-{runner}-abcde"),
            reason: reason.into(),
            severity,
            message: message.into(),
        }
    }

    #[test]
    fn a_new_run_counts_up_and_starts_provisioning() {
        let test = test();
        let plan = plan(&test, &Policy::default()).unwrap();
        let previous = LoadTestStatus {
            run: Some(2),
            phase: Some(Phase::Failed),
            message: Some("old verdict".into()),
            ..LoadTestStatus::default()
        };
        // Mid-second: conditions carry whole seconds, as metav1.Time does on the wire.
        let now = Timestamp::new(T0, 600_000_000).unwrap();
        let status = new_run(&test, &previous, &plan, now);
        assert_eq!(status.run, Some(3));
        assert_eq!(status.phase, Some(Phase::Provisioning));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.runners.as_ref().map(|r| r.desired), Some(3));
        assert_eq!(status.runners.as_ref().map(|r| r.ready), Some(0));
        assert_eq!(status.start_time, None);
        assert_eq!(
            status.message.as_deref(),
            Some("starting 3 runner(s) for 3 VUs at peak")
        );
        assert_eq!(status.conditions.len(), 2);
        // No verdict yet: Passed is Unknown (API conventions), not False, while the run goes.
        for (kind, expected) in [(CONDITION_COMPLETE, "False"), (CONDITION_PASSED, "Unknown")] {
            let c = condition(&status, kind);
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                (expected, "Provisioning")
            );
            assert_eq!(c.last_transition_time, Time(at(T0)), "{kind}");
            assert_eq!(c.observed_generation, Some(3));
        }
        let first = new_run(&test, &LoadTestStatus::default(), &plan, now);
        assert_eq!(first.run, Some(1));
    }

    #[test]
    fn an_invalid_spec_completes_at_once_with_reason_invalid() {
        let test = test();
        let previous = LoadTestStatus {
            run: Some(4),
            ..LoadTestStatus::default()
        };
        let message = "spec.vus: must not be negative; spec.duration: \"10\" has no unit";
        let status = invalid(&test, &previous, message, at(T0));
        assert_eq!(status.phase, Some(Phase::Invalid));
        assert_eq!(status.run, Some(4));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(status.message.as_deref(), Some(message));
        let complete = condition(&status, CONDITION_COMPLETE);
        assert_eq!(
            (complete.status.as_str(), complete.reason.as_str()),
            ("True", "Invalid")
        );
        assert_eq!(complete.message, message);
        assert_eq!(complete.last_transition_time, Time(at(T0)));
        let passed = condition(&status, CONDITION_PASSED);
        assert_eq!(
            (passed.status.as_str(), passed.reason.as_str()),
            ("False", "Invalid")
        );
        assert_eq!(passed.message, message);
        assert!(status.result_ref.is_none() && status.summary.is_none());
    }

    #[test]
    fn provisioning_waits_until_every_runner_is_ready() {
        let test = test();
        let status = provisioning(&test);
        let two_of_three = vec![
            Some(report(0, RunnerState::Ready)),
            Some(report(1, RunnerState::Ready)),
            None,
        ];
        let step = advance(&test, &status, &observe(at(T0 + 5), two_of_three));
        assert_eq!(step.status.phase, Some(Phase::Provisioning));
        assert!(step.requeue.is_some());
        assert!(step.notice.is_none() && step.finished.is_none());
        assert_eq!(step.status.start_time, None);
        assert_eq!(step.status.runners.as_ref().map(|r| r.ready), Some(2));
        // Three reports, but one runner is still preparing.
        let one_preparing = vec![
            Some(report(0, RunnerState::Ready)),
            Some(report(1, RunnerState::Preparing)),
            Some(report(2, RunnerState::Ready)),
        ];
        let step = advance(&test, &status, &observe(at(T0 + 5), one_preparing));
        assert_eq!(step.status.phase, Some(Phase::Provisioning));
    }

    #[test]
    fn all_runners_ready_start_the_run_a_few_seconds_ahead() {
        let test = test();
        let status = provisioning(&test);
        let ready = (0..3)
            .map(|i| Some(report(i, RunnerState::Ready)))
            .collect();
        let now = Timestamp::new(T0 + 10, 250_000_000).unwrap();
        let step = advance(&test, &status, &observe(now, ready));
        assert_eq!(step.status.phase, Some(Phase::Running));
        // START_DELAY (3 s) + 1, in whole seconds.
        assert_eq!(START_DELAY, Duration::from_secs(3));
        assert_eq!(step.status.start_time, Some(Time(at(T0 + 14))));
        assert_eq!(step.status.runners.as_ref().map(|r| r.ready), Some(3));
        let notice = step.notice.expect("a Started notice");
        assert_eq!(notice.reason, "Started");
        assert!(!notice.warning);
        assert!(
            notice.note.contains("3 runner(s)") && notice.note.contains(&at(T0 + 14).to_string()),
            "{}",
            notice.note
        );
        assert_eq!(step.requeue, Some(START_DELAY));
        let complete = condition(&step.status, CONDITION_COMPLETE);
        assert_eq!(
            (complete.status.as_str(), complete.reason.as_str()),
            ("False", "Running")
        );
        // Still False: the transition time stays the run's start.
        assert_eq!(complete.last_transition_time, Time(at(T0)));
        assert!(step.finished.is_none());
    }

    #[test]
    fn a_stuck_runner_errors_the_run_once_the_start_deadline_passes() {
        let test = test();
        let status = provisioning(&test);
        let stuck = fault(
            2,
            "Unschedulable",
            Severity::Stuck,
            "runner 2 (pod checkout-run1-2-abcde) is unschedulable: 0/3 nodes are available",
        );
        let observation = |now| Observation {
            faults: vec![stuck.clone()],
            ..observe(
                now,
                vec![
                    Some(report(0, RunnerState::Ready)),
                    Some(report(1, RunnerState::Ready)),
                    None,
                ],
            )
        };
        let before = advance(&test, &status, &observation(at(T0 + 299)));
        assert_eq!(before.status.phase, Some(Phase::Provisioning));
        assert!(before.finished.is_none());

        let after = advance(&test, &status, &observation(at(T0 + 301)));
        assert_eq!(after.status.phase, Some(Phase::Errored));
        let message = after.status.message.clone().unwrap();
        assert!(message.contains("start deadline of 300s"), "{message}");
        assert!(message.contains("only 2 of 3"), "{message}");
        assert!(message.ends_with(&stuck.message), "{message}");
        let complete = condition(&after.status, CONDITION_COMPLETE);
        assert_eq!(
            (complete.status.as_str(), complete.reason.as_str()),
            ("True", "Errored")
        );
        assert_eq!(complete.last_transition_time, Time(at(T0 + 301)));
        let passed = condition(&after.status, CONDITION_PASSED);
        assert_eq!(
            (passed.status.as_str(), passed.reason.as_str()),
            ("False", "Errored")
        );
        assert_eq!(after.status.completion_time, Some(Time(at(T0 + 301))));
        assert!(
            after
                .notice
                .is_some_and(|n| n.warning && n.reason == "Errored")
        );
        assert_eq!(after.requeue, None);
    }

    #[test]
    fn a_fatal_fault_errors_a_running_run_at_once() {
        let test = test();
        let status = running(&test);
        let oom = fault(
            1,
            "OOMKilled",
            Severity::Fatal,
            "runner 1 (pod checkout-run1-1-abcde) failed: OOMKilled (exit code 137)",
        );
        let reports = (0..3)
            .map(|i| Some(measured(i, RunnerState::Running, 10, 50.0, 5.0)))
            .collect();
        let observation = Observation {
            faults: vec![oom.clone()],
            ..observe(at(T0 + 20), reports)
        };
        let step = advance(&test, &status, &observation);
        assert_eq!(step.status.phase, Some(Phase::Errored));
        assert_eq!(step.status.message.as_deref(), Some(oom.message.as_str()));
        let passed = condition(&step.status, CONDITION_PASSED);
        assert_eq!(
            (passed.status.as_str(), passed.reason.as_str()),
            ("False", "Errored")
        );
        assert_eq!(passed.message, oom.message);
        assert_eq!(step.status.runners.as_ref().map(|r| r.failed), Some(1));
        assert!(step.finished.is_some());
    }

    #[test]
    fn two_of_three_runners_lost_error_the_run_naming_both_and_keep_the_partial_figures() {
        let test = test();
        let status = running(&test);
        let lost = |runner: u64| {
            fault(
                runner,
                "Error",
                Severity::Fatal,
                &format!(
                    "runner {runner} (pod checkout-run1-{runner}-abcde) failed: Error (exit code 137)"
                ),
            )
        };
        // The Job's own failure comes with them; the runners say more.
        let job = RunnerFault {
            runner: None,
            ..fault(
                0,
                "BackoffLimitExceeded",
                Severity::Fatal,
                "runner Job checkout-run1 failed: BackoffLimitExceeded",
            )
        };
        let reports = (0..3)
            .map(|i| Some(measured(i, RunnerState::Running, 10, 50.0, 5.0)))
            .collect();
        let observation = Observation {
            faults: vec![job, lost(2), lost(1), lost(2)],
            ..observe(at(T0 + 20), reports)
        };
        let step = advance(&test, &status, &observation);
        assert_eq!(step.status.phase, Some(Phase::Errored));
        let message = step.status.message.clone().unwrap_or_default();
        assert_eq!(
            message,
            format!(
                "2 of 3 runners lost: {}; {}",
                lost(1).message,
                lost(2).message
            )
        );
        // What the fleet did before it was lost is kept: status figures and the result.
        let summary = step.status.summary.as_ref().expect("the partial summary");
        assert_eq!(summary.http_reqs, 30, "three runners' 10 requests each");
        let merged = step.finished.expect("a result to write");
        assert_eq!(merged.metrics.count("http_reqs"), 30.0);
    }

    #[test]
    fn a_failed_runner_report_errors_the_run() {
        let test = test();
        let status = running(&test);
        let failed = RunnerReport {
            message: Some("spec.data.users: the ConfigMap key users.csv is empty".into()),
            ..report(2, RunnerState::Failed)
        };
        let reports = vec![
            Some(report(0, RunnerState::Running)),
            Some(report(1, RunnerState::Running)),
            Some(failed),
        ];
        let step = advance(&test, &status, &observe(at(T0 + 20), reports));
        assert_eq!(step.status.phase, Some(Phase::Errored));
        assert_eq!(
            step.status.message.as_deref(),
            Some("runner 2 failed: spec.data.users: the ConfigMap key users.csv is empty")
        );
        assert_eq!(step.status.runners.as_ref().map(|r| r.failed), Some(1));
        assert_eq!(
            condition(&step.status, CONDITION_COMPLETE).reason,
            reason::ERRORED
        );
    }

    #[test]
    fn a_runner_that_stopped_early_errors_the_run_unless_the_fleet_was_aborting() {
        let test = test();
        let stopped = RunnerReport {
            aborted: Some("the runner pod was terminated (SIGTERM)".into()),
            ..report(1, RunnerState::Finished)
        };
        let reports = vec![
            Some(report(0, RunnerState::Running)),
            Some(stopped),
            Some(report(2, RunnerState::Running)),
        ];
        let status = running(&test);
        let step = advance(&test, &status, &observe(at(T0 + 20), reports.clone()));
        assert_eq!(step.status.phase, Some(Phase::Errored));
        assert_eq!(
            step.status.message.as_deref(),
            Some("runner 1 stopped early: the runner pod was terminated (SIGTERM)")
        );
        // While the fleet is aborting, stopping early is what every runner is asked to do.
        let aborting = LoadTestStatus {
            phase: Some(Phase::Aborting),
            ..status
        };
        let step = advance(&test, &aborting, &observe(at(T0 + 20), reports));
        assert_eq!(step.status.phase, Some(Phase::Aborting));
    }

    #[test]
    fn live_progress_adds_up_the_runners_counts() {
        let test = test();
        let status = running(&test);
        let reports = vec![
            Some(measured(0, RunnerState::Running, 100, 40.0, 9.0)),
            Some(measured(1, RunnerState::Running, 250, 40.0, 10.0)),
            Some(measured(2, RunnerState::Running, 50, 40.0, 8.0)),
        ];
        let step = advance(&test, &status, &observe(at(T0 + 24), reports));
        assert_eq!(step.status.phase, Some(Phase::Running));
        let progress = step.status.progress.expect("progress");
        assert_eq!(progress.http_reqs, 400);
        assert_eq!(progress.vus, 3);
        assert_eq!(progress.elapsed_seconds, 10.0);
        assert_eq!(progress.total_seconds, planned_total(&test).as_secs_f64());
        assert!((progress.p95_ms - 44.0).abs() < 0.5, "{}", progress.p95_ms);
        assert_eq!(step.status.runners.as_ref().map(|r| r.running), Some(3));
        assert!(step.notice.is_none() && step.finished.is_none());
        assert_eq!(
            step.requeue,
            Some(Duration::from_secs(
                stampede_runner::cluster::REPORT_EVERY_SECONDS
            ))
        );
    }

    fn abort_on_fail(delay: Option<&str>) -> LoadTest {
        let mut rule = json!({"threshold": "p(95)<1", "abortOnFail": true});
        if let Some(delay) = delay {
            rule["delayAbortEval"] = json!(delay);
        }
        test_with(json!({"http_req_duration": [rule], "checks": ["rate>0.9"]}))
    }

    fn slow_reports(state: RunnerState, elapsed: f64) -> Vec<Option<RunnerReport>> {
        (0..3)
            .map(|i| Some(measured(i, state, 200, 100.0, elapsed)))
            .collect()
    }

    #[test]
    fn a_failing_abort_on_fail_threshold_aborts_the_fleet() {
        let test = abort_on_fail(None);
        let status = running(&test);
        let step = advance(
            &test,
            &status,
            &observe(at(T0 + 24), slow_reports(RunnerState::Running, 10.0)),
        );
        assert_eq!(step.status.phase, Some(Phase::Aborting));
        let message = step.status.message.clone().unwrap();
        assert!(
            message.starts_with("threshold http_req_duration 'p(95)<1' failed with p(95)=1"),
            "{message}"
        );
        assert!(message.contains("abortOnFail"), "{message}");
        let notice = step.notice.expect("an Aborting notice");
        assert!(notice.warning);
        assert_eq!(notice.reason, "Aborting");
        assert_eq!(notice.note, message);
        // Not over yet: the runners stop gracefully and send their final reports.
        assert!(step.finished.is_none() && step.status.completion_time.is_none());
        assert_eq!(condition(&step.status, CONDITION_COMPLETE).status, "False");
    }

    #[test]
    fn delay_abort_eval_holds_the_abort_back() {
        let test = abort_on_fail(Some("60s"));
        let status = running(&test);
        let early = advance(
            &test,
            &status,
            &observe(at(T0 + 24), slow_reports(RunnerState::Running, 10.0)),
        );
        assert_eq!(early.status.phase, Some(Phase::Running));
        assert!(early.notice.is_none());
        let late = advance(
            &test,
            &status,
            &observe(at(T0 + 75), slow_reports(RunnerState::Running, 61.0)),
        );
        assert_eq!(late.status.phase, Some(Phase::Aborting));
    }

    #[test]
    fn finished_runners_succeed_when_every_threshold_holds() {
        let test = test();
        let status = running(&test);
        let reports = vec![
            Some(measured(0, RunnerState::Finished, 100, 40.0, 30.0)),
            Some(measured(1, RunnerState::Finished, 250, 40.0, 30.5)),
            Some(measured(2, RunnerState::Finished, 50, 40.0, 30.0)),
        ];
        let step = advance(&test, &status, &observe(at(T0 + 50), reports));
        assert_eq!(step.status.phase, Some(Phase::Succeeded));
        let summary = step.finished.expect("the merged summary");
        assert_eq!(summary.metrics.count("http_reqs"), 400.0);
        assert_eq!(summary.name, "checkout");
        assert_eq!(summary.thresholds.len(), 1);
        assert!(summary.thresholds[0].ok);
        let headline = step.status.summary.as_ref().expect("status.summary");
        assert_eq!(headline.http_reqs, 400);
        assert_eq!(headline.checks.passes, 400);
        assert_eq!(step.status.steps.len(), 1);
        assert_eq!(step.status.steps[0].name, "login");
        assert_eq!(step.status.thresholds.len(), 1);
        assert!(step.status.thresholds[0].ok);
        assert_eq!(
            step.status
                .result_ref
                .as_ref()
                .map(|r| r.config_map.as_str()),
            Some("checkout-result")
        );
        assert_eq!(step.status.completion_time, Some(Time(at(T0 + 50))));
        assert_eq!(step.status.runners.as_ref().map(|r| r.succeeded), Some(3));
        let complete = condition(&step.status, CONDITION_COMPLETE);
        assert_eq!(
            (complete.status.as_str(), complete.reason.as_str()),
            ("True", "Finished")
        );
        let passed = condition(&step.status, CONDITION_PASSED);
        assert_eq!(
            (passed.status.as_str(), passed.reason.as_str()),
            ("True", "ThresholdsPassed")
        );
        let notice = step.notice.expect("a notice");
        assert!(!notice.warning);
        assert_eq!(notice.reason, "Succeeded");
        assert_eq!(step.requeue, None);
    }

    #[test]
    fn finished_runners_fail_when_a_threshold_fails() {
        let test = test_with(json!({"http_req_duration": ["p(95)<1"]}));
        let status = running(&test);
        let step = advance(
            &test,
            &status,
            &observe(at(T0 + 50), slow_reports(RunnerState::Finished, 30.0)),
        );
        assert_eq!(step.status.phase, Some(Phase::Failed));
        let message = step.status.message.clone().unwrap();
        assert!(
            message.starts_with("http_req_duration p(95)=1") && message.ends_with("ms, want <1"),
            "{message}"
        );
        let passed = condition(&step.status, CONDITION_PASSED);
        assert_eq!(
            (passed.status.as_str(), passed.reason.as_str()),
            ("False", "ThresholdsFailed")
        );
        assert_eq!(passed.message, message);
        assert_eq!(
            condition(&step.status, CONDITION_COMPLETE).reason,
            reason::FINISHED
        );
        let summary = step.finished.expect("the merged summary");
        assert_eq!(summary.metrics.count("http_reqs"), 600.0);
        assert_eq!(step.status.summary.map(|s| s.http_reqs), Some(600));
        assert!(!step.status.thresholds[0].ok);
        assert!(
            step.notice
                .is_some_and(|n| n.warning && n.reason == "Failed")
        );
    }

    #[test]
    fn finished_runners_of_an_aborting_run_end_aborted() {
        let test = abort_on_fail(None);
        let aborting = advance(
            &test,
            &running(&test),
            &observe(at(T0 + 24), slow_reports(RunnerState::Running, 10.0)),
        )
        .status;
        assert_eq!(aborting.phase, Some(Phase::Aborting));
        let step = advance(
            &test,
            &aborting,
            &observe(at(T0 + 30), slow_reports(RunnerState::Finished, 12.0)),
        );
        assert_eq!(step.status.phase, Some(Phase::Aborted));
        let complete = condition(&step.status, CONDITION_COMPLETE);
        assert_eq!(
            (complete.status.as_str(), complete.reason.as_str()),
            ("True", "Aborted")
        );
        let passed = condition(&step.status, CONDITION_PASSED);
        assert_eq!(
            (passed.status.as_str(), passed.reason.as_str()),
            ("False", "ThresholdsFailed")
        );
        assert!(
            step.status
                .message
                .as_deref()
                .is_some_and(|m| m.starts_with("http_req_duration p(95)=")),
            "{:?}",
            step.status.message
        );
        let summary = step.finished.expect("the merged summary");
        assert_eq!(summary.metrics.count("http_reqs"), 600.0);
        assert_eq!(step.status.summary.map(|s| s.http_reqs), Some(600));
        assert_eq!(
            step.status.result_ref.map(|r| r.config_map),
            Some("checkout-result".to_string())
        );
    }

    #[test]
    fn a_runner_that_does_not_finish_in_time_errors_the_run() {
        let test = test();
        let status = running(&test);
        let start = T0 + 14;
        let deadline = (planned_total(&test) + END_GRACE).as_secs() as i64;
        let reports = || {
            vec![
                Some(measured(0, RunnerState::Finished, 100, 40.0, 30.0)),
                Some(measured(1, RunnerState::Running, 90, 40.0, 29.0)),
                Some(measured(2, RunnerState::Finished, 100, 40.0, 30.0)),
            ]
        };
        let in_time = advance(&test, &status, &observe(at(start + deadline), reports()));
        assert_eq!(in_time.status.phase, Some(Phase::Running));
        let late = advance(
            &test,
            &status,
            &observe(at(start + deadline + 1), reports()),
        );
        assert_eq!(late.status.phase, Some(Phase::Errored));
        let message = late.status.message.clone().unwrap();
        assert!(
            message.starts_with("runner(s) 1 did not finish within"),
            "{message}"
        );
        assert!(message.contains(&format!("{deadline}s")), "{message}");
        assert_eq!(
            condition(&late.status, CONDITION_PASSED).reason,
            reason::ERRORED
        );
    }
}
