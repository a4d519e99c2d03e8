//! The LoadTest CRD on a real Kubernetes CRD API server (apiextensions-apiserver 1.36 on etcd):
//! both checked-in copies and the chart's rendered CRD are accepted, Established, structural,
//! and keep every CEL rule (so every rule compiled within the cost budget); the CRD as it was
//! before the `has(self.sleep)` fix is refused for the reason a cluster gave.
//!
//! Skipped, with a line saying so, when no real server is built (see `.ci/deps`); CI sets
//! `STAMPEDE_REAL_APISERVER_REQUIRED=1`, which turns that skip into a failure.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::conditions;
use kube::runtime::wait::await_condition;
use serde_json::Value;
use stampede_tests::apiextensions;
use stampede_tests::apiserver::client_for;
use stampede_tests::chart::render_chart;
use stampede_tests::cluster::repo_path;

fn crd_from_file(relative: &str) -> Value {
    let text = std::fs::read_to_string(repo_path(relative)).expect("read the CRD");
    serde_yaml_ng::from_str(&text).expect("the CRD is YAML")
}

fn crd_from_chart() -> Value {
    render_chart(&[])
        .into_iter()
        .map(|document| serde_json::to_value(document).expect("JSON"))
        .find(|object| object["kind"] == "CustomResourceDefinition")
        .expect("the chart renders the CRD")
}

/// Every `rule` under `x-kubernetes-validations` in `schema`.
fn rules(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![schema];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
                    found.extend(
                        list.iter()
                            .filter_map(|r| r["rule"].as_str().map(str::to_string)),
                    );
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found.sort();
    found
}

async fn install_and_check(api: &Api<CustomResourceDefinition>, source: &str, crd: Value) {
    let sent_rules = rules(&crd);
    assert!(!sent_rules.is_empty(), "{source}: the CRD has CEL rules");
    let typed: CustomResourceDefinition = serde_json::from_value(crd).expect("CRD type");
    let name = typed.metadata.name.clone().expect("named");
    let created = api
        .create(&PostParams::default(), &typed)
        .await
        .unwrap_or_else(|error| panic!("{source}: the real server refused the CRD: {error}"));
    let established = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(api.clone(), &name, conditions::is_crd_established()),
    )
    .await
    .unwrap_or_else(|_| panic!("{source}: not Established within 30 s"))
    .expect("watch the CRD")
    .expect("the CRD exists");
    let conditions = established
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let condition = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind)
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    assert_eq!(
        condition("NamesAccepted").map(|c| c.0),
        Some("True".into()),
        "{source}: {conditions:?}"
    );
    assert_eq!(
        condition("NonStructuralSchema"),
        None,
        "{source}: the schema is structural"
    );
    let stored = serde_json::to_value(&created).expect("JSON");
    assert_eq!(
        rules(&stored),
        sent_rules,
        "{source}: every CEL rule is stored as sent"
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("delete the CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(
            api.clone(),
            &name,
            conditions::is_deleted(&created_uid(&created)),
        ),
    )
    .await
    .expect("the CRD goes within 30 s")
    .expect("watch the CRD");
    eprintln!(
        "{source}: accepted, Established, structural, {} CEL rules within the cost budget",
        sent_rules.len()
    );
}

fn created_uid(crd: &CustomResourceDefinition) -> String {
    crd.metadata.uid.clone().unwrap_or_default()
}

#[tokio::test]
async fn the_crd_copies_install_on_a_real_api_server() {
    let Some(server) = apiextensions::for_test() else {
        return;
    };
    eprintln!("real server: {} at {}", server.version(), server.url());
    let client = client_for(server.kubeconfig()).await.expect("client");
    let api: Api<CustomResourceDefinition> = Api::all(client);
    install_and_check(
        &api,
        "crds/loadtest.yaml",
        crd_from_file("crds/loadtest.yaml"),
    )
    .await;
    install_and_check(
        &api,
        "charts/stampede/crds/loadtest.yaml",
        crd_from_file("charts/stampede/crds/loadtest.yaml"),
    )
    .await;
    install_and_check(&api, "the chart as Helm renders it", crd_from_chart()).await;
}

#[tokio::test]
async fn the_crd_with_a_rule_on_an_untyped_field_is_refused() {
    let Some(server) = apiextensions::for_test() else {
        return;
    };
    let client = client_for(server.kubeconfig()).await.expect("client");
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let text = std::fs::read_to_string(repo_path("crds/loadtest.yaml")).expect("CRD");
    // The step rule as it was before the fix: `sleep` has no type, so CEL cannot see it.
    let old = text.replace(
        "!has(self.request) || !has(self.group)",
        "(has(self.request) ? 1 : 0) + (has(self.sleep) ? 1 : 0) + (has(self.group) ? 1 : 0) == 1",
    );
    assert_ne!(old, text, "the step rule is in the CRD");
    let typed: CustomResourceDefinition = serde_yaml_ng::from_str(&old).expect("CRD");
    let error = api
        .create(&PostParams::default(), &typed)
        .await
        .expect_err("the real server refuses it");
    let (code, reason, message) = stampede_tests::cluster::api_error(error);
    assert_eq!((code, reason.as_str()), (422, "Invalid"), "{message}");
    for field in [
        "flows].additionalProperties.items",
        "setup].items",
        "teardown].items",
    ] {
        assert!(
            message.contains(&format!("{field}.x-kubernetes-validations[0].rule")),
            "{field}: {message}"
        );
    }
    assert!(
        message.contains("compilation failed: ERROR: <input>:1:35: undefined field 'sleep'"),
        "{message}"
    );
}
