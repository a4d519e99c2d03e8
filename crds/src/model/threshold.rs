//! The thresholds of a test as parsed values: per metric key its `MetricKey` (metric and tag
//! filter) and its rules with their expression, abortOnFail and `delayAbortEval` as a
//! `Duration` — what the runners and the operator evaluate, so nobody parses them again.

use std::time::Duration;

use crate::duration;
use crate::metrics::{self, MetricType};
use crate::path::FieldPath;
use crate::spec::LoadTestSpec;
use crate::threshold::{MetricKey, ThresholdExpr, parse_expression, parse_metric_key};
use crate::validate::Problem;

/// The thresholds of one key of `spec.thresholds`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricThresholds {
    /// The key as written (`http_req_duration{name:login}`), as results and summaries show it.
    pub source: String,
    /// The parsed key: a built-in metric and its tag filter.
    pub key: MetricKey,
    /// The type of the metric.
    pub metric_type: MetricType,
    /// Its rules, in manifest order.
    pub rules: Vec<Rule>,
}

/// One threshold rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The expression as written (`p(95)<500`).
    pub source: String,
    /// The parsed expression.
    pub expr: ThresholdExpr,
    /// Stop the test when the rule fails.
    pub abort_on_fail: bool,
    /// Do not abort before this much of the test has run (zero when not written).
    pub delay_abort_eval: Duration,
    /// Pass when the metric got no samples (`passWithoutData`); otherwise "no data" fails.
    pub pass_without_data: bool,
}

/// Parses every threshold of a validated spec, in key order.
pub fn compile(spec: &LoadTestSpec) -> Result<Vec<MetricThresholds>, Vec<Problem>> {
    let thresholds_path = FieldPath::root().key("spec").key("thresholds");
    let mut compiled = Vec::new();
    let mut problems = Vec::new();
    for (source, rules) in &spec.thresholds {
        let key_path = thresholds_path.key(source.as_str());
        let key = match parse_metric_key(source) {
            Ok(key) => Some(key),
            Err(error) => {
                problems.push(Problem::new(key_path.clone(), error.to_string()));
                None
            }
        };
        let metric_type = key.as_ref().and_then(|key| {
            let found = metrics::metric_type(&key.metric);
            if found.is_none() {
                problems.push(Problem::new(
                    key_path.clone(),
                    format!("{:?} is not a k6 metric", key.metric),
                ));
            }
            found
        });
        let mut parsed_rules = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            let path = key_path.index(index);
            let expr = parse_expression(rule.expression())
                .map_err(|error| problems.push(Problem::new(path.clone(), error.to_string())));
            let delay = match rule.delay_abort_eval() {
                None => Ok(Duration::ZERO),
                Some(text) => duration::parse(text).map_err(|error| {
                    problems.push(Problem::new(path.key("delayAbortEval"), error.to_string()))
                }),
            };
            if let (Ok(expr), Ok(delay_abort_eval)) = (expr, delay) {
                parsed_rules.push(Rule {
                    source: rule.expression().to_string(),
                    expr,
                    abort_on_fail: rule.abort_on_fail(),
                    delay_abort_eval,
                    pass_without_data: rule.pass_without_data(),
                });
            }
        }
        if let (Some(key), Some(metric_type)) = (key, metric_type) {
            compiled.push(MetricThresholds {
                source: source.clone(),
                key,
                metric_type,
                rules: parsed_rules,
            });
        }
    }
    if problems.is_empty() {
        Ok(compiled)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::{Aggregation, Operator};

    fn spec(yaml: &str) -> LoadTestSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn keys_and_rules_are_parsed_once() {
        let thresholds = compile(&spec(
            r#"
thresholds:
  "http_req_duration{name:login}": ["p(95)<500", {threshold: "max<900", abortOnFail: true, delayAbortEval: 1m}]
  checks: ["rate>0.99"]
"#,
        ))
        .unwrap();
        assert_eq!(thresholds.len(), 2);
        let checks = &thresholds[0];
        assert_eq!(checks.source, "checks");
        assert_eq!(checks.metric_type, MetricType::Rate);
        assert_eq!(checks.rules[0].expr.aggregation, Aggregation::Rate);
        assert_eq!(checks.rules[0].delay_abort_eval, Duration::ZERO);
        assert!(!checks.rules[0].abort_on_fail);
        let login = &thresholds[1];
        assert_eq!(login.key.metric, "http_req_duration");
        assert_eq!(login.key.tags, vec![("name".into(), "login".into())]);
        assert_eq!(login.metric_type, MetricType::Trend);
        assert_eq!(login.rules.len(), 2);
        assert_eq!(login.rules[0].source, "p(95)<500");
        assert_eq!(login.rules[0].expr.operator, Operator::Less);
        let abort = &login.rules[1];
        assert_eq!(abort.source, "max<900");
        assert_eq!(abort.expr.limit, 900.0);
        assert!(abort.abort_on_fail);
        assert_eq!(abort.delay_abort_eval, Duration::from_secs(60));
    }

    #[test]
    fn nothing_unparsable_is_skipped() {
        let problems = compile(&spec(
            r#"
thresholds:
  http_req_duration: ["p(95)<500", "p95<500", {threshold: "max<1", abortOnFail: true, delayAbortEval: later}]
  http_reqz: ["count>1"]
  "checks{check": ["rate>0.9"]
"#,
        ))
        .unwrap_err();
        let paths: Vec<String> = problems.iter().map(|p| p.path.to_string()).collect();
        assert_eq!(
            paths,
            [
                r#"spec.thresholds["checks{check"]"#,
                "spec.thresholds.http_req_duration[1]",
                "spec.thresholds.http_req_duration[2].delayAbortEval",
                "spec.thresholds.http_reqz",
            ]
        );
    }
}
