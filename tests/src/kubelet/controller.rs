//! The Job controller's I/O: watches Jobs and pods in all namespaces, keeps a record of each
//! Job's pods, runs the pure plan of `job.rs` for every Job on each change (and every
//! [`RESYNC`] for deadlines), and carries it out: create pods, delete pods, write the status.
//!
//! Also a stand-in for the garbage collector's share: pods whose controlling Job is gone (or
//! being deleted) are deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, ResourceExt};

use super::api::{self, Reporter};
use super::job::{self, JobParams, PodState, PodView};
use super::pod::{completion_index, owner_job_uid, pod_for_job, random_suffix};

/// How often every Job is looked at without a change (deadlines, pods never seen).
pub const RESYNC: Duration = Duration::from_millis(500);

/// A pod created but never seen in the watch after this long counts as gone.
const NOT_SEEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Events taken in one go before a sync pass.
const MAX_BATCH: usize = 1_000;

/// One pod of a Job, as the controller remembers it (also after the pod is gone).
#[derive(Debug, Clone)]
struct Tracked {
    uid: String,
    name: String,
    index: Option<i32>,
    state: PodState,
    /// Seen in the pod watch at least once.
    seen: bool,
    /// When the controller created it (or first saw it).
    created: Instant,
}

/// What the controller remembers of one Job.
#[derive(Debug, Default)]
struct Tracker {
    /// In creation order.
    pods: Vec<Tracked>,
    /// The last status written, which may be newer than the watched Job.
    last_written: Option<JobStatus>,
}

/// How a pod object counts, from its phase and deletion timestamp.
fn observed_state(pod: &Pod) -> PodState {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    match phase {
        Some("Succeeded") => PodState::Succeeded,
        Some("Failed") => PodState::Failed,
        _ if pod.metadata.deletion_timestamp.is_some() => PodState::Terminating,
        _ => {
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            PodState::Active { ready }
        }
    }
}

/// A remembered state updated with an observation: terminal outcomes are final, and a pod
/// counted as terminating (failed) stays failed whatever it ends with.
fn merge_state(previous: PodState, observed: PodState) -> PodState {
    match (previous, observed) {
        (PodState::Succeeded | PodState::Failed, _) => previous,
        (PodState::Terminating, PodState::Succeeded | PodState::Failed) => PodState::Failed,
        (PodState::Terminating, _) => PodState::Terminating,
        (PodState::Active { .. }, observed) => observed,
    }
}

impl Tracker {
    /// Takes in the Job's pods as the watch shows them now.
    fn observe(&mut self, pods: &[&Pod], now: Instant) {
        let mut present = HashSet::new();
        for pod in pods {
            let Some(uid) = pod.metadata.uid.as_deref() else {
                continue;
            };
            present.insert(uid);
            let observed = observed_state(pod);
            match self.pods.iter_mut().find(|t| t.uid == uid) {
                Some(tracked) => {
                    tracked.seen = true;
                    tracked.state = merge_state(tracked.state, observed);
                }
                None => self.pods.push(Tracked {
                    uid: uid.to_string(),
                    name: pod.name_any(),
                    index: completion_index(pod),
                    state: observed,
                    seen: true,
                    created: now,
                }),
            }
        }
        // A pod gone before it reached a terminal phase counts as failed.
        for tracked in &mut self.pods {
            let gone = !present.contains(tracked.uid.as_str())
                && (tracked.seen || now.duration_since(tracked.created) > NOT_SEEN_TIMEOUT);
            if gone
                && matches!(
                    tracked.state,
                    PodState::Active { .. } | PodState::Terminating
                )
            {
                tracked.state = PodState::Failed;
            }
        }
    }

    fn views(&self) -> Vec<PodView> {
        self.pods
            .iter()
            .map(|t| PodView {
                name: t.name.clone(),
                index: t.index,
                state: t.state,
            })
            .collect()
    }
}

/// The controller's state across passes.
struct Controller {
    client: Client,
    /// By Job uid.
    trackers: HashMap<String, Tracker>,
    /// Pods deleted because their Job is gone (deleted once each).
    collected: HashSet<String>,
    reporter: Reporter,
}

/// Notes one watch event: readiness after the first complete list, errors reported.
fn note<K>(ready: &mut bool, event: Result<watcher::Event<K>, watcher::Error>, what: &str) {
    match event {
        Ok(watcher::Event::InitDone) => *ready = true,
        Ok(_) => {}
        Err(error) => eprintln!("kubelet: {what} watch: {error}"),
    }
}

/// Runs the Job controller until the task is aborted.
pub async fn run(client: Client) {
    let (jobs, job_writer) = reflector::store::<Job>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let job_watch = watcher(Api::<Job>::all(client.clone()), watcher::Config::default());
    let pod_watch = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default());
    let mut job_events = reflector(job_writer, job_watch).default_backoff().boxed();
    let mut pod_events = reflector(pod_writer, pod_watch).default_backoff().boxed();
    let mut controller = Controller {
        client,
        trackers: HashMap::new(),
        collected: HashSet::new(),
        reporter: Reporter::default(),
    };
    let (mut jobs_ready, mut pods_ready) = (false, false);
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            Some(event) = job_events.next() => note(&mut jobs_ready, event, "job"),
            Some(event) = pod_events.next() => note(&mut pods_ready, event, "pod"),
            _ = tick.tick() => {}
        }
        // Take in what else is already there (the reflectors update their stores as they
        // are polled), so a burst of events costs one pass.
        for _ in 0..MAX_BATCH {
            match job_events.next().now_or_never() {
                Some(Some(event)) => note(&mut jobs_ready, event, "job"),
                _ => break,
            }
        }
        for _ in 0..MAX_BATCH {
            match pod_events.next().now_or_never() {
                Some(Some(event)) => note(&mut pods_ready, event, "pod"),
                _ => break,
            }
        }
        if jobs_ready && pods_ready {
            controller.sync(&jobs.state(), &pods.state()).await;
        }
    }
}

impl Controller {
    /// One pass over every Job.
    async fn sync(&mut self, jobs: &[Arc<Job>], pods: &[Arc<Pod>]) {
        let now = Instant::now();
        let mut by_owner: HashMap<&str, Vec<&Pod>> = HashMap::new();
        for pod in pods {
            if let Some(owner) = owner_job_uid(pod) {
                by_owner.entry(owner).or_default().push(pod);
            }
        }
        let mut live: HashSet<String> = HashSet::new();
        for job in jobs {
            let Some(uid) = job.metadata.uid.as_deref() else {
                continue;
            };
            if job.metadata.deletion_timestamp.is_some() {
                continue;
            }
            live.insert(uid.to_string());
            let owned = by_owner.get(uid).map(Vec::as_slice).unwrap_or_default();
            self.sync_job(job, uid, owned, now).await;
        }
        self.trackers.retain(|uid, _| live.contains(uid));

        // Garbage collection stand-in: delete the pods of Jobs that are gone.
        for (owner, owned) in &by_owner {
            if live.contains(*owner) {
                continue;
            }
            for pod in owned {
                let (Some(uid), Some(namespace)) = (&pod.metadata.uid, &pod.metadata.namespace)
                else {
                    continue;
                };
                if pod.metadata.deletion_timestamp.is_some() || !self.collected.insert(uid.clone())
                {
                    continue;
                }
                let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let name = pod.name_any();
                if let Err(error) = api.delete(&name, &DeleteParams::background()).await
                    && !api::is_not_found(&error)
                {
                    self.reporter
                        .report(format!("delete orphaned pod {namespace}/{name}: {error}"));
                }
            }
        }
    }

    /// Plans and carries out one Job.
    async fn sync_job(&mut self, job: &Job, uid: &str, owned: &[&Pod], now: Instant) {
        let (Some(name), Some(namespace)) = (&job.metadata.name, &job.metadata.namespace) else {
            return;
        };
        let Some(spec) = &job.spec else {
            return;
        };
        if spec.suspend == Some(true) {
            return;
        }
        let Some(params) = JobParams::from_spec(spec) else {
            return;
        };
        let tracker = self.trackers.entry(uid.to_string()).or_default();
        tracker.observe(owned, now);
        let watched = job.status.clone().unwrap_or_default();
        let previous = tracker
            .last_written
            .clone()
            .unwrap_or_else(|| watched.clone());
        if job::is_finished(&previous) {
            return;
        }
        let plan = job::plan(&params, &previous, &tracker.views(), Timestamp::now());

        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        for index in &plan.create {
            let pod = match pod_for_job(job, *index, &random_suffix()) {
                Ok(pod) => pod,
                Err(error) => {
                    self.reporter
                        .report(format!("job {namespace}/{name}: {error}"));
                    break;
                }
            };
            match pods.create(&PostParams::default(), &pod).await {
                Ok(created) => {
                    if let Some(pod_uid) = created.metadata.uid.clone() {
                        tracker.pods.push(Tracked {
                            uid: pod_uid,
                            name: created.name_any(),
                            index: *index,
                            state: PodState::Active { ready: false },
                            seen: false,
                            created: now,
                        });
                    }
                }
                // A name clash: the next pass tries another suffix.
                Err(error) if api::is_code(&error, 409) => {}
                Err(error) => self
                    .reporter
                    .report(format!("create pod for job {namespace}/{name}: {error}")),
            }
        }
        for pod_name in &plan.delete {
            // Counted as failed and terminating from now on, as the plan assumed.
            for tracked in tracker.pods.iter_mut().filter(|t| &t.name == pod_name) {
                tracked.state = merge_state(tracked.state, PodState::Terminating);
            }
            if let Err(error) = pods.delete(pod_name, &DeleteParams::default()).await
                && !api::is_not_found(&error)
            {
                self.reporter
                    .report(format!("delete pod {namespace}/{pod_name}: {error}"));
            }
        }

        let changed = match &tracker.last_written {
            Some(last) => *last != plan.status,
            None => watched != plan.status,
        };
        if changed {
            let jobs: Api<Job> = Api::namespaced(self.client.clone(), namespace);
            match api::patch_status(&jobs, name, &plan.status).await {
                Ok(()) => tracker.last_written = Some(plan.status),
                Err(error) if api::is_not_found(&error) => {}
                Err(error) => self
                    .reporter
                    .report(format!("write status of job {namespace}/{name}: {error}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(uid: &str, phase: &str, ready: bool, deleting: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("p-{uid}")),
                uid: Some(uid.into()),
                deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
                annotations: Some(
                    [(
                        "batch.kubernetes.io/job-completion-index".to_string(),
                        "2".to_string(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn pod_objects_count_like_the_job_controller() {
        let active = |ready| PodState::Active { ready };
        assert_eq!(
            observed_state(&pod("a", "Pending", false, false)),
            active(false)
        );
        assert_eq!(
            observed_state(&pod("a", "Running", true, false)),
            active(true)
        );
        assert_eq!(
            observed_state(&pod("a", "Running", true, true)),
            PodState::Terminating
        );
        assert_eq!(
            observed_state(&pod("a", "Succeeded", false, true)),
            PodState::Succeeded
        );
        assert_eq!(
            observed_state(&pod("a", "Failed", false, false)),
            PodState::Failed
        );
        assert_eq!(
            merge_state(PodState::Terminating, PodState::Succeeded),
            PodState::Failed
        );
        assert_eq!(
            merge_state(PodState::Terminating, active(true)),
            PodState::Terminating
        );
        assert_eq!(
            merge_state(PodState::Succeeded, PodState::Failed),
            PodState::Succeeded
        );
        assert_eq!(merge_state(active(false), active(true)), active(true));
    }

    #[test]
    fn tracker_remembers_pods_after_they_are_gone() {
        let mut tracker = Tracker::default();
        let t0 = Instant::now();
        let done = pod("a", "Succeeded", false, false);
        let running = pod("b", "Running", true, false);
        tracker.observe(&[&done, &running], t0);
        let views = tracker.views();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].index, Some(2));
        assert_eq!(views[0].name, "p-a");
        // Both disappear: the succeeded one stays succeeded, the running one counts as failed.
        tracker.observe(&[], t0);
        let states: Vec<PodState> = tracker.views().iter().map(|v| v.state).collect();
        assert_eq!(states, [PodState::Succeeded, PodState::Failed]);
    }

    #[test]
    fn created_pods_count_as_active_until_the_watch_shows_them() {
        let mut tracker = Tracker::default();
        let t0 = Instant::now();
        tracker.pods.push(Tracked {
            uid: "new".into(),
            name: "p-new".into(),
            index: None,
            state: PodState::Active { ready: false },
            seen: false,
            created: t0,
        });
        tracker.observe(&[], t0 + Duration::from_secs(1));
        assert_eq!(tracker.views()[0].state, PodState::Active { ready: false });
        tracker.observe(&[], t0 + NOT_SEEN_TIMEOUT + Duration::from_secs(1));
        assert_eq!(tracker.views()[0].state, PodState::Failed);
    }
}
