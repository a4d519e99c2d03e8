//! A process kubelet and Job controller: runs the stand-in cluster's Jobs as local processes.
//!
//! [`Kubelet::start`] spawns two tokio tasks on a kube-rs client of any API server:
//! - the **Job controller** (`controller.rs`, logic in `job.rs`) turns batch/v1 Jobs into pods
//!   and keeps the Jobs' status (counts, `completedIndexes`, `SuccessCriteriaMet`/`Complete`,
//!   `FailureTarget`/`Failed`) as Kubernetes 1.33 does;
//! - the **pod runner** (`runner.rs`, one `worker.rs` task per pod) binds pods to this node and runs each container as a
//!   local process: the image maps to an executable ([`KubeletConfig::images`]), the
//!   environment is resolved like the kubelet does (`env.rs`), output goes to a log file, and
//!   the pod status follows the processes (`status.rs`).
//!
//! The pure parts (`job`, `pod`, `env`, `container`, `status`) are public for tests that want
//! to check a detail against them.
//!
//! Not modelled: container restarts (every container behaves as `restartPolicy: Never`), the
//! back-off delay before a Job's failed pod is replaced, probes, resources and volumes,
//! `resourceFieldRef`, pod failure / success policies, `backoffLimitPerIndex`, suspension
//! (suspended Jobs are skipped), and Job-tracking finalizers.

mod api;
pub mod container;
mod controller;
pub mod env;
mod faults;
pub mod identity;
pub mod job;
pub mod pod;
mod process;
mod runner;
pub mod status;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

pub use faults::Faults;
use process::ProcessTable;
use runner::Runner;

/// How long [`Kubelet::shutdown`] waits for killed processes to exit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// What the kubelet runs and where.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// Image → local executable. An image matches an entry when its repository's last path
    /// segment (tag/digest stripped) equals the key, e.g. "ghcr.io/acme/stampede:0.1.0" →
    /// key "stampede".
    pub images: Vec<(String, PathBuf)>,
    /// The kubeconfig the pods' processes get in $KUBECONFIG (in place of in-cluster config).
    pub kubeconfig: PathBuf,
    /// Where container logs go: <log_dir>/<namespace>_<pod>_<container>.log (stdout+stderr).
    pub log_dir: PathBuf,
    /// Node name written to pods' spec.nodeName.
    pub node_name: String,
    /// When set, each pod's process gets its own kubeconfig authenticating as the pod's
    /// service account with the token this gives for (namespace, service account) — instead of
    /// `kubeconfig`'s own credentials. Pods with `automountServiceAccountToken: false` get none.
    pub service_account_token: Option<fn(&str, &str) -> String>,
}

/// A running process kubelet and Job controller. Dropping it kills every process it started.
pub struct Kubelet {
    config: Arc<KubeletConfig>,
    faults: Arc<Faults>,
    processes: Arc<ProcessTable>,
    runner: Arc<Runner>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("config", &self.config)
            .field("processes", &self.processes.all().len())
            .finish_non_exhaustive()
    }
}

impl Kubelet {
    /// Starts the Job controller and the pod runner as tokio tasks using `client` (watching
    /// all namespaces). Must be called inside a tokio runtime.
    pub fn start(client: kube::Client, config: KubeletConfig) -> Kubelet {
        if let Err(error) = std::fs::create_dir_all(&config.log_dir) {
            eprintln!(
                "kubelet: create log dir {}: {error}",
                config.log_dir.display()
            );
        }
        let config = Arc::new(config);
        let processes = Arc::new(ProcessTable::default());
        let faults = Arc::new(Faults::new(Arc::clone(&processes)));
        let runner = Arc::new(Runner::new(
            client.clone(),
            Arc::clone(&config),
            Arc::clone(&faults),
            Arc::clone(&processes),
        ));
        let tasks = vec![
            tokio::spawn(controller::run(client)),
            tokio::spawn(Arc::clone(&runner).run()),
        ];
        Kubelet {
            config,
            faults,
            processes,
            runner,
            tasks,
        }
    }

    /// Fault hooks for tests.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Path of a container's log file.
    pub fn log_path(&self, namespace: &str, pod: &str, container: &str) -> PathBuf {
        runner::log_file(&self.config.log_dir, namespace, pod, container)
    }

    /// Stops the tasks and kills every process still running (SIGKILL), waiting for them to
    /// exit.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for task in &tasks {
            task.abort();
        }
        self.runner.abort_workers();
        let killed = self.processes.kill_all();
        process::wait_all(&killed, SHUTDOWN_WAIT).await;
        for task in tasks {
            // Aborted tasks end with a cancellation error; nothing to report.
            let _ = task.await;
        }
    }
}

impl Drop for Kubelet {
    /// Best effort and synchronous, so a failing test leaves no orphan processes: aborts the
    /// tasks and SIGKILLs every process group still running.
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.runner.abort_workers();
        self.processes.kill_all();
    }
}
