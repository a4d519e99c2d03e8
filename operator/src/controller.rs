//! The reconciler: the I/O edge around the pure planning, desired-state and state-machine
//! functions. It reads a LoadTest, its reports, its Job and pods; applies the run's objects
//! with server-side apply; writes the status (server-side apply on the status subresource),
//! Events and the result ConfigMap; and cleans up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stampede_crds::LoadTest;
use stampede_crds::spec::CleanupPolicy;
use stampede_crds::status::{LoadTestStatus, Phase};
use stampede_runner::report::{REPORT_KEY, RunnerReport};
use stampede_runner::summary::Summary;

use crate::advance::{self, Notice, Observation};
use crate::desired::{self, Owned, Run};
use crate::faults::run_faults;
use crate::labels::{self, Runs};
use crate::names::Names;
use crate::plan::{RunPlan, plan};
use crate::policy::Policy;
use crate::telemetry::Telemetry;

/// The field manager of everything the operator applies.
pub const FIELD_MANAGER: &str = labels::OPERATOR;

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The Kubernetes API failed.
    #[error("{action}: {source}")]
    Api {
        /// What the operator was doing.
        action: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
    /// The object has no namespace or name.
    #[error("the LoadTest has no {0}")]
    Metadata(&'static str),
}

impl ReconcileError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Api { .. } => "api",
            ReconcileError::Metadata(_) => "metadata",
        }
    }
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ReconcileError {
    let action = action.into();
    move |source| ReconcileError::Api { action, source }
}

/// What every reconcile shares.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Operator policy (caps, default image, start deadline).
    pub policy: Policy,
    /// Metrics.
    pub telemetry: Telemetry,
    /// Event recorder.
    pub recorder: Recorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("policy", &self.policy)
            .field("telemetry", &self.telemetry)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context for `client`.
    pub fn new(client: Client, policy: Policy, telemetry: Telemetry) -> Context {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            policy,
            telemetry,
        }
    }
}

/// Runs the controller until `shutdown` resolves: over LoadTests in each of `namespaces` (every
/// namespace when empty), owning Jobs (a Job's change wakes its LoadTest). A namespaced install
/// has Roles only in its namespaces, so it runs one watch per namespace.
pub async fn run(
    context: Arc<Context>,
    namespaces: &[String],
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let shutdown = shutdown.shared();
    let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().map(|ns| Some(ns.as_str())).collect()
    };
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for scope in scopes {
        let client = context.client.clone();
        let (tests, jobs): (Api<LoadTest>, Api<Job>) = match scope {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            ),
            None => (Api::all(client.clone()), Api::all(client)),
        };
        let owned = watcher::Config::default().labels(&labels::managed_selector());
        let controller = Controller::new(tests, watcher::Config::default()).owns(jobs, owned);
        stores.push(controller.store());
        let telemetry = context.telemetry.clone();
        controllers.push(
            controller
                .graceful_shutdown_on(shutdown.clone())
                .run(reconcile, error_policy, Arc::clone(&context))
                .for_each(move |result| {
                    let telemetry = telemetry.clone();
                    async move {
                        match result {
                            Ok((object, _)) => {
                                tracing::debug!(loadtest = %object.name, namespace = ?object.namespace, "reconciled");
                            }
                            Err(error) => {
                                telemetry.reconcile_error("controller");
                                tracing::warn!(%error, "reconcile failed");
                            }
                        }
                    }
                }),
        );
    }
    let gauges = context.telemetry.clone();
    // Tests by phase, from the controllers' own caches (no extra API calls).
    let phases = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticker.tick().await;
            let mut counts: BTreeMap<String, i64> =
                ALL_PHASES.iter().map(|p| (format!("{p:?}"), 0)).collect();
            for test in stores.iter().flat_map(|store| store.state()) {
                let phase = test
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or_default();
                *counts.entry(format!("{phase:?}")).or_default() += 1;
            }
            let pairs: Vec<(&str, i64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            gauges.set_phases(&pairs);
        }
    });
    futures::future::join_all(controllers).await;
    phases.abort();
}

const ALL_PHASES: [Phase; 9] = [
    Phase::Pending,
    Phase::Invalid,
    Phase::Provisioning,
    Phase::Running,
    Phase::Aborting,
    Phase::Succeeded,
    Phase::Failed,
    Phase::Errored,
    Phase::Aborted,
];

fn error_policy(_test: Arc<LoadTest>, error: &ReconcileError, context: Arc<Context>) -> Action {
    context.telemetry.reconciled(false);
    context.telemetry.reconcile_error(error.kind());
    Action::requeue(Duration::from_secs(2))
}

/// One reconcile of one LoadTest.
pub async fn reconcile(
    test: Arc<LoadTest>,
    context: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let result = reconcile_inner(&test, &context).await;
    if result.is_ok() {
        context.telemetry.reconciled(true);
    }
    result
}

async fn reconcile_inner(cached: &LoadTest, context: &Context) -> Result<Action, ReconcileError> {
    // A new spec starts a run (and aborts the old one): decide that on the object as the API
    // has it now, not on a cache that may not show our own last status write yet.
    let fresh;
    let test = if needs_new_run(cached) {
        let tests: Api<LoadTest> = Api::namespaced(
            context.client.clone(),
            &cached.namespace().unwrap_or_default(),
        );
        match tests
            .get_opt(&cached.name_any())
            .await
            .map_err(api_error("reading the LoadTest"))?
        {
            Some(object) => {
                fresh = object;
                &fresh
            }
            None => return Ok(Action::await_change()),
        }
    } else {
        cached
    };
    let namespace = test
        .namespace()
        .ok_or(ReconcileError::Metadata("namespace"))?;
    let name = test
        .metadata
        .name
        .clone()
        .ok_or(ReconcileError::Metadata("name"))?;
    if test.metadata.deletion_timestamp.is_some() {
        // Everything it owns goes with it (owner references); nothing to do.
        return Ok(Action::await_change());
    }
    let io = Io {
        client: context.client.clone(),
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let status = test.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let is_new_spec = needs_new_run(test);

    if is_new_spec {
        if status.run.is_some() {
            // The spec changed: the old run is aborted (its runners see the new run number and
            // stop; deleting its Job ends any that do not).
            io.delete_run_objects(None).await?;
        }
        let problems = stampede_crds::validate::validate(test);
        let planned = if problems.is_empty() {
            plan(test, &context.policy).map_err(|e| e.to_string())
        } else {
            Err(problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "))
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(message) => {
                let invalid = advance::invalid(test, &status, &message, now);
                io.write_status(&invalid).await?;
                publish(
                    context,
                    test,
                    &Notice {
                        warning: true,
                        reason: "Invalid".into(),
                        note: message,
                    },
                )
                .await;
                tracing::info!(loadtest = %name, %namespace, "invalid spec");
                return Ok(Action::await_change());
            }
        };
        let started = advance::new_run(test, &status, &plan, now);
        io.write_status(&started).await?;
        let run = started.run.unwrap_or(1);
        publish(
            context,
            test,
            &Notice {
                warning: false,
                reason: "Provisioning".into(),
                note: format!(
                    "run {run}: {} runner(s), segments {}",
                    plan.runners,
                    plan.segments.join(" ")
                ),
            },
        )
        .await;
        tracing::info!(loadtest = %name, %namespace, run, runners = plan.runners, "new run");
        io.apply_run_objects(test, &plan, run).await?;
        return Ok(Action::requeue(Duration::from_secs(1)));
    }

    let phase = status.phase.unwrap_or_default();
    if phase.is_finished() {
        return finished(test, &status, &io, now).await;
    }
    let run = status.run.unwrap_or(1);
    let plan = match plan(test, &context.policy) {
        Ok(plan) => plan,
        Err(error) => {
            let invalid = advance::invalid(test, &status, &error.to_string(), now);
            io.write_status(&invalid).await?;
            return Ok(Action::await_change());
        }
    };
    if phase == Phase::Provisioning {
        // Idempotent: a restarted operator completes whatever an earlier one began.
        io.apply_run_objects(test, &plan, run).await?;
    }
    let names = Names::new(&name);
    let reports = io.reports(&names, run, plan.runners).await?;
    let job = io.get_opt::<Job>(&names.job(run)).await?;
    let pods = io.run_pods(run).await?;
    let observation = Observation {
        now,
        reports,
        faults: run_faults(job.as_ref(), &pods),
        start_deadline: Duration::from_secs(context.policy.start_deadline_seconds),
    };
    let step = advance::advance(test, &status, &observation);
    if step.status != status {
        io.write_status(&step.status).await?;
    }
    if let Some(notice) = &step.notice {
        publish(context, test, notice).await;
    }
    if let Some(summary) = &step.finished {
        tracing::info!(loadtest = %name, %namespace, run, phase = ?step.status.phase,
            message = step.status.message.as_deref().unwrap_or_default(), "run finished");
        io.write_result(test, summary).await?;
        cleanup(test, &step.status, &io).await?;
        return finished(test, &step.status, &io, now).await;
    }
    Ok(step
        .requeue
        .map_or_else(Action::await_change, Action::requeue))
}

/// Whether the LoadTest's spec has no run yet: never reconciled, or edited since.
fn needs_new_run(test: &LoadTest) -> bool {
    let status = test.status.as_ref();
    status.and_then(|s| s.phase).is_none()
        || status.and_then(|s| s.observed_generation) != test.metadata.generation
}

/// A finished run: clean-up is done; delete the LoadTest when its TTL is over.
async fn finished(
    test: &LoadTest,
    status: &LoadTestStatus,
    io: &Io,
    now: Timestamp,
) -> Result<Action, ReconcileError> {
    let (Some(ttl), Some(done)) = (
        test.spec.ttl_seconds_after_finished,
        status.completion_time.as_ref(),
    ) else {
        return Ok(Action::await_change());
    };
    let expires = done.0 + SignedDuration::from_secs(ttl.max(0));
    if now >= expires {
        tracing::info!(loadtest = %io.name, namespace = %io.namespace, ttl, "deleting after ttlSecondsAfterFinished");
        let tests: Api<LoadTest> = Api::namespaced(io.client.clone(), &io.namespace);
        match tests.delete(&io.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => return Err(api_error("deleting the LoadTest after its TTL")(source)),
        }
        return Ok(Action::await_change());
    }
    let left = Duration::try_from(expires.duration_since(now)).unwrap_or(Duration::ZERO);
    Ok(Action::requeue(left + Duration::from_secs(1)))
}

async fn cleanup(test: &LoadTest, status: &LoadTestStatus, io: &Io) -> Result<(), ReconcileError> {
    let policy = test.spec.cleanup.unwrap_or_default();
    let passed = status.phase == Some(Phase::Succeeded);
    let delete = match policy {
        CleanupPolicy::Runners => true,
        CleanupPolicy::OnSuccess => passed,
        CleanupPolicy::None => false,
    };
    if delete {
        io.delete_run_objects(None).await?;
    }
    Ok(())
}

async fn publish(context: &Context, test: &LoadTest, notice: &Notice) {
    let event = Event {
        type_: if notice.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: notice.reason.clone(),
        note: Some(notice.note.clone()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = context
        .recorder
        .publish(&event, &test.object_ref(&()))
        .await
    {
        tracing::warn!(%error, reason = %notice.reason, "cannot record an Event");
    }
}

/// API calls for one LoadTest.
#[derive(Clone)]
struct Io {
    client: Client,
    namespace: String,
    name: String,
}

impl Io {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn write_status(&self, status: &LoadTestStatus) -> Result<(), ReconcileError> {
        #[derive(Debug, Serialize)]
        #[serde(rename_all = "camelCase")]
        struct StatusPatch<'a> {
            api_version: &'a str,
            kind: &'a str,
            status: &'a LoadTestStatus,
        }
        let tests: Api<LoadTest> = self.api();
        let patch = StatusPatch {
            api_version: &LoadTest::api_version(&()),
            kind: &LoadTest::kind(&()),
            status,
        };
        tests
            .patch_status(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(api_error("writing the LoadTest status"))?;
        Ok(())
    }

    async fn apply<K>(&self, object: &K) -> Result<(), ReconcileError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Serialize
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        let name = object.meta().name.clone().unwrap_or_default();
        self.api::<K>()
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map_err(api_error(format!("applying {} {name}", K::kind(&()))))?;
        Ok(())
    }

    async fn get_opt<K>(&self, name: &str) -> Result<Option<K>, ReconcileError>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + DeserializeOwned
            + Clone
            + std::fmt::Debug,
    {
        self.api::<K>()
            .get_opt(name)
            .await
            .map_err(api_error(format!("reading {} {name}", K::kind(&()))))
    }

    async fn apply_run_objects(
        &self,
        test: &LoadTest,
        plan: &RunPlan,
        run: i64,
    ) -> Result<(), ReconcileError> {
        let run = Run { test, plan, run };
        for object in desired::run_objects(run).into_owned(true) {
            match object {
                Owned::ConfigMap(o) => self.apply(&o).await?,
                Owned::ServiceAccount(o) => self.apply(&o).await?,
                Owned::Role(o) => self.apply(&o).await?,
                Owned::RoleBinding(o) => self.apply(&o).await?,
                Owned::Job(o) => self.apply(&o).await?,
            }
        }
        Ok(())
    }

    fn selector(&self, run: Option<i64>) -> String {
        labels::runs_selector(&self.name, run.map_or(Runs::All, Runs::Only))
    }

    async fn reports(
        &self,
        names: &Names,
        run: i64,
        runners: u64,
    ) -> Result<Vec<Option<RunnerReport>>, ReconcileError> {
        let maps = self
            .api::<ConfigMap>()
            .list(&ListParams::default().labels(&self.selector(Some(run))))
            .await
            .map_err(api_error("listing the runners' reports"))?;
        let by_name: BTreeMap<String, ConfigMap> =
            maps.items.into_iter().map(|m| (m.name_any(), m)).collect();
        Ok((0..runners)
            .map(|index| {
                let text = by_name
                    .get(&names.report(run, index))
                    .and_then(|m| m.data.as_ref())
                    .and_then(|d| d.get(REPORT_KEY))?;
                match RunnerReport::from_json(text) {
                    Ok(report) if report.run == run => Some(report),
                    Ok(_) => None,
                    Err(error) => {
                        tracing::warn!(loadtest = %self.name, runner = index, %error, "unreadable report");
                        None
                    }
                }
            })
            .collect())
    }

    async fn run_pods(&self, run: i64) -> Result<Vec<Pod>, ReconcileError> {
        Ok(self
            .api::<Pod>()
            .list(&ListParams::default().labels(&self.selector(Some(run))))
            .await
            .map_err(api_error("listing the runner pods"))?
            .items)
    }

    /// Deletes the runner Jobs (with their pods) and report ConfigMaps of every run (`None`)
    /// or of one run. The result ConfigMap stays.
    async fn delete_run_objects(&self, run: Option<i64>) -> Result<(), ReconcileError> {
        let params = ListParams::default().labels(&self.selector(run));
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        let jobs: Api<Job> = self.api();
        for job in jobs
            .list(&params)
            .await
            .map_err(api_error("listing runner Jobs"))?
            .items
        {
            delete_quietly(&jobs, &job.name_any(), &background).await?;
        }
        let maps: Api<ConfigMap> = self.api();
        let result = Names::new(&self.name).result();
        for map in maps
            .list(&params)
            .await
            .map_err(api_error("listing report ConfigMaps"))?
            .items
        {
            let name = map.name_any();
            if name != result {
                delete_quietly(&maps, &name, &background).await?;
            }
        }
        Ok(())
    }

    /// The full merged result, kept until the LoadTest goes.
    async fn write_result(&self, test: &LoadTest, summary: &Summary) -> Result<(), ReconcileError> {
        self.apply(&desired::result_config_map(test, summary)).await
    }
}

async fn delete_quietly<K>(
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + std::fmt::Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(api_error(format!("deleting {} {name}", K::kind(&())))(
            source,
        )),
    }
}
