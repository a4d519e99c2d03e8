//! Sizing a run: the shared validation, the peak VUs over the whole schedule, the runner count
//! and each runner's execution segment, checked against the operator's policy. Pure.

use k8s_openapi::api::core::v1::ResourceRequirements;
use stampede_crds::LoadTest;
use stampede_crds::validate::effective_scenarios;
use stampede_runner::schedule::{ExecutionSegment, TestPlan};

use crate::policy::Policy;

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
}

/// Why a LoadTest cannot run; every message names the field and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The spec is invalid (the same problems `stampede validate` lists).
    #[error("invalid LoadTest: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// More VUs than the operator allows one test.
    #[error(
        "spec: the test needs {peak} VUs at its peak, but this operator allows at most {max} per \
         LoadTest: lower the scenarios' VUs / maxVUs, or ask the cluster admin to raise the limit \
         (operator flag --max-vus-per-test)"
    )]
    TooManyVus {
        /// Peak VUs of the test.
        peak: u64,
        /// The operator's cap.
        max: u64,
    },
    /// More runners than the operator allows one test.
    #[error(
        "{field}: the test would use {runners} runners, but this operator allows at most {max} \
         per LoadTest: {fix}"
    )]
    TooManyRunners {
        /// The field that decided the count.
        field: &'static str,
        /// The count asked for.
        runners: u64,
        /// The operator's cap.
        max: u64,
        /// What to change.
        fix: String,
    },
}

/// Plans a run of `test` under `policy`.
pub fn plan(test: &LoadTest, policy: &Policy) -> Result<RunPlan, PlanError> {
    let problems = stampede_crds::validate(test);
    if !problems.is_empty() {
        return Err(PlanError::Invalid(
            problems.iter().map(ToString::to_string).collect(),
        ));
    }
    let scenarios = effective_scenarios(&test.spec);
    let peak_vus = TestPlan::new(&scenarios, &ExecutionSegment::full()).peak_vus();
    if peak_vus > policy.max_vus_per_test {
        return Err(PlanError::TooManyVus {
            peak: peak_vus,
            max: policy.max_vus_per_test,
        });
    }
    let runner_spec = test.spec.runners.as_ref();
    let count = runner_spec.and_then(|r| r.count).filter(|c| *c > 0);
    let per_runner = runner_spec
        .and_then(|r| r.max_vus_per_runner)
        .filter(|v| *v > 0);
    let (runners, field, fix) = match (count, per_runner) {
        (Some(count), _) => (
            u64::try_from(count).unwrap_or(u64::MAX),
            "spec.runners.count",
            format!("set spec.runners.count to at most {}", policy.max_runners),
        ),
        (None, Some(per_runner)) => (
            TestPlan::new(&scenarios, &ExecutionSegment::full())
                .runners_needed(u64::try_from(per_runner).unwrap_or(1)),
            "spec.runners.maxVUsPerRunner",
            format!(
                "raise spec.runners.maxVUsPerRunner to at least {}",
                peak_vus.div_ceil(policy.max_runners.max(1))
            ),
        ),
        (None, None) => (
            peak_vus
                .div_ceil(policy.default_max_vus_per_runner.max(1))
                .max(1),
            "spec.runners.maxVUsPerRunner",
            format!(
                "set spec.runners.maxVUsPerRunner to at least {}",
                peak_vus.div_ceil(policy.max_runners.max(1))
            ),
        ),
    };
    if runners > policy.max_runners {
        return Err(PlanError::TooManyRunners {
            field,
            runners,
            max: policy.max_runners,
            fix,
        });
    }
    let segments = (0..runners)
        .map(|index| {
            ExecutionSegment::of(index, runners)
                .map(|segment| segment.to_string())
                .unwrap_or_else(|_| format!("{index}/{runners}:{}/{runners}", index + 1))
        })
        .collect();
    let image = runner_spec
        .and_then(|r| r.image.clone())
        .filter(|image| !image.is_empty())
        .unwrap_or_else(|| policy.runner_image.clone());
    let resources = runner_spec
        .and_then(|r| r.resources.clone())
        .or_else(|| policy.default_runner_resources.clone());
    Ok(RunPlan {
        peak_vus,
        runners,
        segments,
        image,
        resources,
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
        let policy = Policy::default();
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
                PlanError::TooManyVus {
                    peak: 350,
                    max: 100
                }
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
}
