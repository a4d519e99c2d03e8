//! Threshold evaluation with k6's semantics (`metrics/thresholds.go`, engine.go): aggregations
//! per metric type, sub-metrics, skipping empty metrics while running, empty metrics at the end
//! (an empty rate has no value and passes; empty trends and counters are 0), and abortOnFail
//! with delayAbortEval. It runs on merged snapshots, so the operator evaluates the whole fleet.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stampede_crds::model::threshold::MetricThresholds;
use stampede_crds::threshold::{Aggregation, ThresholdExpr};

use crate::metrics::{Metric, Registry, Snapshot, Value};

/// One threshold, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Threshold {
    /// The key as written (`http_req_duration{name:login}`).
    pub metric: String,
    /// The canonical series key in snapshots.
    pub series: String,
    /// The expression as written.
    pub source: String,
    /// The parsed expression.
    pub expr: ThresholdExpr,
    /// Stop the test when it fails.
    pub abort_on_fail: bool,
    /// Do not abort before this much of the test has run.
    pub delay_abort_eval: Duration,
}

/// The outcome of one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdResult {
    /// Metric key as written.
    pub metric: String,
    /// The canonical series key it was evaluated on (`http_req_duration{name:login}`); empty
    /// in results written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub series: String,
    /// Expression as written.
    pub threshold: String,
    /// Observed value of the aggregation (None when the metric had no value, e.g. an empty rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Whether it held.
    pub ok: bool,
    /// Whether it was evaluated (false while running on a metric with no samples yet).
    #[serde(default)]
    pub evaluated: bool,
    /// Whether it aborts the test on failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
}

impl ThresholdResult {
    /// The aggregation name and observed value, as k6 prints them (`p(95)=12.3ms`).
    pub fn observed(&self) -> String {
        let aggregation = self
            .threshold
            .split(['<', '>', '=', '!'])
            .next()
            .unwrap_or("")
            .trim();
        match self.value {
            Some(value) if crate::summary::is_time_key(&self.metric) => {
                format!("{aggregation}={}", crate::summary::format_ms(value))
            }
            Some(value) if aggregation == "rate" && !self.metric.starts_with("http_reqs") => {
                format!("{aggregation}={:.2}%", value * 100.0)
            }
            Some(value) => format!("{aggregation}={}", crate::summary::format_number(value)),
            None => format!("{aggregation}=n/a (no samples)"),
        }
    }
}

/// Every threshold of a test.
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    /// The thresholds, in key order.
    pub list: Vec<Threshold>,
}

/// A threshold key whose metric the engine does not record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.thresholds[{key:?}]: {metric:?} is not a metric Stampede records")]
pub struct UnknownMetric {
    /// The key as written.
    pub key: String,
    /// Its metric name.
    pub metric: String,
}

impl Thresholds {
    /// The thresholds of a compiled test, registering their series in `registry`. Every rule
    /// is kept; a key naming a metric the engine does not record is an error.
    pub fn new(
        thresholds: &[MetricThresholds],
        registry: &mut Registry,
    ) -> Result<Thresholds, UnknownMetric> {
        let mut list = Vec::new();
        for metric_thresholds in thresholds {
            let key = &metric_thresholds.key;
            let metric = Metric::from_name(&key.metric).ok_or_else(|| UnknownMetric {
                key: metric_thresholds.source.clone(),
                metric: key.metric.clone(),
            })?;
            let id = registry.add(metric, key.tags.clone());
            let series = registry.series()[id].key.clone();
            for rule in &metric_thresholds.rules {
                list.push(Threshold {
                    metric: metric_thresholds.source.clone(),
                    series: series.clone(),
                    source: rule.source.clone(),
                    expr: rule.expr,
                    abort_on_fail: rule.abort_on_fail,
                    delay_abort_eval: rule.delay_abort_eval,
                });
            }
        }
        Ok(Thresholds { list })
    }

    /// Evaluates every threshold on `snapshot`. `run_seconds` is the test-run time so far (for
    /// counter rates); `at_end` selects k6's end-of-test rules for empty metrics.
    pub fn evaluate(
        &self,
        snapshot: &Snapshot,
        run_seconds: f64,
        at_end: bool,
    ) -> Vec<ThresholdResult> {
        self.list
            .iter()
            .map(|threshold| {
                let value = snapshot.get(&threshold.series);
                let has_samples = value.is_some_and(Value::has_samples);
                let mut result = ThresholdResult {
                    metric: threshold.metric.clone(),
                    series: threshold.series.clone(),
                    threshold: threshold.source.clone(),
                    value: None,
                    ok: true,
                    evaluated: false,
                    abort_on_fail: threshold.abort_on_fail,
                };
                if !has_samples && !at_end {
                    return result;
                }
                result.evaluated = true;
                result.value =
                    value.and_then(|v| aggregate(v, threshold.expr.aggregation, run_seconds));
                // k6: a key missing from the data at the end counts as a pass (k6#4283).
                result.ok = match result.value {
                    Some(observed) => threshold
                        .expr
                        .operator
                        .holds(observed, threshold.expr.limit),
                    None => true,
                };
                result
            })
            .collect()
    }

    /// The first failed threshold that should abort the test at `elapsed`.
    pub fn abort_reason<'a>(
        &self,
        results: &'a [ThresholdResult],
        elapsed: Duration,
    ) -> Option<&'a ThresholdResult> {
        self.list
            .iter()
            .zip(results)
            .find_map(|(threshold, result)| {
                (threshold.abort_on_fail
                    && result.evaluated
                    && !result.ok
                    && elapsed >= threshold.delay_abort_eval)
                    .then_some(result)
            })
    }
}

/// Computes an aggregation of a value; None where k6's data has no such key (an empty rate).
pub fn aggregate(value: &Value, aggregation: Aggregation, run_seconds: f64) -> Option<f64> {
    match (value, aggregation) {
        (Value::Counter(sum), Aggregation::Count) => Some(*sum),
        (Value::Counter(sum), Aggregation::Rate) => Some(if run_seconds > 0.0 {
            sum / run_seconds
        } else {
            0.0
        }),
        (Value::Gauge { value, .. }, Aggregation::Value) => Some(*value),
        (rate @ Value::Rate { .. }, Aggregation::Rate) => rate.rate(),
        (Value::Trend(trend), Aggregation::Avg) => Some(trend.avg()),
        (Value::Trend(trend), Aggregation::Min) => Some(trend.min_or_zero()),
        (Value::Trend(trend), Aggregation::Max) => Some(trend.max_or_zero()),
        (Value::Trend(trend), Aggregation::Med) => Some(trend.percentile(50.0)),
        (Value::Trend(trend), Aggregation::Percentile(p)) => Some(trend.percentile(p)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metric, SampleTags, Shards};
    use stampede_crds::model::threshold as model;
    use stampede_crds::spec::LoadTestSpec;
    use std::sync::Arc;

    fn thresholds_of(yaml: &str) -> Vec<MetricThresholds> {
        let spec: LoadTestSpec = serde_yaml_ng::from_str(yaml).unwrap();
        model::compile(&spec).unwrap()
    }

    #[test]
    fn evaluates_k6_aggregations_and_empty_metrics() {
        let compiled = thresholds_of(
            r#"
thresholds:
  http_req_duration: ["p(95)<500", "avg<100"]
  "http_req_duration{name:login}": [{threshold: "max<50", abortOnFail: true, delayAbortEval: 10s}]
  http_req_failed: ["rate<0.5"]
  checks: ["rate>0.9"]
  http_reqs: ["count>=3", "rate>100"]
"#,
        );
        let mut registry = Registry::new();
        let thresholds = Thresholds::new(&compiled, &mut registry).unwrap();
        assert_eq!(thresholds.list.len(), 7);
        let shards = Shards::new(Arc::new(registry));
        let recorder = shards.recorder();
        for (name, ms, failed) in [
            ("login", 40.0, false),
            ("login", 60.0, true),
            ("buy", 400.0, false),
        ] {
            let tags = SampleTags {
                name: Some(name),
                ..SampleTags::default()
            };
            recorder.http(
                &tags,
                &crate::metrics::recorder::HttpFigures {
                    failed,
                    duration: ms,
                    ..Default::default()
                },
            );
        }
        crate::metrics::recorder::flush_current_thread();
        let snapshot = shards.snapshot();
        // While running, checks has no samples and is skipped.
        let running = thresholds.evaluate(&snapshot, 1.0, false);
        let by = |results: &[ThresholdResult], metric: &str, expr: &str| {
            results
                .iter()
                .find(|r| r.metric == metric && r.threshold == expr)
                .cloned()
                .unwrap()
        };
        assert!(!by(&running, "checks", "rate>0.9").evaluated);
        let p95 = by(&running, "http_req_duration", "p(95)<500");
        assert!(p95.ok && p95.value.unwrap() > 390.0);
        assert!(!by(&running, "http_req_duration", "avg<100").ok);
        let login = by(&running, "http_req_duration{name:login}", "max<50");
        assert!(!login.ok);
        assert!((login.value.unwrap() - 60.0).abs() < 0.1);
        assert!(
            (by(&running, "http_req_failed", "rate<0.5").value.unwrap() - 1.0 / 3.0).abs() < 1e-9
        );
        assert!(!by(&running, "http_reqs", "rate>100").ok);
        assert!(by(&running, "http_reqs", "count>=3").ok);
        // abortOnFail waits for delayAbortEval.
        assert!(
            thresholds
                .abort_reason(&running, Duration::from_secs(5))
                .is_none()
        );
        assert_eq!(
            thresholds
                .abort_reason(&running, Duration::from_secs(10))
                .map(|r| r.threshold.as_str()),
            Some("max<50")
        );
        // At the end an empty rate has no value and passes (k6#4283).
        let end = thresholds.evaluate(&snapshot, 1.0, true);
        let checks = by(&end, "checks", "rate>0.9");
        assert!(checks.evaluated && checks.ok && checks.value.is_none());
        assert_eq!(shards.snapshot().count(Metric::HttpReqs.name()), 3.0);
    }

    #[test]
    fn every_rule_is_kept_and_an_unknown_metric_is_an_error() {
        let compiled = thresholds_of("thresholds: {checks: ['rate>0.9', 'rate<1']}");
        let thresholds = Thresholds::new(&compiled, &mut Registry::new()).unwrap();
        let sources: Vec<&str> = thresholds.list.iter().map(|t| t.source.as_str()).collect();
        assert_eq!(sources, ["rate>0.9", "rate<1"]);
        let mut unknown = compiled.clone();
        unknown[0].key.metric = "checkz".to_string();
        let error = Thresholds::new(&unknown, &mut Registry::new()).unwrap_err();
        assert_eq!(error.metric, "checkz");
    }
}
