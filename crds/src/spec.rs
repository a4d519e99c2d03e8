//! The `LoadTest` resource and its spec: k6 options, scenarios, flows, data, thresholds, runners.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, EnvVar, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::flow::Step;
use crate::scenario::{Scenario, Stage};
use crate::status::LoadTestStatus;
use crate::threshold::ThresholdRule;

/// A load test: k6-style scenarios of declarative HTTP flows, run by Stampede's runners, with
/// the merged summary and the threshold verdict written to `status`.
///
/// Wait for the verdict with `kubectl wait --for=condition=Complete loadtest/NAME` and read
/// `status.conditions[?(@.type=="Passed")]`, or run `stampede wait NAME`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "stampede.dev",
    version = "v1alpha1",
    kind = "LoadTest",
    plural = "loadtests",
    singular = "loadtest",
    shortname = "lt",
    category = "all",
    namespaced,
    status = "LoadTestStatus",
    doc = "A load test run by Stampede: k6-style scenarios of HTTP flows, with the verdict in status.",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"VUs","type":"integer","jsonPath":".status.progress.vus"}"#,
    printcolumn = r#"{"name":"RPS","type":"number","jsonPath":".status.progress.rps"}"#,
    printcolumn = r#"{"name":"P95","type":"string","jsonPath":".status.progress.p95"}"#,
    printcolumn = r#"{"name":"Failed","type":"string","jsonPath":".status.progress.failed"}"#,
    printcolumn = r#"{"name":"Passed","type":"string","jsonPath":".status.conditions[?(@.type==\"Passed\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.scenarios) || (!has(self.stages) && !has(self.duration) && !has(self.iterations))",
     "message": "stages, duration and iterations cannot be used together with scenarios (k6 rejects it too): move them into a scenario"}
]))]
pub struct LoadTestSpec {
    /// k6 shortcut: VUs of the `default` scenario (with `duration`, `iterations` or `stages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub vus: Option<i64>,
    /// k6 shortcut: run `vus` VUs for this long (a constant-vus `default` scenario).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// k6 shortcut: share this many iterations among `vus` VUs (a shared-iterations `default`
    /// scenario).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub iterations: Option<i64>,
    /// k6 shortcut: ramp VUs through these stages (a ramping-vus `default` scenario starting at
    /// `vus`). Not allowed together with `scenarios`, as in k6.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stage>,
    /// Named scenarios (names match `^[0-9a-zA-Z_-]+$`); they run in parallel, each after its
    /// `startTime`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub scenarios: BTreeMap<String, Scenario>,

    /// Request defaults: base URL, timeout, headers, TLS and connection options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<Defaults>,
    /// Environment for templates (`${env.NAME}`), in pod env syntax. In a cluster,
    /// `valueFrom.secretKeyRef` and `configMapKeyRef` are resolved in the runner pods, so secret
    /// values never enter the LoadTest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Test data tables, read in templates as `${data.TABLE.COLUMN}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub data: BTreeMap<String, DataSource>,
    /// Steps run once per test before any scenario (k6 `setup()`); their captures are read by
    /// every VU as `${setup.NAME}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub setup: Vec<Step>,
    /// Steps run once per test after every scenario (k6 `teardown()`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub teardown: Vec<Step>,
    /// Named flows: the steps one iteration runs. Scenarios pick one with `flow`; the flow
    /// named `default` runs when a scenario names none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::crd::flows_schema")]
    pub flows: BTreeMap<String, Vec<Step>>,

    /// Pass/fail criteria, k6 syntax: metric (optionally `metric{tag:value}`) → list of
    /// `"p(95)<500"` strings or `{threshold, abortOnFail, delayAbortEval, passWithoutData}`
    /// objects. A rule whose metric got no samples fails ("no data") unless `passWithoutData`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "crate::crd::thresholds_schema")]
    pub thresholds: BTreeMap<String, Vec<ThresholdRule>>,
    /// Trend statistics shown in the summary (k6 default `avg, min, med, max, p(90), p(95)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_trend_stats: Option<Vec<String>>,
    /// Tags added to every metric sample of the test.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,

    /// Runner pods: how many, their size and placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runners: Option<RunnerSpec>,
    /// What to delete when the test finishes (default `runners`: Jobs and report ConfigMaps go,
    /// the result ConfigMap stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<CleanupPolicy>,
    /// Delete the LoadTest this long after it finished (like Jobs' field of the same name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i64>,
}

/// Defaults for every request of the test; a request's own fields override them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    /// Base URL that relative request URLs are joined to, e.g. `http://shop.shop.svc:8080`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Request timeout (k6 default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Headers sent with every request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Skip TLS certificate verification (k6 `insecureSkipTLSVerify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "insecureSkipTLSVerify")]
    pub insecure_skip_tls_verify: Option<bool>,
    /// Redirects to follow per request (k6 default 10); each hop counts in `http_reqs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_redirects: Option<i64>,
    /// Disable keep-alive: every request opens a new connection (k6 `noConnectionReuse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_connection_reuse: Option<bool>,
    /// Close a VU's connections between iterations (k6 `noVUConnectionReuse`).
    #[serde(
        default,
        rename = "noVUConnectionReuse",
        skip_serializing_if = "Option::is_none"
    )]
    pub no_vu_connection_reuse: Option<bool>,
    /// Keep the cookie jar across iterations instead of resetting it (k6 `noCookiesReset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cookies_reset: Option<bool>,
    /// Do not keep response bodies beyond what checks and captures read (k6
    /// `discardResponseBodies`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discard_response_bodies: Option<bool>,
    /// User-Agent header (k6 default `stampede/<version>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Pad iterations that finish sooner than this (k6 `minIterationDuration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_iteration_duration: Option<String>,
    /// Statuses that count as expected for `http_req_failed` (k6 default 200-399).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_statuses: Vec<IntOrString>,
}

/// A test data table. Exactly one of `rows`, `csv`, `file` or `configMapRef` gives the rows.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.rows) ? 1 : 0) + (has(self.csv) ? 1 : 0) + (has(self.file) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) == 1",
     "message": "set exactly one of rows, csv, file or configMapRef"}
]))]
pub struct DataSource {
    /// Inline rows: a list of column → value maps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<BTreeMap<String, String>>,
    /// Inline CSV text with a header line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// A CSV or JSON file, relative to the manifest (for `stampede run` on a laptop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A ConfigMap key holding CSV or JSON rows (in a cluster; mounted into the runner pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,
    /// How each iteration picks its row: `sequential` (default), `random`, `unique` (every row
    /// at most once in the whole test, across runners) or `perVU` (one row per VU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<DataSelect>,
    /// File format of `file` / `configMapRef`; inferred from the extension (`.csv`, `.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<DataFormat>,
}

impl DataSource {
    /// The row sources that are set, by field name (valid tables have exactly one).
    pub fn sources(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if !self.rows.is_empty() {
            set.push("rows");
        }
        if self.csv.is_some() {
            set.push("csv");
        }
        if self.file.is_some() {
            set.push("file");
        }
        if self.config_map_ref.is_some() {
            set.push("configMapRef");
        }
        set
    }
}

/// A key of a ConfigMap in the LoadTest's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// ConfigMap name.
    pub name: String,
    /// Key inside the ConfigMap.
    pub key: String,
}

/// How iterations pick rows from a data table.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DataSelect {
    /// Row i for the i-th iteration of the test, wrapping around.
    #[serde(rename = "sequential")]
    Sequential,
    /// A uniformly random row for each iteration.
    #[serde(rename = "random")]
    Random,
    /// Each row at most once in the whole test; the scenario ends when rows run out.
    #[serde(rename = "unique")]
    Unique,
    /// One row per VU, kept for all its iterations.
    #[serde(rename = "perVU")]
    PerVu,
}

/// Format of a data file.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Comma-separated values with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// Runner pods: count, size, image and placement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunnerSpec {
    /// Exact number of runner pods; when omitted it is ceil(peak VUs / maxVUsPerRunner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub count: Option<i64>,
    /// Most VUs one runner may hold when the count is computed (default 1000).
    #[serde(
        default,
        rename = "maxVUsPerRunner",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1))]
    pub max_vus_per_runner: Option<i64>,
    /// Runner container resources (the operator's defaults apply when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Runner image (the operator's default image when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Node selector for the runner pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations for the runner pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity for the runner pods (e.g. spread runners across nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Service account for the runner pods; by default the operator creates one per test that
    /// may read only this LoadTest and write only its report ConfigMaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// What the operator deletes when a test finishes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CleanupPolicy {
    /// Delete runner Jobs and report ConfigMaps; keep the result ConfigMap (default).
    #[default]
    Runners,
    /// Keep everything (for debugging a failed run).
    None,
    /// Keep everything when the test did not pass; clean up like `runners` when it passed.
    OnSuccess,
}
