//! One pod's worker: schedules the pod, runs its containers as processes, reports its status,
//! and carries out its deletion.
//!
//! A pod's life here:
//! 1. Seen with an empty `spec.nodeName`: an `unschedulable_job` fault leaves it Pending with
//!    `PodScheduled=False`; otherwise it is bound to this node (merge patch of
//!    `spec.nodeName`, or the `binding` subresource if the server refuses the patch).
//! 2. Init containers run one after another (each must exit 0), then all containers start.
//!    A container whose image fails to pull (fault or no mapping) waits in `ErrImagePull`, then
//!    `ImagePullBackOff`; one whose environment cannot be resolved waits in
//!    `CreateContainerConfigError` and is retried every [`CONFIG_RETRY`].
//! 3. Exits are polled; the status is written whenever it changes. Containers are never
//!    restarted, whatever the restart policy (Jobs use Never).
//! 4. Graceful deletion (`metadata.deletionTimestamp`): SIGTERM, up to
//!    `deletionGracePeriodSeconds` (default 30) for the processes to exit, SIGKILL, the final
//!    status, then a delete with `gracePeriodSeconds: 0`. A pod that disappears (deleted with
//!    grace 0, or by GC) has its processes SIGKILLed at once.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodStatus, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::KubeletConfig;
use super::api;
use super::container::{argv, executable, process_env, resolve_image, working_dir};
use super::env::{EnvSources, references, resolve_env};
use super::job::to_time;
use super::process::{Launch, POLL_INTERVAL, Process, spawn, wait_all};
use super::runner::{Runner, log_file};
use super::status::{
    ContainerReport, ContainerRun, is_terminal, pod_status, terminated_reason, unschedulable_status,
};

/// How long a failed pull shows `ErrImagePull` before `ImagePullBackOff`.
pub const IMAGE_PULL_BACKOFF_AFTER: Duration = Duration::from_secs(2);
/// How often a container stuck in `CreateContainerConfigError` is retried.
pub const CONFIG_RETRY: Duration = Duration::from_secs(1);
/// How long a worker waits for killed processes to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before a failed status write (or bind) is tried again.
const WRITE_RETRY: Duration = Duration::from_millis(500);

/// What the watch loop tells a pod's worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The pod got a deletion timestamp: stop gracefully within this period.
    Terminate {
        /// The deletion grace period.
        grace: Duration,
    },
    /// The pod object is gone: kill at once.
    Gone,
}

fn now_time() -> Time {
    to_time(Timestamp::now())
}

/// One container of a pod being run.
#[derive(Debug)]
struct Slot {
    container: Container,
    run: ContainerRun,
    process: Option<Arc<Process>>,
    /// When its image pull first failed.
    pull_failed_at: Option<Instant>,
    /// When a waiting container may be tried again.
    next_attempt: Instant,
}

impl Slot {
    fn new(container: Container, waiting: &str) -> Slot {
        Slot {
            container,
            run: ContainerRun::waiting(waiting, None),
            process: None,
            pull_failed_at: None,
            next_attempt: Instant::now(),
        }
    }

    fn report(&self) -> ContainerReport {
        ContainerReport {
            name: self.container.name.clone(),
            image: self.container.image.clone().unwrap_or_default(),
            container_id: self
                .process
                .as_ref()
                .map(|p| format!("process://{}", p.pid())),
            run: self.run.clone(),
        }
    }

    fn is_running(&self) -> bool {
        matches!(self.run, ContainerRun::Running { .. })
    }
}

/// The outcome of scheduling a pod.
enum Scheduling {
    /// On this node: run it.
    Bound,
    /// Kept Pending by a fault: wait for its deletion.
    Unschedulable,
    /// Gone or deleted meanwhile; `deleted` when the worker deleted it.
    Ended { deleted: bool },
}

/// The outcome of a status write.
enum Write {
    Done,
    /// The pod is gone (404).
    Gone,
}

/// The state of one pod's worker.
pub struct PodWorker {
    runner: Arc<Runner>,
    api: Api<Pod>,
    /// The pod as last known (after scheduling: with its node name).
    pod: Pod,
    uid: String,
    namespace: String,
    name: String,
    commands: UnboundedReceiver<Command>,
    init: Vec<Slot>,
    main: Vec<Slot>,
    start_time: Time,
    last_status: Option<PodStatus>,
    /// No status write before this (after a failed one).
    write_after: Instant,
    /// Set once the pod is being deleted: when to SIGKILL what still runs.
    kill_at: Option<Instant>,
}

impl PodWorker {
    /// A worker for a pod just seen by the watch loop.
    pub fn new(runner: Arc<Runner>, pod: Pod, commands: UnboundedReceiver<Command>) -> PodWorker {
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(runner.client.clone(), &namespace);
        let spec = pod.spec.clone().unwrap_or_default();
        let slots = |containers: &[Container], waiting: &str| -> Vec<Slot> {
            containers
                .iter()
                .map(|c| Slot::new(c.clone(), waiting))
                .collect()
        };
        let init = slots(
            spec.init_containers.as_deref().unwrap_or_default(),
            "PodInitializing",
        );
        let main_waiting = if init.is_empty() {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        PodWorker {
            runner,
            api,
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            name: pod.name_any(),
            namespace,
            commands,
            init,
            main: slots(&spec.containers, main_waiting),
            pod,
            start_time: now_time(),
            last_status: None,
            write_after: Instant::now(),
            kill_at: None,
        }
    }

    /// Runs the pod to its end; returns whether the worker deleted the pod.
    pub async fn run(&mut self) -> bool {
        match self.schedule().await {
            Scheduling::Bound => {}
            Scheduling::Unschedulable => return self.wait_unscheduled().await,
            Scheduling::Ended { deleted } => return deleted,
        }
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Terminate { grace }) => self.begin_termination(grace),
                    // Gone, or the runner is shutting down.
                    Some(Command::Gone) | None => {
                        self.kill_all().await;
                        return false;
                    }
                },
                _ = tick.tick() => {}
            }
            if let Some(kill_at) = self.kill_at
                && Instant::now() >= kill_at
            {
                for process in self.slots().filter_map(|s| s.process.as_ref()) {
                    process.kill();
                }
            }
            self.poll_exits();
            if self.kill_at.is_some() {
                if self.slots().any(Slot::is_running) {
                    continue;
                }
                return self.finish_deletion().await;
            }
            self.start_containers().await;
            let status = self.status();
            let terminal = status.phase.as_deref().is_some_and(is_terminal);
            match self.write(status).await {
                Write::Gone => {
                    self.kill_all().await;
                    return false;
                }
                Write::Done => {}
            }
            let written_terminal = self
                .last_status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(is_terminal);
            if terminal && written_terminal && !self.slots().any(Slot::is_running) {
                // Finished: the pod stays until deleted; the watch loop confirms that.
                return false;
            }
        }
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.init.iter().chain(self.main.iter())
    }

    fn node_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default()
    }

    /// Binds the pod to this node (unless it already is, or a fault keeps it unscheduled).
    async fn schedule(&mut self) -> Scheduling {
        if !self.node_name().is_empty() {
            return Scheduling::Bound;
        }
        if self
            .runner
            .faults
            .is_unschedulable(self.pod.metadata.labels.as_ref())
        {
            let status = unschedulable_status(&now_time());
            if let Err(error) = api::patch_status(&self.api, &self.name, &status).await
                && !api::is_not_found(&error)
            {
                self.report(format!("write status: {error}"));
            }
            return Scheduling::Unschedulable;
        }
        loop {
            match self.bind().await {
                Ok(pod) => {
                    self.pod = pod;
                    return Scheduling::Bound;
                }
                Err(error) if api::is_not_found(&error) => {
                    return Scheduling::Ended { deleted: false };
                }
                Err(error) => {
                    self.report(format!("bind to node: {error}"));
                    // Retry unless told to stop meanwhile.
                    match tokio::time::timeout(WRITE_RETRY, self.commands.recv()).await {
                        Err(_) => {}
                        Ok(Some(Command::Terminate { .. })) => {
                            if let Err(error) = api::delete_now(&self.api, &self.name).await {
                                self.report(format!("delete: {error}"));
                            }
                            return Scheduling::Ended { deleted: true };
                        }
                        Ok(_) => return Scheduling::Ended { deleted: false },
                    }
                }
            }
        }
    }

    /// Sets `spec.nodeName` with a merge patch; if the server refuses to change the spec (as a
    /// real one does), binds through the `binding` subresource as the scheduler does.
    async fn bind(&self) -> Result<Pod, kube::Error> {
        let node = &self.runner.config.node_name;
        let patch = Patch::Merge(serde_json::json!({ "spec": { "nodeName": node } }));
        match self
            .api
            .patch(&self.name, &PatchParams::default(), &patch)
            .await
        {
            Err(error)
                if [400, 403, 405, 422]
                    .iter()
                    .any(|c| api::is_code(&error, *c)) =>
            {
                let binding = serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": { "name": self.name },
                    "target": { "apiVersion": "v1", "kind": "Node", "name": node },
                });
                self.api
                    .create_subresource::<_, serde_json::Value>(
                        "binding",
                        &self.name,
                        &PostParams::default(),
                        &binding,
                    )
                    .await?;
                self.api.get(&self.name).await
            }
            other => other,
        }
    }

    /// An unscheduled (or vanished) pod: waits until it is deleted. Returns whether the worker
    /// deleted it.
    async fn wait_unscheduled(&mut self) -> bool {
        match self.commands.recv().await {
            Some(Command::Terminate { .. }) => {
                if let Err(error) = api::delete_now(&self.api, &self.name).await {
                    self.report(format!("delete: {error}"));
                }
                true
            }
            _ => false,
        }
    }

    fn report(&self, message: String) {
        self.runner
            .reporter
            .report(format!("pod {}/{}: {message}", self.namespace, self.name));
    }

    /// Starts graceful termination: SIGTERM now, SIGKILL after `grace`.
    fn begin_termination(&mut self, grace: Duration) {
        let kill_at = Instant::now() + grace;
        if self.kill_at.is_none() {
            for slot in self.init.iter().chain(self.main.iter()) {
                if let Some(process) = &slot.process {
                    process.terminate();
                }
            }
        }
        // A second deletion may shorten the grace period, never lengthen it.
        self.kill_at = Some(self.kill_at.map_or(kill_at, |at| at.min(kill_at)));
    }

    /// SIGKILLs every process of the pod and waits for them.
    async fn kill_all(&mut self) {
        let processes: Vec<Arc<Process>> = self.slots().filter_map(|s| s.process.clone()).collect();
        for process in &processes {
            process.kill();
        }
        wait_all(&processes, REAP_TIMEOUT).await;
        for process in &processes {
            process.kill_leftovers();
        }
    }

    /// Records the exits of processes that ended.
    fn poll_exits(&mut self) {
        for slot in self.init.iter_mut().chain(self.main.iter_mut()) {
            let (Some(process), ContainerRun::Running { started_at }) = (&slot.process, &slot.run)
            else {
                continue;
            };
            if let Some(exit) = process.try_exit() {
                process.kill_leftovers();
                slot.run = ContainerRun::Terminated {
                    exit_code: exit.code,
                    reason: terminated_reason(exit.code, exit.oom_killed).to_string(),
                    message: None,
                    started_at: Some(started_at.clone()),
                    finished_at: now_time(),
                };
            }
        }
    }

    /// Starts what may start: the next init container, or else every waiting container.
    async fn start_containers(&mut self) {
        if let Some(i) = self.init.iter().position(|s| !s.run.succeeded()) {
            if matches!(self.init[i].run, ContainerRun::Waiting { .. }) {
                self.try_start(true, i).await;
            }
            return;
        }
        for i in 0..self.main.len() {
            if matches!(self.main[i].run, ContainerRun::Waiting { .. }) {
                self.try_start(false, i).await;
            }
        }
    }

    /// Tries to start one waiting container: image, environment, process.
    async fn try_start(&mut self, init: bool, i: usize) {
        let now = Instant::now();
        let slot = if init { &self.init[i] } else { &self.main[i] };
        if now < slot.next_attempt {
            return;
        }
        let container = slot.container.clone();
        let image = container.image.clone().unwrap_or_default();
        let config = Arc::clone(&self.runner.config);

        // The image: a fault, or no mapping, fails the pull.
        let program = match resolve_image(&config.images, &image) {
            Some(path) if !self.runner.faults.image_pull_fails(&image) => executable(path),
            _ => {
                let slot = self.slot_mut(init, i);
                let failed_at = *slot.pull_failed_at.get_or_insert(now);
                if now.duration_since(failed_at) >= IMAGE_PULL_BACKOFF_AFTER {
                    slot.run = ContainerRun::waiting(
                        "ImagePullBackOff",
                        Some(format!("Back-off pulling image \"{image}\"")),
                    );
                    // Nothing changes from here on: faults and mappings are permanent.
                    slot.next_attempt = now + Duration::from_secs(3600);
                } else {
                    slot.run = ContainerRun::waiting(
                        "ErrImagePull",
                        Some(format!(
                            "failed to pull and unpack image \"{image}\": failed to resolve \
                             reference \"{image}\": not found"
                        )),
                    );
                    slot.next_attempt = failed_at + IMAGE_PULL_BACKOFF_AFTER;
                }
                return;
            }
        };

        // The environment (fetching the Secrets and ConfigMaps it references).
        let env = match self.fetch_sources(&container).await {
            Ok(sources) => resolve_env(&self.pod, &container, &sources),
            Err(message) => Err(message),
        };
        let env = match env {
            Ok(env) => env,
            Err(message) => {
                let slot = self.slot_mut(init, i);
                slot.run = ContainerRun::waiting("CreateContainerConfigError", Some(message));
                slot.next_attempt = now + CONFIG_RETRY;
                return;
            }
        };

        let hostname = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .unwrap_or_else(|| self.name.clone());
        let kubeconfig = match self.pod_kubeconfig(&config) {
            Ok(path) => path,
            Err(error) => {
                let slot = self.slot_mut(init, i);
                slot.run = ContainerRun::waiting(
                    "CreateContainerConfigError",
                    Some(format!("cannot write the pod's kubeconfig: {error}")),
                );
                slot.next_attempt = now + CONFIG_RETRY;
                return;
            }
        };
        let launch = Launch {
            program,
            args: argv(&container, &env),
            env: process_env(
                std::env::var("PATH").ok(),
                std::env::var("HOME").ok(),
                &hostname,
                &kubeconfig,
                &env,
            ),
            working_dir: working_dir(&container, &config.log_dir),
            log_path: log_file(
                &config.log_dir,
                &self.namespace,
                &self.name,
                &container.name,
            ),
        };
        let spawned = spawn(&launch);
        let (uid, namespace, name) = (self.uid.clone(), self.namespace.clone(), self.name.clone());
        let processes = Arc::clone(&self.runner.processes);
        let slot = self.slot_mut(init, i);
        match spawned {
            Ok(process) => {
                let process = Arc::new(process);
                processes.register(&uid, &namespace, &name, Arc::clone(&process));
                slot.run = ContainerRun::Running {
                    started_at: to_time(process.started_at),
                };
                slot.process = Some(process);
            }
            Err(error) => {
                slot.run = ContainerRun::Terminated {
                    exit_code: 128,
                    reason: "StartError".to_string(),
                    message: Some(format!(
                        "failed to start {}: {error}",
                        launch.program.display()
                    )),
                    started_at: None,
                    finished_at: now_time(),
                };
            }
        }
    }

    /// The kubeconfig this pod's processes get: their service account's own when the kubelet
    /// mints tokens, else the shared one.
    fn pod_kubeconfig(&self, config: &KubeletConfig) -> std::io::Result<std::path::PathBuf> {
        let Some(mint) = config.service_account_token else {
            return Ok(config.kubeconfig.clone());
        };
        let spec = self.pod.spec.as_ref();
        let account = spec
            .and_then(|s| s.service_account_name.as_deref())
            .filter(|name| !name.is_empty())
            .unwrap_or("default");
        let token = (spec.and_then(|s| s.automount_service_account_token) != Some(false))
            .then(|| mint(&self.namespace, account));
        super::identity::pod_kubeconfig(
            &config.kubeconfig,
            &config.log_dir,
            &self.namespace,
            &self.name,
            token.as_deref(),
        )
    }

    fn slot_mut(&mut self, init: bool, i: usize) -> &mut Slot {
        if init {
            &mut self.init[i]
        } else {
            &mut self.main[i]
        }
    }

    /// Fetches the Secrets and ConfigMaps a container references (missing ones as `None`).
    async fn fetch_sources(&self, container: &Container) -> Result<EnvSources, String> {
        let refs = references(container);
        let mut sources = EnvSources::default();
        let secrets: Api<Secret> = Api::namespaced(self.runner.client.clone(), &self.namespace);
        for name in refs.secrets {
            let secret = secrets
                .get_opt(&name)
                .await
                .map_err(|e| format!("failed to get secret \"{name}\": {e}"))?;
            sources.secrets.insert(name, secret);
        }
        let config_maps: Api<ConfigMap> =
            Api::namespaced(self.runner.client.clone(), &self.namespace);
        for name in refs.config_maps {
            let config_map = config_maps
                .get_opt(&name)
                .await
                .map_err(|e| format!("failed to get configmap \"{name}\": {e}"))?;
            sources.config_maps.insert(name, config_map);
        }
        Ok(sources)
    }

    /// The pod status now.
    fn status(&self) -> PodStatus {
        let init: Vec<ContainerReport> = self.init.iter().map(Slot::report).collect();
        let main: Vec<ContainerReport> = self.main.iter().map(Slot::report).collect();
        let previous = self
            .last_status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        pod_status(&init, &main, &self.start_time, &previous, &now_time())
    }

    /// Writes the status if it changed since the last write.
    async fn write(&mut self, status: PodStatus) -> Write {
        if self.last_status.as_ref() == Some(&status) || Instant::now() < self.write_after {
            return Write::Done;
        }
        match api::patch_status(&self.api, &self.name, &status).await {
            Ok(()) => self.last_status = Some(status),
            Err(error) if api::is_not_found(&error) => return Write::Gone,
            Err(error) => {
                self.report(format!("write status: {error}"));
                self.write_after = Instant::now() + WRITE_RETRY;
            }
        }
        Write::Done
    }

    /// After a graceful deletion's processes ended: the final status (containers that never
    /// started are reported as `ContainerStatusUnknown`), then the delete with grace 0.
    async fn finish_deletion(&mut self) -> bool {
        for slot in self.init.iter_mut().chain(self.main.iter_mut()) {
            if matches!(slot.run, ContainerRun::Waiting { .. }) {
                slot.run = ContainerRun::Terminated {
                    exit_code: 137,
                    reason: "ContainerStatusUnknown".to_string(),
                    message: Some(
                        "The container could not be located when the pod was terminated"
                            .to_string(),
                    ),
                    started_at: None,
                    finished_at: now_time(),
                };
            }
        }
        let processes: Vec<Arc<Process>> = self.slots().filter_map(|s| s.process.clone()).collect();
        for process in &processes {
            process.kill_leftovers();
        }
        self.write_after = Instant::now();
        let status = self.status();
        if let Write::Gone = self.write(status).await {
            return false;
        }
        if let Err(error) = api::delete_now(&self.api, &self.name).await {
            self.report(format!("delete: {error}"));
        }
        true
    }
}
