//! The LoadTest status: phase, runner counts, live progress, merged summary, verdict and conditions.
//!
//! The operator is its only writer. It stays small (no histograms, no per-runner data) because
//! every runner and every `kubectl get -w` watches the LoadTest.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type that turns `True` when the run is over, whatever the verdict (wait on it).
pub const CONDITION_COMPLETE: &str = "Complete";
/// Condition type that carries the verdict: `True` when every threshold passed.
pub const CONDITION_PASSED: &str = "Passed";

/// Where a LoadTest is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum Phase {
    /// Accepted, nothing created yet.
    #[default]
    Pending,
    /// The spec failed validation; the message names every problem. Nothing was created.
    Invalid,
    /// Runner pods are being created and prepared.
    Provisioning,
    /// All runners are ready and the test is running.
    Running,
    /// A threshold with `abortOnFail` failed; runners are stopping gracefully.
    Aborting,
    /// Finished and every threshold passed.
    Succeeded,
    /// Finished and at least one threshold failed.
    Failed,
    /// The run could not complete (runner failure, unschedulable, image pull, timeout).
    Errored,
    /// Stopped early: by `abortOnFail`, or superseded by a spec change.
    Aborted,
}

impl Phase {
    /// True once the run is over (no further phase change without a new run).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Phase::Invalid | Phase::Succeeded | Phase::Failed | Phase::Errored | Phase::Aborted
        )
    }
}

/// Observed state of a LoadTest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadTestStatus {
    /// Pending, Invalid, Provisioning, Running, Aborting, Succeeded, Failed, Errored or Aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Run number: 1 for the first run, incremented each time a spec change starts a new run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<i64>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// How the current run was planned when it started. Later reconciles (and a restarted or
    /// upgraded operator) read it and never plan a started run again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<RunPlanStatus>,
    /// Runner pod counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runners: Option<RunnerCounts>,
    /// The instant every runner starts (set a few seconds ahead once all runners are ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Live figures of the running test, merged from every runner every few seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// The merged end-of-test summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryStatus>,
    /// Per-step figures (requests, failure rate, p95), one row per step name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStatus>,
    /// Every threshold with its observed value and result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdStatus>,
    /// `Complete` (the run is over) and `Passed` (the verdict), with reasons and messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Where the full merged result (summary JSON and time series) is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_ref: Option<ResultRef>,
    /// A human-readable explanation of the current phase (validation problems, errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl LoadTestStatus {
    /// The condition of type `kind` (`Complete`, `Passed`), if set.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == kind)
    }
}

/// The plan of one run, decided once when the run started: what its runner Job is built from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunPlanStatus {
    /// Runner count N.
    pub runners: i64,
    /// Most VUs the whole test holds at once.
    #[serde(default, rename = "peakVUs")]
    pub peak_vus: i64,
    /// Runner i's execution segment `i/N:(i+1)/N`, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    /// The runner image.
    pub image: String,
    /// The runner container's resources (the spec's, else the operator's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Planned length of the test in seconds, graceful stops included.
    #[serde(default)]
    pub planned_seconds: f64,
}

/// Runner pod counts of the current run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunnerCounts {
    /// Runner pods the plan asks for.
    pub desired: i64,
    /// Runners that prepared and reported Ready.
    #[serde(default)]
    pub ready: i64,
    /// Runners executing the test.
    #[serde(default)]
    pub running: i64,
    /// Runners that finished and sent their final report.
    #[serde(default)]
    pub succeeded: i64,
    /// Runners that failed.
    #[serde(default)]
    pub failed: i64,
}

/// Live figures, also shown by `kubectl get lt`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Seconds since the start.
    #[serde(default)]
    pub elapsed_seconds: f64,
    /// Planned length of the test in seconds, graceful stops included.
    #[serde(default)]
    pub total_seconds: f64,
    /// Active VUs across all runners.
    #[serde(default)]
    pub vus: i64,
    /// Requests per second: over the last interval while the run goes, the run's average
    /// (requests / run duration) once it is over.
    #[serde(default)]
    pub rps: f64,
    /// Requests so far.
    #[serde(default)]
    pub http_reqs: i64,
    /// Iterations so far.
    #[serde(default)]
    pub iterations: i64,
    /// Dropped iterations so far.
    #[serde(default)]
    pub dropped_iterations: i64,
    /// p95 of `http_req_duration` so far, in milliseconds.
    #[serde(default)]
    pub p95_ms: f64,
    /// `http_req_failed` rate so far (0..1).
    #[serde(default)]
    pub failed_rate: f64,
    /// p95 for display, e.g. `35.2ms`.
    #[serde(default)]
    pub p95: String,
    /// Failure rate for display, e.g. `0.12%`.
    #[serde(default)]
    pub failed: String,
}

/// The merged end-of-test summary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryStatus {
    /// Highest number of VUs initialized (k6 `vus_max`).
    #[serde(default)]
    pub vus_max: i64,
    /// Requests, redirect hops included (k6 `http_reqs`).
    #[serde(default)]
    pub http_reqs: i64,
    /// Requests per second over the test.
    #[serde(default)]
    pub rps: f64,
    /// `http_req_failed` rate (0..1).
    #[serde(default)]
    pub failed_rate: f64,
    /// Completed iterations.
    #[serde(default)]
    pub iterations: i64,
    /// Iterations that could not start (k6 `dropped_iterations`).
    #[serde(default)]
    pub dropped_iterations: i64,
    /// Check results.
    #[serde(default)]
    pub checks: CheckCounts,
    /// `http_req_duration` statistics in milliseconds.
    #[serde(default)]
    pub duration_ms: TrendStats,
    /// Bytes sent.
    #[serde(default)]
    pub data_sent: i64,
    /// Bytes received.
    #[serde(default)]
    pub data_received: i64,
}

/// Passed and failed check counts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckCounts {
    /// Checks that passed.
    #[serde(default)]
    pub passes: i64,
    /// Checks that failed.
    #[serde(default)]
    pub fails: i64,
}

/// Trend statistics in milliseconds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrendStats {
    /// Mean.
    #[serde(default)]
    pub avg: f64,
    /// Smallest value.
    #[serde(default)]
    pub min: f64,
    /// Median.
    #[serde(default)]
    pub med: f64,
    /// 90th percentile.
    #[serde(default)]
    pub p90: f64,
    /// 95th percentile.
    #[serde(default)]
    pub p95: f64,
    /// 99th percentile.
    #[serde(default)]
    pub p99: f64,
    /// Largest value.
    #[serde(default)]
    pub max: f64,
}

/// Figures of one step (its `name` tag).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepStatus {
    /// The step's name tag.
    pub name: String,
    /// Requests sent by the step.
    #[serde(default)]
    pub reqs: i64,
    /// Failure rate (0..1).
    #[serde(default)]
    pub failed_rate: f64,
    /// Median duration, ms.
    #[serde(default)]
    pub p50_ms: f64,
    /// p95 duration, ms.
    #[serde(default)]
    pub p95_ms: f64,
    /// p99 duration, ms.
    #[serde(default)]
    pub p99_ms: f64,
}

/// One threshold and its result.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdStatus {
    /// The metric key, with tag filter if any (`http_req_duration{name:login}`).
    pub metric: String,
    /// The expression (`p(95)<500`).
    pub threshold: String,
    /// The observed value of the aggregation (absent when the metric had no samples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Whether it held.
    pub ok: bool,
}

/// Where the full result lives.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultRef {
    /// Name of the ConfigMap (`<name>-result`) holding the summary JSON and time series.
    pub config_map: String,
}
