//! Pure Job controller logic: from a Job's spec, its previous status and the pods it owns, the
//! status to write and the pods to create or delete (no I/O; `controller.rs` does the calls).
//!
//! It follows the Kubernetes Job controller of 1.33 with `podReplacementPolicy:
//! TerminatingOrFailed` (the default without a pod failure policy):
//! - a pod being deleted (or gone before it reached a terminal phase) counts as failed at once
//!   and is replaced at once;
//! - a Job that meets its success or failure criteria first gets `SuccessCriteriaMet` /
//!   `FailureTarget`, and `Complete` / `Failed` only once none of its pods runs or terminates;
//! - the failure checks come before the success check: `failed > backoffLimit`, then
//!   `activeDeadlineSeconds` since `startTime`.
//!
//! Not modelled: the exponential back-off before re-creating failed pods (replacements are
//! created at once), `backoffLimitPerIndex`, `podFailurePolicy`, `successPolicy`,
//! `maxFailedIndexes`, suspension (the controller skips suspended Jobs) and pod restarts under
//! `restartPolicy: OnFailure`.

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// `spec.backoffLimit` when the Job sets none.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;

/// Condition types and reasons the controller writes.
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
/// Terminal success condition.
pub const COMPLETE: &str = "Complete";
/// Interim failure condition.
pub const FAILURE_TARGET: &str = "FailureTarget";
/// Terminal failure condition.
pub const FAILED: &str = "Failed";
/// Reason of the success conditions.
pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";
/// Message of the success conditions.
pub const MESSAGE_COMPLETIONS_REACHED: &str = "Reached expected number of succeeded pods";
/// Reason of the failure conditions when too many pods failed.
pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
/// Message of the failure conditions when too many pods failed.
pub const MESSAGE_BACKOFF_LIMIT: &str = "Job has reached the specified backoff limit";
/// Reason of the failure conditions when `activeDeadlineSeconds` passed.
pub const REASON_DEADLINE: &str = "DeadlineExceeded";
/// Message of the failure conditions when `activeDeadlineSeconds` passed.
pub const MESSAGE_DEADLINE: &str = "Job was active longer than specified deadline";

/// What the controller needs of a Job's spec, with the API server's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobParams {
    /// `spec.completions`; `None` is the work-queue pattern (parallelism set, completions not).
    pub completions: Option<i32>,
    /// `spec.parallelism` (default 1).
    pub parallelism: i32,
    /// `spec.backoffLimit` (default 6).
    pub backoff_limit: i32,
    /// `spec.completionMode: Indexed`.
    pub indexed: bool,
    /// `spec.activeDeadlineSeconds`.
    pub active_deadline_seconds: Option<i64>,
}

impl JobParams {
    /// Reads a Job's spec. `None` for a completion mode other than `NonIndexed` / `Indexed`,
    /// which the Kubernetes controller skips too.
    pub fn from_spec(spec: &JobSpec) -> Option<JobParams> {
        let indexed = match spec.completion_mode.as_deref() {
            None | Some("NonIndexed") => false,
            Some("Indexed") => true,
            Some(_) => return None,
        };
        // The API server defaults both to 1 when neither is set; a Job with parallelism but no
        // completions is a work queue. Indexed Jobs must set completions (validation): fall
        // back to 1 rather than fail on an object the real server would have refused.
        let completions = match (spec.completions, spec.parallelism) {
            (Some(c), _) => Some(c.max(0)),
            (None, None) => Some(1),
            (None, Some(_)) if indexed => Some(1),
            (None, Some(_)) => None,
        };
        Some(JobParams {
            completions,
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            backoff_limit: spec.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT).max(0),
            indexed,
            active_deadline_seconds: spec.active_deadline_seconds,
        })
    }
}

/// A pod of the Job as the controller counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Not terminal and not being deleted (Pending or Running).
    Active {
        /// The pod's `Ready` condition is `True`.
        ready: bool,
    },
    /// Being deleted before it reached a terminal phase: counted as failed and as terminating.
    Terminating,
    /// Reached phase Succeeded (before any deletion).
    Succeeded,
    /// Reached phase Failed, or was deleted before it succeeded (and is gone now).
    Failed,
}

/// One pod of the Job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// `metadata.name`.
    pub name: String,
    /// The completion index (Indexed Jobs), from the pod's annotation.
    pub index: Option<i32>,
    /// How the controller counts it.
    pub state: PodState,
}

/// What to do for a Job now.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The status to write (through the status subresource).
    pub status: JobStatus,
    /// One entry per pod to create: its completion index (Indexed) or `None` (NonIndexed).
    pub create: Vec<Option<i32>>,
    /// Names of active pods to delete (gracefully).
    pub delete: Vec<String>,
}

/// Whether a status carries a `True` condition of this type.
pub fn has_condition(status: &JobStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Whether the Job is finished (`Complete` or `Failed`): the controller leaves it alone then.
pub fn is_finished(status: &JobStatus) -> bool {
    has_condition(status, COMPLETE) || has_condition(status, FAILED)
}

/// A timestamp truncated to whole seconds, the precision the API keeps.
pub fn to_time(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn condition(type_: &str, reason: &str, message: &str, now: &Time) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: "True".to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// The reason and message of a `True` condition of this type, if any.
fn condition_of(status: &JobStatus, type_: &str) -> Option<(String, String)> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

/// Compresses sorted indexes into Kubernetes' `completedIndexes` form, e.g. `0-2,4`.
pub fn compress_indexes(indexes: &BTreeSet<i32>) -> String {
    let mut ranges: Vec<(i32, i32)> = Vec::new();
    for &i in indexes {
        match ranges.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(i) => *last = i,
            _ => ranges.push((i, i)),
        }
    }
    ranges
        .iter()
        .map(|&(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `completedIndexes` (`0-2,4`); malformed parts are skipped.
pub fn parse_indexes(text: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<i32>(), b.trim().parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(first), Ok(last)) = (first, last) {
            // Bound the expansion: completions are small in tests, and a bogus range must not
            // allocate without end.
            if first >= 0 && last >= first && last - first <= 100_000 {
                out.extend(first..=last);
            }
        }
    }
    out
}

/// Computes what to do for a Job: the pure core of the Job controller.
///
/// `previous` is the last status written (or the Job's status); `pods` are all the pods the
/// Job owns or owned (including ones gone since, as `Failed`/`Succeeded`); `now` is the time.
pub fn plan(params: &JobParams, previous: &JobStatus, pods: &[PodView], now: Timestamp) -> Plan {
    if is_finished(previous) {
        return Plan {
            status: previous.clone(),
            create: Vec::new(),
            delete: Vec::new(),
        };
    }
    let now_time = to_time(now);
    let start_time = previous
        .start_time
        .clone()
        .unwrap_or_else(|| now_time.clone());

    // Classify the pods.
    let mut active: Vec<&PodView> = Vec::new();
    let mut delete: Vec<String> = Vec::new();
    let mut terminating = 0i32;
    let mut failed = 0i32;
    let mut succeeded_pods = 0i32;
    let mut succeeded_indexes: BTreeSet<i32> = if params.indexed {
        previous
            .completed_indexes
            .as_deref()
            .map(parse_indexes)
            .unwrap_or_default()
    } else {
        BTreeSet::new()
    };
    let in_range = |index: Option<i32>| match (index, params.completions) {
        (Some(i), Some(c)) => i >= 0 && i < c,
        _ => false,
    };
    for pod in pods {
        match pod.state {
            PodState::Active { .. } => active.push(pod),
            PodState::Terminating => {
                terminating += 1;
                failed += 1;
            }
            PodState::Failed => failed += 1,
            PodState::Succeeded => {
                succeeded_pods += 1;
                if params.indexed && in_range(pod.index) {
                    succeeded_indexes.extend(pod.index);
                }
            }
        }
    }
    let succeeded = if params.indexed {
        i32::try_from(succeeded_indexes.len()).unwrap_or(i32::MAX)
    } else {
        succeeded_pods
    };

    // Indexed: an active pod without a valid index, for an index that already succeeded, or a
    // second active pod for one index is removed (as the Kubernetes controller does).
    if params.indexed {
        let mut seen = BTreeSet::new();
        active.retain(|pod| {
            let keep = in_range(pod.index)
                && pod.index.is_some_and(|i| !succeeded_indexes.contains(&i))
                && pod.index.is_some_and(|i| seen.insert(i));
            if !keep {
                delete.push(pod.name.clone());
            }
            keep
        });
    }

    // The Job's fate: a condition already set, else failure checks, else success.
    let mut new_conditions: Vec<JobCondition> = Vec::new();
    let mut failing = condition_of(previous, FAILURE_TARGET);
    let mut succeeding = condition_of(previous, SUCCESS_CRITERIA_MET);
    if failing.is_none() && succeeding.is_none() {
        let deadline_passed = params
            .active_deadline_seconds
            .is_some_and(|limit| now.as_second().saturating_sub(start_time.0.as_second()) >= limit);
        let complete = match params.completions {
            Some(c) => succeeded >= c && active.is_empty(),
            None => succeeded > 0 && active.is_empty(),
        };
        let fate = if failed > params.backoff_limit {
            Some((FAILURE_TARGET, REASON_BACKOFF_LIMIT, MESSAGE_BACKOFF_LIMIT))
        } else if deadline_passed {
            Some((FAILURE_TARGET, REASON_DEADLINE, MESSAGE_DEADLINE))
        } else if complete {
            Some((
                SUCCESS_CRITERIA_MET,
                REASON_COMPLETIONS_REACHED,
                MESSAGE_COMPLETIONS_REACHED,
            ))
        } else {
            None
        };
        if let Some((type_, reason, message)) = fate {
            new_conditions.push(condition(type_, reason, message, &now_time));
            let pair = Some((reason.to_string(), message.to_string()));
            if type_ == FAILURE_TARGET {
                failing = pair;
            } else {
                succeeding = pair;
            }
        }
    }

    let mut create: Vec<Option<i32>> = Vec::new();
    if failing.is_some() || succeeding.is_some() {
        // A failing Job loses its remaining pods; a succeeding one has none left normally.
        delete.extend(active.drain(..).map(|pod| pod.name.clone()));
    } else {
        let want = match params.completions {
            Some(c) => params.parallelism.min(c.saturating_sub(succeeded).max(0)),
            // Work queue: once one pod succeeded no new pods start; the others finish.
            None if succeeded > 0 => i32::try_from(active.len()).unwrap_or(i32::MAX),
            None => params.parallelism,
        };
        let want = usize::try_from(want).unwrap_or(0);
        if active.len() > want {
            // Too many (parallelism lowered): remove not-ready pods first, then the last ones.
            let mut order: Vec<usize> = (0..active.len()).collect();
            order.sort_by_key(|&i| {
                let ready = matches!(active[i].state, PodState::Active { ready: true });
                (ready, std::cmp::Reverse(i))
            });
            let excess: BTreeSet<usize> = order.into_iter().take(active.len() - want).collect();
            let mut kept = Vec::new();
            for (i, pod) in active.into_iter().enumerate() {
                if excess.contains(&i) {
                    delete.push(pod.name.clone());
                } else {
                    kept.push(pod);
                }
            }
            active = kept;
        } else if active.len() < want {
            let missing = want - active.len();
            if params.indexed {
                let busy: BTreeSet<i32> = active.iter().filter_map(|p| p.index).collect();
                let completions = params.completions.unwrap_or(0);
                create.extend(
                    (0..completions)
                        .filter(|i| !succeeded_indexes.contains(i) && !busy.contains(i))
                        .take(missing)
                        .map(Some),
                );
            } else {
                create.extend(std::iter::repeat_n(None, missing));
            }
        }
    }

    // Counts after this pass: deleted pods terminate (and count as failed), created ones are
    // active (as the Kubernetes controller counts them in the same sync).
    let deleted = i32::try_from(delete.len()).unwrap_or(i32::MAX);
    let created = i32::try_from(create.len()).unwrap_or(i32::MAX);
    let ready = active
        .iter()
        .filter(|p| matches!(p.state, PodState::Active { ready: true }))
        .count();
    let active_count = i32::try_from(active.len())
        .unwrap_or(i32::MAX)
        .saturating_add(created);
    let terminating = terminating.saturating_add(deleted);
    let failed = failed.saturating_add(deleted);

    // The terminal condition once no pod runs or terminates any more.
    let mut completion_time = previous.completion_time.clone();
    if active_count == 0 && terminating == 0 {
        if let Some((reason, message)) = &failing {
            new_conditions.push(condition(FAILED, reason, message, &now_time));
        } else if let Some((reason, message)) = &succeeding {
            new_conditions.push(condition(COMPLETE, reason, message, &now_time));
            completion_time = Some(now_time.clone());
        }
    }

    let mut conditions = previous.conditions.clone().unwrap_or_default();
    conditions.extend(new_conditions);
    let status = JobStatus {
        start_time: Some(start_time),
        completion_time,
        active: Some(active_count),
        ready: Some(i32::try_from(ready).unwrap_or(i32::MAX)),
        succeeded: Some(succeeded),
        failed: Some(failed),
        terminating: Some(terminating),
        completed_indexes: (params.indexed && !succeeded_indexes.is_empty())
            .then(|| compress_indexes(&succeeded_indexes)),
        conditions: (!conditions.is_empty()).then_some(conditions),
        ..JobStatus::default()
    };
    Plan {
        status,
        create,
        delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    fn params(completions: i32, parallelism: i32, indexed: bool) -> JobParams {
        JobParams {
            completions: Some(completions),
            parallelism,
            backoff_limit: DEFAULT_BACKOFF_LIMIT,
            indexed,
            active_deadline_seconds: None,
        }
    }

    fn pod(name: &str, index: Option<i32>, state: PodState) -> PodView {
        PodView {
            name: name.to_string(),
            index,
            state,
        }
    }

    fn running(name: &str, index: i32) -> PodView {
        pod(name, Some(index), PodState::Active { ready: true })
    }

    fn types(status: &JobStatus) -> Vec<String> {
        status
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.clone())
            .collect()
    }

    #[test]
    fn defaults_follow_the_api_server() {
        let p = JobParams::from_spec(&JobSpec::default()).unwrap();
        assert_eq!(p.completions, Some(1));
        assert_eq!(p.parallelism, 1);
        assert_eq!(p.backoff_limit, 6);
        assert!(!p.indexed);
        let queue = JobParams::from_spec(&JobSpec {
            parallelism: Some(3),
            ..JobSpec::default()
        })
        .unwrap();
        assert_eq!(queue.completions, None);
        let indexed = JobParams::from_spec(&JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(4),
            parallelism: Some(4),
            backoff_limit: Some(0),
            ..JobSpec::default()
        })
        .unwrap();
        assert_eq!(indexed, params(4, 4, true).with_backoff(0));
        assert!(
            JobParams::from_spec(&JobSpec {
                completion_mode: Some("Weird".into()),
                ..JobSpec::default()
            })
            .is_none()
        );
    }

    impl JobParams {
        fn with_backoff(mut self, limit: i32) -> Self {
            self.backoff_limit = limit;
            self
        }
    }

    #[test]
    fn indexed_job_creates_one_pod_per_index_up_to_parallelism() {
        let plan = plan(&params(3, 3, true), &JobStatus::default(), &[], now());
        assert_eq!(plan.create, vec![Some(0), Some(1), Some(2)]);
        assert!(plan.delete.is_empty());
        assert_eq!(plan.status.active, Some(3));
        assert_eq!(plan.status.start_time, Some(to_time(now())));
        assert_eq!(plan.status.succeeded, Some(0));
        assert_eq!(plan.status.completed_indexes, None);
        assert!(plan.status.conditions.is_none());
    }

    #[test]
    fn parallelism_below_completions_creates_the_lowest_free_indexes() {
        let p = params(5, 2, true);
        let first = plan(&p, &JobStatus::default(), &[], now());
        assert_eq!(first.create, vec![Some(0), Some(1)]);
        // Index 0 succeeded, 1 runs: the next free index is 2.
        let pods = [
            pod("j-0-aaaaa", Some(0), PodState::Succeeded),
            running("j-1-bbbbb", 1),
        ];
        let next = plan(&p, &first.status, &pods, now());
        assert_eq!(next.create, vec![Some(2)]);
        assert_eq!(next.status.active, Some(2));
        assert_eq!(next.status.succeeded, Some(1));
        assert_eq!(next.status.completed_indexes.as_deref(), Some("0"));
        assert_eq!(next.status.start_time, first.status.start_time);
    }

    #[test]
    fn non_indexed_job_creates_up_to_parallelism() {
        let p = params(5, 2, false);
        let first = plan(&p, &JobStatus::default(), &[], now());
        assert_eq!(first.create, vec![None, None]);
        let pods = [
            pod("j-aaaaa", None, PodState::Succeeded),
            pod("j-bbbbb", None, PodState::Succeeded),
            pod("j-ccccc", None, PodState::Succeeded),
            pod("j-ddddd", None, PodState::Active { ready: false }),
        ];
        // 3 succeeded, 1 active: 2 remain, 1 more to create.
        let next = plan(&p, &first.status, &pods, now());
        assert_eq!(next.create, vec![None]);
        assert_eq!(next.status.active, Some(2));
        assert_eq!(next.status.ready, Some(0));
        assert_eq!(next.status.completed_indexes, None);
    }

    #[test]
    fn failed_pod_is_replaced_with_the_same_index() {
        let pods = [
            pod("j-0-aaaaa", Some(0), PodState::Failed),
            running("j-1-bbbbb", 1),
        ];
        let plan = plan(&params(2, 2, true), &JobStatus::default(), &pods, now());
        assert_eq!(plan.create, vec![Some(0)]);
        assert_eq!(plan.status.failed, Some(1));
        assert_eq!(plan.status.active, Some(2));
        assert_eq!(plan.status.ready, Some(1));
    }

    #[test]
    fn completed_indexes_compress_into_ranges() {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        assert_eq!(compress_indexes(&set(&[])), "");
        assert_eq!(compress_indexes(&set(&[3])), "3");
        assert_eq!(compress_indexes(&set(&[0, 1, 2, 4])), "0-2,4");
        assert_eq!(
            compress_indexes(&set(&[0, 1, 3, 5, 6, 7, 9])),
            "0-1,3,5-7,9"
        );
        assert_eq!(parse_indexes("0-2,4"), set(&[0, 1, 2, 4]));
        assert_eq!(parse_indexes(" 1, x, 3-2, 7-8"), set(&[1, 7, 8]));
        let pods = [
            pod("a", Some(0), PodState::Succeeded),
            pod("b", Some(1), PodState::Succeeded),
            pod("c", Some(2), PodState::Succeeded),
            pod("d", Some(4), PodState::Succeeded),
            running("e", 3),
        ];
        let plan = plan(&params(6, 2, true), &JobStatus::default(), &pods, now());
        assert_eq!(plan.status.completed_indexes.as_deref(), Some("0-2,4"));
        assert_eq!(plan.status.succeeded, Some(4));
        assert_eq!(plan.create, vec![Some(5)]);
    }

    #[test]
    fn complete_when_every_index_succeeded() {
        let pods: Vec<PodView> = (0..3)
            .map(|i| pod(&format!("j-{i}-x"), Some(i), PodState::Succeeded))
            .collect();
        let previous = JobStatus {
            start_time: Some(to_time(now())),
            ..JobStatus::default()
        };
        let later = now() + std::time::Duration::from_secs(5);
        let plan = plan(&params(3, 3, true), &previous, &pods, later);
        assert!(plan.create.is_empty() && plan.delete.is_empty());
        assert_eq!(types(&plan.status), ["SuccessCriteriaMet", "Complete"]);
        let complete = &plan.status.conditions.as_ref().unwrap()[1];
        assert_eq!(complete.status, "True");
        assert_eq!(complete.reason.as_deref(), Some("CompletionsReached"));
        assert_eq!(plan.status.completion_time, Some(to_time(later)));
        assert_eq!(plan.status.completed_indexes.as_deref(), Some("0-2"));
        assert_eq!(plan.status.succeeded, Some(3));
        assert_eq!(plan.status.active, Some(0));
        assert!(is_finished(&plan.status));
        // A finished Job is left as it is.
        let again = super::plan(&params(3, 3, true), &plan.status, &[], later);
        assert_eq!(again.status, plan.status);
        assert!(again.create.is_empty());
    }

    #[test]
    fn non_indexed_complete_waits_for_active_pods() {
        let p = params(1, 2, false);
        let pods = [
            pod("a", None, PodState::Succeeded),
            pod("b", None, PodState::Active { ready: true }),
        ];
        // completions reached but a pod still runs: it is deleted (excess), not yet complete.
        let plan1 = plan(&p, &JobStatus::default(), &pods, now());
        assert_eq!(plan1.delete, vec!["b".to_string()]);
        assert!(!is_finished(&plan1.status));
        let pods = [
            pod("a", None, PodState::Succeeded),
            pod("b", None, PodState::Failed),
        ];
        let plan2 = plan(&p, &plan1.status, &pods, now());
        assert_eq!(types(&plan2.status), ["SuccessCriteriaMet", "Complete"]);
    }

    #[test]
    fn work_queue_completes_when_one_succeeded_and_none_runs() {
        let p = JobParams::from_spec(&JobSpec {
            parallelism: Some(2),
            ..JobSpec::default()
        })
        .unwrap();
        assert_eq!(plan(&p, &JobStatus::default(), &[], now()).create.len(), 2);
        let pods = [
            pod("a", None, PodState::Succeeded),
            pod("b", None, PodState::Active { ready: true }),
        ];
        let plan1 = plan(&p, &JobStatus::default(), &pods, now());
        assert!(plan1.create.is_empty() && plan1.delete.is_empty());
        assert!(!is_finished(&plan1.status));
        let pods = [
            pod("a", None, PodState::Succeeded),
            pod("b", None, PodState::Succeeded),
        ];
        assert!(is_finished(&plan(&p, &plan1.status, &pods, now()).status));
    }

    #[test]
    fn backoff_limit_zero_fails_on_the_first_failure_and_deletes_active_pods() {
        let p = params(3, 3, true).with_backoff(0);
        let pods = [
            pod("j-0-a", Some(0), PodState::Failed),
            running("j-1-b", 1),
            running("j-2-c", 2),
        ];
        let plan1 = plan(&p, &JobStatus::default(), &pods, now());
        assert!(plan1.create.is_empty());
        assert_eq!(plan1.delete, vec!["j-1-b".to_string(), "j-2-c".to_string()]);
        assert_eq!(types(&plan1.status), ["FailureTarget"]);
        let target = &plan1.status.conditions.as_ref().unwrap()[0];
        assert_eq!(target.reason.as_deref(), Some("BackoffLimitExceeded"));
        assert_eq!(
            target.message.as_deref(),
            Some("Job has reached the specified backoff limit")
        );
        assert_eq!(plan1.status.active, Some(0));
        assert_eq!(plan1.status.terminating, Some(2));
        assert_eq!(plan1.status.failed, Some(3));
        assert!(!is_finished(&plan1.status));

        // While the deleted pods terminate: nothing new, still not Failed.
        let pods = [
            pod("j-0-a", Some(0), PodState::Failed),
            pod("j-1-b", Some(1), PodState::Terminating),
            pod("j-2-c", Some(2), PodState::Failed),
        ];
        let plan2 = plan(&p, &plan1.status, &pods, now());
        assert!(plan2.create.is_empty() && plan2.delete.is_empty());
        assert_eq!(types(&plan2.status), ["FailureTarget"]);

        // Once they are gone the Job is Failed, with the same reason, and no completionTime.
        let pods = [
            pod("j-0-a", Some(0), PodState::Failed),
            pod("j-1-b", Some(1), PodState::Failed),
            pod("j-2-c", Some(2), PodState::Failed),
        ];
        let plan3 = plan(&p, &plan2.status, &pods, now());
        assert_eq!(types(&plan3.status), ["FailureTarget", "Failed"]);
        let failed = &plan3.status.conditions.as_ref().unwrap()[1];
        assert_eq!(failed.reason.as_deref(), Some("BackoffLimitExceeded"));
        assert_eq!(plan3.status.failed, Some(3));
        assert_eq!(plan3.status.completion_time, None);
        assert!(is_finished(&plan3.status));
    }

    #[test]
    fn single_failed_pod_with_backoff_zero_fails_at_once() {
        let p = params(1, 1, false).with_backoff(0);
        let pods = [pod("j-a", None, PodState::Failed)];
        let plan = plan(&p, &JobStatus::default(), &pods, now());
        assert_eq!(types(&plan.status), ["FailureTarget", "Failed"]);
        assert!(plan.create.is_empty());
    }

    #[test]
    fn failures_up_to_the_backoff_limit_are_retried() {
        let p = params(1, 1, false).with_backoff(2);
        let two = [
            pod("a", None, PodState::Failed),
            pod("b", None, PodState::Failed),
        ];
        let plan1 = plan(&p, &JobStatus::default(), &two, now());
        assert_eq!(plan1.create, vec![None]);
        assert!(plan1.status.conditions.is_none());
        let three = [
            pod("a", None, PodState::Failed),
            pod("b", None, PodState::Failed),
            pod("c", None, PodState::Failed),
        ];
        let plan2 = plan(&p, &plan1.status, &three, now());
        assert_eq!(types(&plan2.status), ["FailureTarget", "Failed"]);
    }

    #[test]
    fn terminating_pods_count_as_failed_and_are_replaced() {
        let p = params(2, 2, true);
        let pods = [
            pod("j-0-a", Some(0), PodState::Terminating),
            running("j-1-b", 1),
        ];
        let plan = plan(&p, &JobStatus::default(), &pods, now());
        assert_eq!(plan.create, vec![Some(0)]);
        assert_eq!(plan.status.failed, Some(1));
        assert_eq!(plan.status.terminating, Some(1));
    }

    #[test]
    fn deadline_exceeded_fails_the_job() {
        let mut p = params(2, 2, true);
        p.active_deadline_seconds = Some(10);
        let previous = JobStatus {
            start_time: Some(to_time(now())),
            ..JobStatus::default()
        };
        let pods = [running("j-0-a", 0), running("j-1-b", 1)];
        let before = plan(
            &p,
            &previous,
            &pods,
            now() + std::time::Duration::from_secs(9),
        );
        assert!(before.status.conditions.is_none() && before.delete.is_empty());
        let after = plan(
            &p,
            &previous,
            &pods,
            now() + std::time::Duration::from_secs(10),
        );
        assert_eq!(after.delete, vec!["j-0-a".to_string(), "j-1-b".to_string()]);
        let target = &after.status.conditions.as_ref().unwrap()[0];
        assert_eq!(target.type_, "FailureTarget");
        assert_eq!(target.reason.as_deref(), Some("DeadlineExceeded"));
        assert_eq!(
            target.message.as_deref(),
            Some("Job was active longer than specified deadline")
        );
        let gone = [
            pod("j-0-a", Some(0), PodState::Failed),
            pod("j-1-b", Some(1), PodState::Failed),
        ];
        let done = plan(
            &p,
            &after.status,
            &gone,
            now() + std::time::Duration::from_secs(11),
        );
        assert_eq!(types(&done.status), ["FailureTarget", "Failed"]);
        assert_eq!(
            done.status.conditions.as_ref().unwrap()[1]
                .reason
                .as_deref(),
            Some("DeadlineExceeded")
        );
        assert_eq!(done.status.start_time, previous.start_time);
    }

    #[test]
    fn backoff_is_checked_before_the_deadline_and_success() {
        let mut p = params(1, 1, false).with_backoff(0);
        p.active_deadline_seconds = Some(1);
        let previous = JobStatus {
            start_time: Some(to_time(now())),
            ..JobStatus::default()
        };
        let pods = [pod("a", None, PodState::Failed)];
        let plan = plan(
            &p,
            &previous,
            &pods,
            now() + std::time::Duration::from_secs(5),
        );
        assert_eq!(
            plan.status.conditions.as_ref().unwrap()[0]
                .reason
                .as_deref(),
            Some("BackoffLimitExceeded")
        );
    }

    #[test]
    fn duplicate_and_out_of_range_indexed_pods_are_deleted() {
        let pods = [
            running("j-0-a", 0),
            running("j-0-b", 0),
            running("j-9-c", 9),
            pod("j-x", None, PodState::Active { ready: false }),
        ];
        let plan = plan(&params(2, 2, true), &JobStatus::default(), &pods, now());
        assert_eq!(
            plan.delete,
            vec!["j-0-b".to_string(), "j-9-c".into(), "j-x".into()]
        );
        assert_eq!(plan.create, vec![Some(1)]);
        assert_eq!(plan.status.active, Some(2));
    }

    #[test]
    fn lowered_parallelism_deletes_not_ready_pods_first() {
        let pods = [
            pod("a", None, PodState::Active { ready: true }),
            pod("b", None, PodState::Active { ready: false }),
            pod("c", None, PodState::Active { ready: true }),
        ];
        let plan = plan(&params(5, 1, false), &JobStatus::default(), &pods, now());
        assert_eq!(plan.delete, vec!["b".to_string(), "c".to_string()]);
        assert!(plan.create.is_empty());
        assert_eq!(plan.status.active, Some(1));
    }

    #[test]
    fn previous_conditions_and_completed_indexes_are_kept() {
        let previous = JobStatus {
            completed_indexes: Some("0".into()),
            conditions: Some(vec![JobCondition {
                type_: "Suspended".into(),
                status: "False".into(),
                ..JobCondition::default()
            }]),
            ..JobStatus::default()
        };
        let plan = plan(
            &params(2, 2, true),
            &previous,
            &[running("j-1-a", 1)],
            now(),
        );
        assert!(plan.create.is_empty());
        assert_eq!(plan.status.completed_indexes.as_deref(), Some("0"));
        assert_eq!(plan.status.succeeded, Some(1));
        assert_eq!(types(&plan.status), ["Suspended"]);
    }
}
