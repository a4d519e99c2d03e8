//! The world of an end-to-end operator test: a cluster with the CRD (and, on the stand-in, a
//! process kubelet), a namespace, the operator process and the demo target, with the waits
//! and reads the tests share.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};
use stampede_crds::LoadTest;
use stampede_crds::status::{LoadTestStatus, Phase};
use stampede_runner::cluster::{REPORT_KEY, RunnerReport};

use crate::cluster::Cluster;
use crate::demo_target::DemoTarget;
use crate::operator::OperatorProcess;

/// One test's world: a cluster with the CRD (and, on the stand-in, a process kubelet), a
/// namespace, the operator (a process on this machine, with the cluster's kubeconfig), the demo
/// target (on loopback next to the stand-in, in the namespace on a real cluster).
#[derive(Debug)]
pub struct World {
    // Dropped in this order: the operator stops before the cluster deletes the namespace.
    /// The operator process.
    pub operator: OperatorProcess,
    /// The test's namespace.
    pub namespace: String,
    /// The demo target the LoadTests load.
    pub demo: DemoTarget,
    /// The cluster.
    pub cluster: Cluster,
    _logs: tempfile::TempDir,
}

impl World {
    /// The world of a test that runs on either cluster.
    pub async fn start(prefix: &str, start_deadline_seconds: u64) -> World {
        World::on(Cluster::start().await, prefix, start_deadline_seconds, &[]).await
    }

    /// The world of a test whose operator runs with these extra flags (e.g. a runner policy
    /// that allows the Secrets the test reads).
    pub async fn start_with_operator_args(
        prefix: &str,
        start_deadline_seconds: u64,
        operator_args: &[&str],
    ) -> World {
        World::on(
            Cluster::start().await,
            prefix,
            start_deadline_seconds,
            operator_args,
        )
        .await
    }

    /// The world of a test that injects `fault` through the stand-in's process kubelet: None,
    /// and the test skipped, on a real cluster, whose kubelets take no such orders.
    pub async fn start_with_fault(
        prefix: &str,
        start_deadline_seconds: u64,
        fault: &str,
        operator_args: &[&str],
    ) -> Option<World> {
        let cluster = Cluster::start().await;
        if cluster.is_real() {
            eprintln!(
                "skipped on a real cluster: {fault} is injected through the stand-in's process \
                 kubelet, which a real cluster does not have"
            );
            return None;
        }
        Some(World::on(cluster, prefix, start_deadline_seconds, operator_args).await)
    }

    async fn on(
        mut cluster: Cluster,
        prefix: &str,
        start_deadline_seconds: u64,
        operator_args: &[&str],
    ) -> World {
        eprintln!("LoadTests live in {}", cluster.describe());
        cluster.install_crd("crds/loadtest.yaml", "loadtests.stampede.dev");
        cluster.start_kubelet().await;
        let namespace = cluster.namespace(prefix).await;
        cluster.delete_at_end(&format!("namespace/{namespace}"));
        let logs = tempfile::tempdir().unwrap();
        let operator = OperatorProcess::start(
            &cluster.kubeconfig(),
            &namespace,
            start_deadline_seconds,
            operator_args,
            &logs.path().join("operator.log"),
        );
        let demo = DemoTarget::start(&cluster, &namespace).await;
        World {
            operator,
            namespace,
            demo,
            cluster,
            _logs: logs,
        }
    }

    /// `kubectl apply` of a LoadTest with `spec` (the demo target's base URL filled in).
    pub fn apply(&self, name: &str, spec: Value) {
        self.apply_to(name, spec, self.demo.base_url());
    }

    /// `kubectl apply` of a LoadTest with `spec` aimed at `base_url`.
    pub fn apply_to(&self, name: &str, mut spec: Value, base_url: &str) {
        spec["defaults"]["baseUrl"] = json!(base_url);
        let manifest = json!({
            "apiVersion": "stampede.dev/v1alpha1", "kind": "LoadTest",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        });
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), serde_json::to_string(&manifest).unwrap()).unwrap();
        let path = file.path().to_string_lossy().into_owned();
        self.cluster.kubectl_ok(&["apply", "-f", &path]);
    }

    pub fn kubectl_wait_complete(&self, name: &str, timeout: &str) {
        let resource = format!("loadtest/{name}");
        let out = self.cluster.kubectl_run(&[
            "wait",
            "-n",
            &self.namespace,
            "--for=condition=Complete",
            &resource,
            &format!("--timeout={timeout}"),
        ]);
        assert!(
            out.status.success(),
            "kubectl wait failed: {}\n{}\noperator log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            self.operator.log()
        );
    }

    pub async fn tests(&self) -> Api<LoadTest> {
        Api::namespaced(self.cluster.client().await, &self.namespace)
    }

    /// The LoadTest as stored, after checking that no status write lost a field on the way.
    pub async fn get(&self, name: &str) -> LoadTest {
        self.cluster.assert_nothing_pruned();
        self.tests().await.get(name).await.unwrap()
    }

    /// Waits until the LoadTest's status satisfies `ok`.
    pub async fn wait_status<F>(
        &self,
        name: &str,
        timeout: Duration,
        what: &str,
        ok: F,
    ) -> LoadTestStatus
    where
        F: Fn(&LoadTestStatus) -> bool + Send + 'static,
    {
        let condition = await_condition(self.tests().await, name, move |t: Option<&LoadTest>| {
            t.and_then(|t| t.status.as_ref()).is_some_and(&ok)
        });
        match tokio::time::timeout(timeout, condition).await {
            Ok(Ok(Some(test))) => {
                self.cluster.assert_nothing_pruned();
                test.status.unwrap_or_default()
            }
            other => panic!(
                "{name}: {what} not reached in {timeout:?} ({other:?}); status: {:?}\noperator log:\n{}",
                self.get(name).await.status,
                self.operator.log()
            ),
        }
    }

    /// Waits until the LoadTest runs and its runners have sent requests.
    pub async fn wait_running_with_progress(&self, name: &str) -> LoadTestStatus {
        self.wait_status(
            name,
            Duration::from_secs(60),
            "Running with progress",
            |s| {
                s.phase == Some(Phase::Running)
                    && s.progress.as_ref().is_some_and(|p| p.http_reqs > 0)
            },
        )
        .await
    }

    /// The reports of run `run` of `name` (left in place by `cleanup: none`).
    pub async fn reports(&self, name: &str, run: i64, runners: u64) -> Vec<RunnerReport> {
        let maps: Api<ConfigMap> = Api::namespaced(self.cluster.client().await, &self.namespace);
        let mut reports = Vec::new();
        for index in 0..runners {
            let map = maps
                .get(&format!("{name}-run{run}-report-{index}"))
                .await
                .unwrap();
            let text = map
                .data
                .unwrap_or_default()
                .remove(REPORT_KEY)
                .expect("a report");
            reports.push(RunnerReport::from_json(&text).unwrap());
        }
        reports
    }

    pub async fn jobs(&self) -> Vec<Job> {
        let jobs: Api<Job> = Api::namespaced(self.cluster.client().await, &self.namespace);
        jobs.list(&ListParams::default()).await.unwrap().items
    }
}

pub fn condition<'a>(status: &'a LoadTestStatus, kind: &str) -> (&'a str, &'a str, &'a str) {
    let c = status
        .condition(kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {status:?}"));
    (c.status.as_str(), c.reason.as_str(), c.message.as_str())
}

/// The Argo CD health (status, message) of the LoadTest as the cluster has it now, from the
/// Lua health check in examples/gitops/argocd run by lua5.4.
pub async fn health(world: &World, name: &str) -> (String, String) {
    let test = world.get(name).await;
    crate::argocd::argocd_health(&serde_json::to_value(&test).unwrap())
}

pub fn report_of(map: Option<&ConfigMap>) -> Option<RunnerReport> {
    let text = map?.data.as_ref()?.get(REPORT_KEY)?;
    RunnerReport::from_json(text).ok()
}

pub fn phase(status: &LoadTestStatus) -> Phase {
    status.phase.unwrap_or_default()
}

/// A constant-VUs test of the demo products endpoint.
pub fn steady(vus: u64, duration: &str, runners: u64, thresholds: Value) -> Value {
    json!({
        "scenarios": {"steady": {"executor": "constant-vus", "vus": vus, "duration": duration, "flow": "browse"}},
        "flows": {"browse": [
            {"name": "product", "request": {"url": "/v1/products/1"}, "checks": {"product ok": "status == 200"}},
            {"sleep": "20ms"},
        ]},
        "thresholds": thresholds,
        "runners": {"count": runners},
        "cleanup": "none",
    })
}
