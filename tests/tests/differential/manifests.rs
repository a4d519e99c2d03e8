//! Manifests created on both servers: every one-mistake manifest of tests/invalid (with and
//! without strict field validation) and every example LoadTest, whose spec must be kept whole.

use std::path::Path;

use serde_json::{Value, json};
use stampede_tests::cluster::repo_path;

use super::fixtures::{MERGE, file_label, loadtests, yaml_documents};
use super::harness::{Outcome, Pair, Request, not_kept, verbatim};

/// Deletes from both servers what either of them created with a POST that answered `real`
/// and `stand_in` (clearing finalizers first, which would keep it), so the next case starts
/// clean.
pub async fn delete_created(pair: &mut Pair, namespace: &str, real: &Outcome, stand_in: &Outcome) {
    for created in [real, stand_in] {
        if created.code == 201
            && let Some(name) = created
                .body
                .pointer("/metadata/name")
                .and_then(Value::as_str)
        {
            let object_path = format!("{}/{name}", loadtests(namespace));
            pair.both(&Request::patch(
                &object_path,
                MERGE,
                &json!({"metadata": {"finalizers": null}}),
            ))
            .await;
            delete_both(pair, namespace, name).await;
        }
    }
}

/// Deletes `name` in `namespace` on both servers (after a create one of them accepted).
pub async fn delete_both(pair: &mut Pair, namespace: &str, name: &str) {
    let path = format!("{}/{name}", loadtests(namespace));
    pair.both(&Request::delete(&path)).await;
}

pub fn namespace_of(manifest: &Value) -> String {
    manifest
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string()
}

/// Every manifest of tests/invalid.
pub async fn invalid(pair: &mut Pair) {
    let files = stampede_tests::files_in("tests/invalid", "yaml");
    assert!(files.len() >= 60, "tests/invalid holds {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let label = file_label(&file);
        for manifest in yaml_documents(&text) {
            let namespace = namespace_of(&manifest);
            for query in ["?fieldValidation=Strict", ""] {
                let path = format!("{}{query}", loadtests(&namespace));
                let (real, stand_in) = pair
                    .compare(
                        &format!("{label}{query}"),
                        &Request::json("POST", &path, &manifest),
                        &verbatim,
                    )
                    .await;
                delete_created(pair, &namespace, &real, &stand_in).await;
            }
        }
    }
}

/// Every LoadTest of examples/*.yaml and examples/gitops (plain documents and documents inlined
/// in ConfigMaps).
fn example_loadtests() -> Vec<(String, Value)> {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_path("examples"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        for document in yaml_documents(&text) {
            let mut candidates = vec![document.clone()];
            if document["kind"] == "ConfigMap"
                && let Some(data) = document.get("data").and_then(Value::as_object)
            {
                for inlined in data.values().filter_map(Value::as_str) {
                    candidates.extend(yaml_documents(inlined));
                }
            }
            for candidate in candidates {
                let is_loadtest = candidate["kind"] == "LoadTest"
                    && candidate["apiVersion"]
                        .as_str()
                        .is_some_and(|v| v.starts_with("stampede.dev/"))
                    && candidate.get("spec").is_some();
                if is_loadtest {
                    found.push((file_label(&file), candidate));
                }
            }
        }
    }
    found
}

/// Every example LoadTest.
pub async fn examples(pair: &mut Pair) {
    let loadtests_found = example_loadtests();
    assert!(
        loadtests_found.len() >= 20,
        "{} example LoadTests",
        loadtests_found.len()
    );
    for (label, manifest) in loadtests_found {
        let namespace = namespace_of(&manifest);
        let path = format!("{}?fieldValidation=Strict", loadtests(&namespace));
        let (real, stand_in) = pair
            .compare(&label, &Request::json("POST", &path, &manifest), &verbatim)
            .await;
        for (server, outcome) in [("real", &real), ("stand-in", &stand_in)] {
            if outcome.code != 201 {
                continue;
            }
            let mut dropped = Vec::new();
            not_kept(
                &manifest["spec"],
                &outcome.body["spec"],
                ".spec",
                &mut dropped,
            );
            if !dropped.is_empty() {
                pair.content(
                    &label,
                    format!("the {server} server did not keep {dropped:?}"),
                );
            }
        }
        if real.code == 201 && stand_in.code == 201 && real.body["spec"] != stand_in.body["spec"] {
            pair.content(&label, "the stored specs differ".into());
        }
        let name = manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        delete_both(pair, &namespace, &name).await;
    }
}
