//! The CRD schema's size limits (`maxLength`, `maxItems`, `maxProperties`) checked on a spec, so
//! `stampede validate` refuses what a Kubernetes API server will refuse, with the same limit.

use std::sync::OnceLock;

use serde_json::Value;

use super::Problems;
use crate::path::FieldPath;
use crate::spec::LoadTestSpec;

/// The CRD's schema of `spec`, generated once.
fn spec_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd = serde_json::to_value(crate::crd::definition()).unwrap_or(Value::Null);
        crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
            .cloned()
            .unwrap_or(Value::Null)
    })
}

/// Reports every value of `spec` over a limit of the CRD schema.
pub(super) fn check(spec: &LoadTestSpec, path: &FieldPath, problems: &mut Problems) {
    // A spec that does not serialise cannot be checked here; the other checks report it.
    if let Ok(value) = serde_json::to_value(spec) {
        walk(&value, spec_schema(), path, problems);
    }
}

fn limit(schema: &Value, name: &str) -> Option<usize> {
    schema
        .get(name)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
}

fn walk(value: &Value, schema: &Value, path: &FieldPath, problems: &mut Problems) {
    const REFUSED: &str = "a Kubernetes API server refuses it";
    match value {
        Value::String(text) => {
            if let Some(max) = limit(schema, "maxLength") {
                let length = text.chars().count();
                if length > max {
                    problems.push(
                        path.clone(),
                        format!(
                            "is {length} characters long; the CRD allows at most {max} ({REFUSED})"
                        ),
                    );
                }
            }
        }
        Value::Array(items) => {
            if let Some(max) = limit(schema, "maxItems")
                && items.len() > max
            {
                problems.push(
                    path.clone(),
                    format!(
                        "has {} items; the CRD allows at most {max} ({REFUSED})",
                        items.len()
                    ),
                );
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    walk(item, item_schema, &path.index(index), problems);
                }
            }
        }
        Value::Object(map) => {
            if let Some(max) = limit(schema, "maxProperties")
                && map.len() > max
            {
                problems.push(
                    path.clone(),
                    format!(
                        "has {} entries; the CRD allows at most {max} ({REFUSED})",
                        map.len()
                    ),
                );
            }
            let properties = schema.get("properties");
            let additional = schema.get("additionalProperties");
            for (key, child) in map {
                let child_schema = properties.and_then(|p| p.get(key)).or(additional);
                if let Some(child_schema) = child_schema {
                    walk(child, child_schema, &path.key(key), problems);
                }
            }
        }
        _ => {}
    }
}
