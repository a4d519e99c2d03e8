//! The objects one run of a LoadTest owns, typed (k8s-openapi), built from the LoadTest and
//! the run's recorded plan: report ConfigMaps, the runners' ServiceAccount + Role + RoleBinding
//! (only this LoadTest and these reports), one Indexed Job running `stampede agent`, and the
//! merged result ConfigMap at the end. Pure and infallible; the controller applies them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, PodTemplateSpec,
    ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use stampede_crds::LoadTest;
use stampede_runner::cluster::env;
use stampede_runner::html_report::render_html;
use stampede_runner::summary::{Summary, export_json, write_text};

use crate::labels::{self, Component};
use crate::names::Names;
use crate::plan::RunPlan;
use crate::pod_security;

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

    /// Metadata of an owned runner object: name, namespace, labels (the run's when
    /// `per_run`), the LoadTest as controller owner.
    fn metadata(&self, name: String, per_run: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: self.test.metadata.namespace.clone(),
            labels: Some(self.labels(per_run)),
            owner_references: Some(vec![owner_reference(self.test)]),
            ..ObjectMeta::default()
        }
    }

    fn labels(&self, per_run: bool) -> BTreeMap<String, String> {
        labels::owned(
            Component::Runner,
            Some(self.name()),
            per_run.then_some(self.run),
        )
    }

    /// The ServiceAccount the runner pods run as: the user's, or ours.
    fn service_account_name(&self) -> String {
        self.user_service_account()
            .unwrap_or_else(|| self.names().runner_identity())
    }

    /// The ServiceAccount `spec.runners.serviceAccountName` names, if any.
    fn user_service_account(&self) -> Option<String> {
        self.test
            .spec
            .runners
            .as_ref()
            .and_then(|r| r.service_account_name.clone())
            .filter(|name| !name.is_empty())
    }

    fn runner_count(&self) -> i32 {
        i32::try_from(self.plan.runners).unwrap_or(i32::MAX)
    }
}

/// The LoadTest as the controlling owner (deleting it deletes everything it owns).
pub fn owner_reference(test: &LoadTest) -> OwnerReference {
    OwnerReference {
        api_version: LoadTest::api_version(&()).into_owned(),
        kind: LoadTest::kind(&()).into_owned(),
        name: test.metadata.name.clone().unwrap_or_default(),
        uid: test.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// An object the operator applies, of one of the kinds it owns.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    /// A report or result ConfigMap.
    ConfigMap(ConfigMap),
    /// The runners' own ServiceAccount.
    ServiceAccount(ServiceAccount),
    /// What the runners may do.
    Role(Role),
    /// The runners' Role binding.
    RoleBinding(RoleBinding),
    /// The runner Job (boxed: it is by far the largest).
    Job(Box<Job>),
}

/// Everything one run owns while it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunObjects {
    /// One empty report ConfigMap per runner.
    pub reports: Vec<ConfigMap>,
    /// The runners' ServiceAccount, unless the spec names its own.
    pub service_account: Option<ServiceAccount>,
    /// The runners' Role.
    pub role: Role,
    /// Its binding to the runners' ServiceAccount.
    pub role_binding: RoleBinding,
    /// The runner Job.
    pub job: Job,
}

impl RunObjects {
    /// The objects in the order they are applied (the Job last: its pods need the rest), the
    /// Job left out when `with_job` is false (an existing Job's pod template is immutable).
    pub fn into_owned(self, with_job: bool) -> Vec<Owned> {
        let mut owned: Vec<Owned> = self.reports.into_iter().map(Owned::ConfigMap).collect();
        owned.extend(self.service_account.map(Owned::ServiceAccount));
        owned.push(Owned::Role(self.role));
        owned.push(Owned::RoleBinding(self.role_binding));
        if with_job {
            owned.push(Owned::Job(Box::new(self.job)));
        }
        owned
    }
}

/// Everything `run` owns while it runs, built from its recorded plan.
pub fn run_objects(run: Run<'_>) -> RunObjects {
    RunObjects {
        reports: report_config_maps(run),
        service_account: run
            .user_service_account()
            .is_none()
            .then(|| service_account(run)),
        role: role(run),
        role_binding: role_binding(run),
        job: job(run),
    }
}

/// One empty report ConfigMap per runner; each runner writes only its own.
pub fn report_config_maps(run: Run<'_>) -> Vec<ConfigMap> {
    (0..run.plan.runners)
        .map(|index| ConfigMap {
            metadata: run.metadata(run.names().report(run.run, index), true),
            ..ConfigMap::default()
        })
        .collect()
}

/// The runners' own ServiceAccount (used unless `spec.runners.serviceAccountName` names one).
pub fn service_account(run: Run<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: run.metadata(run.names().runner_identity(), false),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

fn rule(group: &str, resource: &str, names: Vec<String>, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(vec![resource.to_string()]),
        resource_names: Some(names),
        verbs: verbs.iter().map(ToString::to_string).collect(),
        ..PolicyRule::default()
    }
}

/// What a runner may do: read and watch this LoadTest only, write its run's reports only, and
/// read the ConfigMaps the data tables name. Nothing else — no Secrets (env from Secrets is
/// resolved by the kubelet into the pod's environment).
pub fn role(run: Run<'_>) -> Role {
    let names = run.names();
    let reports: Vec<String> = (0..run.plan.runners)
        .map(|i| names.report(run.run, i))
        .collect();
    let mut rules = vec![
        rule(
            LoadTest::group(&()).as_ref(),
            LoadTest::plural(&()).as_ref(),
            vec![run.name().to_string()],
            &["get", "list", "watch"],
        ),
        rule("", "configmaps", reports, &["get", "update", "patch"]),
    ];
    let data_maps: Vec<String> = run
        .test
        .spec
        .data
        .values()
        .filter_map(|source| source.config_map_ref.as_ref().map(|r| r.name.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !data_maps.is_empty() {
        rules.push(rule("", "configmaps", data_maps, &["get"]));
    }
    Role {
        metadata: run.metadata(names.runner_identity(), false),
        rules: Some(rules),
    }
}

/// Binds [`role`] to the runners' ServiceAccount.
pub fn role_binding(run: Run<'_>) -> RoleBinding {
    let name = run.names().runner_identity();
    RoleBinding {
        metadata: run.metadata(name.clone(), false),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name,
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: run.service_account_name(),
            namespace: run.test.metadata.namespace.clone(),
            ..Subject::default()
        }]),
    }
}

fn value(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    }
}

/// The runner container of a runner Job (its only container).
pub fn runner_container(job: &Job) -> Option<&Container> {
    job.spec
        .as_ref()
        .and_then(|spec| spec.template.spec.as_ref())
        .and_then(|pod| pod.containers.first())
}

/// The Indexed Job of the run: N pods (`completions = parallelism = N`, no retries — a failed
/// runner fails the run), each running `stampede agent` with its index from the Job.
pub fn job(run: Run<'_>) -> Job {
    let runners = run.test.spec.runners.as_ref();
    let mut env = vec![
        value(env::LOADTEST, run.name().to_string()),
        EnvVar {
            name: env::NAMESPACE.to_string(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: "metadata.namespace".into(),
                }),
                ..EnvVarSource::default()
            }),
        },
        value(env::RUN, run.run.to_string()),
        value(env::RUNNERS, run.plan.runners.to_string()),
        value(env::REPORTS, run.names().report_prefix(run.run)),
    ];
    for (name, rules) in [
        (env::ALLOWED_TARGETS, &run.plan.targets.allowed),
        (env::DENIED_TARGETS, &run.plan.targets.denied),
    ] {
        if !rules.is_empty() {
            let list: Vec<String> = rules.iter().map(ToString::to_string).collect();
            env.push(value(name, list.join(",")));
        }
    }
    // The test's own env (values and Secret / ConfigMap references) is resolved by the kubelet,
    // so secret values reach the runner process without the operator ever reading them.
    env.extend(run.test.spec.env.iter().cloned());
    let container = Container {
        name: "runner".into(),
        image: Some(run.plan.image.clone()),
        args: Some(vec!["agent".into()]),
        env: Some(env),
        resources: run.plan.resources.clone(),
        security_context: Some(pod_security::runner_container_security()),
        volume_mounts: Some(vec![pod_security::scratch_mount()]),
        ..Container::default()
    };
    let pod_spec = PodSpec {
        restart_policy: Some("Never".into()),
        service_account_name: Some(run.service_account_name()),
        termination_grace_period_seconds: Some(30),
        // The runners' account mounts no token by default (nothing else that uses it gets
        // one); the runner pods ask for theirs.
        automount_service_account_token: Some(true),
        security_context: Some(pod_security::runner_pod_security()),
        volumes: Some(vec![pod_security::scratch_volume()]),
        containers: vec![container],
        node_selector: runners
            .map(|r| r.node_selector.clone())
            .filter(|selector| !selector.is_empty()),
        tolerations: runners
            .map(|r| r.tolerations.clone())
            .filter(|tolerations| !tolerations.is_empty()),
        affinity: runners.and_then(|r| r.affinity.clone()),
        ..PodSpec::default()
    };
    Job {
        metadata: run.metadata(run.names().job(run.run), true),
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(run.runner_count()),
            parallelism: Some(run.runner_count()),
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(run.labels(true)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The most a result ConfigMap's values take: the API server refuses a ConfigMap over 1 MiB,
/// and its metadata needs room too.
pub const MAX_RESULT_BYTES: usize = 1000 * 1024;

/// The full merged result, kept until the LoadTest goes: the summary (mergeable JSON with
/// histograms and the series), the k6-style export, the text summary and, when it fits, the
/// HTML report (`stampede report NAME --html` renders it from the summary either way).
pub fn result_config_map(test: &LoadTest, summary: &Summary) -> ConfigMap {
    let mut text = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_text(summary, false, &mut text);
    let mut data = BTreeMap::from([
        (
            "result.json".to_string(),
            serde_json::to_string(summary).unwrap_or_default(),
        ),
        (
            "summary-export.json".to_string(),
            serde_json::to_string_pretty(&export_json(summary)).unwrap_or_default(),
        ),
        (
            "summary.txt".to_string(),
            String::from_utf8_lossy(&text).into_owned(),
        ),
    ]);
    let html = render_html(summary);
    let used: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if used + html.len() <= MAX_RESULT_BYTES {
        data.insert("report.html".to_string(), html);
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(Names::new(test.metadata.name.as_deref().unwrap_or_default()).result()),
            namespace: test.metadata.namespace.clone(),
            labels: Some(labels::owned(Component::Result, None, None)),
            owner_references: Some(vec![owner_reference(test)]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::LOADTEST_LABEL;
    use crate::plan::plan;
    use crate::policy::Policy;
    use serde_json::json;

    /// The policy of a single-team cluster: these tests read a Secret and a ConfigMap.
    fn open_policy() -> Policy {
        Policy {
            runners: crate::runner_policy::RunnerPolicy::open(),
            ..Policy::default()
        }
    }

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
        let plan = plan(&test, &open_policy()).unwrap();
        let run = Run {
            test: &test,
            plan: &plan,
            run: 2,
        };
        let reports = report_config_maps(run);
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
        let job = job(run);
        let (role, account) = (role(run), service_account(run));
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
        let plan = plan(&test, &open_policy()).unwrap();
        let job = job(Run {
            test: &test,
            plan: &plan,
            run: 1,
        });
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
        let plan = plan(&test, &open_policy()).unwrap();
        let run = Run {
            test: &test,
            plan: &plan,
            run: 1,
        };
        let rules = role(run).rules.unwrap();
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
        let binding = role_binding(run);
        assert_eq!(binding.role_ref.name, "spike-runner");
        assert_eq!(binding.subjects.unwrap()[0].name, "spike-runner");
    }

    /// The typed Job, field for field: what the operator applied when it built the Job from
    /// JSON, plus the `restricted` Pod Security settings.
    #[test]
    fn the_typed_job_applies_the_fields_it_always_applied() {
        let test = loadtest();
        let plan = plan(&test, &open_policy()).unwrap();
        let labels = json!({
            "app.kubernetes.io/name": "stampede", "app.kubernetes.io/component": "runner",
            "app.kubernetes.io/managed-by": "stampede-operator",
            "stampede.dev/loadtest": "spike", "stampede.dev/run": "1",
        });
        let expected = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {
                "name": "spike-run1", "namespace": "shop", "labels": labels,
                "ownerReferences": [{"apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
                    "name": "spike", "uid": "u-1", "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": {
                "completionMode": "Indexed", "completions": 3, "parallelism": 3, "backoffLimit": 0,
                "template": {"metadata": {"labels": labels}, "spec": {
                    "restartPolicy": "Never", "serviceAccountName": "spike-runner",
                    "terminationGracePeriodSeconds": 30,
                    "automountServiceAccountToken": true,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    "containers": [{
                        "name": "runner", "image": plan.image, "args": ["agent"],
                        "env": [
                            {"name": env::LOADTEST, "value": "spike"},
                            {"name": env::NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": env::RUN, "value": "1"},
                            {"name": env::RUNNERS, "value": "3"},
                            {"name": env::REPORTS, "value": "spike-run1-report-"},
                            {"name": env::DENIED_TARGETS, "value": "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,metadata.google.internal,metadata.goog,kubernetes,kubernetes.default,kubernetes.default.svc,kubernetes.default.svc.cluster.local"},
                            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "user", "key": "password"}}},
                        ],
                        "resources": {"limits": {"memory": "256Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false, "privileged": false,
                            "readOnlyRootFilesystem": true, "runAsNonRoot": true,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                }},
            },
        });
        let run = Run {
            test: &test,
            plan: &plan,
            run: 1,
        };
        assert_eq!(serde_json::to_value(job(run)).unwrap(), expected);
        // And the whole set of a run, in the order it is applied.
        let owned = run_objects(run).into_owned(true);
        assert_eq!(owned.len(), 3 + 3 + 1);
        assert!(matches!(owned.last(), Some(Owned::Job(_))));
        assert!(
            !run_objects(run)
                .into_owned(false)
                .iter()
                .any(|o| matches!(o, Owned::Job(_)))
        );
    }
}
