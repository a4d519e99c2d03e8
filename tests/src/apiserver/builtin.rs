//! Built-in kinds decoded the way the real server decodes them: through their typed structs
//! (k8s-openapi), so unknown fields are dropped (or rejected under strict field validation),
//! type errors are rejected, and Secret `stringData` folds into `data`.

use base64::Engine;
use k8s_openapi::api::{apps, batch, coordination, core, rbac};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Decodes `object` as the typed built-in `kind` of `api_version` and encodes it back.
/// Unknown kinds pass through unchanged. `Err` carries the decoding error.
pub fn normalize(api_version: &str, kind: &str, object: Value) -> Result<Value, String> {
    let object = match (api_version, kind) {
        ("v1", "Secret") => fold_string_data(object),
        _ => object,
    };
    match (api_version, kind) {
        ("v1", "Namespace") => round_trip::<core::v1::Namespace>(object),
        ("v1", "ConfigMap") => round_trip::<core::v1::ConfigMap>(object),
        ("v1", "Secret") => round_trip::<core::v1::Secret>(object),
        ("v1", "ServiceAccount") => round_trip::<core::v1::ServiceAccount>(object),
        ("v1", "Pod") => round_trip::<core::v1::Pod>(object),
        ("v1", "Service") => round_trip::<core::v1::Service>(object),
        ("apps/v1", "Deployment") => round_trip::<apps::v1::Deployment>(object),
        ("v1", "Event") => round_trip::<core::v1::Event>(object),
        ("batch/v1", "Job") => round_trip::<batch::v1::Job>(object),
        ("rbac.authorization.k8s.io/v1", "Role") => round_trip::<rbac::v1::Role>(object),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            round_trip::<rbac::v1::RoleBinding>(object)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            round_trip::<rbac::v1::ClusterRole>(object)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(object)
        }
        ("coordination.k8s.io/v1", "Lease") => round_trip::<coordination::v1::Lease>(object),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            round_trip::<apiextensions::CustomResourceDefinition>(object)
        }
        _ => Ok(object),
    }
}

fn round_trip<K: DeserializeOwned + Serialize>(object: Value) -> Result<Value, String> {
    let typed: K = serde_json::from_value(object).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// The real server merges `stringData` into `data` (base64) and never stores `stringData`.
fn fold_string_data(mut secret: Value) -> Value {
    let Some(map) = secret.as_object_mut() else {
        return secret;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return secret;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(data) = data.as_object_mut() {
        for (key, value) in string_data {
            if let Some(text) = value.as_str() {
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                data.insert(key, Value::String(encoded));
            }
        }
    }
    secret
}

/// Paths of fields in `before` that are missing in `after` (what decoding or pruning dropped),
/// like `.spec.foo` — the names a strict-validation error and warnings give.
pub fn dropped_fields(before: &Value, after: &Value) -> Vec<String> {
    let mut dropped = Vec::new();
    walk(before, after, String::new(), &mut dropped);
    dropped
}

fn walk(before: &Value, after: &Value, path: String, dropped: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, value) in b {
                let child = format!("{path}.{key}");
                match a.get(key) {
                    Some(other) => walk(value, other, child, dropped),
                    // Nulls are dropped by decoding without being unknown.
                    None if value.is_null() => {}
                    None => dropped.push(child),
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (value, other)) in b.iter().zip(a).enumerate() {
                walk(value, other, format!("{path}[{i}]"), dropped);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_of_builtins_are_dropped_and_named() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}], "bogus": 1}});
        let normalized = normalize("v1", "Pod", pod.clone()).unwrap();
        assert_eq!(
            dropped_fields(&pod, &normalized),
            vec![".spec.bogus", ".spec.containers[0].imagePolicy"]
        );
    }

    #[test]
    fn secret_string_data_becomes_data() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"token": "abc"}});
        let normalized = normalize("v1", "Secret", secret).unwrap();
        assert_eq!(normalized["data"]["token"], "YWJj");
        assert!(normalized.get("stringData").is_none());
    }

    #[test]
    fn type_errors_are_rejected() {
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
            "spec": {"completions": "three", "template": {}}});
        assert!(normalize("batch/v1", "Job", job).is_err());
    }
}
