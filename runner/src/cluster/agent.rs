//! `stampede agent`: the runner pod's entrypoint. Reads its LoadTest, index and runner count,
//! prepares its execution segment, reports Ready, starts at the operator's `startTime`, writes
//! cumulative reports every few seconds and a final one, and stops gracefully on an abort.
//!
//! The exit code is about the runner's health (0 unless it could not run, 2 outside a runner
//! pod); the verdict is the operator's, made on the whole fleet's merged reports.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use stampede_crds::LoadTest;
use stampede_crds::spec::DataFormat;
use stampede_crds::status::Phase;

use super::report::{
    REPORT_EVERY_SECONDS, REPORT_KEY, RunnerReport, RunnerState, downsample, series_width,
};
use super::sealed::{self, RunId, SealedSetup, SetupKey};
use crate::engine::progress::ProgressMode;
use crate::engine::{LiveView, PreparedRun, RunError, RunOptions, build_runtime};
use crate::exit::Exit;
use crate::http::TargetPolicy;
use crate::http::target_policy::{self, TargetRule};
use crate::schedule::ExecutionSegment;

/// The environment the operator's Job gives every runner pod.
pub mod env {
    /// The LoadTest's name.
    pub const LOADTEST: &str = "STAMPEDE_LOADTEST";
    /// Its namespace.
    pub const NAMESPACE: &str = "STAMPEDE_NAMESPACE";
    /// The run number (`status.run`) the Job belongs to.
    pub const RUN: &str = "STAMPEDE_RUN";
    /// The number of runners.
    pub const RUNNERS: &str = "STAMPEDE_RUNNERS";
    /// The report ConfigMaps' common prefix; runner i writes `<prefix><i>`.
    pub const REPORTS: &str = "STAMPEDE_REPORTS";
    /// This runner's index (set by Kubernetes for Indexed Jobs).
    pub const INDEX: &str = "JOB_COMPLETION_INDEX";
    /// How long to wait for the start signal before giving up (seconds).
    pub const START_TIMEOUT: &str = "STAMPEDE_START_TIMEOUT";
    /// The operator's allowed targets (comma-separated hosts, `*.domains`, addresses, ranges).
    pub const ALLOWED_TARGETS: &str = "STAMPEDE_ALLOWED_TARGETS";
    /// The operator's denied targets (same form).
    pub const DENIED_TARGETS: &str = "STAMPEDE_DENIED_TARGETS";
    /// The API server's service address, set by Kubernetes in every pod: always denied.
    pub const API_SERVER_HOST: &str = "KUBERNETES_SERVICE_HOST";
}

/// How long runner 0 waits for the other runners to finish before it runs teardown.
const TEARDOWN_WAIT: Duration = Duration::from_secs(120);

/// Why the agent could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A required variable is missing or malformed.
    #[error(
        "{name}: {message} (the operator's Job sets it; run `stampede agent` only in a runner pod)"
    )]
    Env {
        /// Variable name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The Kubernetes API failed.
    #[error("{action}: {source}")]
    Api {
        /// What the agent was doing.
        action: String,
        /// The error.
        source: kube::Error,
    },
    /// The LoadTest cannot run on this runner.
    #[error("{0}")]
    Prepare(String),
    /// The start signal never came.
    #[error("no start signal within {0:?}: the operator did not set status.startTime")]
    StartTimeout(Duration),
}

/// What the agent was told by its pod's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AgentConfig {
    /// LoadTest name.
    loadtest: String,
    /// Namespace.
    namespace: String,
    /// Run number.
    run: i64,
    /// Runner count.
    runners: u64,
    /// This runner's index.
    index: u64,
    /// Report ConfigMap name prefix.
    reports: String,
    /// Start-signal timeout.
    start_timeout: Duration,
    /// Where load may go.
    targets: TargetPolicy,
}

impl AgentConfig {
    /// Reads the configuration from `lookup` (the process environment in a pod).
    fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<AgentConfig, AgentError> {
        let text = |name: &'static str| {
            lookup(name)
                .filter(|v| !v.is_empty())
                .ok_or(AgentError::Env {
                    name,
                    message: "is not set".into(),
                })
        };
        let number = |name: &'static str| -> Result<u64, AgentError> {
            let value = text(name)?;
            value.parse().map_err(|_| AgentError::Env {
                name,
                message: format!("{value:?} is not a whole number"),
            })
        };
        let runners = number(env::RUNNERS)?;
        let index = number(env::INDEX)?;
        if runners == 0 || index >= runners {
            return Err(AgentError::Env {
                name: env::INDEX,
                message: format!("index {index} is not below the runner count {runners}"),
            });
        }
        let start_timeout = match lookup(env::START_TIMEOUT) {
            Some(_) => Duration::from_secs(number(env::START_TIMEOUT)?),
            None => Duration::from_secs(900),
        };
        let list = |name: &'static str| {
            target_policy::parse_list(&lookup(name).unwrap_or_default()).map_err(|error| {
                AgentError::Env {
                    name,
                    message: error.to_string(),
                }
            })
        };
        let mut targets = TargetPolicy {
            allowed: list(env::ALLOWED_TARGETS)?,
            denied: list(env::DENIED_TARGETS)?,
        };
        // The runner's token is for the API server; load is not.
        if let Some(api_server) =
            lookup(env::API_SERVER_HOST).and_then(|host| TargetRule::parse(&host).ok())
        {
            targets.denied.push(api_server);
        }
        Ok(AgentConfig {
            loadtest: text(env::LOADTEST)?,
            namespace: text(env::NAMESPACE)?,
            run: number(env::RUN)? as i64,
            runners,
            index,
            reports: text(env::REPORTS)?,
            start_timeout,
            targets,
        })
    }

    /// This runner's report ConfigMap.
    fn report_name(&self) -> String {
        format!("{}{}", self.reports, self.index)
    }

    /// The run setup values are sealed for.
    fn run_id(&self) -> RunId<'_> {
        RunId {
            namespace: &self.namespace,
            loadtest: &self.loadtest,
            run: self.run,
        }
    }
}

/// Why `stampede agent` stopped without doing its part, as the pod's log shows it.
#[derive(Debug, thiserror::Error)]
pub enum AgentFailure {
    /// The pod's environment is missing or malformed: this is not a runner pod.
    #[error("stampede agent: {0}")]
    Environment(AgentError),
    /// The runtime could not start.
    #[error("stampede agent: {0}")]
    Runtime(RunError),
    /// The runner could not do its part (its report says why as well).
    #[error("stampede agent: runner {index}: {source}")]
    Runner {
        /// The runner's index.
        index: u64,
        /// Why.
        source: AgentError,
    },
}

impl AgentFailure {
    /// The process exit code: [`Exit::Usage`] outside a runner pod, [`Exit::Failure`] when the
    /// runner failed.
    pub fn exit(&self) -> Exit {
        match self {
            AgentFailure::Environment(_) => Exit::Usage,
            AgentFailure::Runtime(_) | AgentFailure::Runner { .. } => Exit::Failure,
        }
    }
}

/// `stampede agent`: runs this pod's part. Ok unless the runner itself failed: the verdict is
/// the operator's.
pub fn agent() -> Result<(), AgentFailure> {
    let config = AgentConfig::from_env(|name| std::env::var(name).ok())
        .map_err(AgentFailure::Environment)?;
    let runtime = build_runtime(None).map_err(AgentFailure::Runtime)?;
    let result = runtime.block_on(run_agent(&config));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.map_err(|source| AgentFailure::Runner {
        index: config.index,
        source,
    })
}

/// Writes this runner's report.
#[derive(Debug, Clone)]
struct Reporter {
    config_maps: Api<ConfigMap>,
    name: String,
}

/// How long a report that must arrive (Ready, the final one, a failure) keeps being retried
/// through API server trouble: an outage shorter than this loses no report. A periodic report
/// is tried once, as the next one replaces it.
const REPORT_PATIENCE: Duration = Duration::from_secs(180);

/// The longest pause between two tries of a report write.
const REPORT_RETRY_CAP: Duration = Duration::from_secs(5);

/// Whether a failed API call may succeed if made again: the API server was unreachable, busy
/// or unavailable (the connection failed or broke), or the write raced another (409). A missing
/// object (the LoadTest is gone), a refusal, an invalid write or a local error (encoding,
/// configuration, credentials) stays as it is.
fn transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500..=599),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

impl Reporter {
    /// Replaces the report (a merge patch of one key; the operator owns the rest), retrying
    /// transient failures with a growing pause until [`REPORT_PATIENCE`] is spent: a report
    /// lost to an API server outage would stall the start barrier or lose the run's figures.
    async fn write(&self, report: &RunnerReport) -> Result<(), AgentError> {
        let deadline = tokio::time::Instant::now() + REPORT_PATIENCE;
        let mut pause = Duration::from_millis(200);
        loop {
            match self.write_once(report).await {
                Ok(()) => return Ok(()),
                Err(error) if transient(&error) && tokio::time::Instant::now() < deadline => {
                    eprintln!(
                        "runner {}: writing report ConfigMap {} failed ({error}); retrying in {:.1}s",
                        report.runner,
                        self.name,
                        pause.as_secs_f64()
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(REPORT_RETRY_CAP);
                }
                Err(error) => return Err(self.failed(error)),
            }
        }
    }

    /// One try at replacing the report (the periodic ones: the next replaces a lost one).
    async fn write_once(&self, report: &RunnerReport) -> Result<(), kube::Error> {
        let patch = json!({"data": {REPORT_KEY: report.to_json()}});
        self.config_maps
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
    }

    fn failed(&self, source: kube::Error) -> AgentError {
        AgentError::Api {
            action: format!("writing report ConfigMap {}", self.name),
            source,
        }
    }
}

async fn run_agent(config: &AgentConfig) -> Result<(), AgentError> {
    let client = Client::try_default()
        .await
        .map_err(|source| AgentError::Api {
            action: "connecting to the Kubernetes API".into(),
            source,
        })?;
    let tests: Api<LoadTest> = Api::namespaced(client.clone(), &config.namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &config.namespace);
    let reporter = Reporter {
        config_maps: config_maps.clone(),
        name: config.report_name(),
    };
    let base = RunnerReport {
        run: config.run,
        runner: config.index,
        ..RunnerReport::default()
    };
    match prepare_and_run(config, &tests, &config_maps, &reporter, &base).await {
        Ok(()) => Ok(()),
        Err(error) => {
            // The operator learns why from the report; a missing report ConfigMap means the
            // LoadTest is gone, and then nobody needs to know.
            let failed = RunnerReport {
                state: RunnerState::Failed,
                message: Some(error.to_string()),
                ..base
            };
            let _ = reporter.write(&failed).await;
            Err(error)
        }
    }
}

async fn prepare_and_run(
    config: &AgentConfig,
    tests: &Api<LoadTest>,
    config_maps: &Api<ConfigMap>,
    reporter: &Reporter,
    base: &RunnerReport,
) -> Result<(), AgentError> {
    let mut test = tests
        .get(&config.loadtest)
        .await
        .map_err(|source| AgentError::Api {
            action: format!("reading LoadTest {}", config.loadtest),
            source,
        })?;
    if superseded(&test, config.run) {
        eprintln!(
            "runner {}: run {} is no longer current; nothing to do",
            config.index, config.run
        );
        return Ok(());
    }
    // Compiled before the ConfigMap tables become files: the test is checked as the operator
    // checked it, and nothing compiled depends on where a table's rows come from.
    let compiled =
        stampede_crds::model::compile(&test, &Default::default()).map_err(|problems| {
            AgentError::Prepare(
                problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
        })?;
    let data_dir = load_config_map_data(&mut test, config_maps).await?;
    let segment = ExecutionSegment::of(config.index, config.runners)
        .map_err(|e| AgentError::Prepare(format!("execution segment: {e}")))?;
    let options = RunOptions {
        base_dir: data_dir
            .as_ref()
            .map_or_else(|| PathBuf::from("."), |d| d.path().to_path_buf()),
        segment,
        runner_index: config.index,
        runner_count: config.runners,
        progress: ProgressMode::Plain(10),
        handle_signals: false,
        local_abort: false,
        // The operator's policy (--max-vus-per-test) already capped the test it planned.
        max_vus: u64::MAX,
        targets: config.targets.clone(),
        ..RunOptions::default()
    };
    let mut prepared = PreparedRun::prepare_compiled(&test, compiled, options)
        .map_err(|e| AgentError::Prepare(e.to_string()))?;
    let mut ready = RunnerReport {
        state: RunnerState::Ready,
        steps: prepared.step_names().to_vec(),
        checks: prepared.check_names().to_vec(),
        groups: prepared.group_names().to_vec(),
        ..base.clone()
    };
    // setup() runs once per test: on runner 0, before it reports Ready. Its values reach the
    // other runners sealed to the keys they publish in their Ready reports, so runner 0 is
    // Ready (and the operator starts the run) only once every key is in.
    let setup_key = (config.index > 0 && prepared.has_setup()).then(SetupKey::generate);
    ready.setup_key = setup_key.as_ref().map(SetupKey::public);
    let mut own_setup_values = None;
    if config.index == 0 && prepared.has_setup() {
        let values: BTreeMap<String, String> = prepared
            .run_setup()
            .await
            .map_err(|e| AgentError::Prepare(e.to_string()))?
            .into_iter()
            .collect();
        if config.runners > 1 {
            let keys = collect_setup_keys(config_maps, config).await?;
            ready.sealed_setup = Some(seal_for_runners(&values, &keys, config)?);
        }
        own_setup_values = Some(values);
    }
    reporter.write(&ready).await?;
    eprintln!(
        "runner {}/{}: ready (segment {}), waiting for the start signal",
        config.index,
        config.runners,
        ExecutionSegment::of(config.index, config.runners)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );

    let start = match tokio::select! {
        start = wait_for_start(tests, config) => start?,
        () = terminated() => Start::Cancelled("the pod was terminated (SIGTERM)".into()),
    } {
        Start::At(at) => at,
        Start::Cancelled(reason) => {
            eprintln!("runner {}: {reason}; not starting", config.index);
            let finished = RunnerReport {
                state: RunnerState::Finished,
                aborted: Some(reason),
                ..ready
            };
            return reporter.write(&finished).await;
        }
    };
    let setup_values = match (own_setup_values, &setup_key) {
        (Some(values), _) => values,
        (None, Some(key)) => open_setup_values(config_maps, config, key).await?,
        (None, None) => BTreeMap::new(),
    };
    prepared.use_setup_values(setup_values.into_iter().collect::<HashMap<_, _>>());

    let now = Timestamp::now();
    let delay = start.duration_since(now);
    let delay = Duration::try_from(delay).unwrap_or(Duration::ZERO);
    let start_at = tokio::time::Instant::now() + delay;
    let started_at = if delay.is_zero() { now } else { start };

    // Abort, spec change or deletion while running: stop gracefully, still report.
    let watch = tokio::spawn(watch_for_stop(
        tests.clone(),
        config.clone(),
        prepared.stop_token(),
        prepared.abort_reasons(),
    ));
    // Kubernetes ends a pod with SIGTERM (a failed Job, an eviction, a deleted LoadTest): stop
    // gracefully and send the final report within the pod's grace period.
    let sigterm = {
        let stop = prepared.stop_token();
        let reasons = prepared.abort_reasons();
        let index = config.index;
        tokio::spawn(async move {
            terminated().await;
            eprintln!("runner {index}: SIGTERM; stopping gracefully");
            reasons.set("the runner pod was terminated (SIGTERM)".into());
            stop.cancel();
        })
    };
    let live = prepared.live();
    let running = RunnerReport {
        state: RunnerState::Running,
        started_at: Some(format_time(started_at)),
        ..ready.clone()
    };
    let width = series_width(prepared.total_duration().as_secs_f64());
    let periodic = tokio::spawn(report_periodically(
        reporter.clone(),
        running.clone(),
        live.clone(),
        start_at,
        width,
    ));
    eprintln!(
        "runner {}: starting at {} (in {:.1}s)",
        config.index,
        format_time(start),
        delay.as_secs_f64()
    );
    let scenarios = prepared.run_scenarios(Some(start_at)).await;
    periodic.abort();
    watch.abort();
    sigterm.abort();

    // teardown() runs once per test: on runner 0, after every runner has finished.
    if config.index == 0 && prepared.has_teardown() {
        let mut interim = live_report(&running, &live, width);
        interim.elapsed_seconds = scenarios.run_time.as_secs_f64();
        reporter.write(&interim).await?;
        wait_for_others(config_maps, config).await;
        prepared.run_teardown().await;
    }
    let outcome = prepared.finish(scenarios).await;
    let summary = outcome.summary;
    let actual_start = live_report(&running, &live, width).started_at;
    let finished = RunnerReport {
        state: RunnerState::Finished,
        started_at: actual_start,
        elapsed_seconds: summary.seconds(),
        vus: 0,
        vus_max: live.vus_max(),
        metrics: Some(summary.metrics),
        series: downsample(&summary.series, width),
        errors: outcome.errors,
        top_errors: summary.errors,
        aborted: summary.aborted,
        ..running
    };
    reporter.write(&finished).await?;
    eprintln!(
        "runner {}: finished after {:.1}s",
        config.index, finished.elapsed_seconds
    );
    Ok(())
}

fn format_time(time: Timestamp) -> String {
    time.round(k8s_openapi::jiff::Unit::Millisecond)
        .unwrap_or(time)
        .to_string()
}

/// True when the LoadTest has moved on to a later run than this Job's.
fn superseded(test: &LoadTest, run: i64) -> bool {
    test.status
        .as_ref()
        .and_then(|s| s.run)
        .is_some_and(|current| current > run)
}

/// What the wait for the start signal ended with.
enum Start {
    /// Start at this instant.
    At(Timestamp),
    /// Do not start: the run was aborted, superseded or deleted.
    Cancelled(String),
}

/// Why a runner of run `run` should not (go on) run, from its LoadTest's current state.
fn stop_reason(test: &LoadTest, run: i64) -> Option<String> {
    if test.metadata.deletion_timestamp.is_some() {
        return Some("the LoadTest is being deleted".into());
    }
    if superseded(test, run) {
        return Some("the spec changed; a new run replaced this one".into());
    }
    let status = test.status.as_ref()?;
    match status.phase? {
        Phase::Aborting | Phase::Aborted | Phase::Errored | Phase::Failed | Phase::Invalid => Some(
            status
                .message
                .clone()
                .unwrap_or_else(|| format!("the operator moved the run to {:?}", status.phase)),
        ),
        _ => None,
    }
}

/// Watches the LoadTest until the operator sets `status.startTime` for this run.
async fn wait_for_start(tests: &Api<LoadTest>, config: &AgentConfig) -> Result<Start, AgentError> {
    let fields = format!("metadata.name={}", config.loadtest);
    let stream = watcher(tests.clone(), watcher::Config::default().fields(&fields))
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(stream);
    let wait = async {
        while let Some(event) = stream.next().await {
            let test = match event {
                Ok(test) => test,
                Err(error) => {
                    eprintln!("runner {}: watching the LoadTest: {error}", config.index);
                    continue;
                }
            };
            if let Some(reason) = stop_reason(&test, config.run) {
                return Start::Cancelled(reason);
            }
            let status = test.status.as_ref();
            if status.and_then(|s| s.run) == Some(config.run)
                && let Some(start) = status.and_then(|s| s.start_time.as_ref())
            {
                return Start::At(start.0);
            }
        }
        Start::Cancelled("the LoadTest watch ended".into())
    };
    tokio::time::timeout(config.start_timeout, wait)
        .await
        .map_err(|_| AgentError::StartTimeout(config.start_timeout))
}

/// The most bytes of sealed setup values runner 0's report carries: it is written every
/// [`REPORT_EVERY_SECONDS`] beside the metrics, within the design's 256 KiB a report.
const MAX_SEALED_SETUP_BYTES: usize = 64 * 1024;

/// Runner 0 waits for every other runner's Ready report and takes the key it published. A
/// runner that failed gets nothing: it will not run, and the operator ends the run.
async fn collect_setup_keys(
    config_maps: &Api<ConfigMap>,
    config: &AgentConfig,
) -> Result<BTreeMap<u64, String>, AgentError> {
    let deadline = tokio::time::Instant::now() + config.start_timeout;
    let mut waiting: BTreeSet<u64> = (1..config.runners).collect();
    let mut keys = BTreeMap::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    while !waiting.is_empty() {
        if tokio::time::Instant::now() >= deadline {
            let runners: Vec<String> = waiting.iter().map(ToString::to_string).collect();
            return Err(AgentError::Prepare(format!(
                "runners {} published no setup key within {:?}: they never got ready",
                runners.join(", "),
                config.start_timeout
            )));
        }
        ticker.tick().await;
        for index in waiting.clone() {
            let name = format!("{}{index}", config.reports);
            match fetch_report(config_maps, &name).await {
                Fetched::Report(report) if report.state == RunnerState::Failed => {
                    waiting.remove(&index);
                }
                Fetched::Report(report) => {
                    if let Some(key) = report.setup_key {
                        keys.insert(index, key);
                        waiting.remove(&index);
                    }
                }
                Fetched::Gone => {
                    return Err(AgentError::Prepare(format!(
                        "runner {index}'s report {name} is gone: the run was deleted or replaced"
                    )));
                }
                Fetched::NotYet | Fetched::Unreadable(_) => {}
            }
        }
    }
    Ok(keys)
}

/// Seals setup()'s values for each runner that published a key, within the report's budget.
fn seal_for_runners(
    values: &BTreeMap<String, String>,
    keys: &BTreeMap<u64, String>,
    config: &AgentConfig,
) -> Result<SealedSetup, AgentError> {
    let sealed = sealed::seal(values, keys, config.run_id())
        .map_err(|e| AgentError::Prepare(e.to_string()))?;
    let bytes = sealed.encoded_bytes();
    if bytes > MAX_SEALED_SETUP_BYTES {
        let captured: usize = values.iter().map(|(k, v)| k.len() + v.len()).sum();
        return Err(AgentError::Prepare(format!(
            "spec.setup captured {captured} bytes of values, {bytes} bytes sealed, over the \
             {MAX_SEALED_SETUP_BYTES} runner 0's report carries beside its metrics: capture \
             only what the flows use (a token, not a whole response)"
        )));
    }
    Ok(sealed)
}

/// Runner `config.index` reads runner 0's report (written before runner 0 reported Ready, and
/// the operator starts the run only once every runner is Ready) and opens its sealed values.
async fn open_setup_values(
    config_maps: &Api<ConfigMap>,
    config: &AgentConfig,
    key: &SetupKey,
) -> Result<BTreeMap<String, String>, AgentError> {
    let name = format!("{}0", config.reports);
    let report = match fetch_report(config_maps, &name).await {
        Fetched::Report(report) => report,
        Fetched::Unreadable(source) => {
            return Err(AgentError::Api {
                action: format!("reading runner 0's report {name} for setup values"),
                source,
            });
        }
        Fetched::NotYet | Fetched::Gone => {
            return Err(AgentError::Prepare(format!(
                "runner 0's report {name} holds no report to take setup values from"
            )));
        }
    };
    let sealed = report.sealed_setup.as_ref().ok_or_else(|| {
        AgentError::Prepare(format!(
            "runner 0's report {name} holds no sealed setup values"
        ))
    })?;
    sealed::open(sealed, key, config.run_id(), config.index)
        .map_err(|e| AgentError::Prepare(e.to_string()))
}

/// What a runner's report ConfigMap holds now.
enum Fetched {
    /// A report.
    Report(Box<RunnerReport>),
    /// Nothing readable yet: the runner has not written it, or wrote what is not a report.
    NotYet,
    /// The ConfigMap is gone: the LoadTest was deleted or the run replaced.
    Gone,
    /// The API failed.
    Unreadable(kube::Error),
}

async fn fetch_report(config_maps: &Api<ConfigMap>, name: &str) -> Fetched {
    match config_maps.get_opt(name).await {
        Ok(Some(map)) => map
            .data
            .as_ref()
            .and_then(|d| d.get(REPORT_KEY))
            .and_then(|text| RunnerReport::from_json(text).ok())
            .map_or(Fetched::NotYet, |report| Fetched::Report(Box::new(report))),
        Ok(None) => Fetched::Gone,
        Err(error) => Fetched::Unreadable(error),
    }
}

/// Resolves on SIGTERM (never where signals cannot be listened to).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// Cancels `stop` when the operator aborts the run, the spec changes or the LoadTest goes.
async fn watch_for_stop(
    tests: Api<LoadTest>,
    config: AgentConfig,
    stop: tokio_util::sync::CancellationToken,
    reasons: crate::engine::AbortReasons,
) {
    let fields = format!("metadata.name={}", config.loadtest);
    let stream = watcher(tests, watcher::Config::default().fields(&fields))
        .default_backoff()
        .touched_objects();
    futures::pin_mut!(stream);
    // The watcher backs off and retries after an error; keep listening through them.
    while let Some(event) = stream.next().await {
        let Ok(test) = event else {
            continue;
        };
        if let Some(reason) = stop_reason(&test, config.run) {
            eprintln!("runner {}: stopping: {reason}", config.index);
            reasons.set(reason);
            stop.cancel();
            return;
        }
    }
}

fn live_report(running: &RunnerReport, live: &LiveView, width: usize) -> RunnerReport {
    let elapsed = live.elapsed();
    // When the scenarios really started (not when they were told to), so the start spread
    // across runners can be measured.
    let started_at = (!elapsed.is_zero())
        .then(|| {
            SignedDuration::try_from(elapsed)
                .ok()
                .and_then(|e| Timestamp::now().checked_sub(e).ok())
        })
        .flatten()
        .map(format_time);
    RunnerReport {
        started_at: started_at.or_else(|| running.started_at.clone()),
        elapsed_seconds: elapsed.as_secs_f64(),
        vus: live.vus(),
        vus_max: live.vus_max(),
        metrics: Some(live.snapshot()),
        series: downsample(&live.series(), width),
        top_errors: live.errors(),
        ..running.clone()
    }
}

/// Writes a cumulative report every few seconds from the start.
async fn report_periodically(
    reporter: Reporter,
    running: RunnerReport,
    live: LiveView,
    start_at: tokio::time::Instant,
    width: usize,
) {
    let every = Duration::from_secs(REPORT_EVERY_SECONDS);
    let mut ticker = tokio::time::interval_at(start_at + every, every);
    loop {
        ticker.tick().await;
        if let Err(error) = reporter
            .write_once(&live_report(&running, &live, width))
            .await
        {
            eprintln!(
                "runner {}: a periodic report was not written ({error}); the next one replaces it",
                running.runner
            );
        }
    }
}

/// Waits (bounded) until every other runner's report is final.
async fn wait_for_others(config_maps: &Api<ConfigMap>, config: &AgentConfig) {
    let deadline = tokio::time::Instant::now() + TEARDOWN_WAIT;
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    'poll: while tokio::time::Instant::now() < deadline {
        ticker.tick().await;
        for index in 1..config.runners {
            let name = format!("{}{index}", config.reports);
            let done = match fetch_report(config_maps, &name).await {
                Fetched::Report(report) => {
                    matches!(report.state, RunnerState::Finished | RunnerState::Failed)
                }
                // Gone: the LoadTest was deleted; nothing left to wait for.
                Fetched::Gone => true,
                Fetched::NotYet | Fetched::Unreadable(_) => false,
            };
            if !done {
                continue 'poll;
            }
        }
        return;
    }
    eprintln!(
        "runner 0: not every runner finished within {TEARDOWN_WAIT:?}; running teardown anyway"
    );
}

/// Turns `configMapRef` data tables into files: each referenced ConfigMap key is written to a
/// private directory and the table reads it as a `file:` (format kept or taken from the key).
async fn load_config_map_data(
    test: &mut LoadTest,
    config_maps: &Api<ConfigMap>,
) -> Result<Option<tempfile::TempDir>, AgentError> {
    if !test.spec.data.values().any(|t| t.config_map_ref.is_some()) {
        return Ok(None);
    }
    let dir = tempfile::tempdir()
        .map_err(|e| AgentError::Prepare(format!("cannot create a data directory: {e}")))?;
    let namespace = test.namespace().unwrap_or_default();
    for (table, source) in test.spec.data.iter_mut() {
        let Some(reference) = source.config_map_ref.take() else {
            continue;
        };
        let map = config_maps
            .get(&reference.name)
            .await
            .map_err(|source| AgentError::Api {
                action: format!(
                    "spec.data.{table}.configMapRef: reading ConfigMap {namespace}/{}",
                    reference.name
                ),
                source,
            })?;
        let text = map
            .data
            .as_ref()
            .and_then(|d| d.get(&reference.key))
            .ok_or_else(|| {
                AgentError::Prepare(format!(
                    "spec.data.{table}.configMapRef: ConfigMap {} has no key {:?}",
                    reference.name, reference.key
                ))
            })?;
        if source.format.is_none() {
            source.format = Some(if reference.key.ends_with(".json") {
                DataFormat::Json
            } else {
                DataFormat::Csv
            });
        }
        let file = format!("{table}.data");
        std::fs::write(dir.path().join(&file), text)
            .map_err(|e| AgentError::Prepare(format!("spec.data.{table}: {e}")))?;
        source.file = Some(file);
    }
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const FULL: [(&str, &str); 6] = [
        (env::LOADTEST, "spike"),
        (env::NAMESPACE, "shop"),
        (env::RUN, "2"),
        (env::RUNNERS, "3"),
        (env::INDEX, "1"),
        (env::REPORTS, "spike-run2-report-"),
    ];

    #[test]
    fn report_writes_retry_what_may_pass_and_stop_on_what_will_not() {
        let api = |code| {
            kube::Error::Api(
                kube::core::Status::failure("injected", "Injected")
                    .with_code(code)
                    .boxed(),
            )
        };
        for code in [409, 429, 500, 503, 504] {
            assert!(transient(&api(code)), "{code} may pass on a retry");
        }
        for code in [400, 403, 404, 422] {
            assert!(!transient(&api(code)), "{code} will not pass on a retry");
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(transient(&kube::Error::Service(Box::new(refused))));
        let encoding = serde_json::from_str::<u8>("x").unwrap_err();
        assert!(!transient(&kube::Error::SerdeError(encoding)));
    }

    #[test]
    fn the_pod_environment_gives_the_runner_its_part() {
        let config = AgentConfig::from_env(env(&FULL)).expect("complete");
        assert_eq!(config.run, 2);
        assert_eq!(config.index, 1);
        assert_eq!(config.runners, 3);
        assert_eq!(config.report_name(), "spike-run2-report-1");
        assert_eq!(config.start_timeout, Duration::from_secs(900));
        assert!(config.targets.is_open());
    }

    #[test]
    fn the_target_policy_comes_from_the_operator_and_the_api_server_is_always_denied() {
        let mut vars: Vec<(&str, &str)> = FULL.to_vec();
        vars.push((env::DENIED_TARGETS, "169.254.0.0/16,*.kube-system.svc"));
        vars.push((env::ALLOWED_TARGETS, "*.shop.svc"));
        vars.push((env::API_SERVER_HOST, "10.96.0.1"));
        let config = AgentConfig::from_env(env(&vars)).expect("complete");
        let denied: Vec<String> = config
            .targets
            .denied
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            denied,
            ["169.254.0.0/16", "*.kube-system.svc", "10.96.0.1/32"]
        );
        assert_eq!(config.targets.allowed.len(), 1);
        vars.push((env::DENIED_TARGETS, "10.0.0.0/99"));
        let error = AgentConfig::from_env(env(&vars)).expect_err("a bad range");
        assert!(
            error
                .to_string()
                .starts_with("STAMPEDE_DENIED_TARGETS: \"10.0.0.0/99\" is not a target"),
            "{error}"
        );
    }

    #[test]
    fn setup_values_are_sealed_for_this_run_within_the_report_budget() {
        let config = AgentConfig::from_env(env(&FULL)).expect("complete");
        let key = SetupKey::generate();
        let keys = BTreeMap::from([(1, key.public())]);
        let token = BTreeMap::from([("token".to_string(), "tok_1f2e".to_string())]);
        let sealed = seal_for_runners(&token, &keys, &config).unwrap();
        assert_eq!(
            sealed::open(&sealed, &key, config.run_id(), 1).unwrap(),
            token
        );
        let next_run = RunId {
            run: 3,
            ..config.run_id()
        };
        assert!(sealed::open(&sealed, &key, next_run, 1).is_err());

        let response = BTreeMap::from([("page".to_string(), "x".repeat(48 * 1024))]);
        let error = seal_for_runners(&response, &keys, &config).unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("spec.setup captured 49156 bytes of values, ")
                && message.contains("capture only what the flows use"),
            "{message}"
        );
    }

    #[test]
    fn a_missing_or_wrong_variable_is_named() {
        let error = AgentConfig::from_env(env(&FULL[..5])).expect_err("no reports");
        assert!(
            error
                .to_string()
                .starts_with("STAMPEDE_REPORTS: is not set")
        );
        let mut bad = FULL.to_vec();
        bad[4] = (env::INDEX, "3");
        let error = AgentConfig::from_env(env(&bad)).expect_err("index too big");
        assert!(
            error
                .to_string()
                .contains("index 3 is not below the runner count 3")
        );
        bad[4] = (env::INDEX, "x");
        let error = AgentConfig::from_env(env(&bad)).expect_err("not a number");
        assert!(error.to_string().contains("JOB_COMPLETION_INDEX: \"x\""));
    }

    #[test]
    fn agent_failures_say_where_they_come_from_and_give_their_exit_code() {
        let environment = AgentFailure::Environment(AgentError::Env {
            name: env::RUN,
            message: "is not set".into(),
        });
        assert_eq!(
            environment.to_string(),
            "stampede agent: STAMPEDE_RUN: is not set (the operator's Job sets it; run `stampede agent` only in a runner pod)"
        );
        assert_eq!(environment.exit(), Exit::Usage);
        let runner = AgentFailure::Runner {
            index: 2,
            source: AgentError::StartTimeout(Duration::from_secs(900)),
        };
        assert_eq!(
            runner.to_string(),
            "stampede agent: runner 2: no start signal within 900s: the operator did not set status.startTime"
        );
        assert_eq!(runner.exit(), Exit::Failure);
        let prepare = AgentFailure::Runner {
            index: 0,
            source: AgentError::Prepare("spec.data.users: no such key".into()),
        };
        assert_eq!(
            prepare.to_string(),
            "stampede agent: runner 0: spec.data.users: no such key"
        );
    }

    #[test]
    fn runners_stop_for_aborts_spec_changes_and_deletion() {
        let mut test: LoadTest =
            serde_json::from_value(json!({"metadata": {"name": "t"}, "spec": {}}))
                .expect("minimal");
        assert_eq!(stop_reason(&test, 1), None);
        test.status = Some(stampede_crds::status::LoadTestStatus {
            run: Some(1),
            phase: Some(Phase::Running),
            ..Default::default()
        });
        assert_eq!(stop_reason(&test, 1), None);
        if let Some(status) = test.status.as_mut() {
            status.phase = Some(Phase::Aborting);
            status.message = Some("threshold failed".into());
        }
        assert_eq!(stop_reason(&test, 1).as_deref(), Some("threshold failed"));
        if let Some(status) = test.status.as_mut() {
            status.phase = Some(Phase::Provisioning);
            status.run = Some(2);
        }
        assert!(stop_reason(&test, 1).is_some_and(|r| r.contains("new run")));
        assert_eq!(stop_reason(&test, 2), None);
    }
}
