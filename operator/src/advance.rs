//! The run's state machine, pure: from the current status, the runners' reports, their faults
//! and the time, the next status — start barrier, live progress and fleet-wide abortOnFail,
//! the final verdict, and the Errored endings with their reasons and deadlines.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use stampede_crds::LoadTest;
use stampede_crds::status::{
    CONDITION_COMPLETE, CONDITION_PASSED, LoadTestStatus, Phase, ResultRef, RunnerCounts,
};
use stampede_crds::validate::effective_scenarios;
use stampede_runner::metrics::Registry;
use stampede_runner::report::{RunnerReport, RunnerState, merge_reports};
use stampede_runner::schedule::{ExecutionSegment, TestPlan};
use stampede_runner::summary::Summary;
use stampede_runner::thresholds::Thresholds;

use crate::faults::{RunnerFault, Severity};
use crate::names::Names;
use crate::plan::RunPlan;
use crate::status::{self, reason};

/// How far ahead of "all Ready" the start is set, so every runner sees it before it comes.
pub const START_DELAY: Duration = Duration::from_secs(3);
/// How long after the planned end (graceful stops included) runners may take to report.
pub const END_GRACE: Duration = Duration::from_secs(60);

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

/// The planned length of the test, graceful stops included.
pub fn planned_total(test: &LoadTest) -> Duration {
    TestPlan::new(&effective_scenarios(&test.spec), &ExecutionSegment::full()).total_duration()
}

/// The status of a spec that cannot run: phase Invalid, both conditions with reason Invalid so
/// a pipeline waiting on `Complete` fails fast, and the problems as the message.
pub fn invalid(
    test: &LoadTest,
    previous: &LoadTestStatus,
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
        reason::INVALID,
        message,
        generation,
        &now,
    );
    status::set_condition(
        &mut conditions,
        CONDITION_PASSED,
        false,
        reason::INVALID,
        message,
        generation,
        &now,
    );
    LoadTestStatus {
        phase: Some(Phase::Invalid),
        run: previous.run,
        observed_generation: generation,
        message: Some(message.to_string()),
        conditions,
        ..LoadTestStatus::default()
    }
}

/// The status of a new run of the current spec: run + 1, Provisioning, fresh conditions (their
/// transition time is the run's start, which the start deadline counts from).
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
    status::set_condition(
        &mut conditions,
        CONDITION_PASSED,
        false,
        reason::PROVISIONING,
        "the run has not finished",
        generation,
        &now,
    );
    LoadTestStatus {
        phase: Some(Phase::Provisioning),
        run: Some(previous.run.unwrap_or(0) + 1),
        observed_generation: generation,
        runners: Some(RunnerCounts {
            desired: plan.runners as i64,
            ..RunnerCounts::default()
        }),
        message: Some(message),
        conditions,
        ..LoadTestStatus::default()
    }
}

fn run_started(status: &LoadTestStatus) -> Option<Timestamp> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_COMPLETE)
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
pub fn advance(test: &LoadTest, current: &LoadTestStatus, observation: &Observation) -> Step {
    let phase = current.phase.unwrap_or_default();
    let desired = current.runners.as_ref().map_or(0, |r| r.desired).max(0) as usize;
    let mut status = current.clone();
    status.runners = Some(counts(desired, observation));
    let reports: Vec<&RunnerReport> = observation.reports.iter().flatten().collect();

    // A runner that failed ends the run, whatever the phase.
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
    let fatal = observation
        .faults
        .iter()
        .find(|f| f.severity == Severity::Fatal)
        .map(|f| f.message.clone());
    if let Some(message) = fatal.or(failed_report) {
        return finish(
            test,
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
                return Step {
                    status,
                    finished: None,
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
                    test,
                    status,
                    &reports,
                    Ending::Errored(message),
                    observation.now,
                );
            }
            Step {
                status,
                finished: None,
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
                return finish(test, status, &reports, ending, observation.now);
            }
            let start = current.start_time.as_ref().map_or(observation.now, |t| t.0);
            let deadline = planned_total(test) + END_GRACE;
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
                    test,
                    status,
                    &reports,
                    Ending::Errored(message),
                    observation.now,
                );
            }
            let merged = merge_reports(
                test.metadata.name.as_deref().unwrap_or_default(),
                None,
                &reports,
            );
            let vus = reports.iter().map(|r| r.vus).sum();
            status.progress = Some(status::progress(
                &merged,
                vus,
                planned_total(test).as_secs_f64(),
            ));
            let mut notice = None;
            if phase == Phase::Running {
                let thresholds = compile_thresholds(test);
                let results = thresholds.evaluate(&merged.metrics, merged.seconds(), false);
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
                notice,
                requeue: Some(Duration::from_secs(
                    stampede_runner::report::REPORT_EVERY_SECONDS,
                )),
            }
        }
        _ => Step {
            status,
            finished: None,
            notice: None,
            requeue: None,
        },
    }
}

/// The thresholds of a spec, compiled against a fresh registry (series keys are canonical, so
/// they match the runners').
pub fn compile_thresholds(test: &LoadTest) -> Thresholds {
    Thresholds::compile(&test.spec, &mut Registry::new())
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

fn finish(
    test: &LoadTest,
    mut status: LoadTestStatus,
    reports: &[&RunnerReport],
    ending: Ending,
    now: Timestamp,
) -> Step {
    let name = test.metadata.name.clone().unwrap_or_default();
    let mut merged = merge_reports(&name, test.spec.summary_trend_stats.as_deref(), reports);
    let thresholds = compile_thresholds(test);
    merged.thresholds = thresholds.evaluate(&merged.metrics, merged.seconds(), true);
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
        status.progress = Some(status::progress(
            &merged,
            0,
            planned_total(test).as_secs_f64(),
        ));
    }
    status.thresholds = status::threshold_statuses(&merged.thresholds);
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
        notice: Some(notice),
        requeue: None,
    }
}
