//! The runners' Role, as the operator builds it, against RBAC in the API server stand-in (or a
//! real cluster's, where the kubelet's token step is skipped): a runner can read and watch its
//! LoadTest and write its reports, and nothing else.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchParams};
use serde_json::json;
use stampede_crds::LoadTest;
use stampede_operator::desired::{self, Run};
use stampede_operator::names::Names;
use stampede_operator::plan::plan;
use stampede_operator::policy::Policy;
use stampede_tests::cluster::{Cluster, api_error};

fn api_code(error: kube::Error) -> u16 {
    api_error(error).0
}

#[tokio::test]
async fn the_runner_role_allows_what_a_runner_does_and_nothing_more() {
    let cluster = Cluster::start().await;
    cluster.install_crd("crds/loadtest.yaml", "loadtests.stampede.dev");
    let ns = cluster.namespace("op-rbac").await;
    let admin = cluster.client().await;

    let tests: Api<LoadTest> = Api::namespaced(admin.clone(), &ns);
    let manifest: LoadTest = serde_json::from_value(json!({
        "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
        "metadata": {"name": "spike"},
        "spec": {"vus": 20, "duration": "5s", "runners": {"count": 2},
                 "flows": {"default": [{"request": {"url": "http://127.0.0.1:1/"}}]}}
    }))
    .unwrap();
    let test = tests
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    let plan = plan(&test, &Policy::default()).unwrap();
    let run = Run {
        test: &test,
        plan: &plan,
        run: 1,
    };

    let pp = PostParams::default();
    Api::namespaced(admin.clone(), &ns)
        .create(&pp, &desired::service_account(run))
        .await
        .unwrap();
    Api::namespaced(admin.clone(), &ns)
        .create(&pp, &desired::role(run))
        .await
        .unwrap();
    Api::namespaced(admin.clone(), &ns)
        .create(&pp, &desired::role_binding(run))
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    for report in desired::report_config_maps(run) {
        maps.create(&pp, &report).await.unwrap();
    }
    maps.create(
        &pp,
        &serde_json::from_value(json!({"metadata": {"name": "unrelated"}})).unwrap(),
    )
    .await
    .unwrap();

    // What RBAC says, through `kubectl auth can-i --as` (the same on a real cluster).
    let can = |args: &[&str]| cluster.can_i(&ns, "spike-runner", args);
    let names = Names::new("spike");
    assert_eq!(can(&["get", "loadtests.stampede.dev/spike"]), "yes");
    assert_eq!(can(&["watch", "loadtests.stampede.dev/spike"]), "yes");
    assert_eq!(
        can(&["patch", &format!("configmap/{}", names.report(1, 1))]),
        "yes"
    );
    assert_eq!(can(&["get", "configmap/unrelated"]), "no");
    assert_eq!(can(&["list", "configmaps"]), "no");
    assert_eq!(can(&["get", "secrets"]), "no");
    assert_eq!(
        can(&[
            "patch",
            "loadtests.stampede.dev/spike",
            "--subresource=status"
        ]),
        "no"
    );

    // And what a runner pod's own credentials can do, on the stand-in.
    let Some(server) = cluster.stand_in() else {
        return;
    };
    let token = stampede_tests::apiserver::service_account_token(&ns, "spike-runner");
    let runner = server.client_with_token(&token).await.unwrap();
    let own: Api<LoadTest> = Api::namespaced(runner.clone(), &ns);
    own.get("spike").await.unwrap();
    // A watch limited to the one name is allowed; an unrestricted list is not.
    let _watch = own
        .watch(&WatchParams::default().fields("metadata.name=spike"), "0")
        .await
        .unwrap();
    assert_eq!(
        api_code(own.list(&ListParams::default()).await.unwrap_err()),
        403
    );
    let reports: Api<ConfigMap> = Api::namespaced(runner.clone(), &ns);
    reports
        .patch(
            &names.report(1, 0),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"state": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(api_code(reports.get("unrelated").await.unwrap_err()), 403);
    let secrets: Api<Secret> = Api::namespaced(runner, &ns);
    assert_eq!(
        api_code(secrets.list(&ListParams::default()).await.unwrap_err()),
        403
    );
    cluster.drop_namespace(&ns).await;
}
