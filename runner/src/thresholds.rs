//! Threshold evaluation with k6's semantics (`metrics/thresholds.go`, engine.go): aggregations
//! per metric type, sub-metrics, skipping empty metrics while running, and abortOnFail with
//! delayAbortEval. It runs on merged snapshots, so the operator evaluates the whole fleet.
//!
//! One departure from k6 (grafana/k6#4283): at the end, a trend, rate or gauge with no samples
//! is "no data" and fails unless the rule says `passWithoutData`. k6 passes it (an empty rate) or
//! reads it as 0 (an empty trend), so a target that never answers passes `p(95)<500` and
//! `rate<0.01`; a deploy gate must not. An empty counter still counts 0 (`count<10` holds).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stampede_crds::metrics::MetricType;
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
    /// The metric is a counter: no samples is a count of 0, not "no data".
    pub counter: bool,
    /// Pass when the metric got no samples.
    pub pass_without_data: bool,
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
    /// The run ended and the metric had no samples (it failed unless the rule passes without
    /// data).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_data: bool,
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
            None if self.no_data => format!("{aggregation}=no data (no samples at all)"),
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
                    counter: metric_thresholds.metric_type == MetricType::Counter,
                    pass_without_data: rule.pass_without_data,
                });
            }
        }
        Ok(Thresholds { list })
    }

    /// Evaluates every threshold on `snapshot`. `run_seconds` is the test-run time so far (for
    /// counter rates); `at_end` evaluates empty metrics too: a counter as 0, anything else as
    /// "no data".
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
                    no_data: false,
                };
                if !has_samples && !at_end {
                    return result;
                }
                result.evaluated = true;
                result.value = if has_samples {
                    value.and_then(|v| aggregate(v, threshold.expr.aggregation, run_seconds))
                } else if threshold.counter {
                    aggregate(
                        &Value::Counter(0.0),
                        threshold.expr.aggregation,
                        run_seconds,
                    )
                } else {
                    None
                };
                result.ok = match result.value {
                    Some(observed) => threshold
                        .expr
                        .operator
                        .holds(observed, threshold.expr.limit),
                    None => {
                        result.no_data = true;
                        threshold.pass_without_data
                    }
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
        // At the end an empty rate is "no data" and fails (k6 passes it: k6#4283).
        let end = thresholds.evaluate(&snapshot, 1.0, true);
        let checks = by(&end, "checks", "rate>0.9");
        assert!(checks.evaluated && !checks.ok && checks.no_data && checks.value.is_none());
        assert_eq!(checks.observed(), "rate=no data (no samples at all)");
        assert_eq!(shards.snapshot().count(Metric::HttpReqs.name()), 3.0);
    }

    #[test]
    fn a_run_without_samples_fails_its_trends_and_rates_but_counts_zero() {
        // What a target that accepts connections and never answers leaves: no sample at all.
        let compiled = thresholds_of(
            r#"
thresholds:
  http_req_duration: ["p(95)<500", {threshold: "p(99)<900", passWithoutData: true}]
  http_req_failed: ["rate<0.01"]
  checks: ["rate>0.99"]
  http_reqs: ["count<10", "count>0"]
"#,
        );
        let mut registry = Registry::new();
        let thresholds = Thresholds::new(&compiled, &mut registry).unwrap();
        let shards = Shards::new(Arc::new(registry));
        let end = thresholds.evaluate(&shards.snapshot(), 60.0, true);
        let verdicts: Vec<(&str, bool, bool)> = end
            .iter()
            .map(|r| (r.threshold.as_str(), r.ok, r.no_data))
            .collect();
        assert_eq!(
            verdicts,
            // In key order.
            [
                ("rate>0.99", false, true),
                ("p(95)<500", false, true),
                ("p(99)<900", true, true),
                ("rate<0.01", false, true),
                ("count<10", true, false),
                ("count>0", false, false),
            ]
        );
        assert_eq!(end[1].observed(), "p(95)=no data (no samples at all)");
        assert_eq!(end[4].value, Some(0.0));
        // While running, nothing is judged on no samples.
        let running = thresholds.evaluate(&shards.snapshot(), 5.0, false);
        assert!(
            running[..4]
                .iter()
                .all(|r| r.ok && !r.evaluated && !r.no_data)
        );
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
