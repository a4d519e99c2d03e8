//! Safe in a shared cluster, end to end: a LoadTest named after someone else's objects (a
//! ServiceAccount, Role and RoleBinding `gitlab-runner` and a ConfigMap `gitlab-result`, even
//! wearing our labels) cannot take them over: its run ends Errored naming the object, the
//! objects keep their content and gain no owner reference, and deleting the LoadTest leaves them.
//! And a namespace that enforces the `restricted` Pod Security Standard refuses a plain pod but
//! runs a LoadTest's runners.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};
use stampede_crds::status::Phase;
use stampede_tests::cluster::wait_gone;
use stampede_tests::world::{World, phase, steady};

/// The requests the demo target served on the products route the `steady` flow loads, when
/// it runs in this process (`None` on a real cluster, whose demo server is a pod).
fn served(world: &World) -> Option<u64> {
    let stats = world.demo.stats()?;
    Some(
        stats
            .by_route
            .get("GET /v1/products/{id}")
            .copied()
            .unwrap_or(0),
    )
}

/// The foreign objects as `kubectl get -o json` shows them, without what the API server itself
/// changes on reads (nothing should change at all: resourceVersion included).
fn snapshot(world: &World, kinds: &[(&str, &str)]) -> Vec<Value> {
    kinds
        .iter()
        .map(|(kind, name)| {
            let out = world.cluster.kubectl_ok(&[
                "get",
                "-n",
                &world.namespace,
                kind,
                name,
                "-o",
                "json",
            ]);
            serde_json::from_str(&out).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loadtest_named_after_foreign_objects_cannot_take_them_over() {
    let world = World::start("takeover", 60).await;
    let ns = &world.namespace;
    // Someone else's objects, with the names a LoadTest `gitlab` would use, and our labels.
    let labels = json!({
        "app.kubernetes.io/managed-by": "stampede-operator",
        "stampede.dev/loadtest": "gitlab",
    });
    let foreign = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "gitlab-runner", "namespace": ns, "labels": labels},
         "automountServiceAccountToken": false},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "gitlab-runner", "namespace": ns, "labels": labels},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "gitlab-runner", "namespace": ns, "labels": labels},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gitlab-runner"},
         "subjects": [{"kind": "ServiceAccount", "name": "gitlab-runner", "namespace": ns}]},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "gitlab-result", "namespace": ns, "labels": labels},
         "data": {"config.toml": "concurrent = 4"}},
    ]});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), foreign.to_string()).unwrap();
    world
        .cluster
        // The stand-in serves OpenAPI for custom resources only: no client-side schema check.
        .kubectl_ok(&[
            "create",
            "--validate=false",
            "-f",
            &file.path().to_string_lossy(),
        ]);
    let kinds = [
        ("serviceaccount", "gitlab-runner"),
        ("role", "gitlab-runner"),
        ("rolebinding", "gitlab-runner"),
        ("configmap", "gitlab-result"),
    ];
    let before = snapshot(&world, &kinds);

    world.apply("gitlab", steady(1, "2s", 1, json!({})));
    let status = world
        .wait_status("gitlab", Duration::from_secs(60), "Errored", |s| {
            s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Errored, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("ServiceAccount gitlab-runner already exists and is not this LoadTest's")
            && message.contains("never changes objects it did not create"),
        "{message}"
    );
    assert!(world.jobs().await.is_empty(), "no runner ran");
    assert_eq!(
        snapshot(&world, &kinds),
        before,
        "the foreign objects are untouched"
    );

    // Deleting the LoadTest (its garbage collection awaited through an object it does own)
    // leaves them too.
    let test = world.get("gitlab").await;
    let maps: Api<ConfigMap> = Api::namespaced(world.cluster.client().await, ns);
    let sentinel: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "gitlab-sentinel", "ownerReferences": [{
            "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest", "name": "gitlab",
            "uid": test.metadata.uid.clone().unwrap(),
        }]},
    }))
    .unwrap();
    maps.create(&PostParams::default(), &sentinel)
        .await
        .unwrap();
    world
        .tests()
        .await
        .delete("gitlab", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&maps, "gitlab-sentinel", Duration::from_secs(30)).await;
    assert_eq!(
        snapshot(&world, &kinds),
        before,
        "and they outlive the LoadTest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_enforcing_the_restricted_standard_runs_the_runners() {
    let world = World::start("restricted", 60).await;
    let ns = &world.namespace;
    world.cluster.kubectl_ok(&[
        "label",
        "namespace",
        ns,
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    // The namespace really enforces it: a pod without a security context is refused.
    let bare = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bare", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bare.to_string()).unwrap();
    let refused = world.cluster.kubectl_run(&[
        "create",
        "--validate=false",
        "-f",
        &file.path().to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("violates PodSecurity \"restricted:latest\""),
        "{stderr}"
    );

    world.apply(
        "hardened",
        steady(2, "2s", 2, json!({"checks": ["rate==1"]})),
    );
    let status = world
        .wait_status("hardened", Duration::from_secs(90), "finished", |s| {
            s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    let counted = status.summary.as_ref().map_or(0, |s| s.http_reqs);
    assert!(counted > 0);
    if let Some(served) = served(&world) {
        assert_eq!(u64::try_from(counted).unwrap(), served);
    }
}
