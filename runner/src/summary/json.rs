//! The JSON summary (`--summary-export`): a documented shape (see `runner/summary.schema.json`)
//! with every metric's values, checks, steps, thresholds, the time series and the verdict.

use serde_json::{Map, Value as Json, json};
use stampede_crds::model::summary::{TrendColumn, TrendStat};

use super::format::is_time_key;
use super::{SecondPoint, Summary};
use crate::metrics::Value;
use crate::metrics::registry::canonical_key;

/// The JSON Schema of the exported summary, checked in at `runner/summary.schema.json`.
pub const SUMMARY_SCHEMA: &str = include_str!("../../summary.schema.json");

fn trend_values(
    trend: &crate::metrics::snapshot::Trend,
    columns: &[TrendColumn],
) -> Map<String, Json> {
    // Like k6's export, count and p(99) are always there besides the summary's columns.
    let always = [
        ("count", TrendStat::Count),
        ("p(99)", TrendStat::Percentile(99.0)),
    ];
    let mut values = Map::new();
    let columns = columns.iter().map(|c| (c.label.as_str(), c.stat));
    for (label, stat) in columns.chain(always) {
        let value = match stat {
            TrendStat::Avg => trend.avg(),
            TrendStat::Min => trend.min_or_zero(),
            TrendStat::Med => trend.percentile(50.0),
            TrendStat::Max => trend.max_or_zero(),
            TrendStat::Count => trend.count() as f64,
            TrendStat::Percentile(p) => trend.percentile(p),
        };
        values.insert(label.to_string(), json!(value));
    }
    values
}

/// The summary as JSON.
pub fn export_json(summary: &Summary) -> Json {
    let seconds = summary.seconds().max(1e-9);
    let mut metrics = Map::new();
    for (key, value) in &summary.metrics.values {
        if !value.has_samples() && key.contains('{') {
            continue;
        }
        let metric_name = key.split('{').next().unwrap_or(key);
        let kind = stampede_crds::metrics::metric_type(metric_name)
            .map(super::text::type_name)
            .unwrap_or("counter");
        let contains = if is_time_key(key) {
            "time"
        } else if metric_name.starts_with("data_") {
            "data"
        } else {
            "default"
        };
        let values = match value {
            Value::Counter(count) => json!({"count": count, "rate": count / seconds}),
            Value::Gauge { value, min, max } => {
                let (min, max) = if max.is_finite() {
                    (*min, *max)
                } else {
                    (0.0, 0.0)
                };
                json!({"value": value, "min": min, "max": max})
            }
            Value::Rate { passes, total } => {
                let rate = value.rate();
                json!({"rate": rate, "passes": passes, "fails": total - passes})
            }
            Value::Trend(trend) => Json::Object(trend_values(trend, &summary.trend_stats)),
        };
        metrics.insert(
            key.clone(),
            json!({"type": kind, "contains": contains, "values": values}),
        );
    }
    let checks: Vec<Json> = summary
        .checks
        .iter()
        .filter_map(|name| {
            match summary
                .metrics
                .get(&canonical_key("checks", &[("check".into(), name.clone())]))
            {
                Some(Value::Rate { passes, total }) => {
                    Some(json!({"name": name, "passes": passes, "fails": total - passes}))
                }
                _ => None,
            }
        })
        .collect();
    let steps: Vec<Json> = summary
        .step_rows()
        .iter()
        .map(|row| {
            let p = |q: f64| row.duration.map_or(0.0, |t| t.percentile(q));
            json!({
                "name": row.name, "reqs": row.requests, "rps": row.requests / seconds,
                "failedRate": row.failed_rate, "p50Ms": p(50.0), "p95Ms": p(95.0), "p99Ms": p(99.0)
            })
        })
        .collect();
    json!({
        "version": 1,
        "name": summary.name,
        "generatedBy": format!("stampede {}", env!("CARGO_PKG_VERSION")),
        "testRunDurationMs": summary.test_run_duration_ms,
        "passed": summary.passed(),
        "aborted": summary.aborted,
        "thresholds": summary.thresholds.iter().map(|t| json!({
            "metric": t.metric, "threshold": t.threshold, "value": t.value, "ok": t.ok,
            "noData": t.no_data
        })).collect::<Vec<_>>(),
        "metrics": metrics,
        "checks": checks,
        "steps": steps,
        "series": summary.series.iter().map(SecondPoint::without_latency).collect::<Vec<_>>(),
    })
}
