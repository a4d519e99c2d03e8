//! Threshold rules in k6 syntax: `"p(95)<500"` strings, `{threshold, abortOnFail, delayAbortEval}`
//! objects (with our `passWithoutData`), and `metric{tag:value}` keys — parsed into typed expressions (k6 `metrics/thresholds.go`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::MetricType;

/// One threshold of a metric: the k6 string form or the object form.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum ThresholdRule {
    /// `"p(95)<500"`.
    Expression(String),
    /// `{threshold: "p(99)<1000", abortOnFail: true, delayAbortEval: 10s}`.
    Detailed(DetailedThreshold),
}

/// The object form of a threshold.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetailedThreshold {
    /// The expression, e.g. `p(99)<1000`.
    pub threshold: String,
    /// Stop the whole test (all runners) as soon as this threshold fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort_on_fail: bool,
    /// Do not abort before this much of the test has run (e.g. `10s`), so early noise is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_abort_eval: Option<String>,
    /// Pass when the metric got no samples at all (a trend or rate nobody recorded, e.g. a step
    /// behind an `if` that never ran). By default such a threshold fails with "no data": a
    /// target that never answered must not pass the gate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pass_without_data: bool,
}

impl ThresholdRule {
    /// The expression text.
    pub fn expression(&self) -> &str {
        match self {
            ThresholdRule::Expression(text) => text,
            ThresholdRule::Detailed(detailed) => &detailed.threshold,
        }
    }

    /// Whether the rule aborts the test when it fails.
    pub fn abort_on_fail(&self) -> bool {
        matches!(self, ThresholdRule::Detailed(d) if d.abort_on_fail)
    }

    /// Whether the rule passes when its metric got no samples.
    pub fn pass_without_data(&self) -> bool {
        matches!(self, ThresholdRule::Detailed(d) if d.pass_without_data)
    }

    /// The abort delay text, if any.
    pub fn delay_abort_eval(&self) -> Option<&str> {
        match self {
            ThresholdRule::Detailed(d) => d.delay_abort_eval.as_deref(),
            ThresholdRule::Expression(_) => None,
        }
    }
}

/// How samples of a metric are reduced to the one number a threshold compares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    /// Counter total.
    Count,
    /// Counter per second, or Rate fraction.
    Rate,
    /// Gauge last value.
    Value,
    /// Trend mean.
    Avg,
    /// Trend minimum.
    Min,
    /// Trend maximum.
    Max,
    /// Trend median.
    Med,
    /// Trend percentile, 0..=100.
    Percentile(f64),
}

impl Aggregation {
    /// Whether k6 accepts this aggregation for a metric of the given type.
    pub fn valid_for(self, kind: MetricType) -> bool {
        match kind {
            MetricType::Counter => matches!(self, Aggregation::Count | Aggregation::Rate),
            MetricType::Gauge => matches!(self, Aggregation::Value),
            MetricType::Rate => matches!(self, Aggregation::Rate),
            MetricType::Trend => matches!(
                self,
                Aggregation::Avg
                    | Aggregation::Min
                    | Aggregation::Max
                    | Aggregation::Med
                    | Aggregation::Percentile(_)
            ),
        }
    }
}

impl std::fmt::Display for Aggregation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Aggregation::Count => f.write_str("count"),
            Aggregation::Rate => f.write_str("rate"),
            Aggregation::Value => f.write_str("value"),
            Aggregation::Avg => f.write_str("avg"),
            Aggregation::Min => f.write_str("min"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::Med => f.write_str("med"),
            Aggregation::Percentile(p) => write!(f, "p({p})"),
        }
    }
}

/// A comparison operator, matched in k6's order: `<=`, `<`, `>=`, `>`, `===`, `==`, `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `<=`
    LessOrEqual,
    /// `<`
    Less,
    /// `>=`
    GreaterOrEqual,
    /// `>`
    Greater,
    /// `===` (same as `==` for numbers)
    StrictEqual,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

const OPERATORS: [(&str, Operator); 7] = [
    ("<=", Operator::LessOrEqual),
    ("<", Operator::Less),
    (">=", Operator::GreaterOrEqual),
    (">", Operator::Greater),
    ("===", Operator::StrictEqual),
    ("==", Operator::Equal),
    ("!=", Operator::NotEqual),
];

impl Operator {
    /// Applies the comparison `observed OP limit`.
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Operator::LessOrEqual => observed <= limit,
            Operator::Less => observed < limit,
            Operator::GreaterOrEqual => observed >= limit,
            Operator::Greater => observed > limit,
            Operator::StrictEqual | Operator::Equal => observed == limit,
            Operator::NotEqual => observed != limit,
        }
    }

    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, op)| *op == self)
            .map(|(symbol, _)| *symbol)
            .unwrap_or("?")
    }
}

/// A parsed threshold expression: `aggregation operator limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdExpr {
    /// What is computed from the samples.
    pub aggregation: Aggregation,
    /// How it is compared.
    pub operator: Operator,
    /// The number it is compared with (milliseconds for time trends).
    pub limit: f64,
}

/// Why a threshold expression did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("{0:?} has no comparison operator (write e.g. \"p(95)<500\" or \"rate<0.01\")")]
    NoOperator(String),
    #[error("{0:?} is not an aggregation (use count, rate, value, avg, min, max, med or p(N))")]
    UnknownAggregation(String),
    #[error("{0:?} is not a percentile: write p(N) with 0 <= N <= 100, e.g. p(95) or p(99.9)")]
    BadPercentile(String),
    #[error("{0:?} is not a number to compare with (write e.g. p(95)<500)")]
    BadLimit(String),
}

/// Parses a k6 threshold expression such as `p(95) < 500` or `rate<0.01`.
pub fn parse_expression(text: &str) -> Result<ThresholdExpr, ThresholdError> {
    let (position, symbol, operator) = OPERATORS
        .iter()
        .find_map(|(symbol, op)| text.find(symbol).map(|pos| (pos, *symbol, *op)))
        .ok_or_else(|| ThresholdError::NoOperator(text.to_string()))?;
    let left = text[..position].trim();
    let right = text[position + symbol.len()..].trim();
    let aggregation = parse_aggregation(left)?;
    let limit: f64 = right
        .parse()
        .ok()
        .filter(|value: &f64| value.is_finite())
        .ok_or_else(|| ThresholdError::BadLimit(right.to_string()))?;
    Ok(ThresholdExpr {
        aggregation,
        operator,
        limit,
    })
}

fn parse_aggregation(text: &str) -> Result<Aggregation, ThresholdError> {
    Ok(match text {
        "count" => Aggregation::Count,
        "rate" => Aggregation::Rate,
        "value" => Aggregation::Value,
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "med" => Aggregation::Med,
        _ => {
            let inner = text
                .strip_prefix("p(")
                .and_then(|rest| rest.strip_suffix(')'))
                .ok_or_else(|| ThresholdError::UnknownAggregation(text.to_string()))?;
            let percentile: f64 = inner
                .trim()
                .parse()
                .map_err(|_| ThresholdError::BadPercentile(text.to_string()))?;
            if !(0.0..=100.0).contains(&percentile) {
                return Err(ThresholdError::BadPercentile(text.to_string()));
            }
            Aggregation::Percentile(percentile)
        }
    })
}

/// A threshold key: a metric name with an optional tag filter (`http_req_duration{name:login}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricKey {
    /// The metric name.
    pub metric: String,
    /// Tag filters, all of which a sample must carry (AND).
    pub tags: Vec<(String, String)>,
}

/// Why a threshold key did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricKeyError {
    #[error("{0:?} has an unclosed tag filter (write metric{{tag:value}})")]
    Unclosed(String),
    #[error("tag filter {0:?} has no ':' (write {{name:login}})")]
    NoColon(String),
    #[error("{0:?} has an empty metric name")]
    EmptyMetric(String),
}

/// Parses `metric{k:v,k2:v2}` as k6 does: split on `,`, then on the first `:`, trimming spaces
/// and quotes, so `group:::login` keeps `::login` as the value.
pub fn parse_metric_key(key: &str) -> Result<MetricKey, MetricKeyError> {
    let key = key.trim();
    let Some(open) = key.find('{') else {
        if key.is_empty() {
            return Err(MetricKeyError::EmptyMetric(key.to_string()));
        }
        return Ok(MetricKey {
            metric: key.to_string(),
            tags: Vec::new(),
        });
    };
    let metric = key[..open].trim();
    if metric.is_empty() {
        return Err(MetricKeyError::EmptyMetric(key.to_string()));
    }
    let inner = key[open + 1..]
        .strip_suffix('}')
        .ok_or_else(|| MetricKeyError::Unclosed(key.to_string()))?;
    let mut tags = Vec::new();
    for pair in inner.split(',') {
        if pair.trim().is_empty() {
            continue;
        }
        let (tag, value) = pair
            .split_once(':')
            .ok_or_else(|| MetricKeyError::NoColon(pair.trim().to_string()))?;
        let clean = |s: &str| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        tags.push((clean(tag), clean(value)));
    }
    Ok(MetricKey {
        metric: metric.to_string(),
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k6_expressions() {
        let expr = parse_expression("p(95)<500").unwrap();
        assert_eq!(expr.aggregation, Aggregation::Percentile(95.0));
        assert_eq!(expr.operator, Operator::Less);
        assert_eq!(expr.limit, 500.0);
        let expr = parse_expression(" rate <= 0.01 ").unwrap();
        assert_eq!(expr.aggregation, Aggregation::Rate);
        assert_eq!(expr.operator, Operator::LessOrEqual);
        let expr = parse_expression("p(99.9)>=1").unwrap();
        assert_eq!(expr.aggregation, Aggregation::Percentile(99.9));
        assert_eq!(expr.operator, Operator::GreaterOrEqual);
        assert_eq!(
            parse_expression("count===3").unwrap().operator,
            Operator::StrictEqual
        );
        assert_eq!(
            parse_expression("count!=3").unwrap().operator,
            Operator::NotEqual
        );
    }

    #[test]
    fn rejects_bad_expressions() {
        assert!(matches!(
            parse_expression("p95<500"),
            Err(ThresholdError::UnknownAggregation(_))
        ));
        assert!(matches!(
            parse_expression("p(101)<500"),
            Err(ThresholdError::BadPercentile(_))
        ));
        assert!(matches!(
            parse_expression("p(95) 500"),
            Err(ThresholdError::NoOperator(_))
        ));
        assert!(matches!(
            parse_expression("p(95)<fast"),
            Err(ThresholdError::BadLimit(_))
        ));
        assert!(matches!(
            parse_expression("avg<"),
            Err(ThresholdError::BadLimit(_))
        ));
    }

    #[test]
    fn aggregation_must_fit_the_metric_type() {
        assert!(Aggregation::Percentile(95.0).valid_for(MetricType::Trend));
        assert!(!Aggregation::Percentile(95.0).valid_for(MetricType::Rate));
        assert!(Aggregation::Rate.valid_for(MetricType::Counter));
        assert!(!Aggregation::Count.valid_for(MetricType::Trend));
        assert!(Aggregation::Value.valid_for(MetricType::Gauge));
    }

    #[test]
    fn parses_sub_metric_keys_like_k6() {
        let key = parse_metric_key("http_req_duration{name:login}").unwrap();
        assert_eq!(key.metric, "http_req_duration");
        assert_eq!(key.tags, vec![("name".into(), "login".into())]);
        let key = parse_metric_key("group_duration{group:::login}").unwrap();
        assert_eq!(key.tags, vec![("group".into(), "::login".into())]);
        let key = parse_metric_key("http_reqs{ status : \"200\", method:GET }").unwrap();
        assert_eq!(
            key.tags,
            vec![
                ("status".into(), "200".into()),
                ("method".into(), "GET".into())
            ]
        );
        assert!(parse_metric_key("http_reqs{status:200").is_err());
        assert!(parse_metric_key("http_reqs{status}").is_err());
        assert!(parse_metric_key("{status:200}").is_err());
    }
}
