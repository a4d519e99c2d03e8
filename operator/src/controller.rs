//! The controller: one watch of LoadTests (and of the Jobs they own) per namespace, and the
//! reconcile of one LoadTest — observe ([`crate::io`]), decide ([`crate::decide`], pure),
//! execute ([`crate::io`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use stampede_crds::LoadTest;
use stampede_crds::status::{LoadTestStatus, Phase};

use crate::dashboard::Dashboards;
use crate::decide;
use crate::io::Io;
use crate::labels;
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
    /// An object the run needs exists and is not this LoadTest's: it is left untouched.
    #[error(
        "{kind} {name} already exists and is not this LoadTest's (it has no owner reference to \
         it); Stampede never changes objects it did not create: rename the LoadTest, or delete \
         or rename that {kind} if it is a leftover"
    )]
    Foreign {
        /// The object's kind.
        kind: String,
        /// Its name.
        name: String,
    },
}

impl ReconcileError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ReconcileError::Api { .. } => "api",
            ReconcileError::Metadata(_) => "metadata",
            ReconcileError::Foreign { .. } => "foreign_object",
        }
    }
}

/// Wraps an API error with what the operator was doing.
pub(crate) fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ReconcileError {
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
    /// What the fleet dashboard shows.
    pub dashboards: Dashboards,
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
    pub fn new(
        client: Client,
        policy: Policy,
        telemetry: Telemetry,
        dashboards: Dashboards,
    ) -> Context {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            policy,
            telemetry,
            dashboards,
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

/// The longest one LoadTest's decision may take (compiling and planning it are bounded by the
/// validation limits; this is the backstop if they are not).
const DECIDE_DEADLINE: Duration = Duration::from_secs(10);

/// [`decide::decide`] off the reconcile workers with [`DECIDE_DEADLINE`], so one LoadTest that
/// panics the decision or spins in it ends Errored with the reason instead of killing the
/// operator or holding a reconcile worker for every other LoadTest.
async fn decide_off_worker(
    test: LoadTest,
    status: LoadTestStatus,
    observation: decide::Observation,
    context: &Context,
) -> decide::Decision {
    let now = observation.now;
    let policy = context.policy.clone();
    let (test_for_task, status_for_task) = (test.clone(), status.clone());
    let decided = bounded(DECIDE_DEADLINE, &context.telemetry, move || {
        decide::decide(&test_for_task, &status_for_task, &observation, &policy)
    })
    .await;
    match decided {
        Ok(decision) => decision,
        Err(why) => {
            context.telemetry.reconcile_error("decide");
            tracing::error!(loadtest = test.metadata.name.as_deref().unwrap_or_default(),
                namespace = test.metadata.namespace.as_deref().unwrap_or_default(),
                %why, "the decision failed; the LoadTest ends Errored");
            decide::failed(&test, &status, &why, now)
        }
    }
}

/// Runs `work` on a blocking thread and waits at most `deadline` for it; a panic or an overrun
/// comes back as the reason. A thread that overran keeps running until it returns (it holds no
/// lock and its result is dropped); until then `telemetry` counts it and /readyz says 503, so a
/// stuck controller shows.
async fn bounded<T: Send + 'static>(
    deadline: Duration,
    telemetry: &Telemetry,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let mut task = tokio::task::spawn_blocking(work);
    match tokio::time::timeout(deadline, &mut task).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(failure)) => Err(match failure.try_into_panic() {
            Ok(payload) => format!("it panicked: {}", panic_message(payload.as_ref())),
            Err(failure) => format!("its task failed: {failure}"),
        }),
        Err(_) => {
            telemetry.overrun_started();
            let telemetry = telemetry.clone();
            tokio::spawn(async move {
                let _ = task.await;
                telemetry.overrun_ended();
            });
            Err(format!("deciding took over {}s", deadline.as_secs_f64()))
        }
    }
}

/// The text of a panic's payload (`panic!("...")` carries a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
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

/// Observe, decide, execute.
async fn reconcile_inner(cached: &LoadTest, context: &Context) -> Result<Action, ReconcileError> {
    let io = Io::new(context.client.clone(), cached)?;
    let Some(test) = io.current(cached).await? else {
        context.dashboards.forget(
            cached.metadata.namespace.as_deref().unwrap_or_default(),
            cached.metadata.name.as_deref().unwrap_or_default(),
        );
        return Ok(Action::await_change());
    };
    let status = test.status.clone().unwrap_or_default();
    let observation = io.observe(decide::watched_run(&test, &status)).await?;
    let now = observation.now;
    let decision = decide_off_worker(test.clone(), status.clone(), observation, context).await;
    match io.execute(&test, &decision, &context.recorder).await {
        Ok(()) => {
            if let Some(view) = &decision.view {
                context.dashboards.record(
                    test.metadata.namespace.as_deref().unwrap_or_default(),
                    test.metadata.name.as_deref().unwrap_or_default(),
                    view,
                );
            }
            Ok(decision
                .requeue
                .map_or_else(Action::await_change, Action::requeue))
        }
        // A name the run needs is someone else's object: the run ends, the object stays as is.
        Err(error @ ReconcileError::Foreign { .. }) => {
            let written = decision.status.unwrap_or(status);
            let blocked = decide::blocked(&test, &written, &error.to_string(), now);
            io.execute(&test, &blocked, &context.recorder).await?;
            Ok(Action::await_change())
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_work_returns_its_value() {
        let telemetry = Telemetry::new();
        assert_eq!(
            bounded(Duration::from_secs(10), &telemetry, || 7).await,
            Ok(7)
        );
    }

    #[tokio::test]
    async fn a_panic_comes_back_as_the_reason() {
        let telemetry = Telemetry::new();
        let owned = bounded(Duration::from_secs(10), &telemetry, || -> u8 {
            panic!("{}", "Formatting argument out of range".to_string())
        });
        assert_eq!(
            owned.await,
            Err("it panicked: Formatting argument out of range".to_string())
        );
        let literal = bounded(Duration::from_secs(10), &telemetry, || -> u8 {
            panic!("overflow")
        });
        assert_eq!(literal.await, Err("it panicked: overflow".to_string()));
    }

    #[tokio::test]
    async fn an_overrun_comes_back_as_the_reason_frees_the_caller_and_shows_until_it_returns() {
        let telemetry = Telemetry::new();
        telemetry.set_ready(true);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (returned, has_returned) = tokio::sync::oneshot::channel::<()>();
        let spinning = bounded(Duration::from_millis(50), &telemetry, move || {
            let released = held.recv().is_ok();
            let _ = returned.send(());
            released
        });
        assert_eq!(spinning.await, Err("deciding took over 0.05s".to_string()));
        // The thread still waits: the operator is not ready while it does.
        assert!(!telemetry.is_ready());
        let _ = release.send(());
        has_returned
            .await
            .expect("the decision returns once released");
        // The watcher task notices the return right after; await that condition.
        tokio::time::timeout(Duration::from_secs(10), async {
            while !telemetry.is_ready() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("ready again once the overrunning decision returned");
    }
}
