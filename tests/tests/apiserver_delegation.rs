//! The stand-in delegating to a real apiextensions-apiserver, as kube-apiserver delegates to
//! its own: CRDs and custom resources are stored, validated and watched by the real server,
//! while the stand-in keeps RBAC (authorize, then forward), the built-in kinds and the garbage
//! collector, which follows owner references across the two (background, foreground, orphan,
//! namespace deletion); discovery and OpenAPI are merged so that `kubectl get` and `kubectl
//! explain` work. Skipped, with a line saying so, when no real server is built.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use serde_json::{Value, json};
use stampede_crds::LoadTest;
use stampede_tests::apiextensions::binaries;
use stampede_tests::apiserver::{ApiServer, service_account_token};
use stampede_tests::cluster::{Cluster, api_error, wait_gone};

const STEP: Duration = Duration::from_secs(20);

/// A delegating stand-in with the LoadTest CRD and a namespace, or None (with a line saying
/// why) when no real server is built.
async fn delegating(prefix: &str) -> Option<(Cluster, String)> {
    let cluster = Cluster::start().await;
    let server = cluster.stand_in().expect("the stand-in");
    if server.real_server().is_none() {
        assert!(
            !binaries::required(),
            "a real API server is required: {}",
            server.mode()
        );
        eprintln!("skipped: {}", server.mode());
        return None;
    }
    cluster.install_crd("crds/loadtest.yaml", "loadtests.stampede.dev");
    let namespace = cluster.namespace(prefix).await;
    Some((cluster, namespace))
}

fn loadtest(name: &str) -> LoadTest {
    serde_json::from_value(json!({
        "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
        "metadata": {"name": name},
        "spec": {"vus": 1, "duration": "1s",
                 "flows": {"default": [{"request": {"url": "http://127.0.0.1:9/"}}]}}
    }))
    .expect("LoadTest")
}

fn owned_by(name: &str, owner: &LoadTest) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "stampede.dev/v1alpha1".into(),
                kind: "LoadTest".into(),
                name: owner.metadata.name.clone().unwrap_or_default(),
                uid: owner.metadata.uid.clone().unwrap_or_default(),
                block_owner_deletion: Some(true),
                controller: Some(true),
            }]),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn custom_resources_live_on_the_real_server_and_the_stand_in_says_so() {
    let Some((cluster, ns)) = delegating("dlg-store").await else {
        return;
    };
    let server = cluster.stand_in().unwrap();
    assert!(
        server.mode().contains("apiextensions-apiserver"),
        "{}",
        server.mode()
    );
    let client = cluster.client().await;
    let tests: Api<LoadTest> = Api::namespaced(client, &ns);
    let created = tests
        .create(&PostParams::default(), &loadtest("stored"))
        .await
        .unwrap();
    // The real server assigns etcd revisions and its own uid format; read it back there.
    let real = stampede_tests::apiserver::client_for(server.real_server().unwrap().kubeconfig())
        .await
        .unwrap();
    let direct: Api<LoadTest> = Api::namespaced(real, &ns);
    let stored = direct.get("stored").await.unwrap();
    assert_eq!(stored.metadata.uid, created.metadata.uid);
    assert_eq!(stored.spec, created.spec);

    // Discovery, the table and explain, through kubectl.
    let resources = cluster.kubectl_ok(&["api-resources", "--api-group=stampede.dev"]);
    assert!(
        resources.contains("loadtests") && resources.contains("lt"),
        "{resources}"
    );
    let table = cluster.kubectl_ok(&["get", "lt", "-n", &ns]);
    assert!(
        table.starts_with("NAME") && table.contains("PHASE") && table.contains("stored"),
        "{table}"
    );
    let explained = cluster.kubectl_ok(&["explain", "loadtest.spec.scenarios"]);
    assert!(
        explained.contains("KIND:       LoadTest")
            && explained.contains("FIELD: scenarios")
            && explained.contains("executor"),
        "{explained}"
    );

    // Creating in a namespace that does not exist is refused, as NamespaceLifecycle does.
    let missing: Api<LoadTest> = Api::namespaced(cluster.client().await, "no-such-namespace");
    let (code, _, message) = api_error(
        missing
            .create(&PostParams::default(), &loadtest("x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 404, "{message}");
    assert!(
        message.contains("namespaces \"no-such-namespace\" not found"),
        "{message}"
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn rbac_is_decided_here_before_anything_is_forwarded() {
    let Some((cluster, ns)) = delegating("dlg-rbac").await else {
        return;
    };
    let server: &ApiServer = cluster.stand_in().unwrap();
    cluster.kubectl_ok(&["create", "serviceaccount", "reader", "-n", &ns]);
    cluster.kubectl_ok(&[
        "create",
        "role",
        "lt-reader",
        "-n",
        &ns,
        "--verb=get,list,watch",
        "--resource=loadtests.stampede.dev",
    ]);
    cluster.kubectl_ok(&[
        "create",
        "rolebinding",
        "lt-reader",
        "-n",
        &ns,
        "--role=lt-reader",
        &format!("--serviceaccount={ns}:reader"),
    ]);
    let admin: Api<LoadTest> = Api::namespaced(cluster.client().await, &ns);
    admin
        .create(&PostParams::default(), &loadtest("readable"))
        .await
        .unwrap();
    let reader_client = server
        .client_with_token(&service_account_token(&ns, "reader"))
        .await
        .unwrap();
    let reader: Api<LoadTest> = Api::namespaced(reader_client, &ns);
    assert!(reader.get("readable").await.is_ok());
    let (code, _, message) = api_error(
        reader
            .create(&PostParams::default(), &loadtest("denied"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains(&format!(
            "User \"system:serviceaccount:{ns}:reader\" cannot create resource \"loadtests\" in API group \"stampede.dev\""
        )),
        "{message}"
    );
    let audit = server.audit(&format!("system:serviceaccount:{ns}:reader"));
    let decisions: Vec<(String, bool)> = audit
        .iter()
        .map(|e| (e.attributes.verb.clone(), e.allowed))
        .collect();
    assert_eq!(
        decisions,
        [("get".to_string(), true), ("create".to_string(), false)]
    );
    assert_eq!(
        api_error(admin.get("denied").await.unwrap_err()).0,
        404,
        "a denied create never reached the real server"
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn watches_stream_through_the_stand_in() {
    let Some((cluster, ns)) = delegating("dlg-watch").await else {
        return;
    };
    let tests: Api<LoadTest> = Api::namespaced(cluster.client().await, &ns);
    let mut events = watcher::watcher(tests.clone(), watcher::Config::default()).boxed();
    let mut seen = Vec::new();
    let step = async {
        while let Some(event) = events.next().await {
            match event.expect("watch event") {
                watcher::Event::InitDone => {
                    tests
                        .create(&PostParams::default(), &loadtest("watched"))
                        .await
                        .unwrap();
                }
                watcher::Event::Apply(object) => {
                    seen.push(format!(
                        "apply {}",
                        object.metadata.name.unwrap_or_default()
                    ));
                    if seen.len() == 1 {
                        tests
                            .delete("watched", &DeleteParams::background())
                            .await
                            .unwrap();
                    }
                }
                watcher::Event::Delete(object) => {
                    seen.push(format!(
                        "delete {}",
                        object.metadata.name.unwrap_or_default()
                    ));
                    return;
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(STEP, step)
        .await
        .expect("events in time");
    assert_eq!(seen, ["apply watched", "delete watched"]);
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn garbage_collection_follows_owners_on_the_real_server() {
    let Some((cluster, ns)) = delegating("dlg-gc").await else {
        return;
    };
    let client = cluster.client().await;
    let tests: Api<LoadTest> = Api::namespaced(client.clone(), &ns);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams::default();

    // A dependent created right after its owner is not taken for an orphan.
    let owner = tests.create(&pp, &loadtest("bg")).await.unwrap();
    maps.create(&pp, &owned_by("bg-report", &owner))
        .await
        .unwrap();
    let kept = maps.get("bg-report").await;
    assert!(kept.is_ok(), "a fresh dependent was collected: {kept:?}");
    // Background: the owner goes, then its dependents.
    tests
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&maps, "bg-report", STEP).await;

    // Orphan: the dependent stays, without the reference; the owner then goes.
    let owner = tests.create(&pp, &loadtest("orphan")).await.unwrap();
    maps.create(&pp, &owned_by("orphan-report", &owner))
        .await
        .unwrap();
    tests
        .delete("orphan", &DeleteParams::orphan())
        .await
        .unwrap();
    wait_gone(&tests, "orphan", STEP).await;
    let orphan = maps.get("orphan-report").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );

    // Foreground: the owner waits, with its finalizer, for a dependent a finalizer holds.
    let owner = tests.create(&pp, &loadtest("fg")).await.unwrap();
    let mut dependent = owned_by("fg-report", &owner);
    dependent.metadata.finalizers = Some(vec!["stampede.dev/hold".into()]);
    maps.create(&pp, &dependent).await.unwrap();
    tests
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let dependent_deleting = await_condition(maps.clone(), "fg-report", |m: Option<&ConfigMap>| {
        m.is_some_and(|m| m.metadata.deletion_timestamp.is_some())
    });
    tokio::time::timeout(STEP, dependent_deleting)
        .await
        .expect("the dependent is being deleted")
        .unwrap();
    let waiting = tests.get("fg").await.unwrap();
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert!(
        waiting
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    maps.patch(
        "fg-report",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_gone(&maps, "fg-report", STEP).await;
    wait_gone(&tests, "fg", STEP).await;
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_custom_resources() {
    let Some((cluster, ns)) = delegating("dlg-ns").await else {
        return;
    };
    let client = cluster.client().await;
    let tests: Api<LoadTest> = Api::namespaced(client.clone(), &ns);
    tests
        .create(&PostParams::default(), &loadtest("inside"))
        .await
        .unwrap();
    cluster.drop_namespace(&ns).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    wait_gone(&namespaces, &ns, STEP).await;
    // Asked of the real server itself: nothing of the namespace is left there.
    let real = stampede_tests::apiserver::client_for(
        cluster
            .stand_in()
            .unwrap()
            .real_server()
            .unwrap()
            .kubeconfig(),
    )
    .await
    .unwrap();
    let left: Api<DynamicObject> =
        Api::namespaced_with(real, &ns, &kube::api::ApiResource::erase::<LoadTest>(&()));
    let items: Vec<Value> = left
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| json!(o.metadata.name))
        .collect();
    assert!(items.is_empty(), "left on the real server: {items:?}");
}
