//! Structural-schema behaviour of custom resources: defaulting, pruning and validation.
//!
//! This mirrors what kube-apiserver does with a CRD version's `openAPIV3Schema` when a custom
//! resource is created or updated: prune unknown fields, apply `default`s, validate with the
//! kube-openapi validator (plus the list-type, embedded-resource and CEL passes that
//! apiextensions-apiserver adds), and print a 422 `Invalid` status message. Messages follow
//! kube-apiserver's `field.Error` formatting so tests can compare them with a real cluster's.
//!
//! Supported: `type` (with `format` quirks of kube-openapi), `nullable`,
//! `x-kubernetes-int-or-string`, `required`, `enum`, `minimum`/`maximum` (+ exclusive),
//! `multipleOf`, `minLength`/`maxLength`, `pattern` (through the CEL `matches` function, i.e. the
//! Rust `regex` engine rather than Go's RE2: the syntax is the same for practical patterns, but
//! `\d`/`\w` are Unicode-aware), `minItems`/`maxItems`, `minProperties`/`maxProperties`,
//! `x-kubernetes-list-type: set|map`, `x-kubernetes-embedded-resource` (apiVersion/kind checks),
//! `x-kubernetes-preserve-unknown-fields` and `x-kubernetes-validations` (CEL, via kube-cel).
//!
//! String `format`s are checked as kube-openapi checks them (see [`super::formats`]); writes of
//! the status subresource validate `status` on its own, with paths relative to it in messages
//! ([`validate_status`]).
//!
//! Not supported: `allOf`/`anyOf`/`oneOf`/`not` value validations, `uniqueItems` (forbidden in
//! structural schemas anyway), metadata validation of embedded objects and the runtime CEL cost
//! limit (the CRD's static cost limits are checked at CRD admission, [`super::crd_admission`]).

use serde_json::{Map, Number, Value};

pub use super::field::{ErrorType, FieldError};
use super::formats;
use super::render::{field_value, go_float, go_json, go_quote};

/// An error whose body shows the bad value, already rendered (`field.Invalid` & co).
fn with_value(field: &str, kind: ErrorType, value: &str, detail: &str) -> FieldError {
    FieldError::new(field, kind, Some(value), detail)
}

/// An error whose body omits the value (`field.Required`, `Forbidden`, `TooLong`).
fn without_value(field: &str, kind: ErrorType, detail: &str) -> FieldError {
    FieldError::new(field, kind, None, detail)
}

/// Fields of a resource's root (and of an embedded resource) that belong to the API machinery,
/// not to the schema's author.
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

// ---------------------------------------------------------------------------------------------
// Schema accessors
// ---------------------------------------------------------------------------------------------

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

fn property<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    properties(schema).and_then(|props| props.get(name))
}

/// `additionalProperties`: `None` when not declared (or `false`), `Some(None)` for `true`,
/// `Some(Some(schema))` for a map's value schema.
fn additional_properties(schema: &Value) -> Option<Option<&Value>> {
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) => Some(None),
        Some(value @ Value::Object(_)) => Some(Some(value)),
        _ => None,
    }
}

/// The map value schema, when `additionalProperties` is a schema.
fn map_values_schema(schema: &Value) -> Option<&Value> {
    additional_properties(schema).flatten()
}

fn items_schema(schema: &Value) -> Option<&Value> {
    schema.get("items").filter(|items| items.is_object())
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

fn nullable(schema: &Value) -> bool {
    flag(schema, "nullable")
}

fn preserves_unknown_fields(schema: &Value) -> bool {
    flag(schema, "x-kubernetes-preserve-unknown-fields")
}

fn is_embedded_resource(schema: &Value) -> bool {
    flag(schema, "x-kubernetes-embedded-resource")
}

/// A usable `default`: kube-apiserver treats `default: null` as no default.
fn default_of(schema: &Value) -> Option<&Value> {
    schema.get("default").filter(|value| !value.is_null())
}

fn unsigned(schema: &Value, name: &str) -> Option<u64> {
    schema.get(name).and_then(Value::as_u64)
}

fn float(schema: &Value, name: &str) -> Option<f64> {
    schema.get(name).and_then(Value::as_f64)
}

fn str_field<'a>(schema: &'a Value, name: &str) -> &'a str {
    schema.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The accepted JSON types; int-or-string is `integer,string` as kube-openapi converts it.
fn schema_types(schema: &Value) -> Vec<&str> {
    if flag(schema, "x-kubernetes-int-or-string") {
        return vec!["integer", "string"];
    }
    match str_field(schema, "type") {
        "" => Vec::new(),
        single => vec![single],
    }
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// A property (or, in kube-openapi's errors, a map key): `spec.replicas`.
fn child_path(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}.{name}")
    }
}

fn index_path(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

/// A map key as `field.Path.Key` prints it: `spec.flows[default]`.
fn key_path(base: &str, key: &str) -> String {
    format!("{base}[{key}]")
}

// ---------------------------------------------------------------------------------------------
// Defaulting
// ---------------------------------------------------------------------------------------------

/// Applies `default` values from an OpenAPI v3 structural schema (a CRD version's
/// `schema.openAPIV3Schema`, as JSON) to `object`, recursively, like kube-apiserver does:
/// a missing property with a `default` gets it (and the default itself is then defaulted
/// recursively); defaults inside `items` apply to each element, inside `additionalProperties`
/// to each map value. Nulls: a property explicitly null and not `nullable` is treated as absent
/// (dropped, then defaulted) — like the apiserver.
pub fn apply_defaults(schema: &serde_json::Value, object: &mut serde_json::Value) {
    default_value(schema, object);
}

fn default_value(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => default_object(schema, map),
        Value::Array(items) => default_items(schema, items),
        _ => {}
    }
}

fn default_object(schema: &Value, map: &mut Map<String, Value>) {
    if let Some(props) = properties(schema) {
        for (name, prop_schema) in props {
            fill_property(map, name, prop_schema);
        }
    }
    let values_schema = map_values_schema(schema);
    if let Some(values_schema) = values_schema {
        // A map value cannot be missing, only null: only a null one takes the default, and a
        // non-nullable null without a default is dropped (the apiserver's pruning of nulls).
        map.retain(|name, value| {
            if property(schema, name).is_some() || !value.is_null() || nullable(values_schema) {
                return true;
            }
            match default_of(values_schema) {
                Some(default) => {
                    *value = default.clone();
                    true
                }
                None => false,
            }
        });
    }
    // Recurse after filling in, so that a default object gets its own inner defaults.
    for (name, child) in map.iter_mut() {
        if let Some(prop_schema) = property(schema, name) {
            default_value(prop_schema, child);
        } else if let Some(values_schema) = values_schema {
            default_value(values_schema, child);
        }
    }
}

/// Gives a missing (or non-nullable null) property its default; drops a non-nullable null
/// without one, as the apiserver does before validating.
fn fill_property(map: &mut Map<String, Value>, name: &str, prop_schema: &Value) {
    let absent = match map.get(name) {
        None => true,
        Some(Value::Null) if !nullable(prop_schema) => true,
        Some(_) => false,
    };
    if !absent {
        return;
    }
    match default_of(prop_schema) {
        Some(default) => {
            map.insert(name.to_string(), default.clone());
        }
        None => {
            map.remove(name);
        }
    }
}

fn default_items(schema: &Value, items: &mut [Value]) {
    let Some(item_schema) = items_schema(schema) else {
        return;
    };
    for item in items.iter_mut() {
        // A list element cannot be removed, so only a null one with a default is replaced.
        if item.is_null()
            && !nullable(item_schema)
            && let Some(default) = default_of(item_schema)
        {
            *item = default.clone();
        }
        default_value(item_schema, item);
    }
}

// ---------------------------------------------------------------------------------------------
// Pruning
// ---------------------------------------------------------------------------------------------

/// Prunes unknown fields like kube-apiserver: any object property not declared in `properties`
/// is removed, unless the schema node has `x-kubernetes-preserve-unknown-fields: true` (then
/// unknown fields are kept, but declared properties are still recursed into) or declares
/// `additionalProperties` (map: recurse into each value with that schema). At the top level,
/// `apiVersion`, `kind`, `metadata` are always kept (metadata is not pruned by this function),
/// and so are those of an `x-kubernetes-embedded-resource` object. Scalars, including
/// `x-kubernetes-int-or-string` values, are left as they are.
pub fn prune(schema: &serde_json::Value, object: &mut serde_json::Value) {
    // The apiserver prunes the root as an embedded resource, which is what keeps its
    // apiVersion, kind and metadata.
    prune_value(Some(schema), object, true);
}

/// `schema` is `None` where the schema says nothing (no `items`, `additionalProperties: true`):
/// objects there lose all their fields, as in the apiserver.
fn prune_value(schema: Option<&Value>, value: &mut Value, is_root: bool) {
    if let Some(schema) = schema
        && preserves_unknown_fields(schema)
    {
        prune_declared_only(schema, value, is_root);
        return;
    }
    match value {
        Value::Object(map) => match schema {
            Some(schema) => prune_object(schema, map, is_root),
            None => map.clear(),
        },
        Value::Array(items) => {
            let item_schema = schema.and_then(items_schema);
            for item in items.iter_mut() {
                prune_value(item_schema, item, false);
            }
        }
        // Scalars (including int-or-string values) have nothing to prune.
        _ => {}
    }
}

fn prune_object(schema: &Value, map: &mut Map<String, Value>, is_root: bool) {
    let keeps_meta = is_root || is_embedded_resource(schema);
    let additional = additional_properties(schema);
    map.retain(|name, child| {
        if keeps_meta && META_FIELDS.contains(&name.as_str()) {
            return true;
        }
        if let Some(prop_schema) = property(schema, name) {
            prune_value(Some(prop_schema), child, false);
            true
        } else if let Some(values_schema) = additional {
            prune_value(values_schema, child, false);
            true
        } else {
            false
        }
    });
}

/// Under `x-kubernetes-preserve-unknown-fields` unknown fields stay, but declared ones are
/// still pruned inside.
fn prune_declared_only(schema: &Value, value: &mut Value, is_root: bool) {
    match value {
        Value::Object(map) => {
            let keeps_meta = is_root || is_embedded_resource(schema);
            let additional = additional_properties(schema);
            for (name, child) in map.iter_mut() {
                if keeps_meta && META_FIELDS.contains(&name.as_str()) {
                    continue;
                }
                if let Some(prop_schema) = property(schema, name) {
                    prune_value(Some(prop_schema), child, false);
                } else if let Some(values_schema) = additional {
                    prune_value(values_schema, child, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = items_schema(schema) {
                for item in items.iter_mut() {
                    prune_declared_only(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Validates `object` against the schema the way kube-apiserver does for a custom resource and
/// returns every problem (empty = valid): `type` (object/array/string/integer/number/boolean;
/// integer accepts JSON numbers with no fractional part; `nullable`; int-or-string accepts
/// integer or string), `required`, `enum`, `minimum`/`maximum` (+ exclusive), `minLength`/
/// `maxLength`, `minItems`/`maxItems`, `minProperties`/`maxProperties`, `pattern`, `multipleOf`,
/// `x-kubernetes-list-type: set` (duplicates → FieldValueDuplicate `Duplicate value: ...`)
/// and `map` (duplicate keys), string `format`s, apiVersion/kind of embedded resources, then the
/// CEL rules `x-kubernetes-validations`.
///
/// Like kube-apiserver, CEL rules are not run at all when an earlier error is a type,
/// required, enum, too-long or too-many one (the data may not have the shape the rules expect);
/// if the schema has rules, a last error with the field `<nil>` then says so, as the apiserver
/// does. The top-level apiVersion/kind/metadata are not validated by this function.
pub fn validate(schema: &serde_json::Value, object: &serde_json::Value) -> Vec<FieldError> {
    validate_after(schema, object, Vec::new())
}

/// [`validate`] after the errors `earlier` checks found (object metadata): they come first and
/// count when deciding whether the CEL rules run.
pub fn validate_after(
    schema: &serde_json::Value,
    object: &serde_json::Value,
    earlier: Vec<FieldError>,
) -> Vec<FieldError> {
    let mut errors = earlier;
    check_value(schema, object, "", "", &META_FIELDS, &mut errors);
    check_embedded_resources(schema, object, "", &META_FIELDS, &mut errors);
    check_list_types(schema, object, "", &META_FIELDS, &mut errors);
    run_cel_pass(schema, object, &mut errors);
    errors
}

/// The CEL pass, or the notice that it was skipped after blocking errors.
fn run_cel_pass(schema: &Value, object: &Value, errors: &mut Vec<FieldError>) {
    if has_cel_rules(schema) {
        if errors.iter().any(FieldError::blocks_cel) {
            errors.push(cel_skipped_notice());
        } else {
            check_cel(schema, object, "", &META_FIELDS, errors);
        }
    }
}

/// Validates a write of the status subresource the way apiextensions-apiserver does: the OpenAPI
/// pass covers `status` alone (its messages name paths relative to `status`), the list-type
/// and CEL passes the whole object.
pub fn validate_status(schema: &serde_json::Value, object: &serde_json::Value) -> Vec<FieldError> {
    validate_status_after(schema, object, Vec::new())
}

/// [`validate_status`] after the errors `earlier` checks found.
pub fn validate_status_after(
    schema: &serde_json::Value,
    object: &serde_json::Value,
    earlier: Vec<FieldError>,
) -> Vec<FieldError> {
    let mut errors = earlier;
    if let (Some(status_schema), Some(status)) = (property(schema, "status"), object.get("status"))
    {
        check_value(status_schema, status, "status", "status", &[], &mut errors);
        check_embedded_resources(status_schema, status, "status", &[], &mut errors);
    }
    check_list_types(schema, object, "", &META_FIELDS, &mut errors);
    run_cel_pass(schema, object, &mut errors);
    errors
}

// --- The OpenAPI pass (kube-openapi's SchemaValidator) ---------------------------------------

/// Validates one value in kube-openapi's order: type, string, number, array, enum, object.
/// `skip` lists object fields left alone (the root's apiVersion/kind/metadata).
fn check_value(
    schema: &Value,
    value: &Value,
    path: &str,
    base: &str,
    skip: &[&str],
    errors: &mut Vec<FieldError>,
) {
    errors.extend(check_type(schema, value, path, base));
    match value {
        Value::String(text) => {
            errors.extend(check_string(schema, text, path, base));
            errors.extend(check_format(schema, text, path, base));
        }
        Value::Number(number) => check_number(schema, number, path, base, errors),
        Value::Array(items) => check_array(schema, items, path, base, errors),
        _ => {}
    }
    errors.extend(check_enum(schema, value, path));
    if let Value::Object(map) = value {
        check_object(schema, map, path, base, skip, errors);
    }
}

/// The path kube-openapi names in its messages: relative to the validated node, which is the
/// root for writes of the object and `status` for writes of the status subresource.
fn in_body<'a>(path: &'a str, base: &str) -> &'a str {
    if base.is_empty() {
        return path;
    }
    match path.strip_prefix(base) {
        Some("") => "",
        Some(rest) => rest.strip_prefix('.').unwrap_or(path),
        None => path,
    }
}

/// kube-openapi's `errors.InvalidType` turned into a field error: the "value" it shows is the
/// JSON type (or format) the data had, not the data.
fn type_error(path: &str, base: &str, expected: &str, actual: &str) -> FieldError {
    let detail = format!(
        "{} in body must be of type {expected}: {}",
        in_body(path, base),
        go_quote(actual)
    );
    with_value(path, ErrorType::TypeInvalid, &go_quote(actual), &detail)
}

/// The JSON type of decoded data, and the Go format kube-openapi infers from its Go type (the
/// apiserver decodes integers to int64 and other numbers to float64).
fn json_type(value: &Value) -> (&'static str, &'static str) {
    match value {
        Value::Null => ("null", ""),
        Value::Bool(_) => ("boolean", ""),
        Value::Number(number) if number.is_i64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::String(_) => ("string", ""),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
    }
}

/// kube-openapi's typeValidator, including its handling of `format` on non-string data.
fn check_type(schema: &Value, value: &Value, path: &str, base: &str) -> Option<FieldError> {
    let types = schema_types(schema);
    let format = str_field(schema, "format");
    if types.is_empty() && format.is_empty() {
        return None;
    }
    if value.is_null() {
        let allowed = types.is_empty() || types.contains(&"null") || nullable(schema);
        return (!allowed).then(|| type_error(path, base, &types.join(","), "null"));
    }
    let (actual, actual_format) = json_type(value);
    // A float with no fractional part is an integer; an integer is also a number.
    let float_int = actual == "number"
        && types.contains(&"integer")
        && value.as_f64().is_some_and(is_json_integer);
    let int_float = actual == "integer" && types.contains(&"number");
    let matches = types.contains(&actual) || float_int || int_float;
    // kube-openapi first compares the Go format of non-string, non-array data with `format`.
    let stringish = value.is_string() || value.is_array();
    let format_ok = format.is_empty() || stringish || matches || actual_format == format;
    if !format_ok {
        return Some(type_error(path, base, format, actual_format));
    }
    let numeric_schema = types.contains(&"number") || types.contains(&"integer");
    if !numeric_schema && !format.is_empty() && stringish {
        return None;
    }
    (!matches).then(|| type_error(path, base, &types.join(","), actual))
}

/// kube-openapi's format validator, for the string formats the apiserver keeps (on schemas of
/// type string or without a type): a string that is not of its format is a type error.
fn check_format(schema: &Value, text: &str, path: &str, base: &str) -> Option<FieldError> {
    let format = str_field(schema, "format");
    let types = schema_types(schema);
    if format.is_empty() || !(types.is_empty() || types == ["string"]) {
        return None;
    }
    if formats::check(format, text) != Some(false) {
        return None;
    }
    let detail = format!(
        "{} in body must be of type {format}: {}",
        in_body(path, base),
        go_quote(text)
    );
    Some(with_value(
        path,
        ErrorType::TypeInvalid,
        &go_quote(text),
        &detail,
    ))
}

/// Like go-openapi's `swag.IsFloat64AJSONInteger`: a whole number, give or take rounding.
fn is_json_integer(value: f64) -> bool {
    value.is_finite() && (value - value.round()).abs() <= 1e-9 * value.abs().max(1.0)
}

/// maxLength, minLength and pattern; like kube-openapi, only the first failure is reported.
fn check_string(schema: &Value, text: &str, path: &str, base: &str) -> Option<FieldError> {
    let length = text.chars().count() as u64;
    if let Some(max) = unsigned(schema, "maxLength")
        && length > max
    {
        // kube-openapi counts characters (runes); apimachinery's TooLong says "bytes" all the same.
        let detail = format!("may not be more than {max} bytes");
        return Some(without_value(path, ErrorType::TooLong, &detail));
    }
    if let Some(min) = unsigned(schema, "minLength")
        && length < min
    {
        let detail = format!(
            "{} in body should be at least {min} chars long",
            in_body(path, base)
        );
        return Some(invalid(path, &go_quote(text), &detail));
    }
    let pattern = str_field(schema, "pattern");
    if !pattern.is_empty() && pattern_matches(pattern, text) == Some(false) {
        let detail = format!("{} in body should match '{pattern}'", in_body(path, base));
        return Some(invalid(path, &go_quote(text), &detail));
    }
    None
}

fn invalid(path: &str, value: &str, detail: &str) -> FieldError {
    with_value(path, ErrorType::Invalid, value, detail)
}

/// Whether `text` matches `pattern` (unanchored, like Go's `regexp.MatchString`), using the CEL
/// `matches` function kube-cel already ships rather than another regex dependency. `None`
/// when the pattern does not compile: the apiserver would have refused such a CRD, so nothing
/// is reported.
fn pattern_matches(pattern: &str, text: &str) -> Option<bool> {
    use kube_cel::cel::{Context, Program, Value as CelValue};
    let program = Program::compile("text.matches(pattern)").ok()?;
    let mut context = Context::default();
    context.add_variable_from_value("text", text);
    context.add_variable_from_value("pattern", pattern);
    match program.execute(&context) {
        Ok(CelValue::Bool(matched)) => Some(matched),
        _ => None,
    }
}

/// A decoded JSON number as the apiserver holds it: int64, or float64 for everything else.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn of(number: &Number) -> Self {
        match number.as_i64() {
            Some(int) => Self::Int(int),
            None => Self::Float(number.as_f64().unwrap_or(f64::NAN)),
        }
    }

    fn render(self) -> String {
        match self {
            Self::Int(int) => int.to_string(),
            Self::Float(float) => go_float(float),
        }
    }

    /// A schema bound in the data's own Go type: kube-openapi truncates it for int64 data.
    fn bound(self, bound: f64) -> Self {
        match self {
            // Truncation (saturating) is what Go's int64(float64) conversion does in range.
            Self::Int(_) => Self::Int(bound.trunc() as i64),
            Self::Float(_) => Self::Float(bound),
        }
    }

    /// `self < other`, or `self <= other` when `or_equal`; both have the same variant.
    fn below(self, other: Self, or_equal: bool) -> bool {
        match (self, other) {
            (Self::Int(a), Self::Int(b)) => a < b || (or_equal && a == b),
            (a, b) => {
                let (a, b) = (a.as_f64(), b.as_f64());
                a < b || (or_equal && a == b)
            }
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Self::Int(int) => int as f64,
            Self::Float(float) => float,
        }
    }
}

/// multipleOf, minimum, maximum — all reported, in kube-openapi's order.
fn check_number(
    schema: &Value,
    number: &Number,
    path: &str,
    base: &str,
    errors: &mut Vec<FieldError>,
) {
    let data = Num::of(number);
    if let Some(factor) = float(schema, "multipleOf")
        && let Some(factor) = not_multiple_of(data, factor)
    {
        let detail = format!(
            "{} in body should be a multiple of {factor}",
            in_body(path, base)
        );
        errors.push(invalid(path, &data.render(), &detail));
    }
    if let Some(min) = float(schema, "minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        let bound = data.bound(min);
        if data.below(bound, exclusive) {
            let relation = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let detail = format!(
                "{} in body should be {relation} {}",
                in_body(path, base),
                bound.render()
            );
            errors.push(invalid(path, &data.render(), &detail));
        }
    }
    if let Some(max) = float(schema, "maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        let bound = data.bound(max);
        if bound.below(data, exclusive) {
            let relation = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            let detail = format!(
                "{} in body should be {relation} {}",
                in_body(path, base),
                bound.render()
            );
            errors.push(invalid(path, &data.render(), &detail));
        }
    }
}

/// The factor as printed, when `data` is not a multiple of it.
fn not_multiple_of(data: Num, factor: f64) -> Option<String> {
    if factor <= 0.0 {
        return None; // refused at CRD creation
    }
    match data {
        Num::Int(int) if factor.trunc() as i64 != 0 => {
            let factor = factor.trunc() as i64;
            (int % factor != 0).then(|| factor.to_string())
        }
        _ => (!is_json_integer(data.as_f64() / factor)).then(|| go_float(factor)),
    }
}

/// items first, then minItems and maxItems.
fn check_array(
    schema: &Value,
    items: &[Value],
    path: &str,
    base: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(item_schema) = items_schema(schema) {
        for (index, item) in items.iter().enumerate() {
            check_value(
                item_schema,
                item,
                &index_path(path, index),
                base,
                &[],
                errors,
            );
        }
    }
    let count = items.len() as u64;
    if let Some(min) = unsigned(schema, "minItems")
        && count < min
    {
        let detail = format!(
            "{} in body should have at least {min} items",
            in_body(path, base)
        );
        errors.push(invalid(path, &count.to_string(), &detail));
    }
    if let Some(max) = unsigned(schema, "maxItems")
        && count > max
    {
        errors.push(too_many(path, count, max));
    }
}

fn too_many(path: &str, count: u64, max: u64) -> FieldError {
    let detail = format!("must have at most {max} items");
    with_value(path, ErrorType::TooMany, &count.to_string(), &detail)
}

/// `enum`. Like kube-openapi, null never matches (not even a `null` in the list), so a
/// nullable field with an enum refuses an explicit null.
fn check_enum(schema: &Value, value: &Value, path: &str) -> Option<FieldError> {
    let allowed = schema.get("enum").and_then(Value::as_array)?;
    if allowed.is_empty() || (!value.is_null() && allowed.iter().any(|a| same_json(a, value))) {
        return None;
    }
    let supported: Vec<String> = allowed
        .iter()
        .map(|a| match a {
            Value::String(text) => go_quote(text),
            other => go_quote(&go_json(other)),
        })
        .collect();
    let detail = format!("supported values: {}", supported.join(", "));
    Some(with_value(
        path,
        ErrorType::NotSupported,
        &field_value(value),
        &detail,
    ))
}

/// JSON equality where 1 and 1.0 are the same number (Go converts the data to the enum
/// value's type before comparing).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        _ => a == b,
    }
}

/// min/maxProperties (which stop the object's checks, as in kube-openapi), map values,
/// properties, then required.
fn check_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    base: &str,
    skip: &[&str],
    errors: &mut Vec<FieldError>,
) {
    let count = map.len() as u64;
    if let Some(min) = unsigned(schema, "minProperties")
        && count < min
    {
        let detail = format!(
            "{} in body should have at least {min} properties",
            in_body(path, base)
        );
        errors.push(invalid(path, &count.to_string(), &detail));
        return;
    }
    if let Some(max) = unsigned(schema, "maxProperties")
        && count > max
    {
        errors.push(too_many(path, count, max));
        return;
    }
    let skipped = |name: &str| skip.contains(&name);
    if let Some(values_schema) = map_values_schema(schema) {
        for (name, child) in map {
            if property(schema, name).is_none() && !skipped(name) {
                check_value(
                    values_schema,
                    child,
                    &child_path(path, name),
                    base,
                    &[],
                    errors,
                );
            }
        }
    }
    for (name, prop_schema) in properties(schema).into_iter().flatten() {
        if let Some(child) = map.get(name).filter(|_| !skipped(name)) {
            check_value(
                prop_schema,
                child,
                &child_path(path, name),
                base,
                &[],
                errors,
            );
        }
    }
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(name) && !skipped(name) {
            let field = child_path(path, name);
            errors.push(without_value(&field, ErrorType::Required, ""));
        }
    }
}

// --- The walk of apiextensions' own passes ----------------------------------------------------

/// Calls `visit` with the schema, data and path of each child of `value` that the schema
/// describes, in the order and with the paths of apiextensions' walks (list-type, embedded
/// resource and CEL validation): map values first, written `[key]` as `field.Path.Key` does,
/// then properties, or list items. `skip` names object fields left out.
fn for_each_child(
    schema: &Value,
    value: &Value,
    path: &str,
    skip: &[&str],
    mut visit: impl FnMut(&Value, &Value, &str),
) {
    match value {
        Value::Object(map) => {
            let children = || {
                map.iter()
                    .filter(|(name, _)| !skip.contains(&name.as_str()))
            };
            if let Some(values_schema) = map_values_schema(schema) {
                for (name, child) in children().filter(|(name, _)| property(schema, name).is_none())
                {
                    visit(values_schema, child, &key_path(path, name));
                }
            }
            for (name, child) in children() {
                if let Some(prop_schema) = property(schema, name) {
                    visit(prop_schema, child, &child_path(path, name));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = items_schema(schema) {
                for (index, item) in items.iter().enumerate() {
                    visit(item_schema, item, &index_path(path, index));
                }
            }
        }
        _ => {}
    }
}

// --- Embedded resources (apiextensions' schemaobjectmeta.Validate) --------------------------

/// Checks apiVersion and kind of every `x-kubernetes-embedded-resource` in the object.
fn check_embedded_resources(
    schema: &Value,
    value: &Value,
    path: &str,
    skip: &[&str],
    errors: &mut Vec<FieldError>,
) {
    if let Value::Object(map) = value
        && is_embedded_resource(schema)
    {
        check_type_meta(map, path, errors);
    }
    for_each_child(schema, value, path, skip, |schema, child, path| {
        check_embedded_resources(schema, child, path, &[], errors);
    });
}

/// An embedded object needs a non-empty string apiVersion and kind (metadata is optional).
fn check_type_meta(map: &Map<String, Value>, path: &str, errors: &mut Vec<FieldError>) {
    for name in ["apiVersion", "kind"] {
        let field = child_path(path, name);
        match map.get(name) {
            None => errors.push(without_value(
                &field,
                ErrorType::Required,
                "must not be empty",
            )),
            Some(Value::String(text)) if text.is_empty() => {
                errors.push(invalid(&field, &go_quote(text), "must not be empty"));
            }
            Some(Value::String(_)) => {}
            Some(other) => errors.push(invalid(&field, &field_value(other), "must be a string")),
        }
    }
}

// --- List types (apiextensions' ValidateListSetsAndMaps) -------------------------------------

fn check_list_types(
    schema: &Value,
    value: &Value,
    path: &str,
    skip: &[&str],
    errors: &mut Vec<FieldError>,
) {
    if let Value::Array(items) = value {
        match str_field(schema, "x-kubernetes-list-type") {
            "set" => check_list_set(items, path, errors),
            "map" => check_list_map(schema, items, path, errors),
            _ => {}
        }
    }
    for_each_child(schema, value, path, skip, |schema, child, path| {
        check_list_types(schema, child, path, &[], errors);
    });
}

/// A set reports each repeated value once, at its second occurrence.
fn check_list_set(items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    for (index, item) in items.iter().enumerate() {
        let earlier = items[..index].iter().filter(|seen| *seen == item).count();
        if earlier == 1 {
            errors.push(with_value(
                &index_path(path, index),
                ErrorType::Duplicate,
                &field_value(item),
                "",
            ));
        }
    }
}

/// A list-map's elements must be objects (or null) with unique key tuples; every repeat is
/// reported. A missing key takes the key property's default, else counts as "unspecified".
fn check_list_map(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let mut non_objects = false;
    for (index, item) in items.iter().enumerate() {
        if !item.is_object() && !item.is_null() {
            non_objects = true;
            let detail = "must be an object for an array of list-type map";
            errors.push(invalid(
                &index_path(path, index),
                &field_value(item),
                detail,
            ));
        }
    }
    if non_objects {
        return;
    }
    let key_names: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if key_names.is_empty() {
        return; // refused at CRD creation
    }
    let item_schema = items_schema(schema).unwrap_or(&Value::Null);
    let mut seen: Vec<Vec<Option<&Value>>> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Value::Object(element) = item else {
            continue;
        };
        let keys: Vec<Option<&Value>> = key_names
            .iter()
            .map(|name| {
                element
                    .get(*name)
                    .or_else(|| property(item_schema, name).and_then(default_of))
            })
            .collect();
        if seen.contains(&keys) {
            let shown = list_map_key_json(&key_names, &keys);
            errors.push(with_value(
                &index_path(path, index),
                ErrorType::Duplicate,
                &shown,
                "",
            ));
        } else {
            seen.push(keys);
        }
    }
}

/// The duplicate's key fields as a JSON object; an unspecified key shows as `{}`.
fn list_map_key_json(names: &[&str], keys: &[Option<&Value>]) -> String {
    let shown: Map<String, Value> = names
        .iter()
        .zip(keys)
        .map(|(name, key)| {
            let key = key.cloned().unwrap_or_else(|| Value::Object(Map::new()));
            (name.to_string(), key)
        })
        .collect();
    go_json(&Value::Object(shown))
}

// --- CEL rules (x-kubernetes-validations) ----------------------------------------------------

fn has_own_rules(schema: &Value) -> bool {
    let own = |node: &Value| {
        node.get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .is_some_and(|rules| !rules.is_empty())
    };
    own(schema) || branches(schema).any(own)
}

/// The node's allOf/anyOf/oneOf sub-schemas, whose rules kube-cel evaluates at the node.
fn branches(schema: &Value) -> impl Iterator<Item = &Value> {
    ["allOf", "anyOf", "oneOf"]
        .into_iter()
        .filter_map(|keyword| schema.get(keyword).and_then(Value::as_array))
        .flatten()
}

fn has_cel_rules(schema: &Value) -> bool {
    has_own_rules(schema)
        || properties(schema).is_some_and(|props| props.values().any(has_cel_rules))
        || items_schema(schema).is_some_and(has_cel_rules)
        || map_values_schema(schema).is_some_and(has_cel_rules)
}

/// kube-apiserver's fieldless error when it skipped the CEL rules.
fn cel_skipped_notice() -> FieldError {
    with_value(
        "<nil>",
        ErrorType::Invalid,
        "null",
        "some validation rules were not checked because the object was invalid; \
         correct the existing errors to complete validation",
    )
}

/// Evaluates every node's rules where the data has that node, parents before children. Each
/// node's own rules are run by kube-cel on that node alone, so that each error is known to come
/// from it: its message shows the node's schema type as the apiserver does.
fn check_cel(
    schema: &Value,
    value: &Value,
    path: &str,
    skip: &[&str],
    errors: &mut Vec<FieldError>,
) {
    if value.is_null() {
        return; // the apiserver does not evaluate rules on null
    }
    if has_own_rules(schema) {
        run_node_rules(schema, value, path, errors);
    }
    for_each_child(schema, value, path, skip, |schema, child, path| {
        check_cel(schema, child, path, &[], errors);
    });
}

fn run_node_rules(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let node = without_nested_rules(schema);
    let Err(failures) = kube_cel::validate(&node, value, None) else {
        return;
    };
    for failure in failures.into_vec() {
        errors.push(cel_error(path, value, &failure));
    }
}

/// The node with its children's rules removed (kube-cel would otherwise evaluate them too),
/// keeping their types, which kube-cel needs to convert the data.
fn without_nested_rules(schema: &Value) -> Value {
    let mut node = schema.clone();
    if let Some(Value::Object(props)) = node.get_mut("properties") {
        props.values_mut().for_each(strip_rules);
    }
    for child in ["items", "additionalProperties"] {
        if let Some(child) = node.get_mut(child) {
            strip_rules(child);
        }
    }
    node
}

fn strip_rules(schema: &mut Value) {
    let Value::Object(node) = schema else {
        return;
    };
    node.remove("x-kubernetes-validations");
    for (keyword, child) in node.iter_mut() {
        match (keyword.as_str(), child) {
            ("properties", Value::Object(props)) => props.values_mut().for_each(strip_rules),
            ("items" | "additionalProperties", child) => strip_rules(child),
            ("allOf" | "anyOf" | "oneOf", Value::Array(list)) => {
                list.iter_mut().for_each(strip_rules)
            }
            _ => {}
        }
    }
}

/// A kube-cel failure as 1.36 reports a rule: `field.Invalid(path, <the node's value>, message)`
/// — a scalar value is shown the Go way, a list, map or object is left out — or the error type
/// the rule's `reason` asks for (Forbidden and Required show no value, Duplicate none either).
fn cel_error(path: &str, value: &Value, failure: &kube_cel::ValidationError) -> FieldError {
    let field = rule_field_path(path, &failure.field_path);
    let message = failure.message.trim();
    let shown = match value {
        Value::Array(_) | Value::Object(_) | Value::Null => None,
        scalar => Some(field_value(scalar)),
    };
    let reason = match failure.kind {
        kube_cel::ErrorKind::ValidationFailure => failure.reason.as_deref(),
        _ => None,
    };
    match reason {
        Some("FieldValueForbidden") => without_value(&field, ErrorType::Forbidden, message),
        Some("FieldValueRequired") => without_value(&field, ErrorType::Required, message),
        Some("FieldValueDuplicate") => FieldError::new(&field, ErrorType::Duplicate, None, ""),
        _ => FieldError::new(&field, ErrorType::Invalid, shown.as_deref(), message),
    }
}

/// Joins the node's path with what kube-cel reports relative to it (empty, or the rule's
/// `fieldPath`, which may start with a dot).
fn rule_field_path(base: &str, relative: &str) -> String {
    if relative.is_empty() {
        base.to_string()
    } else if base.is_empty() {
        relative.trim_start_matches('.').to_string()
    } else if relative.starts_with('.') || relative.starts_with('[') {
        format!("{base}{relative}")
    } else {
        format!("{base}.{relative}")
    }
}

// ---------------------------------------------------------------------------------------------
// The 422 message
// ---------------------------------------------------------------------------------------------

/// The whole message of a 422 Invalid status as kube-apiserver formats it for a custom resource:
/// `LoadTest.stampede.dev "name" is invalid: [spec.a: Required value, spec.b: Invalid value: ...]`
/// (with a single error, no brackets: `Kind.group "name" is invalid: spec.a: Required value`).
pub fn invalid_message(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let head = format!("{qualified} {} is invalid", go_quote(name));
    // Like the apiserver's error aggregate, identical messages are shown once.
    let mut messages: Vec<&str> = Vec::new();
    for error in errors {
        if !messages.contains(&error.message.as_str()) {
            messages.push(&error.message);
        }
    }
    match messages.as_slice() {
        [] => head,
        [single] => format!("{head}: {single}"),
        several => format!("{head}: [{}]", several.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A root schema with the given `spec` schema, as a CRD version declares it.
    fn root(spec: Value) -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": spec,
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
            }
        })
    }

    /// A root schema whose `spec` has the given properties.
    fn spec_with(properties: Value) -> Value {
        root(json!({"type": "object", "properties": properties}))
    }

    fn messages(schema: &Value, object: &Value) -> Vec<String> {
        validate(schema, object)
            .into_iter()
            .map(|error| error.message)
            .collect()
    }

    /// The single error for `spec.x` holding `value` under the property schema `x`.
    fn only_error(x: Value, value: Value) -> FieldError {
        let schema = spec_with(json!({ "x": x }));
        let mut errors = validate(&schema, &json!({"spec": {"x": value}}));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.remove(0)
    }

    // --- defaulting ---------------------------------------------------------------------------

    #[test]
    fn defaults_fill_missing_nested_properties_and_keep_given_ones() {
        let schema = spec_with(json!({
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "fast"},
            "limits": {"type": "object", "properties": {"cpu": {"type": "string", "default": "1"}}}
        }));
        let mut object = json!({"spec": {"mode": "slow", "limits": {}}});
        apply_defaults(&schema, &mut object);
        assert_eq!(
            object,
            json!({"spec": {"replicas": 1, "mode": "slow", "limits": {"cpu": "1"}}})
        );
    }

    #[test]
    fn a_default_object_is_defaulted_inside() {
        let schema = spec_with(json!({
            "resources": {
                "type": "object",
                "default": {"memory": "1Gi"},
                "properties": {
                    "cpu": {"type": "string", "default": "500m"},
                    "memory": {"type": "string", "default": "2Gi"}
                }
            }
        }));
        let mut object = json!({"spec": {}});
        apply_defaults(&schema, &mut object);
        assert_eq!(
            object,
            json!({"spec": {"resources": {"cpu": "500m", "memory": "1Gi"}}})
        );
    }

    #[test]
    fn defaults_apply_to_every_list_item() {
        let schema = spec_with(json!({
            "steps": {"type": "array", "items": {
                "type": "object",
                "properties": {"weight": {"type": "integer", "default": 1}}
            }}
        }));
        let mut object = json!({"spec": {"steps": [{}, {"weight": 5}, {}]}});
        apply_defaults(&schema, &mut object);
        assert_eq!(
            object,
            json!({"spec": {"steps": [{"weight": 1}, {"weight": 5}, {"weight": 1}]}})
        );
    }

    #[test]
    fn defaults_apply_to_every_map_value() {
        let schema = spec_with(json!({
            "flows": {"type": "object", "additionalProperties": {
                "type": "object",
                "properties": {"enabled": {"type": "boolean", "default": true}}
            }}
        }));
        let mut object = json!({"spec": {"flows": {"a": {}, "b": {"enabled": false}}}});
        apply_defaults(&schema, &mut object);
        assert_eq!(
            object,
            json!({"spec": {"flows": {"a": {"enabled": true}, "b": {"enabled": false}}}})
        );
    }

    #[test]
    fn non_nullable_nulls_are_defaulted_or_dropped_and_nullable_nulls_kept() {
        let schema = spec_with(json!({
            "withDefault": {"type": "integer", "default": 3},
            "withoutDefault": {"type": "string"},
            "nullableOne": {"type": "string", "nullable": true, "default": "x"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}
        }));
        let mut object = json!({"spec": {
            "withDefault": null, "withoutDefault": null, "nullableOne": null,
            "labels": {"a": null, "b": "kept"}
        }});
        apply_defaults(&schema, &mut object);
        assert_eq!(
            object,
            json!({"spec": {"withDefault": 3, "nullableOne": null, "labels": {"b": "kept"}}})
        );
    }

    #[test]
    fn defaulting_does_not_create_absent_parents() {
        let schema = spec_with(json!({"replicas": {"type": "integer", "default": 1}}));
        let mut object = json!({"metadata": {"name": "a"}});
        apply_defaults(&schema, &mut object);
        assert_eq!(object, json!({"metadata": {"name": "a"}}));
    }

    // --- pruning ------------------------------------------------------------------------------

    #[test]
    fn prune_removes_unknown_fields_in_spec_and_status_and_keeps_root_meta() {
        let schema = spec_with(json!({
            "replicas": {"type": "integer"},
            "template": {"type": "object", "properties": {"image": {"type": "string"}}}
        }));
        let mut object = json!({
            "apiVersion": "stampede.dev/v1alpha1",
            "kind": "LoadTest",
            "metadata": {"name": "a", "labels": {"x": "y"}, "unknownMeta": 1},
            "spec": {"replicas": 2, "bogus": true, "template": {"image": "i", "extra": {"deep": 1}}},
            "status": {"phase": "Running", "bogus": "x"},
            "topLevelBogus": 1
        });
        prune(&schema, &mut object);
        assert_eq!(
            object,
            json!({
                "apiVersion": "stampede.dev/v1alpha1",
                "kind": "LoadTest",
                "metadata": {"name": "a", "labels": {"x": "y"}, "unknownMeta": 1},
                "spec": {"replicas": 2, "template": {"image": "i"}},
                "status": {"phase": "Running"}
            })
        );
    }

    #[test]
    fn prune_keeps_preserved_subtrees_but_prunes_their_declared_properties() {
        let schema = spec_with(json!({
            "json": {"x-kubernetes-preserve-unknown-fields": true},
            "loose": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}
            }
        }));
        let mut object = json!({"spec": {
            "json": {"anything": [1, {"goes": true}]},
            "loose": {"free": {"form": 1}, "known": {"a": "x", "b": "pruned"}}
        }});
        prune(&schema, &mut object);
        assert_eq!(
            object,
            json!({"spec": {
                "json": {"anything": [1, {"goes": true}]},
                "loose": {"free": {"form": 1}, "known": {"a": "x"}}
            }})
        );
    }

    #[test]
    fn prune_recurses_into_map_values_and_list_items() {
        let schema = spec_with(json!({
            "flows": {"type": "object", "additionalProperties": {
                "type": "array",
                "items": {"type": "object", "properties": {"url": {"type": "string"}}}
            }},
            "port": {"x-kubernetes-int-or-string": true}
        }));
        let mut object = json!({"spec": {
            "flows": {"login": [{"url": "/a", "typo": 1}], "other": []},
            "port": "http"
        }});
        prune(&schema, &mut object);
        assert_eq!(
            object,
            json!({"spec": {"flows": {"login": [{"url": "/a"}], "other": []}, "port": "http"}})
        );
    }

    #[test]
    fn prune_keeps_type_meta_of_embedded_resources() {
        let schema = spec_with(json!({
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": true,
                "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}
            }
        }));
        let mut object = json!({"spec": {"template": {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"size": 1, "unknown": 2}, "unknown": 3
        }}});
        prune(&schema, &mut object);
        assert_eq!(
            object,
            json!({"spec": {"template": {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"size": 1}
            }}})
        );
    }

    #[test]
    fn prune_drops_fields_of_nested_type_meta_names_when_not_embedded() {
        let schema = spec_with(json!({"inner": {"type": "object", "properties": {}}}));
        let mut object = json!({"spec": {"inner": {"kind": "x", "metadata": {}}}});
        prune(&schema, &mut object);
        assert_eq!(object, json!({"spec": {"inner": {}}}));
    }

    // --- validation: types ---------------------------------------------------------------------

    #[test]
    fn type_mismatch_prints_the_data_type() {
        let error = only_error(json!({"type": "integer"}), json!("three"));
        assert_eq!(error.field, "spec.x");
        assert_eq!(error.reason, "FieldValueTypeInvalid");
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "string": spec.x in body must be of type integer: "string""#
        );
        let error = only_error(json!({"type": "string"}), json!({"a": 1}));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "object": spec.x in body must be of type string: "object""#
        );
        let error = only_error(json!({"type": "object"}), json!([1]));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "array": spec.x in body must be of type object: "array""#
        );
    }

    #[test]
    fn integers_accept_whole_floats_and_refuse_fractions() {
        let schema = spec_with(json!({"x": {"type": "integer"}, "y": {"type": "number"}}));
        assert!(validate(&schema, &json!({"spec": {"x": 2.0, "y": 3}})).is_empty());
        let error = only_error(json!({"type": "integer"}), json!(2.5));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "number": spec.x in body must be of type integer: "number""#
        );
        // kube-openapi compares the Go format first when the schema has one.
        let error = only_error(json!({"type": "integer", "format": "int64"}), json!(2.5));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "float64": spec.x in body must be of type int64: "float64""#
        );
        let error = only_error(json!({"type": "boolean"}), json!(1));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "integer": spec.x in body must be of type boolean: "integer""#
        );
    }

    #[test]
    fn null_is_accepted_only_when_nullable() {
        let schema = spec_with(json!({"x": {"type": "string", "nullable": true}}));
        assert!(validate(&schema, &json!({"spec": {"x": null}})).is_empty());
        let error = only_error(json!({"type": "string"}), json!(null));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "null": spec.x in body must be of type string: "null""#
        );
    }

    #[test]
    fn int_or_string_accepts_integers_and_strings_only() {
        let schema = spec_with(json!({"x": {"x-kubernetes-int-or-string": true}}));
        assert!(validate(&schema, &json!({"spec": {"x": 80}})).is_empty());
        assert!(validate(&schema, &json!({"spec": {"x": "50%"}})).is_empty());
        let error = only_error(json!({"x-kubernetes-int-or-string": true}), json!(true));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "boolean": spec.x in body must be of type integer,string: "boolean""#
        );
    }

    // --- validation: value constraints -----------------------------------------------------------

    #[test]
    fn required_fields_are_reported_with_their_path() {
        let schema = root(json!({
            "type": "object",
            "required": ["name", "size"],
            "properties": {"name": {"type": "string"}, "size": {"type": "integer"}}
        }));
        let errors = validate(&schema, &json!({"spec": {"size": 1}}));
        assert_eq!(
            errors,
            vec![FieldError {
                field: "spec.name".into(),
                reason: "FieldValueRequired".into(),
                message: "spec.name: Required value".into(),
            }]
        );
        let mut with_spec_required = schema.clone();
        with_spec_required["required"] = json!(["spec", "metadata"]);
        assert_eq!(
            messages(&with_spec_required, &json!({})),
            vec!["spec: Required value"]
        );
    }

    #[test]
    fn enum_lists_supported_values() {
        let error = only_error(json!({"type": "string", "enum": ["a", "b"]}), json!("c"));
        assert_eq!(error.reason, "FieldValueNotSupported");
        assert_eq!(
            error.message,
            r#"spec.x: Unsupported value: "c": supported values: "a", "b""#
        );
        let error = only_error(json!({"type": "integer", "enum": [1, 2]}), json!(3));
        assert_eq!(
            error.message,
            r#"spec.x: Unsupported value: 3: supported values: "1", "2""#
        );
        let schema = spec_with(json!({"x": {"type": "number", "enum": [1.0, 2.5]}}));
        assert!(validate(&schema, &json!({"spec": {"x": 1}})).is_empty());
    }

    #[test]
    fn minimum_and_maximum_with_exclusive_bounds() {
        let error = only_error(json!({"type": "integer", "minimum": 1.0}), json!(0));
        assert_eq!(error.reason, "FieldValueInvalid");
        assert_eq!(
            error.message,
            "spec.x: Invalid value: 0: spec.x in body should be greater than or equal to 1"
        );
        let error = only_error(
            json!({"type": "integer", "minimum": 1, "exclusiveMinimum": true}),
            json!(1),
        );
        assert_eq!(
            error.message,
            "spec.x: Invalid value: 1: spec.x in body should be greater than 1"
        );
        let error = only_error(json!({"type": "number", "maximum": 0.5}), json!(0.75));
        assert_eq!(
            error.message,
            "spec.x: Invalid value: 0.75: spec.x in body should be less than or equal to 0.5"
        );
        let error = only_error(
            json!({"type": "number", "maximum": 1, "exclusiveMaximum": true}),
            json!(1.0),
        );
        assert_eq!(
            error.message,
            "spec.x: Invalid value: 1: spec.x in body should be less than 1"
        );
        let schema = spec_with(json!({"x": {"type": "integer", "minimum": 1, "maximum": 3}}));
        assert!(validate(&schema, &json!({"spec": {"x": 3}})).is_empty());
    }

    #[test]
    fn multiple_of() {
        let error = only_error(json!({"type": "integer", "multipleOf": 5}), json!(12));
        assert_eq!(
            error.message,
            "spec.x: Invalid value: 12: spec.x in body should be a multiple of 5"
        );
        let schema = spec_with(json!({"x": {"type": "number", "multipleOf": 0.5}}));
        assert!(validate(&schema, &json!({"spec": {"x": 1.5}})).is_empty());
    }

    #[test]
    fn string_length_limits() {
        let error = only_error(json!({"type": "string", "maxLength": 5}), json!("abcdef"));
        assert_eq!(error.reason, "FieldValueTooLong");
        assert_eq!(
            error.message,
            "spec.x: Too long: may not be more than 5 bytes"
        );
        let error = only_error(json!({"type": "string", "minLength": 3}), json!("ab"));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "ab": spec.x in body should be at least 3 chars long"#
        );
        // Lengths count characters, not bytes.
        let schema = spec_with(json!({"x": {"type": "string", "maxLength": 2}}));
        assert!(validate(&schema, &json!({"spec": {"x": "éé"}})).is_empty());
    }

    #[test]
    fn pattern_is_checked() {
        let x = json!({"type": "string", "pattern": "^[a-z]+$"});
        let error = only_error(x.clone(), json!("Abc"));
        assert_eq!(
            error.message,
            r#"spec.x: Invalid value: "Abc": spec.x in body should match '^[a-z]+$'"#
        );
        let schema = spec_with(json!({ "x": x }));
        assert!(validate(&schema, &json!({"spec": {"x": "abc"}})).is_empty());
    }

    #[test]
    fn item_count_limits() {
        let error = only_error(
            json!({"type": "array", "maxItems": 5}),
            json!([1, 2, 3, 4, 5, 6, 7]),
        );
        assert_eq!(error.reason, "FieldValueTooMany");
        assert_eq!(
            error.message,
            "spec.x: Too many: 7: must have at most 5 items"
        );
        let error = only_error(json!({"type": "array", "minItems": 2}), json!([1]));
        assert_eq!(
            error.message,
            "spec.x: Invalid value: 1: spec.x in body should have at least 2 items"
        );
    }

    #[test]
    fn property_count_limits() {
        let error = only_error(
            json!({"type": "object", "maxProperties": 1}),
            json!({"a": 1, "b": 2}),
        );
        assert_eq!(error.reason, "FieldValueTooMany");
        assert_eq!(
            error.message,
            "spec.x: Too many: 2: must have at most 1 items"
        );
        let error = only_error(json!({"type": "object", "minProperties": 1}), json!({}));
        assert_eq!(
            error.message,
            "spec.x: Invalid value: 0: spec.x in body should have at least 1 properties"
        );
    }

    #[test]
    fn errors_inside_lists_and_maps_carry_indexes_and_keys() {
        let schema = spec_with(json!({
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}}
            }},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}
        }));
        let object = json!({"spec": {"items": [{"name": "a"}, {}], "labels": {"team": 7}}});
        assert_eq!(
            messages(&schema, &object),
            vec![
                "spec.items[1].name: Required value",
                r#"spec.labels.team: Invalid value: "integer": spec.labels.team in body must be of type string: "integer""#,
            ]
        );
    }

    #[test]
    fn list_type_set_reports_each_duplicate_once() {
        let schema = spec_with(json!({
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
        }));
        let errors = validate(
            &schema,
            &json!({"spec": {"tags": ["a", "b", "a", "a", "b"]}}),
        );
        let found: Vec<(&str, &str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.reason.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "spec.tags[2]",
                    "FieldValueDuplicate",
                    r#"spec.tags[2]: Duplicate value: "a""#
                ),
                (
                    "spec.tags[4]",
                    "FieldValueDuplicate",
                    r#"spec.tags[4]: Duplicate value: "b""#
                ),
            ]
        );
    }

    #[test]
    fn list_type_map_reports_duplicate_keys() {
        let schema = spec_with(json!({
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "port": {"type": "integer"}
                }}
            }
        }));
        let object = json!({"spec": {"ports": [
            {"name": "http", "port": 80}, {"name": "grpc", "port": 81}, {"name": "http", "port": 82}
        ]}});
        assert_eq!(
            messages(&schema, &object),
            vec![r#"spec.ports[2]: Duplicate value: {"name":"http"}"#]
        );
    }

    #[test]
    fn embedded_resources_need_api_version_and_kind() {
        let schema = spec_with(json!({
            "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                         "x-kubernetes-preserve-unknown-fields": true}
        }));
        let object = json!({"spec": {"template": {"apiVersion": "v1", "kind": ""}}});
        assert_eq!(
            messages(&schema, &object),
            vec![r#"spec.template.kind: Invalid value: "": must not be empty"#]
        );
        let object = json!({"spec": {"template": {}}});
        assert_eq!(
            messages(&schema, &object),
            vec![
                "spec.template.apiVersion: Required value: must not be empty",
                "spec.template.kind: Required value: must not be empty",
            ]
        );
    }

    #[test]
    fn every_error_is_reported() {
        let schema = spec_with(json!({
            "name": {"type": "string", "maxLength": 3},
            "replicas": {"type": "integer", "minimum": 1},
            "mode": {"type": "string", "enum": ["a", "b"]}
        }));
        let object = json!({"spec": {"name": "toolong", "replicas": 0, "mode": "c"}});
        assert_eq!(
            messages(&schema, &object),
            vec![
                r#"spec.mode: Unsupported value: "c": supported values: "a", "b""#,
                "spec.name: Too long: may not be more than 3 bytes",
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            ]
        );
    }

    #[test]
    fn root_type_meta_is_not_validated() {
        let schema = json!({
            "type": "object",
            "required": ["metadata"],
            "properties": {"metadata": {"type": "string"}, "kind": {"type": "integer"}}
        });
        let object = json!({"apiVersion": "v1", "kind": "LoadTest", "metadata": {"name": "a"}});
        assert!(validate(&schema, &object).is_empty());
        assert!(validate(&schema, &json!({})).is_empty());
    }

    // --- validation: CEL ------------------------------------------------------------------------

    fn scaling_schema() -> Value {
        root(json!({
            "type": "object",
            "properties": {
                "minReplicas": {"type": "integer"},
                "maxReplicas": {"type": "integer"},
                "name": {"type": "string", "maxLength": 3}
            },
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "min must not exceed max"}
            ]
        }))
    }

    #[test]
    fn cel_rule_failure_is_reported_like_the_apiserver() {
        let schema = scaling_schema();
        let ok = json!({"spec": {"minReplicas": 1, "maxReplicas": 2}});
        assert!(validate(&schema, &ok).is_empty());
        let errors = validate(
            &schema,
            &json!({"spec": {"minReplicas": 3, "maxReplicas": 2}}),
        );
        assert_eq!(
            errors,
            vec![FieldError {
                field: "spec".into(),
                reason: "FieldValueInvalid".into(),
                message: r#"spec: Invalid value: min must not exceed max"#.into(),
            }]
        );
    }

    #[test]
    fn cel_rules_run_alongside_non_blocking_errors() {
        let mut schema = scaling_schema();
        schema["properties"]["spec"]["properties"]["minReplicas"]["minimum"] = json!(0);
        let object = json!({"spec": {"minReplicas": -1, "maxReplicas": -2}});
        assert_eq!(
            messages(&schema, &object),
            vec![
                "spec.minReplicas: Invalid value: -1: spec.minReplicas in body should be greater than or equal to 0",
                r#"spec: Invalid value: min must not exceed max"#,
            ]
        );
    }

    #[test]
    fn cel_rules_are_skipped_after_blocking_errors() {
        let schema = scaling_schema();
        let object = json!({"spec": {"minReplicas": 3, "maxReplicas": 2, "name": "toolong"}});
        let errors = validate(&schema, &object);
        assert_eq!(
            errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>(),
            vec![
                "spec.name: Too long: may not be more than 3 bytes",
                "<nil>: Invalid value: null: some validation rules were not checked because \
                 the object was invalid; correct the existing errors to complete validation",
            ]
        );
        assert_eq!(errors[1].field, "<nil>");
        assert_eq!(errors[1].reason, "FieldValueInvalid");
    }

    #[test]
    fn cel_errors_in_map_values_and_lists_use_the_apiserver_paths() {
        let step = json!({
            "type": "object",
            "properties": {"request": {"type": "string"}, "sleep": {"type": "string"}},
            "x-kubernetes-validations": [{
                "rule": "(has(self.request) ? 1 : 0) + (has(self.sleep) ? 1 : 0) == 1",
                "message": "set one of request or sleep"
            }]
        });
        let schema = spec_with(json!({
            "flows": {"type": "object", "additionalProperties": {"type": "array", "items": step}}
        }));
        let object = json!({"spec": {"flows": {"login": [{"request": "/"}, {}]}}});
        assert_eq!(
            messages(&schema, &object),
            vec![r#"spec.flows[login][1]: Invalid value: set one of request or sleep"#]
        );
    }

    #[test]
    fn cel_reason_field_path_and_default_message() {
        let schema = spec_with(json!({
            "a": {
                "type": "object",
                "properties": {"b": {"type": "string"}},
                "x-kubernetes-validations": [
                    {"rule": "has(self.b)", "reason": "FieldValueRequired", "fieldPath": ".b",
                     "message": "b is needed"},
                    {"rule": "false"}
                ]
            }
        }));
        assert_eq!(
            messages(&schema, &json!({"spec": {"a": {}}})),
            vec![
                "spec.a.b: Required value: b is needed",
                r#"spec.a: Invalid value: failed rule: false"#,
            ]
        );
    }

    #[test]
    fn rule_failures_show_scalar_values_and_omit_compound_ones() {
        let schema = spec_with(json!({
            "s": {"type": "string", "x-kubernetes-validations": [{"rule": "self != 'bad'", "message": "s is bad"}]},
            "i": {"type": "integer", "x-kubernetes-validations": [{"rule": "self < 10"}]},
            "l": {"type": "array", "items": {"type": "string"},
                  "x-kubernetes-validations": [{"rule": "size(self) < 2", "message": "too many"}]}
        }));
        let mut found = messages(
            &schema,
            &json!({"spec": {"s": "bad", "i": 11, "l": ["a", "b"]}}),
        );
        found.sort();
        assert_eq!(
            found,
            vec![
                "spec.i: Invalid value: 11: failed rule: self < 10",
                "spec.l: Invalid value: too many",
                r#"spec.s: Invalid value: "bad": s is bad"#,
            ]
        );
    }

    // --- formats and status writes ----------------------------------------------------------------

    fn status_schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "x-kubernetes-validations": [{"rule": "true"}]},
            "status": {"type": "object", "properties": {
                "completionTime": {"type": "string", "format": "date-time"},
                "count": {"type": "integer"}
            }}
        }})
    }

    #[test]
    fn date_times_are_checked() {
        let schema = status_schema();
        let ok = json!({"status": {"completionTime": "2026-01-02T10:00:00Z"}});
        assert_eq!(validate(&schema, &ok), vec![]);
        assert_eq!(
            messages(&schema, &json!({"status": {"completionTime": "garbage"}})),
            vec![
                r#"status.completionTime: Invalid value: "garbage": status.completionTime in body must be of type date-time: "garbage""#,
                "<nil>: Invalid value: null: some validation rules were not checked because \
                 the object was invalid; correct the existing errors to complete validation",
            ]
        );
    }

    #[test]
    fn status_writes_name_paths_relative_to_status() {
        let schema = status_schema();
        let object = json!({"spec": {"ignored": "x"},
                            "status": {"completionTime": "2026-02-30T10:00:00Z", "count": "many"}});
        let mut found: Vec<String> = validate_status(&schema, &object)
            .into_iter()
            .map(|e| e.message)
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![
                "<nil>: Invalid value: null: some validation rules were not checked because \
                 the object was invalid; correct the existing errors to complete validation",
                r#"status.completionTime: Invalid value: "2026-02-30T10:00:00Z": completionTime in body must be of type date-time: "2026-02-30T10:00:00Z""#,
                r#"status.count: Invalid value: "string": count in body must be of type integer: "string""#,
            ]
        );
    }

    // --- the 422 message ------------------------------------------------------------------------

    #[test]
    fn invalid_message_with_one_and_several_errors() {
        let required = without_value("spec.a", ErrorType::Required, "");
        let too_long = without_value("spec.b", ErrorType::TooLong, "may not be more than 2 bytes");
        assert_eq!(
            invalid_message(
                "LoadTest",
                "stampede.dev",
                "smoke",
                std::slice::from_ref(&required)
            ),
            r#"LoadTest.stampede.dev "smoke" is invalid: spec.a: Required value"#
        );
        assert_eq!(
            invalid_message(
                "LoadTest",
                "stampede.dev",
                "smoke",
                &[required.clone(), too_long, required]
            ),
            r#"LoadTest.stampede.dev "smoke" is invalid: [spec.a: Required value, spec.b: Too long: may not be more than 2 bytes]"#
        );
        assert_eq!(
            invalid_message("ConfigMap", "", "c", &[]),
            r#"ConfigMap "c" is invalid"#
        );
    }

    // --- the LoadTest CRD -----------------------------------------------------------------------

    fn loadtest_schema() -> Value {
        // The CRD as generated from the types (the golden test holds crds/ to it).
        let crd = serde_json::to_value(stampede_crds::crd::definition()).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    #[test]
    fn a_minimal_loadtest_is_valid_and_unknown_fields_are_pruned() {
        let schema = loadtest_schema();
        let mut object = json!({
            "apiVersion": "stampede.dev/v1alpha1",
            "kind": "LoadTest",
            "metadata": {"name": "smoke", "namespace": "default"},
            "spec": {
                "vus": 1,
                "duration": "1s",
                "flows": {"default": [{"request": {"url": "http://127.0.0.1/", "json": {"free": [1]}}}]},
                "notAField": true
            },
            "status": {"phase": "Running", "notAField": 1}
        });
        prune(&schema, &mut object);
        apply_defaults(&schema, &mut object);
        assert_eq!(validate(&schema, &object), vec![]);
        assert!(object["spec"].get("notAField").is_none());
        assert!(object["status"].get("notAField").is_none());
        assert_eq!(object["status"]["phase"], "Running");
        assert_eq!(object["metadata"]["name"], "smoke");
        // Free-form JSON bodies are preserved.
        assert_eq!(
            object["spec"]["flows"]["default"][0]["request"]["json"],
            json!({"free": [1]})
        );
    }

    #[test]
    fn the_loadtest_crd_rejects_bad_specs() {
        let schema = loadtest_schema();
        let object = json!({"spec": {
            "vus": "many",
            "flows": {"default": [{"request": {"url": "/"}, "sleep": "1s"}]}
        }});
        assert_eq!(
            messages(&schema, &object),
            vec![
                r#"spec.vus: Invalid value: "string": spec.vus in body must be of type integer: "string""#,
                "<nil>: Invalid value: null: some validation rules were not checked because \
                 the object was invalid; correct the existing errors to complete validation",
            ]
        );
        let object =
            json!({"spec": {"flows": {"default": [{"request": {"url": "/"}, "group": "g"}]}}});
        assert_eq!(
            messages(&schema, &object),
            vec![
                r#"spec.flows[default][0]: Invalid value: a step does exactly one thing: set one of request, sleep or group, not both request and group"#
            ]
        );
        assert_eq!(
            messages(&schema, &json!({})),
            vec![
                "spec: Required value",
                "<nil>: Invalid value: null: some validation rules were not checked because \
                 the object was invalid; correct the existing errors to complete validation",
            ]
        );
    }
}
