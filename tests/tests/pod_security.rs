//! The runner pods the operator builds meet the `restricted` Pod Security Standard, as the
//! stand-in's PodSecurity admission checks it: the Job's pod template passes for every
//! spec shape the operator knows (own ServiceAccount, `configMapRef` data, tolerations), and
//! the same template without its security settings does not.

use serde_json::{Value, json};
use stampede_crds::LoadTest;
use stampede_operator::desired::{self, Run};
use stampede_operator::plan::plan;
use stampede_operator::policy::Policy;
use stampede_operator::runner_policy::RunnerPolicy;
use stampede_tests::apiserver::pod_security::{Level, violations};

fn pod_template(spec: Value) -> Value {
    let test: LoadTest = serde_json::from_value(json!({
        "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
        "metadata": {"name": "hardened", "namespace": "shop", "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap();
    let plan = plan(
        &test,
        &Policy {
            // The sample reads a ConfigMap: the policy of a cluster that allows it.
            runners: RunnerPolicy::open(),
            ..Policy::default()
        },
    )
    .unwrap();
    let job = desired::job(Run {
        test: &test,
        plan: &plan,
        run: 1,
    });
    serde_json::to_value(job).unwrap()["spec"]["template"]["spec"].clone()
}

#[test]
fn runner_pods_meet_the_restricted_standard() {
    let flows = json!({"default": [{"request": {"url": "http://127.0.0.1:1/"}}]});
    for spec in [
        json!({"vus": 4, "duration": "5s", "flows": flows}),
        json!({"vus": 4, "duration": "5s", "flows": flows,
               "runners": {"count": 2, "serviceAccountName": "loader",
                           "tolerations": [{"key": "load", "operator": "Exists"}]},
               "data": {"users": {"configMapRef": {"name": "users", "key": "users.csv"}}}}),
    ] {
        let pod = pod_template(spec);
        assert_eq!(violations(Level::Restricted, &pod), Vec::<String>::new());
        assert_eq!(
            pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
            true
        );
        assert_eq!(pod["containers"][0]["volumeMounts"][0]["mountPath"], "/tmp");
    }
}

#[test]
fn without_its_security_settings_the_same_pod_is_refused() {
    let mut pod = pod_template(json!({"vus": 1, "duration": "1s",
        "flows": {"default": [{"request": {"url": "http://127.0.0.1:1/"}}]}}));
    pod.as_object_mut().unwrap().remove("securityContext");
    pod["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    let found = violations(Level::Restricted, &pod);
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(violations(Level::Baseline, &pod).is_empty());
}
