//! Pure builders of the LoadTest status from a merged summary: live progress, the final
//! summary, per-step rows, threshold results, conditions and the verdict message.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use stampede_crds::status::{
    CheckCounts, Progress, StepStatus, SummaryStatus, ThresholdStatus, TrendStats,
};
use stampede_runner::metrics::snapshot::Trend;
use stampede_runner::metrics::{Metric, Snapshot, Value};
use stampede_runner::summary::{Summary, format_ms};
use stampede_runner::thresholds::ThresholdResult;

/// Condition reasons the operator writes.
pub mod reason {
    /// The run finished normally.
    pub const FINISHED: &str = "Finished";
    /// Every threshold held.
    pub const THRESHOLDS_PASSED: &str = "ThresholdsPassed";
    /// A threshold failed.
    pub const THRESHOLDS_FAILED: &str = "ThresholdsFailed";
    /// The spec is invalid.
    pub const INVALID: &str = "Invalid";
    /// A runner failed or never started.
    pub const ERRORED: &str = "Errored";
    /// The run was stopped early.
    pub const ABORTED: &str = "Aborted";
    /// The run is being set up.
    pub const PROVISIONING: &str = "Provisioning";
    /// The run is going.
    pub const RUNNING: &str = "Running";
}

/// The fraction of failed requests (0 before any request).
fn failed_rate(metrics: &Snapshot) -> f64 {
    metrics
        .metric(Metric::HttpReqFailed)
        .and_then(Value::rate)
        .unwrap_or(0.0)
}

fn rate(value: Option<&Value>) -> (u64, u64) {
    match value {
        Some(Value::Rate { passes, total }) => (*passes, *total),
        _ => (0, 0),
    }
}

fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

fn trend_stats(trend: Option<&Trend>) -> TrendStats {
    let Some(trend) = trend else {
        return TrendStats::default();
    };
    TrendStats {
        avg: round(trend.avg(), 3),
        min: round(trend.min_or_zero(), 3),
        med: round(trend.percentile(50.0), 3),
        p90: round(trend.percentile(90.0), 3),
        p95: round(trend.percentile(95.0), 3),
        p99: round(trend.percentile(99.0), 3),
        max: round(trend.max_or_zero(), 3),
    }
}

/// The headline figures of a (final) merged summary.
pub fn summary_status(summary: &Summary) -> SummaryStatus {
    let metrics = &summary.metrics;
    let seconds = summary.seconds();
    let requests = metrics.count(Metric::HttpReqs.name());
    let checks = rate(metrics.metric(Metric::Checks));
    let vus_max = match metrics.metric(Metric::VusMax) {
        Some(Value::Gauge { max, .. }) if max.is_finite() => *max as i64,
        _ => 0,
    };
    SummaryStatus {
        vus_max,
        http_reqs: requests as i64,
        rps: if seconds > 0.0 {
            round(requests / seconds, 2)
        } else {
            0.0
        },
        failed_rate: round(failed_rate(metrics), 6),
        iterations: metrics.count(Metric::Iterations.name()) as i64,
        dropped_iterations: metrics.count(Metric::DroppedIterations.name()) as i64,
        checks: CheckCounts {
            passes: checks.0 as i64,
            fails: (checks.1 - checks.0) as i64,
        },
        duration_ms: trend_stats(metrics.trend(Metric::HttpReqDuration.name())),
        data_sent: metrics.count(Metric::DataSent.name()) as i64,
        data_received: metrics.count(Metric::DataReceived.name()) as i64,
    }
}

/// One row per step that sent requests, in flow order.
pub fn step_statuses(summary: &Summary) -> Vec<StepStatus> {
    summary
        .step_rows()
        .into_iter()
        .map(|row| StepStatus {
            name: row.name.to_string(),
            reqs: row.requests as i64,
            failed_rate: round(row.failed_rate, 6),
            p50_ms: round(row.duration.map_or(0.0, |t| t.percentile(50.0)), 3),
            p95_ms: round(row.duration.map_or(0.0, |t| t.percentile(95.0)), 3),
            p99_ms: round(row.duration.map_or(0.0, |t| t.percentile(99.0)), 3),
        })
        .collect()
}

/// The threshold results as the status shows them.
pub fn threshold_statuses(results: &[ThresholdResult]) -> Vec<ThresholdStatus> {
    results
        .iter()
        .map(|r| ThresholdStatus {
            metric: r.metric.clone(),
            threshold: r.threshold.clone(),
            value: r.value.map(|v| round(v, 4)),
            ok: r.ok,
        })
        .collect()
}

/// Requests per second of the last point of a (merged) series, whatever seconds it covers.
pub fn recent_rps(series: &[stampede_runner::summary::SecondPoint]) -> f64 {
    match series {
        [] => 0.0,
        [only] => only.requests as f64 / only.t.max(1.0),
        [.., before, last] => {
            let span = (last.t - before.t).max(1.0);
            last.requests as f64 / span
        }
    }
}

/// Requests per second over the whole run: the requests over the run's duration (what the RPS
/// column shows once the run is over).
pub fn average_rps(summary: &Summary) -> f64 {
    let seconds = summary.seconds();
    if seconds > 0.0 {
        summary.metrics.count(Metric::HttpReqs.name()) / seconds
    } else {
        0.0
    }
}

/// Live progress from the merged reports: `vus` is the fleet's active VUs now, `rps` the recent
/// request rate, `total` the planned length.
pub fn progress(summary: &Summary, vus: i64, rps: f64, total_seconds: f64) -> Progress {
    let metrics = &summary.metrics;
    let failed_rate = failed_rate(metrics);
    let p95 = metrics
        .trend(Metric::HttpReqDuration.name())
        .map_or(0.0, |t| t.percentile(95.0));
    Progress {
        elapsed_seconds: round(summary.seconds(), 1),
        total_seconds: round(total_seconds, 1),
        vus,
        rps: round(rps, 1),
        http_reqs: metrics.count(Metric::HttpReqs.name()) as i64,
        iterations: metrics.count(Metric::Iterations.name()) as i64,
        dropped_iterations: metrics.count(Metric::DroppedIterations.name()) as i64,
        p95_ms: round(p95, 3),
        failed_rate: round(failed_rate, 6),
        p95: format_ms(p95),
        failed: format!("{:.2}%", failed_rate * 100.0),
    }
}

/// What failed, with observed values, e.g.
/// `http_req_duration p(95)=512.3ms, want <500`.
pub fn failed_thresholds_message(results: &[ThresholdResult]) -> Option<String> {
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| {
            let aggregation_end = r
                .threshold
                .find(['<', '>', '=', '!'])
                .unwrap_or(r.threshold.len());
            let want = r.threshold[aggregation_end..].replace(' ', "");
            format!("{} {}, want {want}", r.metric, r.observed())
        })
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

/// A condition's status (Kubernetes API conventions): `Unknown` while there is no answer yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`: not decided yet.
    Unknown,
}

impl ConditionStatus {
    /// The status as written.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// Sets a condition to `True` or `False`; see [`set_condition_to`].
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    set_condition_to(
        conditions,
        kind,
        status.into(),
        reason,
        message,
        generation,
        now,
    );
}

/// Sets a condition, keeping its transition time when its status did not change (as the
/// Kubernetes API conventions ask).
pub fn set_condition_to(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) {
    let status_text = status.as_str();
    let condition = Condition {
        type_: kind.to_string(),
        status: status_text.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: now.clone(),
    };
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(existing) => {
            let transition = if existing.status == status_text {
                existing.last_transition_time.clone()
            } else {
                now.clone()
            };
            *existing = Condition {
                last_transition_time: transition,
                ..condition
            };
        }
        None => conditions.push(condition),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_runner::metrics::{Registry, Snapshot};
    use stampede_runner::summary::SecondPoint;

    fn summary() -> Summary {
        let registry = Registry::new();
        let mut metrics = Snapshot::empty(&registry);
        let mut trend = Trend::default();
        for ms in 1..=100 {
            trend.record(f64::from(ms));
        }
        metrics
            .values
            .insert("http_req_duration".into(), Value::Trend(Box::new(trend)));
        metrics
            .values
            .insert("http_reqs".into(), Value::Counter(100.0));
        metrics.values.insert(
            "http_req_failed".into(),
            Value::Rate {
                passes: 2,
                total: 100,
            },
        );
        metrics.values.insert(
            "checks".into(),
            Value::Rate {
                passes: 99,
                total: 100,
            },
        );
        Summary {
            name: "t".into(),
            test_run_duration_ms: 10_000.0,
            metrics,
            thresholds: Vec::new(),
            groups: Vec::new(),
            errors: Vec::new(),
            series: vec![SecondPoint {
                requests: 12,
                ..SecondPoint::default()
            }],
            trend_stats: Vec::new(),
            steps: Vec::new(),
            checks: Vec::new(),
            aborted: None,
            fleet: None,
        }
    }

    #[test]
    fn the_summary_status_carries_the_headline_figures() {
        let status = summary_status(&summary());
        assert_eq!(status.http_reqs, 100);
        assert_eq!(status.rps, 10.0);
        assert_eq!(status.failed_rate, 0.02);
        assert_eq!(status.checks.passes, 99);
        assert_eq!(status.checks.fails, 1);
        assert_eq!(status.duration_ms.max, 100.0);
        assert!((status.duration_ms.p95 - 95.0).abs() < 0.1);
    }

    #[test]
    fn progress_shows_printable_columns() {
        let p = progress(&summary(), 7, recent_rps(&summary().series), 30.0);
        assert_eq!(p.vus, 7);
        assert_eq!(p.rps, 12.0);
        assert_eq!(p.failed, "2.00%");
        assert!(
            p.p95.starts_with("95") && p.p95.ends_with("ms"),
            "{}",
            p.p95
        );
    }

    #[test]
    fn the_message_names_failed_thresholds_with_observed_values() {
        let results = vec![
            ThresholdResult {
                metric: "http_req_duration".into(),
                series: "http_req_duration".into(),
                threshold: "p(95) < 500".into(),
                value: Some(512.3),
                ok: false,
                evaluated: true,
                abort_on_fail: false,
                no_data: false,
            },
            ThresholdResult {
                metric: "checks".into(),
                series: "checks".into(),
                threshold: "rate>0.99".into(),
                value: Some(1.0),
                ok: true,
                evaluated: true,
                abort_on_fail: false,
                no_data: false,
            },
            ThresholdResult {
                metric: "http_req_failed".into(),
                series: "http_req_failed".into(),
                threshold: "rate<0.01".into(),
                value: None,
                ok: false,
                evaluated: true,
                abort_on_fail: false,
                no_data: true,
            },
        ];
        assert_eq!(
            failed_thresholds_message(&results).as_deref(),
            Some(
                "http_req_duration p(95)=512.3ms, want <500; \
                 http_req_failed rate=no data (no samples at all), want <0.01"
            )
        );
        assert_eq!(failed_thresholds_message(&results[1..2]), None);
    }

    #[test]
    fn conditions_keep_their_transition_time_while_unchanged() {
        let t1 = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        let t2 = Time(k8s_openapi::jiff::Timestamp::from_second(2).unwrap());
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            "Complete",
            false,
            "Running",
            "",
            Some(1),
            &t1,
        );
        set_condition(
            &mut conditions,
            "Complete",
            false,
            "Running",
            "x",
            Some(1),
            &t2,
        );
        assert_eq!(conditions[0].last_transition_time, t1);
        set_condition(
            &mut conditions,
            "Complete",
            true,
            "Finished",
            "",
            Some(1),
            &t2,
        );
        assert_eq!(conditions[0].last_transition_time, t2);
        assert_eq!(conditions.len(), 1);
    }
}
