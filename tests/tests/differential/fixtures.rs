//! What the differential test sends: API paths, the LoadTest CRD, manifests read from the
//! repository.

use std::path::Path;

use serde_json::{Value, json};
use stampede_tests::cluster::repo_path;

/// The CRD collection.
pub const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
/// The LoadTest group version.
pub const GROUP_VERSION: &str = "/apis/stampede.dev/v1alpha1";
/// What `kubectl get` asks for.
pub const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
/// A merge patch.
pub const MERGE: &str = "application/merge-patch+json";
/// Server-side apply.
pub const APPLY: &str = "application/apply-patch+yaml";
/// The operator's field manager.
pub const OPERATOR: &str = "stampede-operator";

/// The LoadTest collection of `namespace`.
pub fn loadtests(namespace: &str) -> String {
    format!("{GROUP_VERSION}/namespaces/{namespace}/loadtests")
}

/// The documents of a YAML stream (those that parse; text that is no YAML gives none).
pub fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map_while(|doc| {
            let value: Result<serde_yaml_ng::Value, _> = serde::Deserialize::deserialize(doc);
            value.ok()
        })
        .filter_map(|value| serde_json::to_value(value).ok())
        .filter(|doc| !doc.is_null())
        .collect()
}

/// crds/loadtest.yaml.
pub fn loadtest_crd() -> Value {
    let text = std::fs::read_to_string(repo_path("crds/loadtest.yaml")).expect("the CRD");
    serde_yaml_ng::from_str(&text).expect("the CRD is YAML")
}

/// A path relative to the repository, for labels.
pub fn file_label(path: &Path) -> String {
    path.strip_prefix(stampede_tests::repo_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A valid LoadTest named `name`.
pub fn small_loadtest(name: &str) -> Value {
    json!({"apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
           "metadata": {"name": name},
           "spec": {"vus": 1, "duration": "1s",
                    "flows": {"default": [{"name": "home", "request": {"url": "http://127.0.0.1/"}}]}}})
}
