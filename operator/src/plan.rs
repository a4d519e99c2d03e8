//! Sizing a run, once, when it starts: the shared validation, the peak VUs over the whole
//! schedule, the runner count and each runner's execution segment, the image and resources,
//! checked against the operator's policy. The plan is recorded in the run's status, and a
//! started run is read back from that record (or, for a run an earlier operator started
//! without one, recovered from what the run shows) — never planned again. Pure.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ResourceRequirements;
use stampede_crds::LoadTest;
use stampede_crds::status::{LoadTestStatus, RunPlanStatus};
use stampede_runner::http::TargetPolicy;
use stampede_runner::schedule::ExecutionSegment;
use stampede_runner::schedule::sizing::{self, Size, SizeError};

use crate::compiled::{self, CompiledTest};
use crate::desired;
use crate::policy::Policy;
use crate::runner_policy::{self, Violation};

/// How one run is spread over runners.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Most VUs the whole test holds at once (arrival-rate scenarios at `maxVUs`).
    pub peak_vus: u64,
    /// Runner count N.
    pub runners: u64,
    /// Runner i's k6 execution segment `i/N:(i+1)/N`, by index.
    pub segments: Vec<String>,
    /// The runner image.
    pub image: String,
    /// The runner container's resources: the spec's, else the operator's default.
    pub resources: Option<ResourceRequirements>,
    /// The planned length of the test, graceful stops included.
    pub planned: Duration,
    /// Where the runners may send load: the operator's policy when the Job is built (not
    /// recorded in the status: a run taken over by another operator gets that one's policy).
    pub targets: TargetPolicy,
}

/// Why a LoadTest cannot run; every message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The spec is invalid (the same problems `stampede validate` lists).
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Over the operator's caps (peak VUs, runners).
    #[error("{field}: {error}", field = .0.field(), error = .0)]
    Caps(#[from] SizeError),
    /// What the runner pods would be asks more than the operator's policy allows.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Policy(Vec<Violation>),
}

/// Why a recorded plan cannot be used (`status.plan` was edited, or written by a bug).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// Fewer than one runner.
    #[error("status.plan.runners is {0}; a run has at least one runner")]
    NoRunners(i64),
    /// The segments do not match the runner count.
    #[error("status.plan.segments has {segments} entries for {runners} runners")]
    Segments {
        /// Segments recorded.
        segments: usize,
        /// Runners recorded.
        runners: i64,
    },
    /// No image.
    #[error("status.plan.image is empty")]
    NoImage,
    /// A planned length that is not a number of seconds.
    #[error("status.plan.plannedSeconds is {0}, not a length of time")]
    Planned(f64),
}

/// Plans a run of `test` under `policy`.
pub fn plan(test: &LoadTest, policy: &Policy) -> Result<RunPlan, PlanError> {
    let compiled = compiled::compile(test).map_err(PlanError::Invalid)?;
    plan_compiled(test, &compiled, policy)
}

/// Plans a run of the compiled `test` under `policy`.
fn plan_compiled(
    test: &LoadTest,
    compiled: &CompiledTest,
    policy: &Policy,
) -> Result<RunPlan, PlanError> {
    let mut violations = runner_policy::check(test, &policy.runners, &policy.runner_image);
    violations.extend(runner_policy::check_targets(
        test,
        &compiled.model,
        &policy.targets,
    ));
    if !violations.is_empty() {
        return Err(PlanError::Policy(violations));
    }
    let Size { peak_vus, runners } = sizing::size(
        test.spec.runners.as_ref(),
        &compiled.schedule,
        &policy.caps(),
    )?;
    Ok(RunPlan {
        peak_vus,
        runners,
        segments: segments(runners),
        image: runner_image(test, policy),
        resources: runner_resources(test, policy),
        planned: compiled.planned(),
        targets: policy.targets.clone(),
    })
}

/// Runner i's execution segment `i/N:(i+1)/N` for each of `runners` runners.
fn segments(runners: u64) -> Vec<String> {
    (0..runners)
        .map(|index| {
            ExecutionSegment::of(index, runners)
                .map(|segment| segment.to_string())
                .unwrap_or_else(|_| format!("{index}/{runners}:{}/{runners}", index + 1))
        })
        .collect()
}

/// The runner image: the spec's, else the operator's default.
fn runner_image(test: &LoadTest, policy: &Policy) -> String {
    test.spec
        .runners
        .as_ref()
        .and_then(|r| r.image.clone())
        .filter(|image| !image.is_empty())
        .unwrap_or_else(|| policy.runner_image.clone())
}

/// The runner container's resources: the spec's, else the operator's default.
fn runner_resources(test: &LoadTest, policy: &Policy) -> Option<ResourceRequirements> {
    test.spec
        .runners
        .as_ref()
        .and_then(|r| r.resources.clone())
        .or_else(|| policy.default_runner_resources.clone())
}

impl RunPlan {
    /// The plan as the run's status records it.
    pub fn record(&self) -> RunPlanStatus {
        RunPlanStatus {
            runners: i64::try_from(self.runners).unwrap_or(i64::MAX),
            peak_vus: i64::try_from(self.peak_vus).unwrap_or(i64::MAX),
            segments: self.segments.clone(),
            image: self.image.clone(),
            resources: self.resources.clone(),
            planned_seconds: self.planned.as_secs_f64(),
        }
    }

    /// The plan a run's status recorded, checked: whatever is in the status subresource is
    /// input, so a record that cannot be a plan is an error, not a default.
    pub fn from_record(record: &RunPlanStatus) -> Result<RunPlan, RecordError> {
        let runners = u64::try_from(record.runners)
            .ok()
            .filter(|n| *n > 0)
            .ok_or(RecordError::NoRunners(record.runners))?;
        if record.segments.len() as u64 != runners {
            return Err(RecordError::Segments {
                segments: record.segments.len(),
                runners: record.runners,
            });
        }
        if record.image.is_empty() {
            return Err(RecordError::NoImage);
        }
        let planned = Duration::try_from_secs_f64(record.planned_seconds)
            .map_err(|_| RecordError::Planned(record.planned_seconds))?;
        Ok(RunPlan {
            peak_vus: u64::try_from(record.peak_vus).unwrap_or(0),
            runners,
            segments: record.segments.clone(),
            image: record.image.clone(),
            resources: record.resources.clone(),
            planned,
            targets: TargetPolicy::default(),
        })
    }
}

/// The plan of a started run whose status records none (an operator without `status.plan`
/// started it) or an unreadable one: what the run already is — its runner count from the
/// status (else its Job), its image and resources from its Job's runner container — with the
/// rest from the spec. Planned anew under `policy` only when the run shows no runner count.
pub fn recover(
    test: &LoadTest,
    status: &LoadTestStatus,
    job: Option<&Job>,
    policy: &Policy,
) -> Result<RunPlan, PlanError> {
    let compiled = compiled::compile_started(test).map_err(PlanError::Invalid)?;
    let job_spec = job.and_then(|job| job.spec.as_ref());
    let runners = status
        .runners
        .as_ref()
        .map(|r| r.desired)
        .or_else(|| job_spec.and_then(|spec| spec.completions.map(i64::from)))
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0);
    let Some(runners) = runners else {
        return plan_compiled(test, &compiled, policy);
    };
    let container = job.and_then(desired::runner_container);
    let (image, resources) = match container {
        Some(container) => (
            container
                .image
                .clone()
                .filter(|image| !image.is_empty())
                .unwrap_or_else(|| runner_image(test, policy)),
            container.resources.clone(),
        ),
        None => (runner_image(test, policy), runner_resources(test, policy)),
    };
    Ok(RunPlan {
        peak_vus: compiled.peak_vus(),
        runners,
        segments: segments(runners),
        image,
        resources,
        planned: compiled.planned(),
        targets: policy.targets.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(spec: serde_json::Value) -> LoadTest {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
            "metadata": {"name": "t", "namespace": "ns"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn spike(runners: serde_json::Value) -> LoadTest {
        test(serde_json::json!({
            "scenarios": {
                "spike": {"executor": "ramping-vus", "flow": "f", "stages": [
                    {"duration": "10s", "target": 300}, {"duration": "10s", "target": 0}]},
                "browse": {"executor": "constant-arrival-rate", "flow": "f", "rate": 10,
                           "duration": "20s", "preAllocatedVUs": 10, "maxVUs": 50},
            },
            "flows": {"f": [{"request": {"url": "http://127.0.0.1:1/"}}]},
            "runners": runners,
        }))
    }

    #[test]
    fn runners_follow_count_or_vus_per_runner() {
        let policy = Policy {
            runners: crate::runner_policy::RunnerPolicy::open(),
            ..Policy::default()
        };
        let counted = plan(&spike(serde_json::json!({"count": 3})), &policy).unwrap();
        assert_eq!(counted.peak_vus, 350);
        assert_eq!(counted.runners, 3);
        assert_eq!(counted.segments, ["0:1/3", "1/3:2/3", "2/3:1"]);
        let sized = plan(&spike(serde_json::json!({"maxVUsPerRunner": 100})), &policy).unwrap();
        assert_eq!(sized.runners, 4, "ceil(350 / 100)");
        let defaulted = plan(&spike(serde_json::json!({})), &policy).unwrap();
        assert_eq!(
            (defaulted.runners, defaulted.segments.as_slice()),
            (1, ["0:1".to_string()].as_slice())
        );
        assert_eq!(defaulted.image, policy.runner_image);
        let imaged = plan(
            &spike(serde_json::json!({"image": "registry.local/stampede:dev"})),
            &policy,
        )
        .unwrap();
        assert_eq!(imaged.image, "registry.local/stampede:dev");
        assert_eq!(imaged.resources, None);
        let limited: ResourceRequirements =
            serde_json::from_value(serde_json::json!({"limits": {"memory": "512Mi"}})).unwrap();
        let with_default = Policy {
            default_runner_resources: Some(limited.clone()),
            ..Policy::default()
        };
        assert_eq!(
            plan(&spike(serde_json::json!({})), &with_default)
                .unwrap()
                .resources,
            Some(limited)
        );
        let own = plan(
            &spike(serde_json::json!({"resources": {"requests": {"cpu": "2"}}})),
            &with_default,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(own.resources).unwrap(),
            serde_json::json!({"requests": {"cpu": "2"}}),
            "the spec's resources win over the operator's default"
        );
    }

    #[test]
    fn policy_caps_name_the_field_and_the_fix() {
        let policy = Policy {
            max_runners: 2,
            max_vus_per_test: 1000,
            ..Policy::default()
        };
        let error = plan(&spike(serde_json::json!({"count": 5})), &policy).unwrap_err();
        assert_eq!(
            error.to_string(),
            "spec.runners.count: the test would use 5 runners, but this operator allows at most 2 \
             per LoadTest: set spec.runners.count to at most 2"
        );
        let error = plan(&spike(serde_json::json!({"maxVUsPerRunner": 100})), &policy).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("spec.runners.maxVUsPerRunner: the test would use 4 runners")
        );
        assert!(
            error
                .to_string()
                .ends_with("raise spec.runners.maxVUsPerRunner to at least 175")
        );
        let tight = Policy {
            max_vus_per_test: 100,
            ..Policy::default()
        };
        let error = plan(&spike(serde_json::json!({})), &tight).unwrap_err();
        assert!(
            matches!(
                error,
                PlanError::Caps(SizeError::TooManyVus {
                    peak: 350,
                    max: 100
                })
            ),
            "{error}"
        );
    }

    #[test]
    fn invalid_specs_are_refused_with_the_shared_validation() {
        let bad = test(serde_json::json!({"vus": 1, "duration": "soon",
            "flows": {"default": [{"request": {"url": "http://127.0.0.1:1/"}}]}}));
        match plan(&bad, &Policy::default()).unwrap_err() {
            PlanError::Invalid(problems) => {
                assert!(
                    problems.iter().any(|p| p.starts_with("spec.duration")),
                    "{problems:?}"
                );
            }
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn a_plan_reads_back_from_its_record_and_a_broken_record_says_why() {
        let planned = plan(&spike(serde_json::json!({"count": 3})), &Policy::default()).unwrap();
        let record = planned.record();
        assert_eq!(record.runners, 3);
        assert_eq!(record.planned_seconds, planned.planned.as_secs_f64());
        // The target policy is the operator's, not the record's.
        assert_eq!(
            RunPlan::from_record(&record),
            Ok(RunPlan {
                targets: TargetPolicy::default(),
                ..planned
            })
        );
        // Through JSON, as the status subresource stores it.
        let stored: RunPlanStatus =
            serde_json::from_value(serde_json::to_value(&record).unwrap()).unwrap();
        assert_eq!(stored, record);

        let broken = |edit: fn(&mut RunPlanStatus)| {
            let mut record = record.clone();
            edit(&mut record);
            RunPlan::from_record(&record).unwrap_err().to_string()
        };
        assert_eq!(
            broken(|r| r.runners = 0),
            "status.plan.runners is 0; a run has at least one runner"
        );
        assert_eq!(
            broken(|r| r.runners = 4),
            "status.plan.segments has 3 entries for 4 runners"
        );
        assert_eq!(broken(|r| r.image.clear()), "status.plan.image is empty");
        assert_eq!(
            broken(|r| r.planned_seconds = -1.0),
            "status.plan.plannedSeconds is -1, not a length of time"
        );
    }

    #[test]
    fn a_run_without_a_record_is_recovered_from_what_it_shows() {
        let test = spike(serde_json::json!({"count": 3}));
        let policy = Policy::default();
        let status = LoadTestStatus {
            runners: Some(stampede_crds::status::RunnerCounts {
                desired: 2,
                ..Default::default()
            }),
            ..LoadTestStatus::default()
        };
        // No Job yet: the status's count, the spec's (here: the policy's) image.
        let recovered = recover(&test, &status, None, &policy).unwrap();
        assert_eq!(recovered.runners, 2);
        assert_eq!(recovered.segments, ["0:1/2", "1/2:1"]);
        assert_eq!(recovered.image, policy.runner_image);
        assert_eq!(recovered.peak_vus, 350);
        // Nothing shows a count: planned anew, caps and all.
        let tight = Policy {
            max_runners: 2,
            ..policy.clone()
        };
        assert!(matches!(
            recover(&test, &LoadTestStatus::default(), None, &tight),
            Err(PlanError::Caps(SizeError::TooManyRunners {
                runners: 3,
                ..
            }))
        ));
    }
}
