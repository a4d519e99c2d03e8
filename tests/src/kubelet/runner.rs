//! The pod runner's watch loop: watches pods in all namespaces, starts one worker task
//! (`worker.rs`) per new pod that is unscheduled or bound to this node, forwards deletions to
//! the workers (graceful: deletion timestamp; immediate: the object is gone, also found by a
//! re-list), and confirms the deletion of pods that run nothing here (delete with grace 0).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::AbortHandle;

use super::KubeletConfig;
use super::api::{self, Reporter};
use super::faults::Faults;
use super::process::ProcessTable;
use super::status::is_terminal;
use super::worker::{Command, PodWorker};

/// The grace period when a deleted pod names none.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// A live pod worker task and its command channel.
#[derive(Debug)]
struct Worker {
    commands: UnboundedSender<Command>,
    task: AbortHandle,
}

/// The pods the runner handles, by uid.
#[derive(Debug, Default)]
struct Workers {
    /// Pods with a live worker task.
    running: HashMap<String, Worker>,
    /// Pods whose worker finished (never started again).
    done: HashSet<String>,
    /// Pods the runner already deleted with grace 0.
    deleted: HashSet<String>,
}

/// The pod runner, shared by its watch loop and the pod workers.
pub struct Runner {
    pub(super) client: Client,
    pub(super) config: Arc<KubeletConfig>,
    pub(super) faults: Arc<Faults>,
    pub(super) processes: Arc<ProcessTable>,
    workers: Mutex<Workers>,
    pub(super) reporter: Reporter,
}

/// The grace period of a pod being deleted.
fn grace_period(pod: &Pod) -> Duration {
    pod.metadata
        .deletion_grace_period_seconds
        .map_or(DEFAULT_GRACE, |s| {
            Duration::from_secs(u64::try_from(s).unwrap_or(0))
        })
}

/// The log file of a container: `<log_dir>/<namespace>_<pod>_<container>.log`.
pub fn log_file(log_dir: &Path, namespace: &str, pod: &str, container: &str) -> PathBuf {
    log_dir.join(format!("{namespace}_{pod}_{container}.log"))
}

impl Runner {
    pub fn new(
        client: Client,
        config: Arc<KubeletConfig>,
        faults: Arc<Faults>,
        processes: Arc<ProcessTable>,
    ) -> Runner {
        Runner {
            client,
            config,
            faults,
            processes,
            workers: Mutex::new(Workers::default()),
            reporter: Reporter::default(),
        }
    }

    fn workers(&self) -> MutexGuard<'_, Workers> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Aborts every pod worker task (their processes are killed separately).
    pub fn abort_workers(&self) {
        for worker in self.workers().running.values() {
            worker.task.abort();
        }
    }

    /// The watch loop; runs until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let mut events = watcher(pods, watcher::Config::default())
            .default_backoff()
            .boxed();
        // The uids listed during a re-list, to find pods deleted while the watch was down.
        let mut listed: Option<HashSet<String>> = None;
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Init) => listed = Some(HashSet::new()),
                Ok(watcher::Event::InitApply(pod)) => {
                    if let (Some(listed), Some(uid)) = (listed.as_mut(), &pod.metadata.uid) {
                        listed.insert(uid.clone());
                    }
                    self.on_pod(pod);
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(listed) = listed.take() {
                        self.on_relisted(&listed);
                    }
                }
                Ok(watcher::Event::Apply(pod)) => self.on_pod(pod),
                Ok(watcher::Event::Delete(pod)) => {
                    if let Some(uid) = &pod.metadata.uid {
                        self.on_gone(uid);
                    }
                }
                Err(error) => eprintln!("kubelet: pod watch: {error}"),
            }
        }
    }

    /// A pod was added or changed.
    fn on_pod(self: &Arc<Self>, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        if !node.is_empty() && node != self.config.node_name {
            return;
        }
        let mut workers = self.workers();
        if let Some(worker) = workers.running.get(&uid) {
            if pod.metadata.deletion_timestamp.is_some() {
                let grace = grace_period(&pod);
                let _ = worker.commands.send(Command::Terminate { grace });
            }
            return;
        }
        if pod.metadata.deletion_timestamp.is_some() {
            // Nothing runs for it (it finished, or never started here): confirm the deletion.
            if workers.deleted.insert(uid) {
                let runner = Arc::clone(self);
                tokio::spawn(async move { runner.delete_pod(&pod).await });
            }
            return;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if workers.done.contains(&uid) || phase.is_some_and(is_terminal) {
            return;
        }
        let (commands, receiver) = unbounded_channel();
        let task = tokio::spawn(Arc::clone(self).run_pod(pod, receiver));
        workers.running.insert(
            uid,
            Worker {
                commands,
                task: task.abort_handle(),
            },
        );
    }

    /// A pod object was deleted.
    fn on_gone(&self, uid: &str) {
        if let Some(worker) = self.workers().running.get(uid) {
            let _ = worker.commands.send(Command::Gone);
        }
    }

    /// After a re-list: pods with a worker that were not listed are gone.
    fn on_relisted(&self, listed: &HashSet<String>) {
        for (uid, worker) in &self.workers().running {
            if !listed.contains(uid) {
                let _ = worker.commands.send(Command::Gone);
            }
        }
    }

    /// Deletes a pod with grace 0, reporting unexpected errors.
    async fn delete_pod(&self, pod: &Pod) {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(error) = api::delete_now(&api, &name).await {
            self.reporter
                .report(format!("delete pod {namespace}/{name}: {error}"));
        }
    }

    /// A pod's worker task: runs the pod, then records that it finished.
    async fn run_pod(self: Arc<Self>, pod: Pod, commands: UnboundedReceiver<Command>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let deleted = PodWorker::new(Arc::clone(&self), pod, commands).run().await;
        // Every process of the pod exited (or was killed and waited for) by now.
        self.processes.forget(&uid);
        let mut workers = self.workers();
        workers.running.remove(&uid);
        workers.done.insert(uid.clone());
        if deleted {
            workers.deleted.insert(uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn grace_periods_default_to_thirty_seconds() {
        let mut pod = Pod {
            metadata: ObjectMeta::default(),
            spec: None,
            status: None,
        };
        assert_eq!(grace_period(&pod), Duration::from_secs(30));
        pod.metadata.deletion_grace_period_seconds = Some(5);
        assert_eq!(grace_period(&pod), Duration::from_secs(5));
        pod.metadata.deletion_grace_period_seconds = Some(-1);
        assert_eq!(grace_period(&pod), Duration::ZERO);
    }

    #[test]
    fn log_files_are_named_by_namespace_pod_and_container() {
        assert_eq!(
            log_file(Path::new("/logs"), "team", "load-0-abcde", "runner"),
            Path::new("/logs/team_load-0-abcde_runner.log")
        );
    }
}
