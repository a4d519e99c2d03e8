//! The structural-schema invariants of apiextensions' `ValidateStructural`: every node typed
//! (unless int-or-string or preserving unknown fields), arrays with items, value validations
//! (`anyOf`, `allOf`, `oneOf`, `not`) free of types and other generics, metadata restricted to
//! name and generateName, embedded resources shaped like objects.

use serde_json::Value;

use super::{child, flag, index, key, str_field};
use crate::apiserver::field::FieldError;
use crate::apiserver::render::go_quote;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Every violation, sorted by message as the server sorts them.
pub fn validate(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    invariants(schema, Level::Root, path, &mut errors);
    errors.sort_by(|a, b| a.message.cmp(&b.message));
    errors
}

fn invariants(schema: &Value, level: Level, path: &str, errors: &mut Vec<FieldError>) {
    if !schema.is_object() {
        return;
    }
    let schema_type = str_field(schema, "type");
    let items = schema.get("items").filter(|i| i.is_object());
    if schema_type == "array" && items.is_none() {
        errors.push(FieldError::required(
            &child(path, "items"),
            "must be specified",
        ));
    }
    if let Some(items) = items {
        invariants(items, Level::Item, &child(path, "items"), errors);
    }
    for (name, property) in properties(schema) {
        invariants(
            property,
            Level::Field,
            &key(&child(path, "properties"), name),
            errors,
        );
    }
    if let Some(additional) = schema.get("additionalProperties") {
        if level == Level::Root {
            errors.push(FieldError::forbidden(
                &child(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if additional.is_object() {
            invariants(
                additional,
                Level::Field,
                &child(path, "additionalProperties"),
                errors,
            );
        }
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(schema, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        errors.push(FieldError::invalid(
            &child(path, "x-kubernetes-preserve-unknown-fields"),
            "true",
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errors.push(FieldError::invalid(
            &child(path, "x-kubernetes-embedded-resource"),
            "true",
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    value_validation(schema, int_or_string, level, path, errors);
    if embedded && schema_type != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        if schema_type.is_empty() {
            errors.push(FieldError::required(&child(path, "type"), detail));
        } else {
            errors.push(FieldError::invalid(
                &child(path, "type"),
                &go_quote(schema_type),
                detail,
            ));
        }
    } else if schema_type.is_empty() && !int_or_string && !preserve {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errors.push(FieldError::required(&child(path, "type"), detail));
    }
    if embedded && schema.get("additionalProperties").is_some() {
        errors.push(FieldError::forbidden(
            &child(path, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if level == Level::Root && !schema_type.is_empty() && schema_type != "object" {
        errors.push(FieldError::invalid(
            &child(path, "type"),
            &go_quote(schema_type),
            "must be object at the root",
        ));
    }
    if level == Level::Root || embedded {
        type_meta_properties(schema, path, errors);
    }
    if level == Level::Root
        && let Some(metadata) = schema.pointer("/properties/metadata")
        && !metadata_is_restricted_to_names(metadata)
    {
        errors.push(FieldError::forbidden(
            &key(&child(path, "properties"), "metadata"),
            "must not specify anything other than name and generateName, but metadata is \
             implicitly specified",
        ));
    }
    if embedded && !preserve && properties(schema).is_empty() {
        errors.push(FieldError::required(
            &child(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without \
             x-kubernetes-preserve-unknown-fields",
        ));
    }
}

fn properties(schema: &Value) -> Vec<(&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| props.iter().collect())
        .unwrap_or_default()
}

/// kind and apiVersion must be strings and metadata an object, at a resource's root.
fn type_meta_properties(schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let props = child(path, "properties");
    for (name, expected) in [
        ("kind", "string"),
        ("apiVersion", "string"),
        ("metadata", "object"),
    ] {
        if let Some(property) = schema.get("properties").and_then(|p| p.get(name)) {
            let actual = str_field(property, "type");
            if actual != expected {
                errors.push(FieldError::invalid(
                    &child(&key(&props, name), "type"),
                    &go_quote(actual),
                    &format!("must be {expected}"),
                ));
            }
        }
    }
}

/// The root's metadata schema may only be `type: object` with optional name and generateName
/// properties (whatever their schemas).
fn metadata_is_restricted_to_names(metadata: &Value) -> bool {
    let Some(map) = metadata.as_object() else {
        return true;
    };
    let property_names: Vec<&String> = metadata
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    let only_names = property_names
        .iter()
        .all(|n| *n == "name" || *n == "generateName");
    map.iter().all(|(field, value)| match field.as_str() {
        "type" | "default" => true,
        "properties" => only_names,
        _ => is_zero(value),
    })
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// The `[{type: integer}, {type: string}]` pair int-or-string schemas may use in `anyOf`.
fn is_int_or_string_pair(list: Option<&Value>) -> bool {
    let Some(Value::Array(list)) = list else {
        return false;
    };
    list.len() == 2
        && list[0].as_object().is_some_and(|o| o.len() == 1)
        && list[1].as_object().is_some_and(|o| o.len() == 1)
        && str_field(&list[0], "type") == "integer"
        && str_field(&list[1], "type") == "string"
}

fn value_validation(
    schema: &Value,
    int_or_string: bool,
    level: Level,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let skip_any_of = int_or_string && is_int_or_string_pair(schema.get("anyOf"));
    let skip_first_all_of_any_of = int_or_string
        && schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|list| list.first())
            .is_some_and(|first| is_int_or_string_pair(first.get("anyOf")));
    junctors(
        schema,
        skip_any_of,
        skip_first_all_of_any_of,
        level,
        path,
        errors,
    );
}

fn junctors(
    schema: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    level: Level,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let list = |name: &str| -> Vec<&Value> {
        schema
            .get(name)
            .and_then(Value::as_array)
            .map(|l| l.iter().collect())
            .unwrap_or_default()
    };
    if !skip_any_of {
        for (i, nested) in list("anyOf").into_iter().enumerate() {
            nested_validation(
                nested,
                false,
                level,
                &index(&child(path, "anyOf"), i),
                errors,
            );
        }
    }
    for (i, nested) in list("allOf").into_iter().enumerate() {
        let skip = skip_first_all_of_any_of && i == 0;
        nested_validation(
            nested,
            skip,
            level,
            &index(&child(path, "allOf"), i),
            errors,
        );
    }
    for (i, nested) in list("oneOf").into_iter().enumerate() {
        nested_validation(
            nested,
            false,
            level,
            &index(&child(path, "oneOf"), i),
            errors,
        );
    }
    if let Some(not) = schema.get("not").filter(|n| n.is_object()) {
        nested_validation(not, false, level, &child(path, "not"), errors);
    }
}

/// A schema under a junctor: only value validations, no generics or extensions.
fn nested_validation(
    schema: &Value,
    skip_any_of: bool,
    level: Level,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    junctors(schema, skip_any_of, false, level, path, errors);
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        nested_validation(items, false, level, &child(path, "items"), errors);
    }
    for (name, property) in properties(schema) {
        nested_validation(
            property,
            false,
            Level::Field,
            &key(&child(path, "properties"), name),
            errors,
        );
    }
    let forbidden = |field: &str, detail: &str| FieldError::forbidden(&child(path, field), detail);
    if !str_field(schema, "type").is_empty() {
        errors.push(forbidden("type", "must be empty to be structural"));
    }
    if schema.get("additionalProperties").is_some() {
        errors.push(forbidden(
            "additionalProperties",
            "must be undefined to be structural",
        ));
    }
    if schema.get("default").is_some_and(|d| !d.is_null()) {
        errors.push(forbidden("default", "must be undefined to be structural"));
    }
    if !str_field(schema, "title").is_empty() {
        errors.push(forbidden("title", "must be empty to be structural"));
    }
    if !str_field(schema, "description").is_empty() {
        errors.push(forbidden("description", "must be empty to be structural"));
    }
    if flag(schema, "nullable") {
        errors.push(forbidden("nullable", "must be false to be structural"));
    }
    for extension in [
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ] {
        if flag(schema, extension) {
            errors.push(forbidden(extension, "must be false to be structural"));
        }
    }
    if schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .is_some_and(|k| !k.is_empty())
    {
        errors.push(forbidden(
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ));
    }
    if schema.get("x-kubernetes-list-type").is_some() {
        errors.push(forbidden(
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ));
    }
    if schema.pointer("/properties/metadata").is_some() {
        errors.push(FieldError::forbidden(
            &key(&child(path, "properties"), "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(schema: Value) -> Vec<String> {
        validate(&schema, "s")
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    #[test]
    fn untyped_nodes_and_arrays_without_items() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"a": {"description": "x"}, "b": {"type": "array"},
                           "free": {"x-kubernetes-preserve-unknown-fields": true}}}}});
        assert_eq!(
            messages(schema),
            vec![
                "s.properties[spec].properties[a].type: Required value: must not be empty for specified object fields",
                "s.properties[spec].properties[b].items: Required value: must be specified",
            ]
        );
        assert_eq!(
            messages(json!({"properties": {"spec": {"type": "object"}}})),
            vec!["s.type: Required value: must not be empty at the root"]
        );
    }

    #[test]
    fn junctors_hold_value_validations_only() {
        let schema = json!({"type": "object", "properties": {
            "m": {"type": "string", "anyOf": [{"type": "string"}]},
            "ios": {"x-kubernetes-int-or-string": true,
                    "anyOf": [{"type": "integer"}, {"type": "string"}]}
        }});
        assert_eq!(
            messages(schema),
            vec!["s.properties[m].anyOf[0].type: Forbidden: must be empty to be structural"]
        );
    }
}
