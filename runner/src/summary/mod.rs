//! The end-of-test summary: the data (mergeable across runners), the k6-layout text printer
//! with Stampede's per-step table, and the JSON export.

mod format;
mod json;
mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::Snapshot;
use crate::metrics::errors::ErrorRow;
use crate::metrics::registry::canonical_key;
use crate::metrics::sketch::LatencySketch;
use crate::metrics::snapshot::Trend;
use crate::thresholds::ThresholdResult;
use stampede_crds::model::summary::TrendColumn;

pub use format::{format_bytes, format_ms, format_number, is_time_key};
pub use json::{SUMMARY_SCHEMA, export_json};
pub use text::write_text;

/// k6's default `summaryTrendStats`.
pub use stampede_crds::model::summary::DEFAULT_TREND_STATS;

/// One second of the time series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondPoint {
    /// Seconds since the start (end of the interval).
    pub t: f64,
    /// Active VUs at the end of the interval.
    pub vus: u64,
    /// Requests awaiting their response at the end of the interval.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub in_flight: u64,
    /// Requests in the interval.
    pub requests: u64,
    /// Failed requests in the interval.
    pub failed: u64,
    /// Iterations completed in the interval.
    pub iterations: u64,
    /// Iterations dropped in the interval.
    pub dropped: u64,
    /// Median request duration in the interval, ms.
    pub p50_ms: f64,
    /// p90 of the interval, ms.
    #[serde(default)]
    pub p90_ms: f64,
    /// p95 of the interval, ms.
    pub p95_ms: f64,
    /// p99 of the interval, ms.
    pub p99_ms: f64,
    /// Responses with a 4xx status in the interval.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub client_errors: u64,
    /// Responses with a 5xx status.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub server_errors: u64,
    /// Requests with no response (refused, reset, timed out, …).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub no_response: u64,
    /// Those by k6 `error_code` (1212 connection refused, 1050 timeout, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub no_response_by_code: BTreeMap<u32, u64>,
    /// Looping VUs the executors plan at the end of the interval, test-wide.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub planned_vus: u64,
    /// Iterations per second the arrival-rate executors plan then, test-wide.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub planned_rate: f64,
    /// The interval's request durations, so points merge exactly (across runners, and across
    /// seconds when a series is downsampled); only runner reports carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySketch>,
}

impl SecondPoint {
    /// The point without its latency sketch (what summaries and results keep).
    pub fn without_latency(&self) -> SecondPoint {
        SecondPoint {
            latency: None,
            ..self.clone()
        }
    }
}

fn is_zero_u64(value: &u64) -> bool {
    *value == 0
}

fn is_zero_f64(value: &f64) -> bool {
    *value == 0.0
}

/// Everything the summary shows, for one runner or merged from many.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Name of the LoadTest.
    pub name: String,
    /// Test-run time in ms (what k6 divides counters by for rates).
    pub test_run_duration_ms: f64,
    /// Every series' merged value.
    pub metrics: Snapshot,
    /// Threshold results of the final evaluation.
    pub thresholds: Vec<ThresholdResult>,
    /// The per-second time series.
    #[serde(default)]
    pub series: Vec<SecondPoint>,
    /// The errors by kind, most frequent first, each with a sample message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorRow>,
    /// Trend statistics to print (`summaryTrendStats`).
    pub trend_stats: Vec<TrendColumn>,
    /// Step names in flow order, for the per-step table.
    #[serde(default)]
    pub steps: Vec<String>,
    /// Check names in flow order.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Group tags (`::a::b`) in flow order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Why the test stopped early, if it did (abortOnFail, signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// Which run of which LoadTest, and its runners (a cluster run; none for a local one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<Fleet>,
}

/// A cluster run's identity and its runners.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    /// The LoadTest's namespace.
    #[serde(default)]
    pub namespace: String,
    /// The run (`status.run`).
    #[serde(default)]
    pub run: i64,
    /// The spec generation the run ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Each runner's part, by index.
    #[serde(default)]
    pub runners: Vec<RunnerShare>,
}

/// One runner's part of a cluster run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerShare {
    /// Its index.
    pub runner: u64,
    /// HTTP requests it sent.
    pub requests: f64,
    /// Iterations it dropped.
    pub dropped: f64,
    /// When its scenarios started (RFC 3339, ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

/// One row of the per-step table.
#[derive(Debug, Clone)]
pub struct StepRow<'a> {
    /// The step's `name` tag.
    pub name: &'a str,
    /// Requests it sent.
    pub requests: f64,
    /// Its `http_req_failed` rate.
    pub failed_rate: f64,
    /// Its `http_req_duration`.
    pub duration: Option<&'a Trend>,
}

impl Summary {
    /// The per-step rows, in flow order, for steps that sent requests.
    pub fn step_rows(&self) -> Vec<StepRow<'_>> {
        self.steps
            .iter()
            .filter_map(|name| {
                let filter = [("name".to_string(), name.clone())];
                let requests = self.metrics.count(&canonical_key("http_reqs", &filter));
                if requests == 0.0 {
                    return None;
                }
                let failed_rate = self
                    .metrics
                    .rate(&canonical_key("http_req_failed", &filter))
                    .unwrap_or(0.0);
                let duration = self
                    .metrics
                    .trend(&canonical_key("http_req_duration", &filter));
                Some(StepRow {
                    name,
                    requests,
                    failed_rate,
                    duration,
                })
            })
            .collect()
    }

    /// True when every threshold held.
    pub fn passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.ok)
    }

    /// Test-run time in seconds.
    pub fn seconds(&self) -> f64 {
        self.test_run_duration_ms / 1000.0
    }
}
