//! Threshold rules: metric keys, sub-metric filters that name real steps, scenarios, checks and
//! groups (so a filter that matches nothing cannot pass silently), and k6 expression syntax.

use std::collections::BTreeMap;

use super::flows::Names;
use super::{Problems, listing, suggestion};
use crate::metrics::{self, BUILTIN};
use crate::path::FieldPath;
use crate::scenario::Scenario;
use crate::spec::LoadTestSpec;
use crate::threshold::{ThresholdRule, parse_expression, parse_metric_key};

pub(super) fn check(
    spec: &LoadTestSpec,
    scenarios: &BTreeMap<String, Scenario>,
    names: &Names,
    spec_path: &FieldPath,
    problems: &mut Problems,
) {
    for (key, rules) in &spec.thresholds {
        let key_path = spec_path.key("thresholds").key(key);
        let metric_type = match parse_metric_key(key) {
            Err(error) => {
                problems.push(key_path.clone(), error.to_string());
                None
            }
            Ok(parsed) => {
                let kind = metrics::metric_type(&parsed.metric);
                if kind.is_none() {
                    problems.push(
                        key_path.clone(),
                        format!(
                            "{:?} is not a k6 metric{}; thresholds apply to the built-in metrics ({})",
                            parsed.metric,
                            suggestion(&parsed.metric, BUILTIN.iter().map(|(name, _)| *name)),
                            BUILTIN.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
                for (tag, value) in &parsed.tags {
                    check_filter(tag, value, scenarios, names, &key_path, problems);
                }
                kind
            }
        };
        if rules.is_empty() {
            problems.push(
                key_path.clone(),
                "has no thresholds; add one such as \"p(95)<500\" or remove the key",
            );
        }
        for (index, rule) in rules.iter().enumerate() {
            let path = key_path.index(index);
            let text = rule.expression();
            match parse_expression(text) {
                Err(error) => problems.push(path.clone(), error.to_string()),
                Ok(parsed) => {
                    if let Some(kind) = metric_type
                        && !parsed.aggregation.valid_for(kind)
                    {
                        problems.push(
                            path.clone(),
                            format!(
                                "{text:?}: {} is not an aggregation of the {} metric {:?}; use {}",
                                parsed.aggregation,
                                kind.name(),
                                key.split('{').next().unwrap_or(key),
                                kind.aggregations().join(", ")
                            ),
                        );
                    }
                }
            }
            if let ThresholdRule::Detailed(detailed) = rule {
                if let Some(delay) = &detailed.delay_abort_eval {
                    problems.duration(path.key("delayAbortEval"), delay);
                    if !detailed.abort_on_fail {
                        problems.push(
                            path.key("delayAbortEval"),
                            "only matters with abortOnFail: true; add it or remove delayAbortEval",
                        );
                    }
                }
                if detailed.threshold.trim().is_empty() {
                    problems.push(path.key("threshold"), "is empty; write e.g. \"p(95)<500\"");
                }
            }
        }
    }
}

fn check_filter(
    tag: &str,
    value: &str,
    scenarios: &BTreeMap<String, Scenario>,
    names: &Names,
    path: &FieldPath,
    problems: &mut Problems,
) {
    let (known, what): (Vec<&str>, &str) = match tag {
        "name" => (names.steps.iter().map(String::as_str).collect(), "step"),
        "scenario" => (scenarios.keys().map(String::as_str).collect(), "scenario"),
        "check" => (names.checks.iter().map(String::as_str).collect(), "check"),
        "group" => (names.groups.iter().map(String::as_str).collect(), "group"),
        "method" => {
            if !value.chars().all(|c| c.is_ascii_uppercase()) {
                problems.push(
                    path.clone(),
                    format!(
                        "filters on method {value:?}; methods are upper-case (e.g. method:POST)"
                    ),
                );
            }
            return;
        }
        "status" | "error_code" => {
            if value.parse::<u32>().is_err() {
                problems.push(
                    path.clone(),
                    format!("filters on {tag} {value:?}, which is not a number (e.g. {tag}:200)"),
                );
            }
            return;
        }
        "expected_response" => {
            if value != "true" && value != "false" {
                problems.push(
                    path.clone(),
                    format!("filters on expected_response {value:?}; use true or false"),
                );
            }
            return;
        }
        "vu" | "iter" => {
            problems.push(
                path.clone(),
                format!("filters on `{tag}`, which k6 keeps as metadata, not a tag, so it never matches; filter on name, scenario, group, check, status or method"),
            );
            return;
        }
        _ => return,
    };
    if !known.contains(&value) {
        problems.push(
            path.clone(),
            format!(
                "filters on {tag}:{value}, but no {what} is named {value:?}{}, so the threshold would see no samples and pass silently; known: {}",
                suggestion(value, known.iter().copied()),
                listing(known.iter().copied())
            ),
        );
    }
}
