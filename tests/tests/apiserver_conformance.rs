//! Conformance of the API server stand-in with kube-apiserver, through kube-rs and the real
//! `kubectl`: every behaviour Stampede and kubectl rely on. With `STAMPEDE_E2E_KUBECONFIG` set
//! the same tests run against that cluster (stand-in-only checks are skipped there).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::{Value, json};
use stampede_tests::cluster::{Cluster, api_error, wait_gone};

const WIDGET_CRD: &str = "tests/fixtures/widget-crd.yaml";
const STEP: Duration = Duration::from_secs(10);
/// How long a deletion (and its garbage collection) may take.
const GONE: Duration = Duration::from_secs(30);

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("conformance.stampede.dev", "v1", "Widget"),
        "widgets",
    )
}

/// A cluster with the widget CRD installed (through `kubectl apply`) and a fresh namespace.
async fn setup(prefix: &str) -> (Cluster, String) {
    let cluster = Cluster::start().await;
    cluster.install_crd(WIDGET_CRD, "widgets.conformance.stampede.dev");
    let namespace = cluster.namespace(prefix).await;
    (cluster, namespace)
}

fn widgets(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, namespace, &widget_resource())
}

fn widget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "conformance.stampede.dev/v1", "kind": "Widget",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

fn config_map(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap()
}

fn rv(object: &impl kube::Resource) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

#[tokio::test]
async fn crud_conflicts_and_status_bodies() {
    let (cluster, ns) = setup("conf-crud").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    let created = maps
        .create(&PostParams::default(), &config_map("a", json!({"k": "1"})))
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    assert!(created.metadata.creation_timestamp.is_some());

    let (code, reason, message) = api_error(
        maps.create(&PostParams::default(), &config_map("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(message, "configmaps \"a\" already exists");

    let (code, reason, message) = api_error(maps.get("missing").await.unwrap_err());
    assert_eq!(
        (code, reason.as_str(), message.as_str()),
        (404, "NotFound", "configmaps \"missing\" not found")
    );

    // Optimistic concurrency: an update carrying a stale resourceVersion is a 409.
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_string(), "2".to_string())].into());
    let updated = maps
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert!(rv(&updated) > rv(&created));
    assert_eq!(updated.metadata.uid.as_deref(), Some(uid.as_str()));
    let (code, reason, message) = api_error(
        maps.replace("a", &PostParams::default(), &fresh)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(
        message.contains("the object has been modified"),
        "{message}"
    );

    // Writes into a namespace that does not exist are 404s naming the namespace.
    let elsewhere: Api<ConfigMap> = Api::namespaced(cluster.client().await, "no-such-namespace-x");
    let (code, _, message) = api_error(
        elsewhere
            .create(&PostParams::default(), &config_map("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (404, "namespaces \"no-such-namespace-x\" not found")
    );

    maps.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(maps.get("a").await.unwrap_err()).0, 404);
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn resource_versions_increase_and_generation_tracks_spec_only() {
    let (cluster, ns) = setup("conf-gen").await;
    let api = widgets(cluster.client().await, &ns);
    let created = api
        .create(&PostParams::default(), &widget("w", json!({"owner": "qa"})))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    let labelled = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "qa"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "a metadata change keeps the generation"
    );
    assert!(rv(&labelled) > rv(&created));

    let status = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "a status change keeps the generation"
    );
    assert!(rv(&status) > rv(&labelled));

    let respec = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(
        respec.metadata.generation,
        Some(2),
        "a spec change bumps the generation"
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn status_subresource_splits_writes() {
    let (cluster, ns) = setup("conf-status").await;
    let api = widgets(cluster.client().await, &ns);
    let mut object = widget("w", json!({"owner": "qa", "replicas": 2}));
    object.data["status"] = json!({"phase": "Sneaky"});
    let created = api.create(&PostParams::default(), &object).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status on create is dropped: {:?}",
        created.data
    );

    // A write to /status changes only status.
    let written = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 9}, "status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(written.data["status"]["phase"], "Ready");
    assert_eq!(written.data["spec"]["replicas"], 2);

    // A write to the object changes no status.
    let written = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}, "status": {"phase": "Hijacked"}})),
        )
        .await
        .unwrap();
    assert_eq!(written.data["status"]["phase"], "Ready");
    assert_eq!(written.data["spec"]["replicas"], 4);
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn custom_resources_are_defaulted_pruned_and_validated() {
    let (cluster, ns) = setup("conf-schema").await;
    let api = widgets(cluster.client().await, &ns);
    let created = api
        .create(
            &PostParams::default(),
            &widget(
                "w",
                json!({"owner": "qa", "unknownField": 1, "extra": {"free": {"form": true}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["size"], "small", "default applied");
    assert_eq!(created.data["spec"]["replicas"], 1, "default applied");
    assert!(
        created.data["spec"].get("unknownField").is_none(),
        "unknown spec field pruned"
    );
    assert_eq!(
        created.data["spec"]["extra"]["free"]["form"], true,
        "preserve-unknown-fields kept"
    );

    // Unknown status fields silently disappear too, on a real cluster as here.
    let written = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready", "notInSchema": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(written.data["status"], json!({"phase": "Ready"}));

    for (spec, field, fragment) in [
        (
            json!({"owner": "qa", "replicas": "three"}),
            "spec.replicas",
            "must be of type integer",
        ),
        (
            json!({"owner": "qa", "replicas": 11}),
            "spec.replicas",
            "should be less than or equal to 10",
        ),
        (
            json!({"owner": "qa", "replicas": 0}),
            "spec.replicas",
            "should be greater than or equal to 1",
        ),
        (
            json!({"owner": "qa", "size": "huge"}),
            "spec.size",
            "Unsupported value: \"huge\"",
        ),
        (json!({"replicas": 2}), "spec.owner", "Required value"),
        (
            json!({"owner": "qa", "replicas": 2, "minReplicas": 5}),
            "spec",
            "minReplicas must not exceed replicas",
        ),
    ] {
        let (code, reason, message) = api_error(
            api.create(&PostParams::default(), &widget("bad", spec.clone()))
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (code, reason.as_str()),
            (422, "Invalid"),
            "{spec}: {message}"
        );
        assert!(
            message.starts_with("Widget.conformance.stampede.dev \"bad\" is invalid: "),
            "{message}"
        );
        assert!(
            message.contains(field) && message.contains(fragment),
            "{spec}: {message}"
        );
    }
    assert_eq!(
        api_error(api.get("bad").await.unwrap_err()).0,
        404,
        "nothing invalid was stored"
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn patches_merge_json_and_strategic() {
    let (cluster, ns) = setup("conf-patch").await;
    let client = cluster.client().await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    maps.create(
        &PostParams::default(),
        &config_map("m", json!({"a": "1", "b": "2"})),
    )
    .await
    .unwrap();
    let merged = maps
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": null, "c": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data.unwrap(),
        [
            ("b".to_string(), "2".to_string()),
            ("c".to_string(), "3".to_string())
        ]
        .into()
    );

    // A resourceVersion in a patch is a precondition.
    let stale = Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"z": "0"}}));
    assert_eq!(
        api_error(
            maps.patch("m", &PatchParams::default(), &stale)
                .await
                .unwrap_err()
        )
        .0,
        409
    );

    let patch: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/b", "value": "20"}]))
            .unwrap();
    let patched = maps
        .patch("m", &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["b"], "20");
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/b", "value": "nope"}]))
            .unwrap();
    assert_eq!(
        api_error(
            maps.patch("m", &PatchParams::default(), &Patch::<()>::Json(failing))
                .await
                .unwrap_err()
        )
        .0,
        422
    );

    // Strategic merge: containers merge by name, env by name.
    let jobs: Api<Job> = Api::namespaced(client, &ns);
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "j"},
        "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "a", "image": "stampede:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "stampede:1"}]}}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let patched = jobs
        .patch(
            "j",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}}})),
        )
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2, "strategic merge keeps container b");
    let mut env: Vec<String> = containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    env.sort();
    assert_eq!(env, ["X", "Y"], "env merged by name");

    // kubectl patch defaults to a strategic merge on built-ins.
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "configmap",
        "m",
        "-p",
        r#"{"data":{"d":"4"}}"#,
    ]);
    let data = maps.get("m").await.unwrap().data.unwrap();
    assert_eq!(data["d"], "4");
    // ... and custom resources refuse strategic merge patches with a 415, which kubectl reports.
    let widgets_api = widgets(cluster.client().await, &ns);
    widgets_api
        .create(&PostParams::default(), &widget("w", json!({"owner": "qa"})))
        .await
        .unwrap();
    let output = cluster.kubectl_run(&[
        "-n",
        &ns,
        "patch",
        "widget",
        "w",
        "-p",
        r#"{"spec":{"replicas":2}}"#,
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("strategic-merge-patch+json is not supported")
    );
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "patch",
        "widget",
        "w",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":2}}"#,
    ]);
    assert_eq!(
        widgets_api.get("w").await.unwrap().data["spec"]["replicas"],
        2
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn server_side_apply_owns_fields_and_conflicts() {
    let (cluster, ns) = setup("conf-ssa").await;
    let api = widgets(cluster.client().await, &ns);
    let intent = |replicas: i64| {
        json!({"apiVersion": "conformance.stampede.dev/v1", "kind": "Widget",
               "metadata": {"name": "w"}, "spec": {"owner": "qa", "replicas": replicas}})
    };
    let applied = api
        .patch("w", &PatchParams::apply("alice"), &Patch::Apply(intent(2)))
        .await
        .unwrap();
    let managers: Vec<String> = applied
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["alice"]);

    // Same value from another manager: shared ownership, no conflict.
    api.patch("w", &PatchParams::apply("bob"), &Patch::Apply(intent(2)))
        .await
        .unwrap();
    // A different value owned by others: 409 naming the managers and the field.
    let (code, reason, message) = api_error(
        api.patch("w", &PatchParams::apply("carol"), &Patch::Apply(intent(5)))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert!(message.starts_with("Apply failed with"), "{message}");
    assert!(
        message.contains("\"alice\"") && message.contains(".spec.replicas"),
        "{message}"
    );
    // Forced, carol takes the field.
    let forced = api
        .patch(
            "w",
            &PatchParams::apply("carol").force(),
            &Patch::Apply(intent(5)),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["replicas"], 5);

    // A field its only owner stops applying is removed.
    let dropped = json!({"apiVersion": "conformance.stampede.dev/v1", "kind": "Widget",
                         "metadata": {"name": "w"}, "spec": {"owner": "qa", "replicas": 5, "minReplicas": 1}});
    api.patch(
        "w",
        &PatchParams::apply("carol").force(),
        &Patch::Apply(dropped),
    )
    .await
    .unwrap();
    let back = api
        .patch(
            "w",
            &PatchParams::apply("carol").force(),
            &Patch::Apply(intent(5)),
        )
        .await
        .unwrap();
    assert!(
        back.data["spec"].get("minReplicas").is_none(),
        "{:?}",
        back.data
    );

    // kubectl apply --server-side reports the conflict the same way, and --force-conflicts wins.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_string(&intent(7)).unwrap()).unwrap();
    let path = file.path().to_str().unwrap();
    let output = cluster.kubectl_run(&["-n", &ns, "apply", "--server-side", "-f", path]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("conflict") && stderr.contains(".spec.replicas"),
        "{stderr}"
    );
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        path,
    ]);
    assert_eq!(api.get("w").await.unwrap().data["spec"]["replicas"], 7);
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn list_and_watch_with_selectors_and_bookmarks() {
    let (cluster, ns) = setup("conf-watch").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "web")] {
        let mut map = config_map(name, json!({}));
        map.metadata.labels = Some([("tier".to_string(), tier.to_string())].into());
        maps.create(&PostParams::default(), &map).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|m| m.metadata.name)
            .collect()
    };
    assert_eq!(
        names(
            maps.list(&ListParams::default().labels("tier=web"))
                .await
                .unwrap()
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            maps.list(&ListParams::default().labels("tier in (db)"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    assert_eq!(
        names(
            maps.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        ["c"]
    );
    let (code, _, message) = api_error(
        maps.list(&ListParams::default().fields("data.x=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400, "{message}");

    // A raw watch from the list's resourceVersion sees later changes only, filtered, with
    // bookmarks; a change that moves an object out of the selection arrives as DELETED.
    let list = maps.list(&ListParams::default()).await.unwrap();
    let since = list.metadata.resource_version.unwrap();
    let params = WatchParams::default().labels("tier=web").timeout(20);
    let mut stream = maps.watch(&params, &since).await.unwrap().boxed();
    maps.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    maps.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    maps.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "db"}}})),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut bookmarks = 0;
    while seen.len() < 2 {
        match tokio::time::timeout(STEP, stream.try_next())
            .await
            .expect("watch event in time")
            .unwrap()
        {
            Some(WatchEvent::Modified(m)) => {
                seen.push(format!("MODIFIED {}", m.metadata.name.unwrap()))
            }
            Some(WatchEvent::Deleted(m)) => {
                seen.push(format!("DELETED {}", m.metadata.name.unwrap()))
            }
            Some(WatchEvent::Added(m)) => seen.push(format!("ADDED {}", m.metadata.name.unwrap())),
            Some(WatchEvent::Bookmark(_)) => bookmarks += 1,
            Some(WatchEvent::Error(e)) => panic!("watch error {e:?}"),
            None => break,
        }
    }
    assert_eq!(seen, ["MODIFIED a", "DELETED c"]);
    if !cluster.is_real() {
        // The stand-in sends bookmarks every second; wait for one (real servers take ~1 min).
        while bookmarks == 0 {
            if let Some(WatchEvent::Bookmark(b)) = tokio::time::timeout(STEP, stream.try_next())
                .await
                .expect("bookmark in time")
                .unwrap()
            {
                assert!(
                    b.metadata.resource_version.parse::<u64>().unwrap()
                        >= since.parse::<u64>().unwrap()
                );
                bookmarks += 1;
            }
        }
    }
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn too_old_resource_version_is_gone_and_the_watcher_recovers() {
    let cluster = Cluster::start().await;
    let Some(server) = cluster.stand_in() else {
        return; // Compaction can only be forced on the stand-in.
    };
    let ns = cluster.namespace("conf-gone").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    maps.create(&PostParams::default(), &config_map("before", json!({})))
        .await
        .unwrap();
    let old = maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    maps.create(&PostParams::default(), &config_map("after", json!({})))
        .await
        .unwrap();
    server.compact();

    let mut stream = maps
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(STEP, stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Error(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (410, "Expired"),
                "{status:?}"
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }

    // kube-rs's watcher re-lists after a 410 and still sees every object.
    let mut events = watcher(maps.clone(), watcher::Config::default()).boxed();
    let mut names = std::collections::BTreeSet::new();
    while names.len() < 3 {
        if let Some(watcher::Event::InitApply(m) | watcher::Event::Apply(m)) =
            tokio::time::timeout(STEP, events.try_next())
                .await
                .expect("watcher event")
                .unwrap()
        {
            names.insert(m.metadata.name.unwrap());
            if names.len() == 2 {
                maps.create(&PostParams::default(), &config_map("later", json!({})))
                    .await
                    .unwrap();
            }
        }
    }
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["after", "before", "later"]
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (cluster, ns) = setup("conf-final").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    let mut map = config_map("held", json!({}));
    map.metadata.finalizers = Some(vec!["stampede.dev/test".into()]);
    maps.create(&PostParams::default(), &map).await.unwrap();
    maps.delete("held", &DeleteParams::default()).await.unwrap();
    let held = maps.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    // No new finalizers on an object being deleted.
    let (code, _, message) = api_error(
        maps.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["stampede.dev/test", "other"]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 422, "{message}");
    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_gone(&maps, "held", GONE).await;
    cluster.drop_namespace(&ns).await;
}

fn owned_by(name: &str, owner: &ConfigMap) -> ConfigMap {
    let mut map = config_map(name, json!({}));
    map.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: owner.metadata.name.clone().unwrap(),
            uid: owner.metadata.uid.clone().unwrap(),
            block_owner_deletion: Some(true),
            controller: Some(true),
        },
    ]);
    map
}

#[tokio::test]
async fn garbage_collection_follows_owner_references() {
    let (cluster, ns) = setup("conf-gc").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    let pp = PostParams::default();

    // Background: the owner goes, then its dependents.
    let owner = maps
        .create(&pp, &config_map("owner-bg", json!({})))
        .await
        .unwrap();
    maps.create(&pp, &owned_by("dep-bg", &owner)).await.unwrap();
    maps.delete("owner-bg", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&maps, "dep-bg", GONE).await;

    // Orphan: dependents stay, without the reference.
    let owner = maps
        .create(&pp, &config_map("owner-or", json!({})))
        .await
        .unwrap();
    maps.create(&pp, &owned_by("dep-or", &owner)).await.unwrap();
    maps.delete("owner-or", &DeleteParams::orphan())
        .await
        .unwrap();
    wait_gone(&maps, "owner-or", GONE).await;
    let orphan = maps.get("dep-or").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );

    // Foreground: the owner waits (deletionTimestamp, foregroundDeletion) for a dependent that
    // a finalizer holds.
    let owner = maps
        .create(&pp, &config_map("owner-fg", json!({})))
        .await
        .unwrap();
    let mut dependent = owned_by("dep-fg", &owner);
    dependent.metadata.finalizers = Some(vec!["stampede.dev/hold".into()]);
    maps.create(&pp, &dependent).await.unwrap();
    maps.delete("owner-fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let waiting = maps.get("owner-fg").await.unwrap();
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert!(
        waiting
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    let condition =
        kube::runtime::wait::await_condition(maps.clone(), "dep-fg", |m: Option<&ConfigMap>| {
            m.is_some_and(|m| m.metadata.deletion_timestamp.is_some())
        });
    tokio::time::timeout(Duration::from_secs(30), condition)
        .await
        .unwrap()
        .unwrap();
    maps.patch(
        "dep-fg",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_gone(&maps, "dep-fg", GONE).await;
    wait_gone(&maps, "owner-fg", GONE).await;
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_contents() {
    let cluster = Cluster::start().await;
    let ns = cluster.namespace("conf-ns").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    maps.create(&PostParams::default(), &config_map("inside", json!({})))
        .await
        .unwrap();
    cluster.drop_namespace(&ns).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client().await);
    wait_gone(&namespaces, &ns, GONE).await;
    assert_eq!(api_error(maps.get("inside").await.unwrap_err()).0, 404);
}

#[tokio::test]
async fn kubectl_apply_get_wait_and_delete() {
    let (cluster, ns) = setup("conf-kubectl").await;
    let manifest = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        manifest.path(),
        "apiVersion: conformance.stampede.dev/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  owner: qa\n  replicas: 3\n",
    )
    .unwrap();
    let path = manifest.path().to_str().unwrap();
    assert!(
        cluster
            .kubectl_ok(&["-n", &ns, "apply", "-f", path])
            .contains("widget.conformance.stampede.dev/w created")
    );
    assert!(
        cluster
            .kubectl_ok(&["-n", &ns, "apply", "-f", path])
            .contains("unchanged")
    );

    // The table uses the CRD's printer columns.
    let table = cluster.kubectl_ok(&["-n", &ns, "get", "wg"]);
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "SIZE", "REPLICAS", "PHASE", "AGE"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&row[..3], ["w", "small", "3"]);

    // A typo is refused by kubectl's default (strict) field validation, naming the field.
    std::fs::write(manifest.path(), "apiVersion: conformance.stampede.dev/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  owner: qa\n  replica: 3\n").unwrap();
    let output = cluster.kubectl_run(&["-n", &ns, "apply", "-f", path]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("unknown field \"spec.replica\""),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // get -w prints the change; wait returns once the status says so.
    let mut watch = cluster
        .kubectl()
        .args([
            "-n",
            &ns,
            "get",
            "widget",
            "w",
            "-w",
            "--output-watch-events",
            "--request-timeout=20s",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiter = cluster
        .kubectl()
        .args([
            "-n",
            &ns,
            "wait",
            "--for=jsonpath={.status.phase}=Ready",
            "--timeout=30s",
            "widget/w",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let api = widgets(cluster.client().await, &ns);
    let stdout = watch.stdout.take().unwrap();
    let (lines, printed) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    // kubectl skips the watch's first ADDED (the object it printed), and a change racing its
    // watch request can hide in it; so change the status until a MODIFIED line shows.
    let mut modified = None;
    for generation in 1..=40 {
        api.patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready", "observedGeneration": generation}})),
        )
        .await
        .unwrap();
        if let Ok(line) = printed.recv_timeout(Duration::from_millis(500))
            && line.starts_with("MODIFIED")
        {
            modified = Some(line);
            break;
        }
    }
    let modified = modified.expect("kubectl get -w printed no MODIFIED line");
    assert!(
        modified.split_whitespace().any(|cell| cell == "Ready"),
        "{modified}"
    );
    let waited = waiter.wait_with_output().unwrap();
    assert!(waited.status.success(), "kubectl wait failed");
    assert!(String::from_utf8_lossy(&waited.stdout).contains("condition met"));
    let _ = watch.kill();
    let _ = watch.wait();

    assert!(
        cluster
            .kubectl_ok(&["-n", &ns, "delete", "widget", "w"])
            .contains("deleted")
    );
    let output = cluster.kubectl_run(&["-n", &ns, "get", "widget", "w"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn discovery_lists_builtins_and_new_crds() {
    let (cluster, _ns) = setup("conf-disc").await;
    let resources = cluster.kubectl_ok(&["api-resources", "-o", "name"]);
    for name in [
        "pods",
        "jobs.batch",
        "configmaps",
        "secrets",
        "leases.coordination.k8s.io",
        "widgets.conformance.stampede.dev",
    ] {
        assert!(
            resources.lines().any(|l| l == name),
            "{name} missing from:\n{resources}"
        );
    }
    let discovery = kube::discovery::Discovery::new(cluster.client().await)
        .run()
        .await
        .unwrap();
    let found = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .any(|(resource, _)| resource.plural == "widgets");
    assert!(found);
    let pods: Api<Pod> = Api::default_namespaced(cluster.client().await);
    pods.list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn rbac_limits_service_accounts_like_a_real_cluster() {
    let (cluster, ns) = setup("conf-rbac").await;
    let client = cluster.client().await;
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "runner"},
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["report"], "verbs": ["get", "update", "patch"]},
            {"apiGroups": ["conformance.stampede.dev"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]},
        ]
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "runner"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runner"},
        "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": ns}]
    });
    let account =
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner"}});
    let manifest = tempfile::NamedTempFile::new().unwrap();
    let documents: Vec<String> = [account, role, binding]
        .iter()
        .map(|d| serde_json::to_string(d).unwrap())
        .collect();
    std::fs::write(manifest.path(), documents.join("\n---\n")).unwrap();
    cluster.kubectl_ok(&["-n", &ns, "apply", "-f", manifest.path().to_str().unwrap()]);

    // kubectl auth can-i through impersonation, the same on a real cluster.
    let can = |args: &[&str]| cluster.can_i(&ns, "runner", args);
    assert_eq!(can(&["get", "configmap/report"]), "yes");
    assert_eq!(can(&["get", "configmap/other"]), "no");
    assert_eq!(can(&["list", "configmaps"]), "no");
    assert_eq!(can(&["watch", "widgets.conformance.stampede.dev"]), "yes");
    assert_eq!(
        can(&[
            "patch",
            "widgets.conformance.stampede.dev",
            "--subresource=status"
        ]),
        "no"
    );
    assert_eq!(can(&["get", "secrets"]), "no");

    let Some(server) = cluster.stand_in() else {
        return; // A real cluster's service-account tokens come from its TokenRequest API.
    };
    // The same identity as a pod gets it from the process kubelet.
    let token = stampede_tests::apiserver::service_account_token(&ns, "runner");
    let runner = server.client_with_token(&token).await.unwrap();
    let admin_maps: Api<ConfigMap> = Api::namespaced(client, &ns);
    admin_maps
        .create(&PostParams::default(), &config_map("report", json!({})))
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(runner.clone(), &ns);
    maps.get("report").await.unwrap();
    maps.patch(
        "report",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"summary": "{}"}})),
    )
    .await
    .unwrap();
    let (code, reason, message) = api_error(maps.get("other").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        message,
        format!(
            "configmaps \"other\" is forbidden: User \"system:serviceaccount:{ns}:runner\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"{ns}\""
        )
    );
    let widgets_api = widgets(runner, &ns);
    widgets_api.list(&ListParams::default()).await.unwrap();
    let (code, _, message) = api_error(
        widgets_api
            .patch_status(
                "w",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "x"}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert!(
        message.contains(
            "cannot patch resource \"widgets/status\" in API group \"conformance.stampede.dev\""
        ),
        "{message}"
    );

    // An unknown token is a 401.
    let forged: Api<ConfigMap> =
        Api::namespaced(server.client_with_token("forged").await.unwrap(), &ns);
    assert_eq!(api_error(forged.get("report").await.unwrap_err()).0, 401);
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn pods_run_as_an_existing_service_account() {
    let (cluster, ns) = setup("conf-sa").await;
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, &ns);
    let pod = |name: &str, account: Option<&str>| -> Pod {
        let mut spec = json!({"containers": [{"name": "c", "image": "stampede:1"}]});
        if let Some(account) = account {
            spec["serviceAccountName"] = json!(account);
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    // Every namespace gets a `default` account, and pods that name none run as it.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(cluster.client().await, &ns);
    let condition = kube::runtime::wait::await_condition(
        accounts,
        "default",
        |a: Option<&k8s_openapi::api::core::v1::ServiceAccount>| a.is_some(),
    );
    tokio::time::timeout(Duration::from_secs(30), condition)
        .await
        .unwrap()
        .unwrap();
    let created = pods
        .create(&PostParams::default(), &pod("plain", None))
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().service_account_name.as_deref(),
        Some("default")
    );
    let (code, _, message) = api_error(
        pods.create(&PostParams::default(), &pod("ghost", Some("ghost")))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("serviceaccount \"ghost\" not found"),
        "{message}"
    );
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn kubectl_create_generators_work() {
    let (cluster, ns) = setup("conf-create").await;
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "secret",
        "generic",
        "shop-test-user",
        "--from-literal=password=s3cret",
    ]);
    cluster.kubectl_ok(&[
        "-n",
        &ns,
        "create",
        "configmap",
        "users",
        "--from-literal=u1=alice",
    ]);
    cluster.kubectl_ok(&["-n", &ns, "create", "serviceaccount", "runner"]);
    let password = cluster.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "secret",
        "shop-test-user",
        "-o",
        "jsonpath={.data.password}",
    ]);
    assert_eq!(password, "czNjcmV0");
    let user = cluster.kubectl_ok(&[
        "-n",
        &ns,
        "get",
        "configmap",
        "users",
        "-o",
        "jsonpath={.data.u1}",
    ]);
    assert_eq!(user, "alice");
    let table = cluster.kubectl_ok(&["-n", &ns, "get", "secrets"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "DATA", "AGE"]);
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn a_write_that_changes_nothing_is_no_write() {
    let cluster = Cluster::start().await;
    let ns = cluster.namespace("conf-noop").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "same"}, "data": {"k": "v"}});
    let params = PatchParams::apply("noop-test").force();
    let first = maps
        .patch("same", &params, &Patch::Apply(&applied))
        .await
        .unwrap();
    // The same apply again, a merge patch that sets what is there, and an update with the
    // object as read: none is a change, so none bumps the resourceVersion.
    let again = maps
        .patch("same", &params, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        first.metadata.resource_version
    );
    let merged = maps
        .patch(
            "same",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "v"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.metadata.resource_version,
        first.metadata.resource_version
    );
    let replaced = maps
        .replace("same", &PostParams::default(), &merged)
        .await
        .unwrap();
    assert_eq!(
        replaced.metadata.resource_version,
        first.metadata.resource_version
    );
    // A watch from that version sees only the real change that follows.
    let params_watch = WatchParams::default().fields("metadata.name=same");
    let mut events = maps
        .watch(
            &params_watch,
            first.metadata.resource_version.as_deref().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    maps.patch(
        "same",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    let event = tokio::time::timeout(STEP, events.next())
        .await
        .expect("an event")
        .expect("a stream item")
        .unwrap();
    match event {
        WatchEvent::Modified(map) => {
            assert_eq!(
                map.data.unwrap_or_default().get("k").map(String::as_str),
                Some("w")
            );
        }
        other => panic!("want the one real change, got {other:?}"),
    }
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn metadata_of_every_kind_is_validated() {
    let cluster = Cluster::start().await;
    let ns = cluster.namespace("conf-meta").await;
    let maps: Api<ConfigMap> = Api::namespaced(cluster.client().await, &ns);
    let long = "v".repeat(64);
    let labelled: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "labelled", "labels": {"app": long},
                     "annotations": {"bad key!": "x"}, "finalizers": ["no/slash/twice"]}
    }))
    .unwrap();
    let (code, reason, message) = api_error(
        maps.create(&PostParams::default(), &labelled)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"), "{message}");
    assert!(
        message.starts_with(
            "ConfigMap \"labelled\" is invalid: [metadata.labels: Invalid value: \"vvvv"
        ),
        "{message}"
    );
    for detail in [
        "must be no more than 63 bytes",
        "metadata.annotations: Invalid value: \"bad key!\"",
        "metadata.finalizers: Invalid value: \"no/slash/twice\"",
    ] {
        assert!(message.contains(detail), "{detail}: {message}");
    }
    cluster.drop_namespace(&ns).await;
}
