//! CustomResourceDefinition admission as apiextensions-apiserver 1.36 does it for the schemas:
//! every served schema must be present, structural, use only the keywords a CRD may use, and
//! have rules that compile within the CEL cost budget. Errors name the paths the server names
//! (`spec.validation.openAPIV3Schema...` when all versions share one schema, as the server's
//! internal form keeps it, `spec.versions[i].schema.openAPIV3Schema...` otherwise).

pub mod openapi;
pub mod rules;
pub mod structural;

use serde_json::Value;

use super::field::FieldError;
use openapi::{CelContext, Context};
use rules::{SCHEMA_LIMIT, TotalCost};

/// Every problem with the schemas of `crd` (a v1 CustomResourceDefinition as JSON).
pub fn validate(crd: &Value) -> Vec<FieldError> {
    let versions: Vec<&Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let schemas: Vec<Option<&Value>> = versions
        .iter()
        .map(|v| v.pointer("/schema/openAPIV3Schema"))
        .collect();
    let mut errors = Vec::new();
    for (i, schema) in schemas.iter().enumerate() {
        if schema.is_none() {
            errors.push(FieldError::required(
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "schemas are required",
            ));
        }
    }
    let shared = !schemas.is_empty()
        && schemas
            .iter()
            .all(|s| s.is_some() && s.map(|s| s.to_string()) == schemas[0].map(|s| s.to_string()));
    if shared {
        if let Some(schema) = schemas[0] {
            errors.extend(validate_schema(schema, "spec.validation.openAPIV3Schema"));
        }
    } else {
        for (i, schema) in schemas.iter().enumerate() {
            if let Some(schema) = schema {
                let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
                errors.extend(validate_schema(schema, &path));
            }
        }
    }
    errors
}

/// `validateCustomResourceDefinitionValidation` for one schema.
pub fn validate_schema(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if flag(schema, "nullable") {
        errors.push(FieldError::forbidden(
            &format!("{path}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let structural_errors = structural::validate(schema, path);
    let structural_ok = structural_errors.is_empty();
    errors.extend(structural_errors);
    // Rules are only compiled against a valid structural schema.
    let cel = structural_ok.then(|| CelContext::root(schema));
    let mut total = TotalCost::default();
    let walked = openapi::walk(
        schema,
        path,
        &Context::default(),
        true,
        cel.as_ref(),
        &mut total,
    );
    errors.extend(walked.schema);
    errors.extend(walked.cel);
    if cel.is_some() && total.total > SCHEMA_LIMIT {
        for (rule_path, _) in &total.most_expensive {
            errors.push(FieldError::forbidden(
                rule_path,
                "contributed to estimated rule cost total exceeding cost limit for entire \
                 OpenAPIv3 schema",
            ));
        }
        errors.push(FieldError::forbidden(
            path,
            &rules::cost_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                total.total,
                SCHEMA_LIMIT,
            ),
        ));
    }
    errors
}

/// `path.name`.
pub fn child(path: &str, name: &str) -> String {
    format!("{path}.{name}")
}

/// `path[key]`, as `field.Path.Key` prints it.
pub fn key(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

/// `path[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A boolean keyword that is true.
pub fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

/// A string keyword ("" when missing).
pub fn str_field<'a>(schema: &'a Value, name: &str) -> &'a str {
    schema.get(name).and_then(Value::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(spec_schema: Value) -> Value {
        json!({"spec": {"versions": [{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}}}]}})
    }

    fn messages(crd: &Value) -> Vec<String> {
        validate(crd).into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn the_loadtest_crd_is_accepted() {
        // The CRD as generated from the types (the golden test holds crds/ to it).
        let crd = serde_json::to_value(stampede_crds::crd::definition()).unwrap();
        assert_eq!(messages(&crd), Vec::<String>::new());
        // The step rule as it was before the fix reads `sleep`, which has no type.
        let old = crd.to_string().replace(
            "!has(self.request) || !has(self.group)",
            "(has(self.request) ? 1 : 0) + (has(self.sleep) ? 1 : 0) + (has(self.group) ? 1 : 0) == 1",
        );
        let crd: Value = serde_json::from_str(&old).expect("JSON");
        let errors = messages(&crd);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors.iter().all(|e| e.contains(
            "compilation failed: ERROR: <input>:1:35: undefined field 'sleep'\n | (has(self.request)"
        )));
    }

    #[test]
    fn rules_over_budget_are_refused() {
        let nested = crd(json!({"type": "object", "properties": {
            "l": {"type": "array", "items": {"type": "string"}}},
            "x-kubernetes-validations": [{"rule": "self.l.all(x, self.l.all(y, x == y))"}]}));
        let errors = messages(&nested);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with(
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: \
             Forbidden: estimated rule cost exceeds budget by factor of more than 100x"
        ));
        let item = json!({"type": "object", "properties": {"a": {"type": "integer"}},
            "x-kubernetes-validations": (0..40)
                .map(|i| json!({"rule": format!("!has(self.a) || self.a != {i}")}))
                .collect::<Vec<_>>()});
        let many =
            crd(json!({"type": "object", "properties": {"l": {"type": "array", "items": item}}}));
        let errors = messages(&many);
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[4].contains("for entire OpenAPIv3 schema exceeds budget by factor of 1.7x"));
    }

    #[test]
    fn non_structural_schemas_are_refused() {
        let untyped = crd(json!({"type": "object", "properties": {"a": {}}}));
        assert_eq!(
            messages(&untyped),
            vec![
                "spec.validation.openAPIV3Schema.properties[spec].properties[a].type: Required \
                  value: must not be empty for specified object fields"
            ]
        );
    }
}
