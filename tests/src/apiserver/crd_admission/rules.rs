//! A CRD node's `x-kubernetes-validations`: the static checks of each rule's fields, and their
//! compilation against the node's CEL declaration with the estimated cost — per expression and,
//! summed in [`TotalCost`], for the whole schema — within the limits of apiextensions 1.36.

use std::sync::Arc;

use serde_json::Value;

use super::openapi::{CelContext, Context};
use super::{child, index};
use crate::apiserver::cel::types::Decl;
use crate::apiserver::cel::{self, Expect};
use crate::apiserver::field::{ErrorType, FieldError};
use crate::apiserver::render::{go_json_string, go_quote};

/// The largest estimated cost of one expression (`StaticEstimatedCostLimit`).
pub const PER_EXPRESSION_LIMIT: u64 = 10_000_000;
/// The largest estimated cost of all of a schema's rules (`StaticEstimatedCRDCostLimit`).
pub const SCHEMA_LIMIT: u64 = 100_000_000;

/// The estimated cost of all rules, and the most expensive ones.
#[derive(Debug, Default)]
pub struct TotalCost {
    /// The sum.
    pub total: u64,
    /// Up to four (path, cost) of rules costing at least 1% of the limit, most expensive first.
    pub most_expensive: Vec<(String, u64)>,
}

impl TotalCost {
    /// Adds the cost of one expression.
    pub fn observe(&mut self, path: &str, cost: u64) {
        self.total = self.total.saturating_add(cost);
        if cost < SCHEMA_LIMIT / 100 {
            return;
        }
        self.most_expensive.push((path.to_string(), cost));
        // A stable sort, as Go's insertion sort is for so few elements.
        self.most_expensive
            .sort_by_key(|entry| std::cmp::Reverse(entry.1));
        self.most_expensive.truncate(4);
    }
}

const SUPPORTED_REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// The static checks of each rule's fields.
pub fn rule_fields(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let rules = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let rule_path = index(&child(path, "x-kubernetes-validations"), i);
        let text = |name: &str| rule.get(name).and_then(Value::as_str).unwrap_or("");
        let (source, message) = (text("rule"), text("message"));
        let (trimmed_rule, trimmed_message) = (source.trim(), message.trim());
        let newline = |s: &str| s.contains('\n') || s.contains('\r');
        if trimmed_rule.is_empty() {
            errors.push(FieldError::required(
                &child(&rule_path, "rule"),
                "rule is not specified",
            ));
        } else if !message.is_empty() && trimmed_message.is_empty() {
            errors.push(FieldError::invalid(
                &child(&rule_path, "message"),
                &go_quote(message),
                "message must be non-empty if specified",
            ));
        } else if newline(trimmed_message) {
            errors.push(FieldError::invalid(
                &child(&rule_path, "message"),
                &go_quote(message),
                "message must not contain line breaks",
            ));
        } else if newline(trimmed_rule) && trimmed_message.is_empty() {
            errors.push(FieldError::required(
                &child(&rule_path, "message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        let message_expression = text("messageExpression");
        if !message_expression.is_empty() && message_expression.trim().is_empty() {
            errors.push(FieldError::required(
                &child(&rule_path, "messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = rule.get("reason").and_then(Value::as_str)
            && !SUPPORTED_REASONS.contains(&reason)
        {
            errors.push(FieldError::not_supported(
                &child(&rule_path, "reason"),
                &go_quote(reason),
                &SUPPORTED_REASONS,
            ));
        }
        let field_path = text("fieldPath");
        if !field_path.is_empty() && field_path.trim().is_empty() {
            errors.push(FieldError::invalid(
                &child(&rule_path, "fieldPath"),
                &go_quote(field_path),
                "fieldPath must be non-empty if specified",
            ));
        }
        if newline(field_path) {
            errors.push(FieldError::invalid(
                &child(&rule_path, "fieldPath"),
                &go_quote(field_path),
                "fieldPath must not contain line breaks",
            ));
        }
        if !field_path.is_empty() && !field_path_valid(schema, field_path) {
            errors.push(FieldError::invalid(
                &child(&rule_path, "fieldPath"),
                &go_quote(field_path),
                "must be a valid path",
            ));
        }
    }
    errors
}

/// `ValidFieldPath`: `.name`, `['name']` and `[n]` steps that exist in the schema.
fn field_path_valid(schema: &Value, path: &str) -> bool {
    let mut node = schema;
    let mut rest = path.trim();
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let (step, next): (String, &str) = if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        } else if let Some(after) = rest.strip_prefix("['") {
            match after.find("']") {
                Some(end) => (after[..end].to_string(), &after[end + 2..]),
                None => return false,
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return false;
            };
            if !after[..end].chars().all(|c| c.is_ascii_digit()) || end == 0 {
                return false;
            }
            match node.get("items") {
                Some(items) => node = items,
                None => return false,
            }
            rest = &after[end + 1..];
            continue;
        } else {
            return false;
        };
        if step.is_empty() {
            return false;
        }
        node = match node.get("properties").and_then(|p| p.get(&step)) {
            Some(property) => property,
            None => match node.get("additionalProperties").filter(|a| a.is_object()) {
                Some(values) => values,
                None => return false,
            },
        };
        rest = next;
    }
    true
}

/// A rule as `field.Invalid` prints the internal ValidationRule struct: Go field names, JSON.
fn rule_value(rule: &Value) -> String {
    let text = |name: &str| go_json_string(rule.get(name).and_then(Value::as_str).unwrap_or(""));
    let reason = match rule.get("reason").and_then(Value::as_str) {
        Some(reason) => go_json_string(reason),
        None => "null".into(),
    };
    let optional_old_self = match rule.get("optionalOldSelf").and_then(Value::as_bool) {
        Some(flag) => flag.to_string(),
        None => "null".into(),
    };
    format!(
        "{{\"Rule\":{},\"Message\":{},\"MessageExpression\":{},\"Reason\":{reason},\"FieldPath\":{},\"OptionalOldSelf\":{optional_old_self}}}",
        text("rule"),
        text("message"),
        text("messageExpression"),
        text("fieldPath"),
    )
}

/// `getCostErrorMessage`.
pub fn cost_message(what: &str, cost: u64, limit: u64) -> String {
    let exceed = cost as f64 / limit as f64;
    let factor = if exceed > 100.0 {
        "more than 100x".to_string()
    } else if exceed < 1.5 {
        format!("{exceed:.6}x")
    } else {
        format!("{exceed:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding \
         maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

pub fn compile_rules(
    schema: &Value,
    path: &str,
    ctx: &Context,
    cel: &CelContext,
    total: &mut TotalCost,
) -> Vec<FieldError> {
    let rules_path = child(path, "x-kubernetes-validations");
    let Some(decl) = &cel.decl else {
        return vec![FieldError::new(
            &rules_path,
            ErrorType::Internal,
            None,
            "internal error: failed to construct type information for x-kubernetes-validations \
             rules: unable to convert structural schema to CEL declarations",
        )];
    };
    let mut errors = Vec::new();
    let rules = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array);
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let rule_path = index(&rules_path, i);
        let source = rule.get("rule").and_then(Value::as_str).unwrap_or("");
        if source.trim().is_empty() {
            continue;
        }
        let optional_old_self = rule.get("optionalOldSelf").and_then(Value::as_bool);
        let compiled = cel::compile(source, decl, optional_old_self == Some(true), Expect::Bool);
        let cost = expression_cost(compiled.max_cost, cel, decl);
        if cost > PER_EXPRESSION_LIMIT {
            errors.push(FieldError::forbidden(
                &child(&rule_path, "rule"),
                &cost_message("estimated rule cost", cost, PER_EXPRESSION_LIMIT),
            ));
        }
        total.observe(&child(&rule_path, "rule"), cost);
        if let Some(detail) = &compiled.error {
            errors.push(FieldError::invalid(
                &child(&rule_path, "rule"),
                &rule_value(rule),
                detail,
            ));
            continue;
        }
        let message_expression = rule
            .get("messageExpression")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !message_expression.is_empty() {
            let message = cel::compile(message_expression, decl, false, Expect::String);
            match &message.error {
                Some(detail) => errors.push(FieldError::invalid(
                    &child(&rule_path, "messageExpression"),
                    &rule_value(rule),
                    detail,
                )),
                None => {
                    let cost = expression_cost(message.max_cost, cel, decl);
                    if cost > PER_EXPRESSION_LIMIT {
                        errors.push(FieldError::forbidden(
                            &child(&rule_path, "messageExpression"),
                            &cost_message(
                                "estimated messageExpression cost",
                                cost,
                                PER_EXPRESSION_LIMIT,
                            ),
                        ));
                    }
                    total.observe(&child(&rule_path, "messageExpression"), cost);
                }
            }
        }
        if compiled.uses_old_self {
            if let Some(uncorrelatable) = &ctx.uncorrelatable {
                errors.push(FieldError::invalid(
                    &child(&rule_path, "rule"),
                    &go_quote(source),
                    &format!(
                        "oldSelf cannot be used on the uncorrelatable portion of the schema \
                         within {uncorrelatable}"
                    ),
                ));
            }
        } else if let Some(flag) = optional_old_self {
            errors.push(FieldError::invalid(
                &child(&rule_path, "optionalOldSelf"),
                &flag.to_string(),
                "may not be set if oldSelf is not used in rule",
            ));
        }
    }
    errors
}

/// `getExpressionCost`: the cost of one evaluation times how often the node can occur — its
/// bounded cardinality, or as many minimal copies as fit into a request.
fn expression_cost(max_cost: u64, cel: &CelContext, decl: &Arc<Decl>) -> u64 {
    if max_cost == 0 {
        return 0;
    }
    let times = cel.cardinality.unwrap_or_else(|| decl.max_cardinality());
    max_cost.saturating_mul(times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_print_as_go_structs() {
        let rule = json!({"rule": "a && b > c", "message": "m", "reason": "FieldValueForbidden"});
        assert_eq!(
            rule_value(&rule),
            r#"{"Rule":"a \u0026\u0026 b \u003e c","Message":"m","MessageExpression":"","Reason":"FieldValueForbidden","FieldPath":"","OptionalOldSelf":null}"#
        );
    }

    #[test]
    fn cost_factors_read_like_the_server() {
        assert!(
            cost_message("estimated rule cost", 2_000_000_000, 10_000_000)
                .starts_with("estimated rule cost exceeds budget by factor of more than 100x (try")
        );
        assert!(cost_message("x", 167_772_160, 100_000_000).contains("factor of 1.7x"));
        assert!(cost_message("x", 120_000_000, 100_000_000).contains("factor of 1.200000x"));
    }

    #[test]
    fn field_paths_must_exist() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "l": {"type": "array", "items": {"type": "object", "properties": {"c": {"type": "string"}}}}
        }});
        for good in [".a.b", "['a'].b", ".m.anything", ".l[0].c"] {
            assert!(field_path_valid(&schema, good), "{good}");
        }
        for bad in [".z", "a.b", ".a.c", ".l[x]"] {
            assert!(!field_path_valid(&schema, bad), "{bad}");
        }
    }
}
