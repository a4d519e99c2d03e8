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

/// The operator's default runner policy, as a shared cluster gets it: a LoadTest that asks to
/// run as another account, read a Secret, run another image or sit on control-plane nodes is
/// Invalid with one message naming each field and the flag that would allow it, and nothing
/// runs; the same LoadTest without those asks runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_runner_policy_refuses_each_way_to_act_as_someone_else() {
    let world = World::start("policy", 60).await;
    let mut spec = steady(1, "1s", 1, json!({}));
    spec["env"] = json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "cluster-admin-token", "key": "token"}}}]);
    spec["runners"] = json!({
        "count": 1,
        "image": "registry.example/miner:latest",
        "serviceAccountName": "admin",
        "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
        "resources": {"limits": {"memory": "64Gi"}},
    });
    world.apply("greedy", spec);
    let status = world
        .wait_status("greedy", Duration::from_secs(30), "Invalid", |s| {
            s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Invalid, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    for expected in [
        "spec.runners.image: runs image \"registry.example/miner:latest\"",
        "(--allowed-runner-images, chart value runnerPolicy.allowedImages)",
        "spec.runners.serviceAccountName: runs the runners as ServiceAccount \"admin\"",
        "(--allow-runner-service-account, chart value runnerPolicy.allowServiceAccount)",
        "spec.runners.nodeSelector.node-role.kubernetes.io/control-plane",
        "spec.runners.resources.limits.memory: asks 64Gi per runner, over the most of 8Gi",
        "spec.env[0].valueFrom.secretKeyRef: reads Secret \"cluster-admin-token\"",
        "(--allowed-secrets, chart value runnerPolicy.allowedSecrets)",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    assert!(world.jobs().await.is_empty(), "nothing ran");

    world.apply("modest", steady(1, "1s", 1, json!({})));
    let status = world
        .wait_status("modest", Duration::from_secs(60), "finished", |s| {
            s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
}

/// The operator's target policy: a literal URL into a denied range makes the LoadTest Invalid
/// before anything runs; a redirect into one (known only while running) fails in the runner with
/// k6's error_code 1110, which a threshold can gate on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_targets_are_refused_at_planning_and_on_every_connection() {
    let world = World::start_with_operator_args(
        "targets",
        60,
        &["--denied-targets=169.254.0.0/16,127.0.0.2"],
    )
    .await;
    let literal = json!({
        "scenarios": {"s": {"executor": "shared-iterations", "vus": 1, "iterations": 1}},
        "flows": {"default": [{"name": "metadata", "request": {"url": "http://169.254.169.254/latest/meta-data/"}}]},
        "runners": {"count": 1},
    });
    world.apply("metadata", literal);
    let status = world
        .wait_status("metadata", Duration::from_secs(30), "Invalid", |s| {
            s.phase.is_some_and(Phase::is_finished)
        })
        .await;
    assert_eq!(phase(&status), Phase::Invalid, "{status:?}");
    let message = status.message.clone().unwrap_or_default();
    assert!(
        message.contains("spec.flows.default[0].request.url: aims at 169.254.169.254: IP (169.254.169.254) is in a blacklisted range (169.254.0.0/16)")
            && message.contains("--denied-targets"),
        "{message}"
    );

    let redirected = json!({
        "scenarios": {"s": {"executor": "shared-iterations", "vus": 1, "iterations": 3}},
        "flows": {"default": [{"name": "hop", "request": {"url": "/redirect-to?url=http://127.0.0.2:9/get"}}]},
        "thresholds": {"http_reqs{error_code:1110}": ["count<1"]},
        "runners": {"count": 1},
    });
    world.apply("redirected", redirected);
    world.kubectl_wait_complete("redirected", "120s");
    let status = world.get("redirected").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Failed, "{status:?}");
    let gate = status
        .thresholds
        .iter()
        .find(|t| t.metric == "http_reqs{error_code:1110}")
        .expect("the 1110 threshold");
    assert_eq!(gate.value, Some(3.0), "{gate:?}");
}

/// A Secret's value used in a header, a JSON body and a URL query — and in the query of a
/// request that fails, so that an error line is printed — and a token setup() captured, which
/// runner 0 hands to runner 1 through its report, appear nowhere a user of the namespace can
/// look: not in the status, the Events, any ConfigMap (reports and result), the operator's log
/// or the runner pods' logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_used_in_headers_bodies_and_urls_leaks_nowhere() {
    const SECRET: &str = "s3cr3t-Tok3n-9f41c2";
    let world =
        World::start_with_operator_args("secret", 60, &["--allowed-secrets=loadtest-*"]).await;
    let ns = &world.namespace;
    world.cluster.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "loadtest-token",
        "-n",
        ns,
        &format!("--from-literal=token={SECRET}"),
    ]);
    let spec = json!({
        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "loadtest-token", "key": "token"}}}],
        // The target issues a session token to setup() (here it echoes one made of the secret).
        "setup": [{"name": "login", "request": {"url": "/anything", "method": "POST",
                                                "json": {"session": "session-${env.TOKEN}"}},
                   "capture": {"session": {"json": "$.json.session"}}}],
        "scenarios": {"s": {"executor": "per-vu-iterations", "vus": 2, "iterations": 3}},
        "flows": {"default": [
            {"name": "query", "request": {"url": "/get?token=${env.TOKEN}&session=${setup.session}"},
             "checks": {"the server saw the token": "json(\"$.args.token\") == \"${env.TOKEN}\"",
                        "every runner has setup's session": "json(\"$.args.session\") == \"session-${env.TOKEN}\""}},
            {"request": {"url": "/anything?token=${env.TOKEN}", "method": "POST",
                         "headers": {"authorization": "Bearer ${env.TOKEN}", "x-token": "${env.TOKEN}"},
                         "json": {"token": "${env.TOKEN}"}}},
            {"name": "refused", "request": {"url": "http://127.0.0.1:1/login?token=${env.TOKEN}"}},
        ]},
        "thresholds": {"checks": ["rate==1"]},
        "runners": {"count": 2},
        "cleanup": "none",
    });
    world.apply("leaky", spec);
    world.kubectl_wait_complete("leaky", "120s");
    let status = world.get("leaky").await.status.unwrap();
    assert_eq!(phase(&status), Phase::Succeeded, "{status:?}");
    // The token did reach the target (the checks compare what it echoed), and so did
    // setup()'s session, from both runners: 3 requests per iteration, and setup's one.
    let summary = status.summary.as_ref().unwrap();
    assert_eq!(summary.http_reqs, 19);
    assert_eq!((summary.checks.passes, summary.checks.fails), (12, 0));

    let mut places = vec![
        (
            "status",
            world
                .cluster
                .kubectl_ok(&["get", "lt", "leaky", "-n", ns, "-o", "json"]),
        ),
        (
            "events",
            world
                .cluster
                .kubectl_ok(&["get", "events", "-n", ns, "-o", "json"]),
        ),
        (
            "configmaps",
            world
                .cluster
                .kubectl_ok(&["get", "configmaps", "-n", ns, "-o", "json"]),
        ),
        ("operator log", world.operator.log()),
    ];
    let pods = world
        .cluster
        .kubectl_ok(&["get", "pods", "-n", ns, "-o", "name"]);
    let pods: Vec<&str> = pods.lines().filter(|p| p.contains("leaky")).collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let mut errors_printed = false;
    for pod in pods {
        let log = world.cluster.kubectl_ok(&["logs", "-n", ns, pod]);
        errors_printed |= log.contains("refused") || log.contains("connection refused");
        places.push(("runner log", log));
    }
    assert!(
        errors_printed,
        "the failing request's error line was printed"
    );
    for (place, text) in &places {
        assert!(!text.is_empty(), "{place} is empty");
        assert!(
            !text.contains(SECRET),
            "the secret is in the {place}:\n{text}"
        );
    }
}
