//! What apiextensions-apiserver checks on a custom resource besides its schema: the body's
//! `apiVersion` and `kind` (decoding, 400, and validation, 422) and the object metadata every
//! kind validates (name, generateName, labels, annotations, finalizers), with 1.36's texts.

use serde_json::Value;

use super::errors::ApiError;
use super::field::FieldError;
use super::registry::ResourceType;
use super::render::go_quote;

/// The decoding of a create or update body: a body without a kind, or with another apiVersion
/// than the URL's, is a 400 before anything else is looked at. `body` is echoed the way the
/// server echoes the request (here: the body as compact JSON). Under strict field validation a
/// body of another version of the same group and kind fails as strict decoding: that version has
/// no schema, so every field besides apiVersion, kind and metadata is unknown.
pub fn decode_type_meta(
    resource: &ResourceType,
    body: &Value,
    strict: bool,
) -> Result<(), ApiError> {
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        let data = body.to_string();
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): Object 'Kind' is missing \
             in '{data}' ({})",
            resource.kind,
            summarize(&data, 30)
        )));
    }
    let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let other_version = api_version
        .split_once('/')
        .filter(|(group, _)| *group == resource.group && kind == resource.kind);
    if strict
        && api_version != resource.api_version()
        && let Some((_, version)) = other_version
    {
        let unknown: Vec<String> = body
            .as_object()
            .into_iter()
            .flatten()
            .map(|(field, _)| field)
            .filter(|field| !["apiVersion", "kind", "metadata"].contains(&field.as_str()))
            .map(|field| format!("unknown field {}", go_quote(field)))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{kind} in version {} cannot be handled as a {kind}: strict decoding error: {}",
                go_quote(version),
                unknown.join(", ")
            )));
        }
    }
    if api_version != resource.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API \
             version ({})",
            resource.api_version()
        )));
    }
    Ok(())
}

/// apiserver's `summarizeData`: the first `max` bytes and ` ...` when there is more.
fn summarize(data: &str, max: usize) -> String {
    if data.len() <= max {
        return data.to_string();
    }
    let mut end = max;
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &data[..end])
}

/// The apply patcher's check of an applied configuration's type: `invalid object type: G/V,
/// Kind=K` when it is not the URL's.
pub fn check_applied_type(resource: &ResourceType, applied: &Value) -> Result<(), ApiError> {
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version == resource.api_version() && kind == resource.kind {
        return Ok(());
    }
    let group_version = if api_version.contains('/') {
        api_version.to_string()
    } else {
        format!("/{api_version}")
    };
    Err(ApiError::bad_request(format!(
        "invalid object type: {group_version}, Kind={kind}"
    )))
}

/// The validator's type check (`ValidateTypeMeta`): a kind or apiVersion that a patch changed
/// is a 422 on its own, reported before any other validation.
pub fn type_meta_errors(resource: &ResourceType, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != resource.kind {
        errors.push(FieldError::invalid(
            "kind",
            &go_quote(kind),
            &format!("must be {}", resource.kind),
        ));
    }
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if api_version != resource.api_version() {
        errors.push(FieldError::invalid(
            "apiVersion",
            &go_quote(api_version),
            &format!("must be {}", resource.api_version()),
        ));
    }
    errors
}

const SUBDOMAIN_REGEX_ERROR: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
     (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const QUALIFIED_NAME_REGEX_ERROR: &str = "must consist of alphanumeric characters, '-', '_' or \
     '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  \
     or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

const LABEL_VALUE_REGEX_ERROR: &str = "a valid label must be an empty string or consist of \
     alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric \
     character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
     '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `ValidateObjectMeta` for a namespaced or cluster-scoped object whose name must be a DNS-1123
/// subdomain (every custom resource): name (or generateName), labels, annotations, finalizers.
pub fn object_meta_errors(object: &Value) -> Vec<FieldError> {
    let metadata = object.get("metadata").cloned().unwrap_or(Value::Null);
    let text = |field: &str| metadata.get(field).and_then(Value::as_str).unwrap_or("");
    let mut errors = Vec::new();
    let generate_name = text("generateName");
    if !generate_name.is_empty() {
        // A prefix may end in a dash: the generated suffix follows it.
        let masked = match generate_name.strip_suffix('-') {
            Some(rest) => format!("{rest}a"),
            None => generate_name.to_string(),
        };
        for message in subdomain_errors(&masked) {
            errors.push(FieldError::invalid(
                "metadata.generateName",
                &go_quote(generate_name),
                &message,
            ));
        }
    }
    let name = text("name");
    if name.is_empty() {
        if generate_name.is_empty() {
            errors.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for message in subdomain_errors(name) {
            errors.push(FieldError::invalid(
                "metadata.name",
                &go_quote(name),
                &message,
            ));
        }
    }
    errors.extend(labels_annotations_finalizers_errors(object));
    errors
}

/// The part of `ValidateObjectMeta` every kind shares, built-in or custom: label keys and
/// values, annotation keys, finalizer names.
pub fn labels_annotations_finalizers_errors(object: &Value) -> Vec<FieldError> {
    let metadata = object.get("metadata").cloned().unwrap_or(Value::Null);
    let mut errors = Vec::new();
    for (key, value) in string_pairs(metadata.get("labels")) {
        for message in qualified_name_errors(&key) {
            errors.push(FieldError::invalid(
                "metadata.labels",
                &go_quote(&key),
                &message,
            ));
        }
        for message in label_value_errors(&value) {
            errors.push(FieldError::invalid(
                "metadata.labels",
                &go_quote(&value),
                &message,
            ));
        }
    }
    for (key, _) in string_pairs(metadata.get("annotations")) {
        for message in qualified_name_errors(&key.to_lowercase()) {
            errors.push(FieldError::invalid(
                "metadata.annotations",
                &go_quote(&key),
                &message,
            ));
        }
    }
    let finalizers = metadata.get("finalizers").and_then(Value::as_array);
    for finalizer in finalizers.into_iter().flatten().filter_map(Value::as_str) {
        for message in qualified_name_errors(finalizer) {
            errors.push(FieldError::invalid(
                "metadata.finalizers",
                &go_quote(finalizer),
                &message,
            ));
        }
    }
    errors
}

fn string_pairs(map: Option<&Value>) -> Vec<(String, String)> {
    map.and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// `IsDNS1123Subdomain`: at most 253 characters of dot-separated lower-case labels.
pub fn subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push("must be no more than 253 characters".to_string());
    }
    if !is_subdomain(value) {
        errors.push(SUBDOMAIN_REGEX_ERROR.to_string());
    }
    errors
}

fn is_subdomain(value: &str) -> bool {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        !bytes.is_empty()
            && bytes.first().is_some_and(alnum)
            && bytes.last().is_some_and(alnum)
            && bytes.iter().all(|b| alnum(b) || *b == b'-')
    };
    value.split('.').all(label_ok)
}

/// `IsQualifiedName`: an optional DNS subdomain prefix and `/`, then a name of at most 63
/// characters.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                errors.extend(
                    subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            name
        }
        _ => {
            return vec![format!(
                "a valid label key {QUALIFIED_NAME_REGEX_ERROR} with an optional DNS subdomain \
                 prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 bytes".to_string());
    }
    if !is_qualified_name_part(name) {
        errors.push(format!("name part {QUALIFIED_NAME_REGEX_ERROR}"));
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn is_qualified_name_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    !bytes.is_empty()
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
}

/// `IsValidLabelValue`: empty, or at most 63 characters shaped like a qualified name part.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 bytes".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(LABEL_VALUE_REGEX_ERROR.to_string());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_must_be_subdomains() {
        assert!(subdomain_errors("a.b-c").is_empty());
        assert_eq!(subdomain_errors("abc-"), vec![SUBDOMAIN_REGEX_ERROR]);
        assert_eq!(
            subdomain_errors(&"a".repeat(300)),
            vec!["must be no more than 253 characters"]
        );
        let errors = object_meta_errors(&json!({"metadata": {"name": "Bad_Name"}}));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0]
                .message
                .starts_with("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123")
        );
        let errors = object_meta_errors(&json!({"metadata": {}}));
        assert_eq!(
            errors[0].message,
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn labels_annotations_and_finalizers() {
        let object = json!({"metadata": {"name": "ok", "labels": {"k": "b".repeat(64), "bad key": "v"},
            "annotations": {"a/b/c": "x"}, "finalizers": ["example.com/fine", "bad finalizer"]}});
        let messages: Vec<String> = object_meta_errors(&object)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(
            messages
                .iter()
                .any(|m| m.ends_with("must be no more than 63 bytes"))
        );
        assert!(messages.iter().any(|m| {
            m.starts_with("metadata.annotations: Invalid value: \"a/b/c\": a valid label key")
        }));
    }

    #[test]
    fn type_meta_texts() {
        let resource = crate::apiserver::registry::Registry::builtin()
            .find("", "v1", "configmaps")
            .cloned()
            .expect("configmaps");
        let error = decode_type_meta(
            &resource,
            &json!({"apiVersion": "v2", "kind": "ConfigMap"}),
            false,
        )
        .expect_err("wrong version");
        assert_eq!(
            error.message,
            "the API version in the data (v2) does not match the expected API version (v1)"
        );
        let error = decode_type_meta(
            &resource,
            &json!({"apiVersion": "v1", "metadata": {"name": "a-long-name"}}),
            true,
        )
        .expect_err("no kind");
        assert!(
            error
                .message
                .ends_with(r#"({"apiVersion":"v1","metadata": ...)"#),
            "{}",
            error.message
        );
        let error = check_applied_type(&resource, &json!({"apiVersion": "v1", "kind": "Secret"}))
            .expect_err("wrong kind");
        assert_eq!(error.message, "invalid object type: /v1, Kind=Secret");
        let errors = type_meta_errors(&resource, &json!({"apiVersion": "v1", "kind": "Cm"}));
        assert_eq!(
            errors[0].message,
            r#"kind: Invalid value: "Cm": must be ConfigMap"#
        );
    }
}
