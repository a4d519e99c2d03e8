//! The cluster an end-to-end test runs against: the in-process stand-in (API server + process
//! kubelet), or a real cluster when `STAMPEDE_E2E_KUBECONFIG` names a kubeconfig.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use crate::apiserver::{self, ApiServer};
use crate::kubelet::{Kubelet, KubeletConfig};

/// The environment variable that switches end-to-end tests to a real cluster.
pub const REAL_CLUSTER_ENV: &str = "STAMPEDE_E2E_KUBECONFIG";

/// Where a test's Kubernetes API comes from.
#[derive(Debug)]
pub enum Cluster {
    /// The stand-in API server, with a process kubelet once [`Cluster::start_kubelet`] ran.
    StandIn {
        /// The API server.
        server: Box<ApiServer>,
        /// The process kubelet, if started.
        kubelet: Option<KubeletRuntime>,
    },
    /// A real cluster.
    Real {
        /// Its kubeconfig.
        kubeconfig: PathBuf,
        /// A private HOME for kubectl's discovery cache.
        home: tempfile::TempDir,
        /// What the test made and `kubectl delete` removes when this value is dropped
        /// (`namespace/NAME`, `clusterrole/NAME`, ...), in the order given.
        delete_at_end: Mutex<Vec<String>>,
    },
}

impl Cluster {
    /// The real cluster named by `STAMPEDE_E2E_KUBECONFIG`, else a fresh stand-in.
    pub async fn start() -> Cluster {
        match std::env::var_os(REAL_CLUSTER_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Cluster::Real {
                kubeconfig: PathBuf::from(path),
                home: tempfile::tempdir().expect("temporary HOME for kubectl"),
                delete_at_end: Mutex::new(Vec::new()),
            },
            None => Cluster::StandIn {
                server: Box::new(ApiServer::start().expect("start the API server stand-in")),
                kubelet: None,
            },
        }
    }

    /// Whether this is a real cluster (fault hooks and stand-in-only checks are skipped).
    pub fn is_real(&self) -> bool {
        matches!(self, Cluster::Real { .. })
    }

    /// The stand-in server, when this is the stand-in.
    pub fn stand_in(&self) -> Option<&ApiServer> {
        match self {
            Cluster::StandIn { server, .. } => Some(server),
            Cluster::Real { .. } => None,
        }
    }

    /// Panics when the real API server behind the stand-in dropped fields of a status write
    /// (a schema that does not declare what the operator writes); a no-op elsewhere.
    pub fn assert_nothing_pruned(&self) {
        if let Some(server) = self.stand_in() {
            let pruned = server.pruned_status_writes();
            assert!(
                pruned.is_empty(),
                "status fields the real API server did not keep:\n{}",
                pruned.join("\n")
            );
        }
    }

    /// One line: where this cluster's LoadTests are stored and validated.
    pub fn describe(&self) -> String {
        match self {
            Cluster::StandIn { server, .. } => {
                format!("the API server stand-in, {}", server.mode())
            }
            Cluster::Real { kubeconfig, .. } => {
                format!("the real cluster of {}", kubeconfig.display())
            }
        }
    }

    /// The process kubelet, when started.
    pub fn kubelet(&self) -> Option<&Kubelet> {
        match self {
            Cluster::StandIn { kubelet, .. } => kubelet.as_ref().and_then(|k| k.kubelet.as_ref()),
            Cluster::Real { .. } => None,
        }
    }

    /// Starts the process kubelet on the stand-in (a real cluster has its own nodes); images
    /// named `stampede` run the `stampede` binary of this build.
    pub async fn start_kubelet(&mut self) {
        if let Cluster::StandIn { server, kubelet } = self {
            if kubelet.is_some() {
                return;
            }
            *kubelet = Some(KubeletRuntime::start(server, crate::stampede_bin()).await);
        }
    }

    /// The kubeconfig file.
    pub fn kubeconfig(&self) -> PathBuf {
        match self {
            Cluster::StandIn { server, .. } => server.kubeconfig(),
            Cluster::Real { kubeconfig, .. } => kubeconfig.clone(),
        }
    }

    /// A kube-rs client.
    pub async fn client(&self) -> Client {
        apiserver::client_for(&self.kubeconfig())
            .await
            .expect("kube client from the kubeconfig")
    }

    /// Applies the CRD in `file` (relative to the repository root) with `kubectl apply` and
    /// waits until `crd` is Established.
    pub fn install_crd(&self, file: &str, crd: &str) {
        let path = repo_path(file);
        self.kubectl_ok(&["apply", "-f", &path.to_string_lossy()]);
        self.kubectl_ok(&[
            "wait",
            "--for=condition=established",
            "--timeout=30s",
            &format!("crd/{crd}"),
        ]);
    }

    /// `kubectl auth can-i ARGS... --as=system:serviceaccount:<namespace>:<account>`: "yes" or "no".
    pub fn can_i(&self, namespace: &str, account: &str, args: &[&str]) -> String {
        let subject = format!("--as=system:serviceaccount:{namespace}:{account}");
        let mut all = vec!["-n", namespace, "auth", "can-i", subject.as_str()];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&self.kubectl_run(&all).stdout)
            .trim()
            .to_string()
    }

    /// A `kubectl` command for this cluster.
    pub fn kubectl(&self) -> Command {
        match self {
            Cluster::StandIn { server, .. } => server.kubectl(),
            Cluster::Real {
                kubeconfig, home, ..
            } => apiserver::kubectl_for(kubeconfig, home.path()),
        }
    }

    /// Runs `kubectl ARGS...` and returns its output.
    pub fn kubectl_run(&self, args: &[&str]) -> Output {
        self.kubectl()
            .args(args)
            .output()
            .expect("run kubectl (is it installed?)")
    }

    /// Runs `kubectl ARGS...`, panicking with its stderr unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl_run(args);
        assert!(
            output.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Creates a namespace of its own for one test (`stampede-e2e-<random>`), so tests can run
    /// side by side on one real cluster.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", crate::apiserver::meta::random_suffix());
        let namespaces: Api<Namespace> = Api::all(self.client().await);
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
                .expect("namespace object");
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create test namespace");
        name
    }

    /// Deletes a test namespace (best effort; a real cluster cleans up after it).
    pub async fn drop_namespace(&self, name: &str) {
        let namespaces: Api<Namespace> = Api::all(self.client().await);
        let _ = namespaces.delete(name, &DeleteParams::background()).await;
    }

    /// On a real cluster, has `kubectl delete RESOURCE` (e.g. `namespace/NAME`) run when this
    /// value is dropped — at the end of the test, or while a failed one unwinds — so a test
    /// leaves nothing behind; nothing on the stand-in, which goes with its server.
    pub fn delete_at_end(&self, resource: &str) {
        if let Cluster::Real { delete_at_end, .. } = self
            && let Ok(mut resources) = delete_at_end.lock()
        {
            resources.push(resource.to_string());
        }
    }

    /// A kubeconfig at `dir` that authenticates as service account `account` of `namespace`
    /// (as the chart's operator does in its pod): the stand-in's token for it, or on a real
    /// cluster a token from `kubectl create token` with the current context's server and CA.
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        account: &str,
        dir: &Path,
    ) -> PathBuf {
        let (base, token) = match self {
            Cluster::StandIn { server, .. } => (
                server.kubeconfig(),
                apiserver::service_account_token(namespace, account),
            ),
            Cluster::Real { .. } => {
                let token = self.kubectl_ok(&["create", "token", account, "-n", namespace]);
                // The current context alone, its CA inlined: the copy stands on its own.
                let flat = self.kubectl_ok(&["config", "view", "--minify", "--flatten", "--raw"]);
                let base = dir.join("cluster.kubeconfig");
                std::fs::write(&base, flat).expect("write the flattened kubeconfig");
                (base, token.trim().to_string())
            }
        };
        crate::kubelet::identity::pod_kubeconfig(&base, dir, namespace, account, Some(&token))
            .expect("a kubeconfig for the service account")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Cluster::Real { delete_at_end, .. } = self else {
            return;
        };
        let resources = match delete_at_end.get_mut() {
            Ok(resources) => std::mem::take(resources),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        };
        for resource in resources {
            // Not waiting: the cluster finishes the deletion (and its garbage) by itself.
            let output =
                self.kubectl_run(&["delete", &resource, "--ignore-not-found", "--wait=false"]);
            if !output.status.success() {
                eprintln!(
                    "could not delete {resource}: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
    }
}

/// Waits until `name` is gone from `api`, panicking after `timeout`.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, timeout: std::time::Duration)
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let gone = kube::runtime::wait::await_condition(api.clone(), name, |o: Option<&K>| o.is_none());
    tokio::time::timeout(timeout, gone)
        .await
        .unwrap_or_else(|_| panic!("{name} still exists after {timeout:?}"))
        .unwrap_or_else(|error| panic!("watching {name}: {error}"));
}

/// Whether `kubectl` is on PATH (CI checks it up front; tests fail clearly without it).
pub fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The repository's `crds/` directory.
pub fn crds_dir() -> PathBuf {
    crate::repo_root().join("crds")
}

/// A path relative to the repository root.
pub fn repo_path(relative: &str) -> PathBuf {
    crate::repo_root().join(Path::new(relative))
}

/// The runner image Jobs use: `STAMPEDE_E2E_IMAGE` on a real cluster; on the stand-in any
/// image named `stampede` runs the binary cargo built.
pub fn runner_image() -> String {
    std::env::var("STAMPEDE_E2E_IMAGE")
        .ok()
        .filter(|image| !image.is_empty())
        .unwrap_or_else(|| "ghcr.io/stampede-dev/stampede:0.1.0".to_string())
}

/// The process kubelet on a runtime of its own, so a test blocking on `kubectl` does not stall
/// it. Dropping it kills every process it started.
#[derive(Debug)]
pub struct KubeletRuntime {
    kubelet: Option<Kubelet>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl KubeletRuntime {
    /// Starts a process kubelet for `server`: images named `stampede` run `stampede_binary`,
    /// each pod authenticates as its service account, logs go where `kubectl logs` reads them.
    pub async fn start(server: &ApiServer, stampede_binary: PathBuf) -> KubeletRuntime {
        let log_dir = server.dir().join("logs");
        std::fs::create_dir_all(&log_dir).expect("kubelet log directory");
        server.set_log_dir(&log_dir);
        let config = KubeletConfig {
            images: vec![("stampede".into(), stampede_binary)],
            kubeconfig: server.kubeconfig(),
            log_dir,
            node_name: "stand-in-node".into(),
            service_account_token: Some(crate::apiserver::service_account_token),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("process-kubelet")
            .enable_all()
            .build()
            .expect("kubelet runtime");
        let kubeconfig = server.kubeconfig();
        // The client's connection task must live on the kubelet's runtime too.
        let kubelet = runtime
            .spawn(async move {
                let client = apiserver::client_for(&kubeconfig)
                    .await
                    .expect("kubelet client");
                Kubelet::start(client, config)
            })
            .await
            .expect("start the process kubelet");
        KubeletRuntime {
            kubelet: Some(kubelet),
            runtime: Some(runtime),
        }
    }
}

impl Drop for KubeletRuntime {
    fn drop(&mut self) {
        // The kubelet's own Drop kills its processes; then its tasks stop without blocking.
        drop(self.kubelet.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// (code, reason, message) of an API error; panics on any other error.
pub fn api_error(error: kube::Error) -> (u16, String, String) {
    match error {
        kube::Error::Api(status) => (status.code, status.reason.clone(), status.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}
