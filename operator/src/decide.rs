//! The reconciler's one decision, pure: from a LoadTest, its status, what the cluster shows of
//! its current run and the operator's policy, what to write (status), apply, announce (Events)
//! and delete. A new spec starts a run — planned here, once, and recorded in the status — or
//! is Invalid; a started run is driven by its recorded plan alone (policy changes after its
//! start do not reach it); a finished run waits for its TTL.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use stampede_crds::LoadTest;
use stampede_crds::spec::CleanupPolicy;
use stampede_crds::status::{LoadTestStatus, Phase};
use stampede_runner::cluster::RunnerReport;
use stampede_runner::summary::Summary;

use crate::advance::{self, ActiveRun, Notice};
use crate::compiled;
use crate::desired::{self, Owned, Run};
use crate::faults::run_faults;
use crate::plan::{self, RunPlan};
use crate::policy::Policy;

/// The longest a reconcile asks to be woken after; a longer wait is taken in such steps.
pub const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// What the reconciler saw of a LoadTest's current run.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Now.
    pub now: Timestamp,
    /// The current run's reports by runner index (None while a runner has written none);
    /// empty when no run is going.
    pub reports: Vec<Option<RunnerReport>>,
    /// The current run's Job, if it exists.
    pub job: Option<Job>,
    /// The current run's runner pods.
    pub pods: Vec<Pod>,
}

impl Observation {
    /// An observation of no run (a new spec, a finished run).
    pub fn nothing(now: Timestamp) -> Observation {
        Observation {
            now,
            reports: Vec::new(),
            job: None,
            pods: Vec::new(),
        }
    }
}

/// The run of a LoadTest whose objects the reconciler has to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedRun {
    /// The run number.
    pub run: i64,
    /// Its runner count (how many reports to read).
    pub runners: u64,
}

/// Something to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The runner Jobs (with their pods) and report ConfigMaps of every run but `keep` (of
    /// every run when None). The result ConfigMap stays.
    RunObjects {
        /// The run whose objects stay.
        keep: Option<i64>,
    },
    /// The LoadTest itself: `ttlSecondsAfterFinished` is over.
    LoadTest,
}

/// What one reconcile does. It is carried out in this order, for every arm: a finished run's
/// result, the status, then the objects, then the Events, then the deletions — so the status
/// never points at a result that is not written yet (an operator stopped in between finishes
/// the run again on restart, from the reports still there), a new run's objects exist before
/// the previous runs' go, a finished run's verdict and result are written before its runners'
/// objects are cleaned up, and the LoadTest goes last.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// The result ConfigMap of a run that finished in this step (server-side apply).
    pub result: Option<Box<ConfigMap>>,
    /// The status to write (None: unchanged).
    pub status: Option<LoadTestStatus>,
    /// The objects to apply (server-side apply).
    pub apply: Vec<Owned>,
    /// The Events to record.
    pub events: Vec<Notice>,
    /// What to delete, in order.
    pub delete: Vec<Deletion>,
    /// When to look again (None: on the next change).
    pub requeue: Option<Duration>,
    /// What the fleet dashboard shows of the run after this step.
    pub view: Option<View>,
}

/// A run as the fleet dashboard shows it: the merged summary so far, or the final one.
#[derive(Debug, Clone)]
pub struct View {
    /// The merged summary (thresholds evaluated as they stand, or with end-of-test rules).
    pub summary: Arc<Summary>,
    /// Whether the run is over and this is its final summary.
    pub done: bool,
}

/// Whether the LoadTest's spec has no run yet: never reconciled, or edited since.
pub fn needs_new_run(test: &LoadTest, status: &LoadTestStatus) -> bool {
    status.phase.is_none() || status.observed_generation != test.metadata.generation
}

/// The run whose reports, Job and pods [`decide`] needs: the current one while it goes.
pub fn watched_run(test: &LoadTest, status: &LoadTestStatus) -> Option<WatchedRun> {
    let phase = status.phase.unwrap_or_default();
    if test.metadata.deletion_timestamp.is_some()
        || needs_new_run(test, status)
        || phase.is_finished()
    {
        return None;
    }
    let recorded = status.plan.as_ref().map(|plan| plan.runners);
    let runners = recorded.or_else(|| status.runners.as_ref().map(|r| r.desired))?;
    Some(WatchedRun {
        run: status.run.unwrap_or(1),
        runners: u64::try_from(runners).unwrap_or(0),
    })
}

/// The decision for `test` with `status`, given what was observed and the operator's policy
/// (which only a new run's plan reads).
pub fn decide(
    test: &LoadTest,
    status: &LoadTestStatus,
    observation: &Observation,
    policy: &Policy,
) -> Decision {
    if test.metadata.deletion_timestamp.is_some() {
        // Everything it owns goes with it (owner references); nothing to do.
        return Decision::default();
    }
    if needs_new_run(test, status) {
        return start_run(test, status, observation.now, policy);
    }
    if status.phase.unwrap_or_default().is_finished() {
        let mut decision = expire(test, status, observation.now);
        // An operator stopped between a run's verdict and its clean-up finishes the clean-up
        // when it sees the run again (deleting what is already gone changes nothing).
        if cleans_up(test, status) && !decision.delete.contains(&Deletion::LoadTest) {
            decision
                .delete
                .insert(0, Deletion::RunObjects { keep: None });
        }
        return decision;
    }
    drive(test, status, observation, policy)
}

/// A new spec: plan it and start run + 1, or report it Invalid. Either way the previous runs'
/// objects go (their runners see the new run number and stop; deleting their Job ends any
/// that do not).
fn start_run(
    test: &LoadTest,
    status: &LoadTestStatus,
    now: Timestamp,
    policy: &Policy,
) -> Decision {
    let superseded = status.run.is_some();
    let plan = match plan::plan(test, policy) {
        Ok(plan) => plan,
        Err(error) => {
            let mut decision = invalid(test, status, &error.to_string(), now);
            if superseded {
                decision.delete.push(Deletion::RunObjects { keep: None });
            }
            return decision;
        }
    };
    let started = advance::new_run(test, status, &plan, now);
    let run = started.run.unwrap_or(1);
    Decision {
        result: None,
        status: Some(started),
        apply: desired::run_objects(Run {
            test,
            plan: &plan,
            run,
        })
        .into_owned(true),
        events: vec![Notice {
            warning: false,
            reason: "Provisioning".into(),
            note: format!(
                "run {run}: {} runner(s), segments {}",
                plan.runners,
                plan.segments.join(" ")
            ),
        }],
        delete: superseded
            .then_some(Deletion::RunObjects { keep: Some(run) })
            .into_iter()
            .collect(),
        requeue: Some(Duration::from_secs(1)),
        view: None,
    }
}

/// A started run (Provisioning, Running, Aborting), driven by its recorded plan: while it
/// provisions, its objects are applied again from that plan (a restarted operator completes
/// what an earlier one began) — except an existing Job, whose pod template is immutable.
fn drive(
    test: &LoadTest,
    status: &LoadTestStatus,
    observation: &Observation,
    policy: &Policy,
) -> Decision {
    let (plan, recovered) = match recorded_plan(test, status, observation.job.as_ref(), policy) {
        Ok(found) => found,
        Err(error) => return invalid(test, status, &error.to_string(), observation.now),
    };
    let mut current = status.clone();
    if recovered.is_some() {
        // Recorded now, so the next reconcile reads it like any other run's.
        current.plan = Some(plan.record());
    }
    let run = status.run.unwrap_or(1);
    let compiled = match compiled::compile_started(test) {
        Ok(compiled) => compiled,
        Err(problems) => return invalid(test, status, &problems.join("; "), observation.now),
    };
    let active = ActiveRun {
        test,
        plan: &plan,
        thresholds: &compiled.thresholds,
        trend_stats: &compiled.model.summary_trend_stats,
    };
    let mut step = advance::advance(
        &active,
        &current,
        &advance::Observation {
            now: observation.now,
            reports: observation.reports.clone(),
            faults: run_faults(observation.job.as_ref(), &observation.pods),
            start_deadline: Duration::from_secs(policy.start_deadline_seconds),
        },
    );
    let mut decision = Decision {
        events: recovered.into_iter().chain(step.notice).collect(),
        requeue: step.requeue,
        ..Decision::default()
    };
    if status.phase == Some(Phase::Provisioning) {
        let objects = desired::run_objects(Run {
            test,
            plan: &plan,
            run,
        });
        decision.apply = objects.into_owned(observation.job.is_none());
    }
    decision.view = match (&step.finished, step.live.take()) {
        (Some(summary), _) => Some(View {
            summary: Arc::new(summary.clone()),
            done: true,
        }),
        (None, Some(live)) => Some(View {
            summary: Arc::new(live),
            done: false,
        }),
        (None, None) => None,
    };
    if let Some(summary) = &step.finished {
        decision.result = Some(Box::new(desired::result_config_map(test, summary)));
        if cleans_up(test, &step.status) {
            decision.delete.push(Deletion::RunObjects { keep: None });
        }
        let after = expire(test, &step.status, observation.now);
        decision.delete.extend(after.delete);
        decision.requeue = after.requeue;
    }
    if step.status != *status {
        decision.status = Some(step.status);
    }
    decision
}

/// The plan the run's status recorded; for a run without a usable record (started by an
/// operator that did not record plans, or an edited status), the plan recovered from what the
/// run shows, with a Warning that says so.
fn recorded_plan(
    test: &LoadTest,
    status: &LoadTestStatus,
    job: Option<&Job>,
    policy: &Policy,
) -> Result<(RunPlan, Option<Notice>), plan::PlanError> {
    let why = match status.plan.as_ref().map(RunPlan::from_record) {
        Some(Ok(plan)) => {
            return Ok((
                RunPlan {
                    targets: policy.targets.clone(),
                    ..plan
                },
                None,
            ));
        }
        Some(Err(error)) => error.to_string(),
        None => "the run's status records no plan".to_string(),
    };
    let plan = plan::recover(test, status, job, policy)?;
    let note = format!(
        "{why}; continuing run {} with what it shows: {} runner(s), image {}",
        status.run.unwrap_or(1),
        plan.runners,
        plan.image
    );
    Ok((
        plan,
        Some(Notice {
            warning: true,
            reason: "PlanRecovered".into(),
            note,
        }),
    ))
}

/// Whether a finished run's runner objects go, by `spec.cleanup`.
fn cleans_up(test: &LoadTest, status: &LoadTestStatus) -> bool {
    match test.spec.cleanup.unwrap_or_default() {
        CleanupPolicy::Runners => true,
        CleanupPolicy::OnSuccess => status.phase == Some(Phase::Succeeded),
        CleanupPolicy::None => false,
    }
}

/// A finished run: delete the LoadTest once `ttlSecondsAfterFinished` is over, else look again
/// then.
fn expire(test: &LoadTest, status: &LoadTestStatus, now: Timestamp) -> Decision {
    let (Some(ttl), Some(done)) = (
        test.spec.ttl_seconds_after_finished,
        status.completion_time.as_ref(),
    ) else {
        return Decision::default();
    };
    // A TTL past the end of time (9223372036854775807 s) never expires; it must not overflow.
    let Ok(expires) = done.0.checked_add(SignedDuration::from_secs(ttl.max(0))) else {
        return Decision::default();
    };
    if now >= expires {
        return Decision {
            delete: vec![Deletion::LoadTest],
            ..Decision::default()
        };
    }
    let left = Duration::try_from(expires.duration_since(now)).unwrap_or(Duration::ZERO);
    Decision {
        // At most an hour: the controller's timer refuses delays of years (and panics on them).
        requeue: Some((left + Duration::from_secs(1)).min(LONGEST_WAIT)),
        ..Decision::default()
    }
}

/// The decision when deciding itself failed (it panicked or overran its deadline): a LoadTest
/// whose run has not finished ends Errored with `why`, and its runners are stopped (nobody can
/// drive them); a finished one keeps its verdict. Either way a Warning Event says what failed,
/// and nothing is retried until the spec changes.
pub fn failed(test: &LoadTest, status: &LoadTestStatus, why: &str, now: Timestamp) -> Decision {
    let note = format!("the operator failed on this LoadTest: {why}");
    ended_errored(test, status, &note, "Errored", now)
}

/// The decision when the run needs an object whose name is taken by one this LoadTest does not
/// own (`why` names it): the run ends Errored and its own runners stop; the other object is
/// never touched.
pub fn blocked(test: &LoadTest, status: &LoadTestStatus, why: &str, now: Timestamp) -> Decision {
    ended_errored(test, status, why, "ForeignObject", now)
}

/// A run that cannot go on ends Errored with `note` (a finished one keeps its verdict), with a
/// Warning Event of `reason`.
fn ended_errored(
    test: &LoadTest,
    status: &LoadTestStatus,
    note: &str,
    reason: &str,
    now: Timestamp,
) -> Decision {
    let note = note.to_string();
    let events = vec![Notice {
        warning: true,
        reason: reason.into(),
        note: note.clone(),
    }];
    if status.phase.unwrap_or_default().is_finished() && !needs_new_run(test, status) {
        return Decision {
            events,
            ..Decision::default()
        };
    }
    Decision {
        status: Some(advance::errored(test, status, &note, now)),
        events,
        delete: vec![Deletion::RunObjects { keep: None }],
        ..Decision::default()
    }
}

/// The run cannot go on: its status says why, and a Warning event too.
fn invalid(test: &LoadTest, status: &LoadTestStatus, message: &str, now: Timestamp) -> Decision {
    Decision {
        status: Some(advance::invalid(test, status, message, now)),
        events: vec![Notice {
            warning: true,
            reason: "Invalid".into(),
            note: message.to_string(),
        }],
        ..Decision::default()
    }
}

#[cfg(test)]
mod tests;
