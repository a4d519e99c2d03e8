//! The objects one run of a LoadTest owns, built from the LoadTest and its plan: report
//! ConfigMaps, the runners' ServiceAccount + Role + RoleBinding (only this LoadTest and these
//! reports), and one Indexed Job running `stampede agent`. Pure; the controller applies them.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::{Value, json};
use stampede_crds::LoadTest;

use crate::names::Names;
use crate::plan::RunPlan;

/// Label every owned object carries: the LoadTest's name.
pub const LOADTEST_LABEL: &str = "stampede.dev/loadtest";
/// Label of objects that belong to one run.
pub const RUN_LABEL: &str = "stampede.dev/run";
use stampede_runner::agent::env;

/// One run of one LoadTest, as the builders need it.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The LoadTest (with its metadata: name, namespace, uid).
    pub test: &'a LoadTest,
    /// Its plan.
    pub plan: &'a RunPlan,
    /// The run number (`status.run`).
    pub run: i64,
}

impl Run<'_> {
    fn name(&self) -> &str {
        self.test.metadata.name.as_deref().unwrap_or_default()
    }

    fn names(&self) -> Names {
        Names::new(self.name())
    }

    /// Metadata of an owned object: name, namespace, labels, the LoadTest as controller owner.
    fn metadata(&self, name: String, per_run: bool) -> Value {
        let mut labels = json!({
            "app.kubernetes.io/name": "stampede",
            "app.kubernetes.io/component": "runner",
            "app.kubernetes.io/managed-by": "stampede-operator",
            LOADTEST_LABEL: crate::names::label_value(self.name()),
        });
        if per_run {
            labels[RUN_LABEL] = json!(self.run.to_string());
        }
        json!({
            "name": name,
            "namespace": self.test.metadata.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(self.test)],
        })
    }

    /// The ServiceAccount the runner pods run as: the user's, or ours.
    fn service_account_name(&self) -> String {
        self.test
            .spec
            .runners
            .as_ref()
            .and_then(|r| r.service_account_name.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| self.names().runner_identity())
    }
}

/// The LoadTest as the controlling owner (deleting it deletes everything it owns).
pub fn owner_reference(test: &LoadTest) -> OwnerReference {
    OwnerReference {
        api_version: "stampede.dev/v1alpha1".into(),
        kind: "LoadTest".into(),
        name: test.metadata.name.clone().unwrap_or_default(),
        uid: test.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A desired object that does not fit its Kubernetes type — a bug in a builder, reported
/// instead of panicking inside the operator.
#[derive(Debug, thiserror::Error)]
#[error("building the desired {kind}: {source}")]
pub struct BuildError {
    kind: &'static str,
    source: serde_json::Error,
}

impl BuildError {
    /// A `kind` object that did not fit its type.
    pub fn new(kind: &'static str, source: serde_json::Error) -> BuildError {
        BuildError { kind, source }
    }
}

fn typed<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    value: Value,
) -> Result<T, BuildError> {
    serde_json::from_value(value).map_err(|source| BuildError { kind, source })
}

/// One empty report ConfigMap per runner; each runner writes only its own.
pub fn report_config_maps(run: Run<'_>) -> Result<Vec<ConfigMap>, BuildError> {
    (0..run.plan.runners)
        .map(|index| {
            typed(
                "ConfigMap",
                json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": run.metadata(run.names().report(run.run, index), true),
                }),
            )
        })
        .collect()
}

/// The runners' own ServiceAccount (used unless `spec.runners.serviceAccountName` names one).
pub fn service_account(run: Run<'_>) -> Result<ServiceAccount, BuildError> {
    typed(
        "ServiceAccount",
        json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": run.metadata(run.names().runner_identity(), false),
            "automountServiceAccountToken": true,
        }),
    )
}

/// What a runner may do: read and watch this LoadTest only, write its run's reports only, and
/// read the ConfigMaps the data tables name. Nothing else — no Secrets (env from Secrets is
/// resolved by the kubelet into the pod's environment).
pub fn role(run: Run<'_>) -> Result<Role, BuildError> {
    let names = run.names();
    let reports: Vec<String> = (0..run.plan.runners)
        .map(|i| names.report(run.run, i))
        .collect();
    let mut rules = vec![
        json!({"apiGroups": ["stampede.dev"], "resources": ["loadtests"],
               "resourceNames": [run.name()], "verbs": ["get", "list", "watch"]}),
        json!({"apiGroups": [""], "resources": ["configmaps"],
               "resourceNames": reports, "verbs": ["get", "update", "patch"]}),
    ];
    let data_maps: Vec<String> = run
        .test
        .spec
        .data
        .values()
        .filter_map(|source| source.config_map_ref.as_ref().map(|r| r.name.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !data_maps.is_empty() {
        rules.push(json!({"apiGroups": [""], "resources": ["configmaps"],
                          "resourceNames": data_maps, "verbs": ["get"]}));
    }
    typed(
        "Role",
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": run.metadata(names.runner_identity(), false),
            "rules": rules,
        }),
    )
}

/// Binds [`role`] to the runners' ServiceAccount.
pub fn role_binding(run: Run<'_>) -> Result<RoleBinding, BuildError> {
    let name = run.names().runner_identity();
    typed(
        "RoleBinding",
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": run.metadata(name.clone(), false),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": run.service_account_name(),
                          "namespace": run.test.metadata.namespace}],
        }),
    )
}

/// The Indexed Job of the run: N pods (`completions = parallelism = N`, no retries — a failed
/// runner fails the run), each running `stampede agent` with its index from the Job.
pub fn job(run: Run<'_>) -> Result<Job, BuildError> {
    let runners = run.test.spec.runners.as_ref();
    let mut env = vec![
        json!({"name": env::LOADTEST, "value": run.name()}),
        json!({"name": env::NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
        json!({"name": env::RUN, "value": run.run.to_string()}),
        json!({"name": env::RUNNERS, "value": run.plan.runners.to_string()}),
        json!({"name": env::REPORTS, "value": run.names().report_prefix(run.run)}),
    ];
    // The test's own env (values and Secret / ConfigMap references) is resolved by the kubelet,
    // so secret values reach the runner process without the operator ever reading them.
    env.extend(
        run.test
            .spec
            .env
            .iter()
            .map(|var| serde_json::to_value(var).unwrap_or(Value::Null)),
    );
    let mut container = json!({
        "name": "runner",
        "image": run.plan.image,
        "args": ["agent"],
        "env": env,
    });
    if let Some(resources) = &run.plan.resources {
        container["resources"] = serde_json::to_value(resources).unwrap_or(Value::Null);
    }
    let mut pod_spec = json!({
        "restartPolicy": "Never",
        "serviceAccountName": run.service_account_name(),
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
    });
    if let Some(runners) = runners {
        if !runners.node_selector.is_empty() {
            pod_spec["nodeSelector"] = json!(runners.node_selector);
        }
        if !runners.tolerations.is_empty() {
            pod_spec["tolerations"] =
                serde_json::to_value(&runners.tolerations).unwrap_or(Value::Null);
        }
        if let Some(affinity) = &runners.affinity {
            pod_spec["affinity"] = serde_json::to_value(affinity).unwrap_or(Value::Null);
        }
    }
    let metadata = run.metadata(run.names().job(run.run), true);
    let pod_labels: BTreeMap<String, Value> = metadata["labels"]
        .as_object()
        .map(|labels| labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    typed(
        "Job",
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": metadata,
            "spec": {
                "completionMode": "Indexed",
                "completions": run.plan.runners,
                "parallelism": run.plan.runners,
                "backoffLimit": 0,
                "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use crate::policy::Policy;

    fn loadtest() -> LoadTest {
        serde_json::from_value(json!({
            "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
            "metadata": {"name": "spike", "namespace": "shop", "uid": "u-1"},
            "spec": {
                "vus": 30, "duration": "10s",
                "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "user", "key": "password"}}}],
                "data": {"users": {"configMapRef": {"name": "test-users", "key": "users.csv"}}},
                "flows": {"default": [{"request": {"url": "http://127.0.0.1:1/${data.users.name}"}}]},
                "runners": {"count": 3, "resources": {"limits": {"memory": "256Mi"}}},
            }
        }))
        .unwrap()
    }

    #[test]
    fn every_object_is_owned_named_and_labelled() {
        let test = loadtest();
        let plan = plan(&test, &Policy::default()).unwrap();
        let run = Run {
            test: &test,
            plan: &plan,
            run: 2,
        };
        let reports = report_config_maps(run).unwrap();
        let names: Vec<String> = reports
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "spike-run2-report-0",
                "spike-run2-report-1",
                "spike-run2-report-2"
            ]
        );
        let job = job(run).unwrap();
        let (role, account) = (role(run).unwrap(), service_account(run).unwrap());
        for metadata in [
            &reports[0].metadata,
            &job.metadata,
            &role.metadata,
            &account.metadata,
        ] {
            let owner = &metadata.owner_references.as_ref().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
                ("LoadTest", "u-1", Some(true))
            );
            assert_eq!(metadata.namespace.as_deref(), Some("shop"));
            assert_eq!(metadata.labels.as_ref().unwrap()[LOADTEST_LABEL], "spike");
        }
        assert_eq!(job.metadata.name.as_deref(), Some("spike-run2"));
    }

    #[test]
    fn the_job_runs_one_agent_per_runner_without_retries() {
        let test = loadtest();
        let plan = plan(&test, &Policy::default()).unwrap();
        let job = job(Run {
            test: &test,
            plan: &plan,
            run: 1,
        })
        .unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!(
            (spec.completions, spec.parallelism, spec.backoff_limit),
            (Some(3), Some(3), Some(0))
        );
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.service_account_name.as_deref(), Some("spike-runner"));
        let container = &pod.containers[0];
        assert_eq!(
            container.args.as_deref(),
            Some(["agent".to_string()].as_slice())
        );
        assert_eq!(container.image.as_deref(), Some(plan.image.as_str()));
        let env: BTreeMap<String, String> = container
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.value.unwrap_or_else(|| "<from>".into())))
            .collect();
        assert_eq!(env[env::LOADTEST], "spike");
        assert_eq!(env[env::RUNNERS], "3");
        assert_eq!(env[env::RUN], "1");
        assert_eq!(env[env::REPORTS], "spike-run1-report-");
        assert_eq!(
            env["PASSWORD"], "<from>",
            "the secret reference is kept, never its value"
        );
        assert_eq!(
            container
                .resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()["memory"]
                .0,
            "256Mi"
        );
    }

    #[test]
    fn the_role_allows_this_loadtest_and_these_reports_only() {
        let test = loadtest();
        let plan = plan(&test, &Policy::default()).unwrap();
        let run = Run {
            test: &test,
            plan: &plan,
            run: 1,
        };
        let rules = role(run).unwrap().rules.unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(["loadtests".to_string()].as_slice())
        );
        assert_eq!(
            rules[0].resource_names.as_deref(),
            Some(["spike".to_string()].as_slice())
        );
        assert_eq!(rules[1].resource_names.as_ref().unwrap().len(), 3);
        assert!(
            !rules[1].verbs.contains(&"create".to_string())
                && !rules[1].verbs.contains(&"list".to_string())
        );
        assert_eq!(
            rules[2].resource_names.as_deref(),
            Some(["test-users".to_string()].as_slice())
        );
        assert_eq!(rules[2].verbs, ["get"]);
        assert!(rules.iter().all(|r| {
            !r.resources
                .as_ref()
                .unwrap()
                .contains(&"secrets".to_string())
        }));
        let binding = role_binding(run).unwrap();
        assert_eq!(binding.role_ref.name, "spike-runner");
        assert_eq!(binding.subjects.unwrap()[0].name, "spike-runner");
    }
}
