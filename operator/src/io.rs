//! The reconciler's I/O for one LoadTest: what it observes (the LoadTest as the API has it, the
//! current run's reports, Job and pods) and how it carries out a [`Decision`] (status by
//! server-side apply on the status subresource, owned objects created — and applied only over
//! an existing one this LoadTest owns — Events, deletions of owned objects only). No decisions
//! are made here.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use stampede_crds::LoadTest;
use stampede_crds::status::LoadTestStatus;
use stampede_runner::cluster::{REPORT_KEY, RunnerReport};

use crate::advance::Notice;
use crate::controller::{FIELD_MANAGER, ReconcileError, api_error};
use crate::decide::{self, Decision, Deletion, Observation, WatchedRun};
use crate::desired::Owned;
use crate::labels::{self, Runs};
use crate::names::Names;

/// API calls for one LoadTest.
#[derive(Clone)]
pub struct Io {
    client: Client,
    namespace: String,
    name: String,
    /// The LoadTest's uid: what our owner references carry.
    uid: Option<String>,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Io {
    /// The I/O for `test` (which must have a namespace and a name).
    pub fn new(client: Client, test: &LoadTest) -> Result<Io, ReconcileError> {
        Ok(Io {
            client,
            namespace: test
                .namespace()
                .ok_or(ReconcileError::Metadata("namespace"))?,
            name: test
                .metadata
                .name
                .clone()
                .ok_or(ReconcileError::Metadata("name"))?,
            uid: test.metadata.uid.clone(),
        })
    }

    /// Whether `object` is this LoadTest's: it carries an owner reference to it. Objects that
    /// only look like ours (our labels, our names) are someone else's.
    fn owns<K: Resource>(&self, object: &K) -> bool {
        let Some(uid) = self.uid.as_deref() else {
            return false;
        };
        object
            .meta()
            .owner_references
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|reference| reference.uid == uid && reference.kind == "LoadTest")
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The LoadTest to decide on: the cached one, except when its spec has no run yet — a new
    /// spec starts a run (and aborts the old one), so that is decided on the object as the API
    /// has it now, not on a cache that may not show our own last status write yet. None when it
    /// is gone.
    pub async fn current(&self, cached: &LoadTest) -> Result<Option<LoadTest>, ReconcileError> {
        let never_reconciled = LoadTestStatus::default();
        let status = cached.status.as_ref().unwrap_or(&never_reconciled);
        if !decide::needs_new_run(cached, status) {
            return Ok(Some(cached.clone()));
        }
        self.api::<LoadTest>()
            .get_opt(&self.name)
            .await
            .map_err(api_error("reading the LoadTest"))
    }

    /// What [`decide::decide`] needs to see: the watched run's reports, Job and pods.
    pub async fn observe(
        &self,
        watched: Option<WatchedRun>,
    ) -> Result<Observation, ReconcileError> {
        let mut observation = Observation::nothing(k8s_openapi::jiff::Timestamp::now());
        if let Some(WatchedRun { run, runners }) = watched {
            observation.reports = self.reports(run, runners).await?;
            observation.job = self
                .get_opt::<Job>(&Names::new(&self.name).job(run))
                .await?;
            observation.pods = self.run_pods(run).await?;
        }
        Ok(observation)
    }

    /// Carries out `decision` in its order: result, status, objects, Events, deletions.
    pub async fn execute(
        &self,
        test: &LoadTest,
        decision: &Decision,
        recorder: &Recorder,
    ) -> Result<(), ReconcileError> {
        if let Some(result) = &decision.result {
            self.apply(result.as_ref()).await?;
        }
        if let Some(status) = &decision.status {
            self.write_status(status).await?;
        }
        for object in &decision.apply {
            match object {
                Owned::ConfigMap(o) => self.apply(o).await?,
                Owned::ServiceAccount(o) => self.apply(o).await?,
                Owned::Role(o) => self.apply(o).await?,
                Owned::RoleBinding(o) => self.apply(o).await?,
                Owned::Job(o) => self.apply(o.as_ref()).await?,
            }
        }
        for notice in &decision.events {
            self.publish(test, notice, recorder).await;
        }
        for deletion in &decision.delete {
            match deletion {
                Deletion::RunObjects { keep } => self.delete_run_objects(*keep).await?,
                Deletion::LoadTest => self.delete_loadtest().await?,
            }
        }
        Ok(())
    }

    async fn write_status(&self, status: &LoadTestStatus) -> Result<(), ReconcileError> {
        #[derive(Debug, Serialize)]
        #[serde(rename_all = "camelCase")]
        struct StatusPatch<'a> {
            api_version: &'a str,
            kind: &'a str,
            status: &'a LoadTestStatus,
        }
        let patch = StatusPatch {
            api_version: &LoadTest::api_version(&()),
            kind: &LoadTest::kind(&()),
            status,
        };
        self.api::<LoadTest>()
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
        let api = self.api::<K>();
        // Created, never applied over something that exists: an object of the same name that
        // is not this LoadTest's (a takeover by name, or a leftover) is never modified.
        let created = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PostParams::default()
        };
        match api.create(&created, object).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(source) => {
                return Err(api_error(format!("creating {} {name}", K::kind(&())))(
                    source,
                ));
            }
        }
        let existing = api
            .get(&name)
            .await
            .map_err(api_error(format!("reading {} {name}", K::kind(&()))))?;
        if !self.owns(&existing) {
            return Err(ReconcileError::Foreign {
                kind: K::kind(&()).to_string(),
                name,
            });
        }
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(api_error(format!("applying {} {name}", K::kind(&()))))?;
        Ok(())
    }

    async fn publish(&self, test: &LoadTest, notice: &Notice, recorder: &Recorder) {
        tracing::info!(loadtest = %self.name, namespace = %self.namespace,
            reason = %notice.reason, note = %notice.note, "event");
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
        if let Err(error) = recorder.publish(&event, &test.object_ref(&())).await {
            tracing::warn!(%error, reason = %notice.reason, "cannot record an Event");
        }
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

    async fn reports(
        &self,
        run: i64,
        runners: u64,
    ) -> Result<Vec<Option<RunnerReport>>, ReconcileError> {
        let names = Names::new(&self.name);
        let selector = labels::runs_selector(&self.name, Runs::Only(run));
        let maps = self
            .api::<ConfigMap>()
            .list(&ListParams::default().labels(&selector))
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
        let selector = labels::runs_selector(&self.name, Runs::Only(run));
        Ok(self
            .api::<Pod>()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(api_error("listing the runner pods"))?
            .items)
    }

    /// Deletes the runner Jobs (with their pods) and report ConfigMaps of every run but `keep`.
    /// The result ConfigMap stays.
    async fn delete_run_objects(&self, keep: Option<i64>) -> Result<(), ReconcileError> {
        let runs = keep.map_or(Runs::All, Runs::AllBut);
        let params = ListParams::default().labels(&labels::runs_selector(&self.name, runs));
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
            .into_iter()
            .filter(|job| self.owns(job))
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
            .into_iter()
            .filter(|map| self.owns(map))
        {
            let name = map.name_any();
            if name != result {
                delete_quietly(&maps, &name, &background).await?;
            }
        }
        Ok(())
    }

    async fn delete_loadtest(&self) -> Result<(), ReconcileError> {
        tracing::info!(loadtest = %self.name, namespace = %self.namespace,
            "deleting after ttlSecondsAfterFinished");
        let tests: Api<LoadTest> = self.api();
        delete_quietly(&tests, &self.name, &DeleteParams::background()).await
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
