//! The operator's reconcile, in process, against the API server stand-in: one scenario per
//! test, each asserting on the objects and the status a reconcile leaves. Nothing runs the
//! runner pods (there is no kubelet): the tests write the runners' reports themselves, as the
//! agents would, and call `reconcile` as the controller does.

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use stampede_crds::LoadTest;
use stampede_crds::status::{LoadTestStatus, Phase};
use stampede_operator::controller::{Context, reconcile};
use stampede_operator::desired::runner_container;
use stampede_operator::policy::Policy;
use stampede_operator::telemetry::Telemetry;
use stampede_runner::cluster::{REPORT_KEY, RunnerReport, RunnerState};
use stampede_runner::metrics::snapshot::Trend;
use stampede_runner::metrics::{Registry, Snapshot, Value as MetricValue};
use stampede_tests::apiserver::ApiServer;
use stampede_tests::cluster::Cluster;

/// One test's world: the stand-in with the CRD (always the stand-in, even when the end-to-end
/// tests run on a real cluster: there, real runner pods would write reports of their own) and a
/// namespace.
struct World {
    cluster: Cluster,
    namespace: String,
}

impl World {
    async fn start(prefix: &str) -> World {
        let cluster = Cluster::StandIn {
            server: Box::new(ApiServer::start().expect("start the API server stand-in")),
            kubelet: None,
        };
        cluster.install_crd("crds/loadtest.yaml", "loadtests.stampede.dev");
        let namespace = cluster.namespace(prefix).await;
        World { cluster, namespace }
    }

    async fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.cluster.client().await, &self.namespace)
    }

    /// Creates the LoadTest `name` with `spec`.
    async fn create(&self, name: &str, spec: Value) {
        let test: LoadTest = serde_json::from_value(json!({
            "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        self.api::<LoadTest>()
            .await
            .create(&PostParams::default(), &test)
            .await
            .unwrap();
    }

    /// One reconcile of `name` as the API has it now, by an operator with `policy`.
    async fn reconcile(&self, name: &str, policy: &Policy) -> Action {
        let test = self.api::<LoadTest>().await.get(name).await.unwrap();
        let context = Context::new(
            self.cluster.client().await,
            policy.clone(),
            Telemetry::new(),
            Default::default(),
        );
        reconcile(Arc::new(test), Arc::new(context))
            .await
            .unwrap_or_else(|error| panic!("reconcile {name}: {error}"))
    }

    async fn status(&self, name: &str) -> LoadTestStatus {
        self.cluster.assert_nothing_pruned();
        let test = self.api::<LoadTest>().await.get(name).await.unwrap();
        test.status.unwrap_or_default()
    }

    async fn job(&self, name: &str) -> Option<Job> {
        self.api::<Job>().await.get_opt(name).await.unwrap()
    }

    async fn config_maps(&self, selector: &str) -> Vec<String> {
        let maps = self.api::<ConfigMap>().await;
        let mut names: Vec<String> = maps
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|m| m.metadata.name)
            .collect();
        names.sort();
        names
    }

    /// Writes runner `index`'s report of run `run` of `name`, as its agent does.
    async fn report(&self, name: &str, run: i64, report: &RunnerReport) {
        let map = format!("{name}-run{run}-report-{}", report.runner);
        let patch = json!({"data": {REPORT_KEY: report.to_json()}});
        self.api::<ConfigMap>()
            .await
            .patch(&map, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Every runner of run 1 reports `state`.
    async fn runners_report(&self, name: &str, runners: u64, state: RunnerState) {
        for runner in 0..runners {
            self.report(name, 1, &measured(runner, state)).await;
        }
    }
}

/// The policy the runs start under.
fn policy() -> Policy {
    Policy {
        runner_image: "registry.local/stampede:1.0".into(),
        ..Policy::default()
    }
}

/// 6 VUs for 30 s on 3 runners.
fn spec() -> Value {
    json!({
        "vus": 6, "duration": "30s",
        "flows": {"default": [{"name": "login", "request": {"url": "http://127.0.0.1:1/login"}}]},
        "thresholds": {"http_req_failed": ["rate<0.5"]},
        "runners": {"count": 3},
    })
}

/// Runner `runner`'s report in `state`: 120 requests after 30 s, none failed.
fn measured(runner: u64, state: RunnerState) -> RunnerReport {
    let mut metrics = Snapshot::empty(&Registry::new());
    let mut trend = Trend::default();
    for i in 0..120 {
        trend.record(10.0 + f64::from(i % 7));
    }
    metrics
        .values
        .insert("http_reqs".into(), MetricValue::Counter(120.0));
    metrics.values.insert(
        "http_req_duration".into(),
        MetricValue::Trend(Box::new(trend)),
    );
    metrics.values.insert(
        "http_req_failed".into(),
        MetricValue::Rate {
            passes: 0,
            total: 120,
        },
    );
    let measuring = matches!(state, RunnerState::Running | RunnerState::Finished);
    RunnerReport {
        run: 1,
        runner,
        state,
        elapsed_seconds: if measuring { 30.0 } else { 0.0 },
        metrics: measuring.then_some(metrics),
        ..RunnerReport::default()
    }
}

fn image(job: &Job) -> &str {
    runner_container(job)
        .and_then(|container| container.image.as_deref())
        .expect("the runner container names its image")
}

fn condition(status: &LoadTestStatus, kind: &str) -> (String, String) {
    status
        .condition(kind)
        .map(|c| (c.status.clone(), c.reason.clone()))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_loadtest_gets_its_plan_recorded_and_its_run_objects() {
    let world = World::start("reconcile-new").await;
    world.create("checkout", spec()).await;
    world.reconcile("checkout", &policy()).await;

    let status = world.status("checkout").await;
    assert_eq!(status.phase, Some(Phase::Provisioning), "{status:?}");
    assert_eq!(status.run, Some(1));
    let plan = status.plan.as_ref().expect("the recorded plan");
    assert_eq!(plan.runners, 3);
    assert_eq!(plan.segments, ["0:1/3", "1/3:2/3", "2/3:1"]);
    assert_eq!(plan.image, "registry.local/stampede:1.0");
    assert_eq!(plan.planned_seconds, 60.0);
    assert_eq!(
        condition(&status, "Passed"),
        ("Unknown".into(), "Provisioning".into())
    );
    let job = world.job("checkout-run1").await.expect("the runner Job");
    assert_eq!(image(&job), "registry.local/stampede:1.0");
    let spec = job.spec.as_ref().unwrap();
    assert_eq!((spec.completions, spec.parallelism), (Some(3), Some(3)));
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.api_version.as_str(), owner.kind.as_str()),
        ("stampede.dev/v1alpha1", "LoadTest")
    );
    assert_eq!(
        world
            .config_maps("stampede.dev/loadtest=checkout,stampede.dev/run=1")
            .await,
        [
            "checkout-run1-report-0",
            "checkout-run1-report-1",
            "checkout-run1-report-2"
        ]
    );
    let account = world.api::<ServiceAccount>().await;
    assert!(account.get_opt("checkout-runner").await.unwrap().is_some());
    let role = world.api::<Role>().await;
    assert!(role.get_opt("checkout-runner").await.unwrap().is_some());
    let binding = world.api::<RoleBinding>().await;
    assert!(binding.get_opt("checkout-runner").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_loadtest_is_invalid_and_gets_nothing() {
    let world = World::start("reconcile-invalid").await;
    let mut spec = spec();
    spec["runners"]["count"] = json!(80);
    world.create("huge", spec).await;
    let action = world.reconcile("huge", &policy()).await;
    assert_eq!(action, Action::await_change());
    let status = world.status("huge").await;
    assert_eq!(status.phase, Some(Phase::Invalid));
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("spec.runners.count: the test would use 80 runners")),
        "{status:?}"
    );
    assert_eq!(condition(&status, "Complete").0, "True");
    assert!(status.plan.is_none());
    assert!(world.job("huge-run1").await.is_none());
    assert!(
        world
            .config_maps("stampede.dev/loadtest=huge")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_lowered_after_a_restart_the_running_test_finishes_with_its_recorded_plan() {
    let world = World::start("reconcile-caps").await;
    world.create("checkout", spec()).await;
    world.reconcile("checkout", &policy()).await;
    // The operator restarts with caps this test no longer fits.
    let lowered = Policy {
        max_runners: 1,
        max_vus_per_test: 1,
        ..policy()
    };
    world
        .runners_report("checkout", 3, RunnerState::Ready)
        .await;
    world.reconcile("checkout", &lowered).await;
    let status = world.status("checkout").await;
    assert_eq!(status.phase, Some(Phase::Running), "{status:?}");
    assert_eq!(status.runners.as_ref().map(|r| r.ready), Some(3));

    world
        .runners_report("checkout", 3, RunnerState::Finished)
        .await;
    world.reconcile("checkout", &lowered).await;
    let status = world.status("checkout").await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:?}");
    assert_eq!(status.summary.as_ref().map(|s| s.http_reqs), Some(360));
    assert_eq!(status.plan.as_ref().map(|p| p.runners), Some(3));
    assert_eq!(condition(&status, "Passed").0, "True");
    // The RPS column: the run's average once it is over.
    assert_eq!(status.progress.as_ref().map(|p| p.rps), Some(12.0));
    // The result is kept; the default clean-up removed the runners' Job and reports.
    let maps = world.api::<ConfigMap>().await;
    let result = maps.get("checkout-result").await.unwrap();
    assert!(result.data.unwrap()["summary.txt"].contains("http_reqs"));
    assert!(world.job("checkout-run1").await.is_none());
    assert!(
        world
            .config_maps("stampede.dev/loadtest=checkout")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_default_image_leaves_the_existing_job_alone() {
    let world = World::start("reconcile-image").await;
    world.create("checkout", spec()).await;
    world.reconcile("checkout", &policy()).await;
    let before = world.job("checkout-run1").await.expect("the runner Job");
    // An upgraded operator, still Provisioning the run.
    let upgraded = Policy {
        runner_image: "registry.local/stampede:2.0".into(),
        ..policy()
    };
    world
        .report("checkout", 1, &measured(0, RunnerState::Ready))
        .await;
    let action = world.reconcile("checkout", &upgraded).await;
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(1)));
    let after = world.job("checkout-run1").await.expect("the runner Job");
    assert_eq!(image(&after), "registry.local/stampede:1.0");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "the Job was not written again"
    );
    let status = world.status("checkout").await;
    assert_eq!(status.phase, Some(Phase::Provisioning));
    assert_eq!(status.runners.as_ref().map(|r| r.ready), Some(1));
    assert_eq!(
        status.plan.as_ref().map(|p| p.image.as_str()),
        Some("registry.local/stampede:1.0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_edit_replaces_the_previous_runs_objects() {
    let world = World::start("reconcile-edit").await;
    world.create("checkout", spec()).await;
    world.reconcile("checkout", &policy()).await;
    let edit = json!({"spec": {"runners": {"count": 2}}});
    world
        .api::<LoadTest>()
        .await
        .patch("checkout", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    world.reconcile("checkout", &policy()).await;
    let status = world.status("checkout").await;
    assert_eq!(
        (status.run, status.phase),
        (Some(2), Some(Phase::Provisioning))
    );
    assert_eq!(status.observed_generation, Some(2));
    assert_eq!(status.plan.as_ref().map(|p| p.runners), Some(2));
    assert!(
        world.job("checkout-run1").await.is_none(),
        "run 1's Job is gone"
    );
    assert_eq!(
        world
            .job("checkout-run2")
            .await
            .and_then(|j| j.spec?.completions),
        Some(2)
    );
    assert_eq!(
        world.config_maps("stampede.dev/loadtest=checkout").await,
        ["checkout-run2-report-0", "checkout-run2-report-1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_with_a_zero_ttl_deletes_the_loadtest() {
    let world = World::start("reconcile-ttl").await;
    let mut spec = spec();
    spec["ttlSecondsAfterFinished"] = json!(0);
    spec["cleanup"] = json!("none");
    world.create("short", spec).await;
    // Provisioning, then Running, then Succeeded — and gone at once.
    world.reconcile("short", &policy()).await;
    world.runners_report("short", 3, RunnerState::Ready).await;
    world.reconcile("short", &policy()).await;
    world
        .runners_report("short", 3, RunnerState::Finished)
        .await;
    let action = world.reconcile("short", &policy()).await;
    assert_eq!(action, Action::await_change());
    let tests = world.api::<LoadTest>().await;
    let left = tests.get_opt("short").await.unwrap();
    // Deleted, or on its way out (a real server's garbage collector may hold it briefly).
    assert!(
        left.as_ref()
            .is_none_or(|t| t.metadata.deletion_timestamp.is_some()),
        "{left:?}"
    );
}
