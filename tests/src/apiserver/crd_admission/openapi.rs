//! apiextensions' walk of a CRD schema (`ValidateCustomResourceDefinitionOpenAPISchema`): the
//! keywords a CRD schema may not use, list and map types, and each node's
//! `x-kubernetes-validations` (see [`super::rules`]), compiled when nothing at or below the
//! node is wrong, against the node's CEL declaration and cardinality kept here.

use std::sync::Arc;

use serde_json::Value;

use super::rules::{TotalCost, compile_rules, rule_fields};
use super::{child, flag, index, key, str_field};
use crate::apiserver::cel::types::{self as cel_types, Decl};
use crate::apiserver::field::FieldError;
use crate::apiserver::render::{go_json_string, go_quote};

/// The schema-level and CEL errors of a subtree, kept apart as apiextensions keeps them.
#[derive(Debug, Default)]
pub struct Errors {
    /// Problems with the schema itself.
    pub schema: Vec<FieldError>,
    /// Problems found compiling rules.
    pub cel: Vec<FieldError>,
}

impl Errors {
    fn append(&mut self, other: Errors) {
        self.schema.extend(other.schema);
        self.cel.extend(other.cel);
    }
}

/// How the walk treats a node (apiextensions' `specStandardValidator` state).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `default` is forbidden here, for this reason.
    pub forbid_defaults: Option<String>,
    /// Inside TypeMeta or ObjectMeta of a resource.
    pub inside_meta: bool,
    /// The closest ancestor whose items or properties cannot be correlated with an old
    /// object's, when there is one: rules below it may not use `oldSelf`.
    pub uncorrelatable: Option<String>,
}

/// The CEL side of a node (apiextensions' `CELSchemaContext`).
#[derive(Debug, Clone)]
pub struct CelContext {
    /// Whether this node or an ancestor has rules.
    pub within_rules: bool,
    /// The node's declaration, when CEL can see it.
    pub decl: Option<Arc<Decl>>,
    /// How often the node can occur, when every list and map above it is bounded.
    pub cardinality: Option<u64>,
}

impl CelContext {
    /// The root of a schema: occurs once, declared as a resource.
    pub fn root(schema: &Value) -> CelContext {
        CelContext {
            within_rules: has_rules(schema),
            decl: cel_types::decl_of(schema, true, "selfType"),
            cardinality: Some(1),
        }
    }

    fn child(&self, parent: &Value, schema: &Value, accessed: Option<Arc<Decl>>) -> CelContext {
        let factor = max_elements(parent);
        let cardinality = match (self.cardinality, factor) {
            (Some(c), Some(f)) => Some(c.saturating_mul(f)),
            _ => None,
        };
        let decl = accessed.or_else(|| {
            cel_types::decl_of(
                schema,
                flag(schema, "x-kubernetes-embedded-resource"),
                "selfType",
            )
        });
        CelContext {
            within_rules: self.within_rules || has_rules(schema),
            decl,
            cardinality,
        }
    }
}

pub fn has_rules(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|rules| !rules.is_empty())
}

/// `extractMaxElements`: how many children a node can have per occurrence.
fn max_elements(schema: &Value) -> Option<u64> {
    let bound = |name: &str| {
        schema
            .get(name)
            .and_then(Value::as_i64)
            .map(|v| v.max(0) as u64)
    };
    match str_field(schema, "type") {
        "object" if schema.get("additionalProperties").is_some() => bound("maxProperties"),
        "array" => bound("maxItems"),
        _ => Some(1),
    }
}

const OPENAPI_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
/// Walks one node and everything below it.
pub fn walk(
    schema: &Value,
    path: &str,
    ctx: &Context,
    is_root: bool,
    cel: Option<&CelContext>,
    total: &mut TotalCost,
) -> Errors {
    let mut errors = Errors::default();
    if !schema.is_object() {
        return errors;
    }
    errors.schema.extend(standard(schema, path, ctx));
    if flag(schema, "uniqueItems") {
        errors.schema.push(FieldError::forbidden(
            &child(path, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    let properties: Vec<(&String, &Value)> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    if let Some(additional) = schema.get("additionalProperties") {
        if !properties.is_empty() && (additional == &Value::Bool(false) || additional.is_object()) {
            errors.schema.push(FieldError::forbidden(
                &child(path, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if additional.is_object() {
            let mut sub = ctx.clone();
            if ctx.inside_meta {
                sub.forbid_defaults =
                    Some("inside additionalProperties applying to object metadata".into());
            }
            let accessed = cel
                .and_then(|c| c.decl.as_ref())
                .and_then(|d| d.element().cloned());
            let child_cel = cel.map(|c| c.child(schema, additional, accessed));
            errors.append(walk(
                additional,
                &child(path, "additionalProperties"),
                &sub,
                false,
                child_cel.as_ref(),
                total,
            ));
        }
    }
    for (name, property) in &properties {
        let mut sub = ctx.clone();
        let granular = matches!(
            schema.get("x-kubernetes-map-type").and_then(Value::as_str),
            None | Some("granular")
        );
        if !granular && sub.uncorrelatable.is_none() {
            sub.uncorrelatable = Some(path.to_string());
        }
        let embedded = flag(schema, "x-kubernetes-embedded-resource");
        if (is_root || embedded) && ["metadata", "kind", "apiVersion"].contains(&name.as_str()) {
            sub.inside_meta = true;
            if is_root {
                sub.forbid_defaults = Some(format!("in top-level {name}"));
            }
        }
        let accessed = cel
            .and_then(|c| c.decl.as_ref())
            .and_then(|d| cel_types::escape(name).and_then(|escaped| d.field(&escaped).cloned()));
        let child_cel = cel.map(|c| c.child(schema, property, accessed));
        errors.append(walk(
            property,
            &key(&child(path, "properties"), name),
            &sub,
            false,
            child_cel.as_ref(),
            total,
        ));
    }
    if let Some(not) = schema.get("not").filter(|n| n.is_object()) {
        errors.append(walk(not, &child(path, "not"), ctx, false, None, total));
    }
    for junctor in ["allOf", "oneOf", "anyOf"] {
        let list = schema.get(junctor).and_then(Value::as_array);
        for (i, nested) in list.into_iter().flatten().enumerate() {
            errors.append(walk(
                nested,
                &index(&child(path, junctor), i),
                ctx,
                false,
                None,
                total,
            ));
        }
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        let mut sub = ctx.clone();
        if str_field(schema, "x-kubernetes-list-type") != "map" && sub.uncorrelatable.is_none() {
            sub.uncorrelatable = Some(path.to_string());
        }
        let accessed = cel
            .and_then(|c| c.decl.as_ref())
            .and_then(|d| d.element().cloned());
        let child_cel = cel.map(|c| c.child(schema, items, accessed));
        errors.append(walk(
            items,
            &child(path, "items"),
            &sub,
            false,
            child_cel.as_ref(),
            total,
        ));
    }
    errors.schema.extend(extensions(schema, path));
    errors.schema.extend(rule_fields(schema, path));
    if has_rules(schema)
        && errors.schema.is_empty()
        && let Some(cel) = cel
        && cel.within_rules
    {
        errors
            .cel
            .extend(compile_rules(schema, path, ctx, cel, total));
    }
    errors
}

/// `specStandardValidatorV3.validate`: keywords a CRD schema may not use.
fn standard(schema: &Value, path: &str, ctx: &Context) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let schema_type = str_field(schema, "type");
    if !schema_type.is_empty() && !OPENAPI_TYPES.contains(&schema_type) {
        errors.push(FieldError::not_supported(
            &child(path, "type"),
            &go_quote(schema_type),
            &OPENAPI_TYPES,
        ));
    }
    if schema.get("default").is_some_and(|d| !d.is_null())
        && let Some(reason) = &ctx.forbid_defaults
    {
        errors.push(FieldError::forbidden(
            &child(path, "default"),
            &format!("must not be set {reason}"),
        ));
    }
    let forbidden = [
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ];
    for (keyword, detail) in forbidden {
        let present = match schema.get(keyword) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Object(o)) => keyword == "additionalItems" || !o.is_empty(),
            Some(_) => true,
        };
        if present {
            errors.push(FieldError::forbidden(&child(path, keyword), detail));
        }
    }
    if schema_type == "null" {
        errors.push(FieldError::forbidden(
            &child(path, "type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if schema.get("items").is_some_and(Value::is_array) {
        errors.push(FieldError::forbidden(
            &child(path, "items"),
            "items must be a schema object and not an array",
        ));
    }
    if ctx.inside_meta && flag(schema, "x-kubernetes-embedded-resource") {
        errors.push(FieldError::forbidden(
            &child(path, "x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    errors
}

/// preserve-unknown-fields, map and list types.
fn extensions(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let schema_type = str_field(schema, "type");
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errors.push(FieldError::invalid(
            &child(path, "x-kubernetes-preserve-unknown-fields"),
            "false",
            "must be true or undefined",
        ));
    }
    let type_error = |errors: &mut Vec<FieldError>, expected: &str, extension: &str| {
        let detail = format!("must be {expected} if {extension} is specified");
        if schema_type.is_empty() {
            errors.push(FieldError::required(&child(path, "type"), &detail));
        } else {
            errors.push(FieldError::invalid(
                &child(path, "type"),
                &go_quote(schema_type),
                &detail,
            ));
        }
    };
    if let Some(map_type) = schema.get("x-kubernetes-map-type").and_then(Value::as_str) {
        if schema_type != "object" {
            type_error(&mut errors, "object", "x-kubernetes-map-type");
        }
        if map_type != "atomic" && map_type != "granular" {
            errors.push(FieldError::not_supported(
                &child(path, "x-kubernetes-map-type"),
                &go_quote(map_type),
                &["atomic", "granular"],
            ));
        }
    }
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    if list_type.is_some() && schema_type != "array" {
        type_error(&mut errors, "array", "x-kubernetes-list-type");
    }
    if let Some(list_type) = list_type
        && !["atomic", "set", "map"].contains(&list_type)
    {
        errors.push(FieldError::not_supported(
            &child(path, "x-kubernetes-list-type"),
            &go_quote(list_type),
            &["atomic", "set", "map"],
        ));
    }
    let map_keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !map_keys.is_empty() {
        match list_type {
            None => errors.push(FieldError::required(
                &child(path, "x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some("map") => {}
            Some(other) => errors.push(FieldError::invalid(
                &child(path, "x-kubernetes-list-type"),
                &go_quote(other),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
        }
    }
    let items = schema.get("items").filter(|i| i.is_object());
    if list_type == Some("map") {
        if map_keys.is_empty() {
            errors.push(FieldError::required(
                &child(path, "x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match items {
            None => errors.push(FieldError::required(
                &child(path, "items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(items) if str_field(items, "type") != "object" => {
                errors.push(FieldError::invalid(
                    &child(&child(path, "items"), "type"),
                    &go_quote(str_field(items, "type")),
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            }
            Some(items) => {
                for name in &map_keys {
                    match items.get("properties").and_then(|p| p.get(*name)) {
                        Some(property) => {
                            let t = str_field(property, "type");
                            if t == "array" || t == "object" {
                                errors.push(FieldError::invalid(
                                    &child(
                                        &key(&child(&child(path, "items"), "properties"), name),
                                        "type",
                                    ),
                                    &go_quote("object"),
                                    "must be a scalar type if parent array's \
                                     x-kubernetes-list-type is map",
                                ));
                            }
                        }
                        None => errors.push(FieldError::invalid(
                            &child(path, "x-kubernetes-list-map-keys"),
                            &list_json(&map_keys),
                            "entries must all be names of item properties",
                        )),
                    }
                }
            }
        }
    }
    if let (Some(items), Some(list_type @ ("set" | "map"))) = (items, list_type) {
        if flag(items, "nullable") {
            errors.push(FieldError::forbidden(
                &child(&child(path, "items"), "nullable"),
                &format!("cannot be nullable when x-kubernetes-list-type is {list_type}"),
            ));
        }
        if list_type == "map" {
            let required: Vec<&str> = items
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for name in &map_keys {
                let Some(property) = items.get("properties").and_then(|p| p.get(*name)) else {
                    continue;
                };
                let property_path = key(&child(&child(path, "items"), "properties"), name);
                if !required.contains(name) && property.get("default").is_none() {
                    errors.push(FieldError::required(
                        &child(&property_path, "default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a \
                         default or be a required property",
                    ));
                }
                if flag(property, "nullable") {
                    errors.push(FieldError::forbidden(
                        &child(&property_path, "nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
        }
    }
    errors
}

fn list_json(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| go_json_string(v)).collect();
    format!("[{}]", quoted.join(","))
}
