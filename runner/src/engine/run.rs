//! One run of a LoadTest on this machine (or one runner's segment of it): prepare, setup,
//! scenarios with live progress and threshold checks every 2 s (abortOnFail), teardown, and
//! the final summary and exit code.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use stampede_crds::LoadTest;
use stampede_crds::model::summary::TrendColumn;
use stampede_crds::model::{self, Test};
use stampede_crds::spec::LoadTestSpec;
use stampede_crds::validate::{self, Problem};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::data::{DataError, Tables};
use super::executors::{Controls, ScenarioJob, run_scenario};
use super::flow::{self, CompileError, CompiledFlow, CompiledFlows};
use super::progress::{Progress, ProgressLine, ProgressMode, ScenarioCounters, ScenarioStatus};
use super::scale::scale_durations;
use super::shared::{ScenarioContext, Shared};
use super::vu::Vu;
use crate::exit::Exit;
use crate::http::{ClientConfig, DnsCache, Target, TargetPolicy};
use crate::metrics::errors::{ErrorLog, ErrorRow};
use crate::metrics::in_flight::InFlight;
use crate::metrics::recorder::{Interval, flush_current_thread};
use crate::metrics::sketch::LatencySketch;
use crate::metrics::{Metric, Registry, Shards, Snapshot, Value};
use crate::schedule::{ExecutionSegment, PlannedLoad, ScenarioPlan, TestPlan};
use crate::summary::{SecondPoint, Summary};
use crate::thresholds::{Thresholds, UnknownMetric};

/// How thresholds are evaluated while running (k6: every 2 s).
const THRESHOLD_EVERY: u64 = 2;

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `-e NAME=VALUE` overrides (win over `spec.env`).
    pub env: BTreeMap<String, String>,
    /// Directory that data `file:` paths are relative to.
    pub base_dir: PathBuf,
    /// This runner's execution segment.
    pub segment: ExecutionSegment,
    /// This runner's index and the number of runners.
    pub runner_index: u64,
    /// Number of runners.
    pub runner_count: u64,
    /// Worker threads (default: the machine's cores).
    pub threads: Option<usize>,
    /// Progress display.
    pub progress: ProgressMode,
    /// Print request errors (rate-limited).
    pub print_errors: bool,
    /// Handle SIGINT/SIGTERM (first: graceful stop and summary, exit 105).
    pub handle_signals: bool,
    /// Multiply every scenario duration, stage and start time by this (e.g. 0.1 to run the
    /// examples ten times faster); 1 keeps the manifest's times.
    pub duration_scale: f64,
    /// Evaluate abortOnFail thresholds on this process's own data every 2 s. Off for a
    /// runner in a cluster: the operator evaluates them on the whole fleet's merged data.
    pub local_abort: bool,
    /// The most VUs this process may hold at once; a test that needs more is refused before it
    /// starts (a VU costs 8–20 KiB, and `startVUs: 1000000` would otherwise exhaust the machine).
    pub max_vus: u64,
    /// Where load may go: the operator's allowed and denied targets for a runner in a cluster;
    /// open for `stampede run`.
    pub targets: TargetPolicy,
}

/// The local VU cap `stampede run` applies unless `--max-vus` says otherwise (~2 GiB of VUs).
pub const DEFAULT_MAX_VUS: u64 = 100_000;

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            env: BTreeMap::new(),
            base_dir: PathBuf::from("."),
            segment: ExecutionSegment::full(),
            runner_index: 0,
            runner_count: 1,
            threads: None,
            progress: ProgressMode::Auto,
            print_errors: true,
            handle_signals: false,
            duration_scale: 1.0,
            local_abort: true,
            max_vus: DEFAULT_MAX_VUS,
            targets: TargetPolicy::default(),
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct RunOutcome {
    /// The summary.
    pub summary: Summary,
    /// k6's exit code: Ok, ThresholdsFailed or ExternalAbort (signal).
    pub exit: Exit,
    /// Request/iteration errors seen.
    pub errors: u64,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The test did not compile: every problem, as `stampede validate` prints them.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// A threshold names a metric the engine does not record.
    #[error(transparent)]
    Threshold(#[from] UnknownMetric),
    /// A flow did not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// Test data could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// An env var comes from a Secret or ConfigMap and was not supplied.
    #[error(
        "spec.env[{index}] ({name}) comes from a {kind}, which only a cluster resolves; pass -e {name}=... or export {name}"
    )]
    UnresolvedEnv {
        /// Index in spec.env.
        index: usize,
        /// Variable name.
        name: String,
        /// Secret or ConfigMap.
        kind: &'static str,
    },
    /// The base URL does not render or parse.
    #[error("spec.defaults.baseUrl: {0}")]
    BaseUrl(String),
    /// Setup failed (k6 exits 107 on a script exception in setup).
    #[error("setup failed: {0}")]
    Setup(String),
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The test needs more VUs at once than this process may hold.
    #[error(
        "the test needs up to {needed} VUs at once here, over the local cap of {cap}; lower the scenarios' VUs or raise the cap with --max-vus {needed} (each VU takes 8-20 KiB)"
    )]
    TooManyVus {
        /// The test's peak (at least; counted per scenario when one alone is over the cap).
        needed: u64,
        /// The cap.
        cap: u64,
    },
}

/// Refuses a plan that needs more than `cap` VUs at once. One scenario over the cap is found
/// without walking its steps (a ramp from 2^63 VUs has that many); otherwise the exact peak
/// over time decides.
fn check_vu_cap(plan: &TestPlan, cap: u64) -> Result<(), RunError> {
    let largest = plan
        .scenarios()
        .values()
        .map(ScenarioPlan::max_vus)
        .max()
        .unwrap_or(0);
    let needed = if largest > cap {
        largest
    } else {
        plan.peak_vus()
    };
    if needed > cap {
        return Err(RunError::TooManyVus { needed, cap });
    }
    Ok(())
}

/// Resolves `spec.env` (with overrides); `valueFrom` entries are read from the process
/// environment, where a runner pod gets them from its Secret or ConfigMap.
pub fn resolve_env(
    spec: &LoadTestSpec,
    overrides: &BTreeMap<String, String>,
) -> Result<HashMap<String, String>, RunError> {
    let mut env = HashMap::new();
    for (index, var) in spec.env.iter().enumerate() {
        if let Some(value) = overrides.get(&var.name) {
            env.insert(var.name.clone(), value.clone());
        } else if let Some(value) = &var.value {
            env.insert(var.name.clone(), value.clone());
        } else if let Some(from) = &var.value_from {
            match std::env::var(&var.name) {
                Ok(value) => {
                    env.insert(var.name.clone(), value);
                }
                Err(_) => {
                    return Err(RunError::UnresolvedEnv {
                        index,
                        name: var.name.clone(),
                        kind: if from.secret_key_ref.is_some() {
                            "Secret"
                        } else {
                            "ConfigMap or field"
                        },
                    });
                }
            }
        } else {
            env.insert(var.name.clone(), String::new());
        }
    }
    for (name, value) in overrides {
        env.insert(name.clone(), value.clone());
    }
    Ok(env)
}

/// Runs a (validated) LoadTest and returns its summary and exit code.
pub fn run(test: &LoadTest, options: RunOptions) -> Result<RunOutcome, RunError> {
    run_watched(test, options, |_| Unwatched)
}

/// Watches a run from outside (the live dashboard): made from the [`LiveSummary`] before the
/// scenarios start, on the run's runtime, and told the final summary before the runtime ends.
pub trait RunWatcher: Send {
    /// The run is over; `summary` is its final summary.
    fn finish(self, summary: &Summary) -> impl std::future::Future<Output = ()> + Send;
}

/// No watcher.
struct Unwatched;

impl<W: RunWatcher, E: Send> RunWatcher for Result<W, E> {
    // A watcher that could not start has nothing to finish.
    async fn finish(self, summary: &Summary) {
        if let Ok(watcher) = self {
            watcher.finish(summary).await;
        }
    }
}

impl RunWatcher for Unwatched {
    async fn finish(self, _summary: &Summary) {}
}

/// Runs `test` as [`run`] does, with a watcher `watch` makes once the test is prepared.
pub fn run_watched<W: RunWatcher>(
    test: &LoadTest,
    options: RunOptions,
    watch: impl FnOnce(LiveSummary) -> W,
) -> Result<RunOutcome, RunError> {
    let runtime = build_runtime(options.threads)?;
    let outcome = runtime.block_on(async {
        let prepared = PreparedRun::prepare(test, options)?;
        let watcher = watch(prepared.live_summary());
        let outcome = run_prepared(prepared).await?;
        watcher.finish(&outcome.summary).await;
        Ok(outcome)
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome
}

/// The engine's runtime: multi-threaded, flushing each thread's metrics when it parks.
pub fn build_runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime, RunError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().on_thread_park(flush_current_thread);
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    Ok(builder.build()?)
}

async fn run_prepared(mut prepared: PreparedRun) -> Result<RunOutcome, RunError> {
    let handle_signals = prepared.options.handle_signals;
    let values = prepared.run_setup().await?;
    prepared.use_setup_values(values);
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if handle_signals {
        let stop = prepared.stop_token();
        let interrupted = Arc::clone(&interrupted);
        let reason = prepared.abort_reasons();
        tokio::spawn(async move {
            wait_for_signal().await;
            interrupted.store(true, Ordering::Release);
            reason.set("interrupted by a signal".to_string());
            stop.cancel();
            eprintln!("\nstopping gracefully (press Ctrl-C again to quit at once)");
            wait_for_signal().await;
            std::process::exit(i32::from(Exit::ExternalAbort.code()));
        });
    }
    let scenarios = prepared.run_scenarios(None).await;
    prepared.run_teardown().await;
    let mut outcome = prepared.finish(scenarios).await;
    if interrupted.load(Ordering::Acquire) {
        outcome.exit = Exit::ExternalAbort;
    }
    Ok(outcome)
}

/// One point of the series: the interval that ended `at`, with `vus` active then.
fn series_point(
    at: Duration,
    vus: u64,
    in_flight: u64,
    interval: &Interval,
    planned: PlannedLoad,
) -> SecondPoint {
    SecondPoint {
        t: at.as_secs_f64(),
        vus,
        in_flight,
        requests: interval.requests,
        failed: interval.failed,
        client_errors: interval.client_errors,
        server_errors: interval.server_errors,
        no_response: interval.no_response,
        no_response_by_code: interval.no_response_codes.iter().copied().collect(),
        iterations: interval.iterations,
        dropped: interval.dropped,
        p50_ms: interval.duration.percentile(50.0),
        p90_ms: interval.duration.percentile(90.0),
        p95_ms: interval.duration.percentile(95.0),
        p99_ms: interval.duration.percentile(99.0),
        planned_vus: planned.vus,
        planned_rate: planned.rate,
        latency: LatencySketch::from_trend(&interval.duration),
    }
}

/// The summary of a run while it goes: what the live dashboard shows.
#[derive(Debug, Clone)]
pub struct LiveSummary {
    live: LiveView,
    name: String,
    thresholds: Thresholds,
    trend_stats: Vec<TrendColumn>,
    steps: Vec<String>,
    checks: Vec<String>,
    groups: Vec<String>,
    aborted: AbortReasons,
}

impl LiveSummary {
    /// Everything recorded so far, with the thresholds as they stand (live rules: a metric
    /// with no samples yet is not failed).
    pub fn now(&self) -> Summary {
        let snapshot = self.live.snapshot();
        let elapsed = self.live.elapsed();
        Summary {
            name: self.name.clone(),
            test_run_duration_ms: elapsed.as_secs_f64() * 1000.0,
            thresholds: self
                .thresholds
                .evaluate(&snapshot, elapsed.as_secs_f64(), false),
            metrics: snapshot,
            series: self.live.series(),
            errors: self.live.errors(),
            trend_stats: self.trend_stats.clone(),
            steps: self.steps.clone(),
            checks: self.checks.clone(),
            groups: self.groups.clone(),
            aborted: self.aborted.get(),
            fleet: None,
        }
    }
}

/// What a caller outside the run can watch while it goes (the agent's reports): the
/// cumulative metrics, the per-second series, the VU gauges and the time since the start.
#[derive(Debug, Clone)]
pub struct LiveView {
    shards: Arc<Shards>,
    error_log: Arc<ErrorLog>,
    series: Arc<std::sync::Mutex<Vec<SecondPoint>>>,
    vus: Arc<AtomicI64>,
    vus_max: Arc<AtomicI64>,
    started: Arc<OnceLock<Instant>>,
}

impl LiveView {
    /// Everything recorded so far.
    pub fn snapshot(&self) -> Snapshot {
        self.shards.snapshot()
    }

    /// The per-second series so far.
    pub fn series(&self) -> Vec<SecondPoint> {
        self.series.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The errors so far by kind, most frequent first.
    pub fn errors(&self) -> Vec<ErrorRow> {
        self.error_log.rows()
    }

    /// Active VUs at the last second.
    pub fn vus(&self) -> i64 {
        self.vus.load(Ordering::Relaxed)
    }

    /// Allocated VUs at the last second.
    pub fn vus_max(&self) -> i64 {
        self.vus_max.load(Ordering::Relaxed)
    }

    /// Time since the scenarios started (zero before).
    pub fn elapsed(&self) -> Duration {
        self.started.get().map_or(Duration::ZERO, |s| s.elapsed())
    }

    /// Waits until every thread has flushed its samples (bounded by `timeout`).
    pub async fn wait_flushed(&self, timeout: Duration) {
        self.shards.wait_flushed(timeout).await;
    }
}

/// How the scenarios ended.
#[derive(Debug, Clone)]
pub struct ScenariosRun {
    /// Time from the start to the last scenario's end.
    pub run_time: Duration,
}

/// A LoadTest prepared to run (flows compiled, data loaded, series registered), run in phases
/// so that a runner in a cluster can report Ready, start on a signal and stop on an abort:
/// [`PreparedRun::run_setup`], [`PreparedRun::run_scenarios`], [`PreparedRun::run_teardown`],
/// [`PreparedRun::finish`].
#[derive(Debug)]
pub struct PreparedRun {
    shared: Arc<Shared>,
    shards: Arc<Shards>,
    thresholds: Thresholds,
    setup: CompiledFlow,
    teardown: CompiledFlow,
    jobs: Vec<ScenarioJob>,
    plan: TestPlan,
    steps: Vec<String>,
    checks: Vec<String>,
    groups: Vec<String>,
    /// The test-wide tags (setup and teardown samples carry them too).
    test_tags: Vec<(String, String)>,
    options: RunOptions,
    name: String,
    trend_stats: Vec<TrendColumn>,
    stop: CancellationToken,
    abort_reason: AbortReasons,
    live: LiveView,
}

/// Where the reason of an early stop is kept (the first one wins); clonable so a watcher
/// outside the run can record why it stopped it.
#[derive(Debug, Clone, Default)]
pub struct AbortReasons(Arc<std::sync::Mutex<Option<String>>>);

impl AbortReasons {
    /// Records `reason` unless one is already recorded.
    pub fn set(&self, reason: String) {
        if let Ok(mut r) = self.0.lock() {
            r.get_or_insert(reason);
        }
    }

    /// The recorded reason.
    pub fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|r| r.clone())
    }
}

impl PreparedRun {
    /// Compiles `test` (the `-e` names of `options` count as defined) and prepares it for a
    /// run with `options`.
    pub fn prepare(test: &LoadTest, options: RunOptions) -> Result<PreparedRun, RunError> {
        let validation = validate::Options {
            extra_env: options.env.keys().cloned().collect(),
        };
        let compiled = model::compile(test, &validation).map_err(RunError::Invalid)?;
        prepare(test, compiled, options)
    }

    /// Prepares `test`, already compiled into `compiled` by `stampede_crds::model::compile`,
    /// for a run with `options`.
    pub fn prepare_compiled(
        test: &LoadTest,
        compiled: Test,
        options: RunOptions,
    ) -> Result<PreparedRun, RunError> {
        prepare(test, compiled, options)
    }

    /// Whether the test has a setup flow.
    pub fn has_setup(&self) -> bool {
        !self.setup.steps.is_empty()
    }

    /// Whether the test has a teardown flow.
    pub fn has_teardown(&self) -> bool {
        !self.teardown.steps.is_empty()
    }

    /// The scheduled length of the scenarios (without graceful stops).
    pub fn planned_duration(&self) -> Duration {
        self.plan.regular_duration()
    }

    /// The planned length with graceful stops: when the test is over at the latest.
    pub fn total_duration(&self) -> Duration {
        self.plan.total_duration()
    }

    /// Cancelling this token stops the scenarios gracefully (abort from outside).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Records why the run was stopped early (shown in the summary).
    pub fn set_abort_reason(&self, reason: String) {
        self.abort_reason.set(reason);
    }

    /// A handle to record why the run was stopped early.
    pub fn abort_reasons(&self) -> AbortReasons {
        self.abort_reason.clone()
    }

    /// Step names in flow order.
    pub fn step_names(&self) -> &[String] {
        &self.steps
    }

    /// Check names in flow order.
    pub fn check_names(&self) -> &[String] {
        &self.checks
    }

    /// Group tags in flow order.
    pub fn group_names(&self) -> &[String] {
        &self.groups
    }

    /// A handle to watch the run while it goes.
    pub fn live(&self) -> LiveView {
        self.live.clone()
    }

    /// The summary of the run so far, whenever asked (thresholds with live rules).
    pub fn live_summary(&self) -> LiveSummary {
        LiveSummary {
            live: self.live.clone(),
            name: self.name.clone(),
            thresholds: self.thresholds.clone(),
            trend_stats: self.trend_stats.clone(),
            steps: self.steps.clone(),
            checks: self.checks.clone(),
            groups: self.groups.clone(),
            aborted: self.abort_reason.clone(),
        }
    }

    /// Runs setup() once and returns its captures (empty without a setup flow); does not
    /// hand them to the VUs — [`PreparedRun::use_setup_values`] does.
    pub async fn run_setup(&self) -> Result<HashMap<String, String>, RunError> {
        if self.setup.steps.is_empty() {
            return Ok(HashMap::new());
        }
        let context = ScenarioContext::internal("setup", self.test_tags.clone());
        let mut vu = Vu::new(0, &self.shared);
        vu.run_once(&self.shared, &context, &self.setup, "::setup")
            .await
            .map_err(RunError::Setup)
    }

    /// Makes setup's captures every VU's `${setup.NAME}` (once; later calls are ignored).
    pub fn use_setup_values(&self, values: HashMap<String, String>) {
        let _ = self.shared.setup.set(values);
    }

    /// Runs every scenario from now (or from `start_at`) until they end or the stop token is
    /// cancelled, with progress each second and — unless disabled — threshold checks every
    /// 2 s that stop the run on a failed abortOnFail threshold.
    pub async fn run_scenarios(&mut self, start_at: Option<Instant>) -> ScenariosRun {
        if let Some(at) = start_at {
            tokio::time::sleep_until(at).await;
        }
        let shared = Arc::clone(&self.shared);
        let shards = Arc::clone(&self.shards);
        if self.shared.setup.get().is_none() {
            let _ = self.shared.setup.set(HashMap::new());
        }
        let start = Instant::now();
        let _ = self.live.started.set(start);
        let controls = Arc::new(Controls::with_stop(
            start,
            self.options.runner_count,
            self.stop.child_token(),
        ));
        let mut scenario_tasks = tokio::task::JoinSet::new();
        // What the progress bars read: every scenario with work on this runner.
        let watched: Vec<(String, Arc<ScenarioPlan>, Arc<ScenarioCounters>)> = self
            .jobs
            .iter()
            .filter(|job| job.plan.has_work())
            .map(|job| {
                (
                    job.context.name.clone(),
                    Arc::clone(&job.plan),
                    Arc::clone(&job.counters),
                )
            })
            .collect();
        let statuses = |elapsed: Duration| -> Vec<ScenarioStatus<'_>> {
            watched
                .iter()
                .map(|(name, plan, counters)| ScenarioStatus::read(name, plan, counters, elapsed))
                .collect()
        };
        for job in std::mem::take(&mut self.jobs) {
            scenario_tasks.spawn(run_scenario(
                job,
                Arc::clone(&shared),
                Arc::clone(&controls),
            ));
        }
        let total = self.plan.regular_duration();
        let mut progress = Progress::new(self.options.progress);
        let mut ticker =
            tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
        let mut last_line = ProgressLine::default();
        let mut second = 0u64;
        loop {
            tokio::select! {
                joined = scenario_tasks.join_next() => {
                    if joined.is_none() {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    second += 1;
                    let elapsed = start.elapsed();
                    let active = controls.gauges.active.load(Ordering::Relaxed).max(0);
                    let allocated = controls.gauges.allocated.load(Ordering::Relaxed).max(0);
                    self.live.vus.store(active, Ordering::Relaxed);
                    self.live.vus_max.store(allocated, Ordering::Relaxed);
                    shards.set_gauge(Metric::Vus, active as f64);
                    shards.set_gauge(Metric::VusMax, allocated as f64);
                    let interval = shards.take_interval();
                    let planned = self.plan.planned_at(elapsed);
                    if let Ok(mut series) = self.live.series.lock() {
                        series.push(series_point(
                            elapsed,
                            active as u64,
                            shared.in_flight.now(),
                            &interval,
                            planned,
                        ));
                    }
                    let snapshot = shards.snapshot();
                    let failed_rate = snapshot
                        .metric(Metric::HttpReqFailed)
                        .and_then(Value::rate)
                        .unwrap_or(0.0);
                    last_line = ProgressLine {
                        elapsed,
                        total,
                        vus: active,
                        vus_max: allocated,
                        rps: interval.requests as f64,
                        p95_ms: snapshot.trend(Metric::HttpReqDuration.name()).map_or(0.0, |t| t.percentile(95.0)),
                        failed_rate,
                        requests: snapshot.count(Metric::HttpReqs.name()) as u64,
                        dropped: snapshot.count(Metric::DroppedIterations.name()) as u64,
                    };
                    progress.tick(&last_line, &statuses(elapsed));
                    if self.options.local_abort
                        && second.is_multiple_of(THRESHOLD_EVERY)
                        && !controls.stop.is_cancelled()
                    {
                        let results = self.thresholds.evaluate(&snapshot, elapsed.as_secs_f64(), false);
                        if let Some(failed) = self.thresholds.abort_reason(&results, elapsed) {
                            self.set_abort_reason(format!(
                                "threshold {} '{}' failed with {} and has abortOnFail",
                                failed.metric, failed.threshold, failed.observed()
                            ));
                            controls.stop.cancel();
                        }
                    }
                }
            }
        }
        let run_time = start.elapsed();
        last_line.elapsed = run_time;
        shards.wait_flushed(Duration::from_secs(2)).await;
        // The last, partial second: without it the series would miss what ended the run.
        let rest = shards.take_interval();
        if rest.requests + rest.iterations + rest.dropped > 0
            && let Ok(mut series) = self.live.series.lock()
        {
            let planned = self.plan.planned_at(run_time);
            series.push(series_point(run_time, 0, 0, &rest, planned));
        }
        last_line.requests = shards.snapshot().count(Metric::HttpReqs.name()) as u64;
        progress.finish(&last_line, &statuses(run_time));
        ScenariosRun { run_time }
    }

    /// Runs teardown() once (also after an abort, as in k6); its errors are counted.
    pub async fn run_teardown(&self) {
        if self.teardown.steps.is_empty() {
            return;
        }
        let context = ScenarioContext::internal("teardown", self.test_tags.clone());
        let mut vu = Vu::new(0, &self.shared);
        if let Err(message) = vu
            .run_once(&self.shared, &context, &self.teardown, "::teardown")
            .await
        {
            self.shared
                .report_error("teardown", None, "teardown", &message);
        }
    }

    /// The final summary: every sample flushed, thresholds evaluated with end-of-test rules.
    pub async fn finish(self, scenarios: ScenariosRun) -> RunOutcome {
        self.shards.wait_flushed(Duration::from_secs(2)).await;
        let snapshot = self.shards.snapshot();
        let run_time = scenarios.run_time;
        let results = self
            .thresholds
            .evaluate(&snapshot, run_time.as_secs_f64(), true);
        let aborted = self.abort_reason.get();
        let summary = Summary {
            name: self.name,
            test_run_duration_ms: run_time.as_secs_f64() * 1000.0,
            metrics: snapshot,
            thresholds: results,
            series: self.live.series(),
            errors: self.live.errors(),
            trend_stats: self.trend_stats,
            steps: self.steps,
            checks: self.checks,
            groups: self.groups,
            aborted,
            fleet: None,
        };
        let exit = if summary.passed() {
            Exit::Ok
        } else {
            Exit::ThresholdsFailed
        };
        RunOutcome {
            summary,
            exit,
            errors: self.shared.errors.load(Ordering::Relaxed),
        }
    }
}

fn prepare(
    test: &LoadTest,
    mut compiled: Test,
    options: RunOptions,
) -> Result<PreparedRun, RunError> {
    scale_durations(&mut compiled.scenarios, options.duration_scale);
    let spec = &test.spec;
    let defaults = spec.defaults.clone().unwrap_or_default();
    let CompiledFlows {
        setup,
        teardown,
        flows,
        names,
    } = flow::compile(&compiled.flows)?;
    let mut registry = Registry::for_test(&compiled);
    let thresholds = Thresholds::new(&compiled.thresholds, &mut registry)?;
    let shards = Shards::new(Arc::new(registry));

    let env = resolve_env(spec, &options.env)?;
    let base_url = match &compiled.flows.defaults.base_url {
        None => None,
        Some(template) => {
            struct EnvOnly<'a>(&'a HashMap<String, String>);
            impl stampede_crds::template::Resolve for EnvOnly<'_> {
                fn resolve(
                    &mut self,
                    r: &stampede_crds::template::Reference,
                ) -> Option<std::borrow::Cow<'_, str>> {
                    match r {
                        stampede_crds::template::Reference::Env(name) => {
                            self.0.get(name).map(|v| v.as_str().into())
                        }
                        _ => None,
                    }
                }
            }
            let rendered = template
                .render(&mut EnvOnly(&env))
                .map_err(|e| RunError::BaseUrl(e.to_string()))?;
            Some(
                Target::parse(&rendered)
                    .map_err(|e| RunError::BaseUrl(format!("{:?}: {e}", template.to_string())))?,
            )
        }
    };
    let client_config = Arc::new(ClientConfig {
        insecure_skip_tls_verify: defaults.insecure_skip_tls_verify.unwrap_or(false),
        no_connection_reuse: defaults.no_connection_reuse.unwrap_or(false),
        user_agent: defaults.user_agent.clone(),
        dns: Arc::new(DnsCache::new()),
        targets: Arc::new(options.targets.clone()),
        ..ClientConfig::default()
    });
    let min_iteration_duration = compiled.flows.defaults.min_iteration_duration;
    let error_log = Arc::new(ErrorLog::default());
    let shared = Arc::new(Shared {
        recorder: shards.recorder(),
        env,
        tables: Tables::load(spec, &options.base_dir)?,
        setup: OnceLock::new(),
        base_url,
        client_config,
        segment: options.segment.clone(),
        runner_index: options.runner_index,
        no_cookies_reset: defaults.no_cookies_reset.unwrap_or(false),
        no_vu_connection_reuse: defaults.no_vu_connection_reuse.unwrap_or(false),
        min_iteration_duration,
        seed: fastrand::u64(..),
        errors: Default::default(),
        error_log: Arc::clone(&error_log),
        in_flight: InFlight::default(),
        print_errors: options.print_errors,
    });
    let test_tags: Vec<(String, String)> = spec
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let plan = TestPlan::for_test(&compiled, &options.segment);
    check_vu_cap(&plan, options.max_vus)?;
    let mut jobs = Vec::new();
    for scenario in &compiled.scenarios {
        // Validation guarantees the flow exists; an unvalidated spec must not run an empty
        // flow in a hot loop.
        let flow = flows
            .get(&scenario.flow)
            .cloned()
            .ok_or_else(|| CompileError {
                path: format!("spec.scenarios.{}.flow", scenario.name),
                message: format!(
                    "names the flow {:?}, which spec.flows does not define",
                    scenario.flow
                ),
            })?;
        let mut tags = test_tags.clone();
        tags.extend(scenario.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        jobs.push(ScenarioJob {
            context: Arc::new(ScenarioContext {
                name: scenario.name.clone(),
                tags,
                env: scenario.env.clone(),
            }),
            flow,
            plan: Arc::new(ScenarioPlan::new(scenario, &options.segment)),
            counters: Arc::default(),
        });
    }
    let live = LiveView {
        shards: Arc::clone(&shards),
        error_log,
        series: Arc::default(),
        vus: Arc::default(),
        vus_max: Arc::default(),
        started: Arc::default(),
    };
    Ok(PreparedRun {
        shared,
        shards,
        thresholds,
        setup,
        teardown,
        jobs,
        plan,
        steps: names.steps,
        checks: names.checks,
        groups: names.groups,
        test_tags,
        options,
        name: test.metadata.name.clone().unwrap_or_default(),
        trend_stats: compiled.summary_trend_stats.clone(),
        stop: CancellationToken::new(),
        abort_reason: AbortReasons::default(),
        live,
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
