//! One run of a LoadTest on this machine (or one runner's segment of it): prepare, setup,
//! scenarios with live progress and threshold checks every 2 s (abortOnFail), teardown, and
//! the final summary and exit code.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use stampede_crds::LoadTest;
use stampede_crds::spec::LoadTestSpec;
use stampede_crds::validate::effective_scenarios;
use tokio::time::Instant;

use super::data::{DataError, Tables};
use super::executors::{Controls, ScenarioJob, run_scenario};
use super::flow::{CompileError, CompiledFlow, Compiler};
use super::progress::{Progress, ProgressLine, ProgressMode};
use super::shared::{ScenarioContext, Shared};
use super::vu::Vu;
use crate::exit;
use crate::http::{ClientConfig, DnsCache, Target};
use crate::metrics::recorder::flush_current_thread;
use crate::metrics::{Metric, Registry, Shards, Value};
use crate::schedule::{ExecutionSegment, ScenarioPlan, TestPlan};
use crate::summary::{DEFAULT_TREND_STATS, SecondPoint, Summary};
use crate::thresholds::Thresholds;

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
}

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
        }
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct RunOutcome {
    /// The summary.
    pub summary: Summary,
    /// k6's exit code: 0, 99 (thresholds failed), 105 (signal).
    pub exit_code: u8,
    /// Request/iteration errors seen.
    pub errors: u64,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
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
}

/// Multiplies every scenario time of a spec by `factor` (sleeps, timeouts and thresholds keep
/// their values): stages, durations, maxDuration, startTime, gracefulStop, gracefulRampDown.
pub fn scale_durations(spec: &LoadTestSpec, factor: f64) -> LoadTestSpec {
    if (factor - 1.0).abs() < f64::EPSILON {
        return spec.clone();
    }
    let scale = |text: &String| match stampede_crds::duration::parse(text) {
        Ok(d) => {
            let ms = (d.as_secs_f64() * 1000.0 * factor).round().max(0.0) as u64;
            format!("{ms}ms")
        }
        Err(_) => text.clone(),
    };
    let mut out = spec.clone();
    let mut scenarios = effective_scenarios(spec);
    for scenario in scenarios.values_mut() {
        for field in [
            &mut scenario.duration,
            &mut scenario.max_duration,
            &mut scenario.start_time,
            &mut scenario.graceful_stop,
            &mut scenario.graceful_ramp_down,
        ] {
            if let Some(text) = field.as_mut() {
                *text = scale(text);
            }
        }
        for stage in &mut scenario.stages {
            stage.duration = scale(&stage.duration);
        }
        // k6's minimum duration of 1s must not turn a scaled duration into an error.
        for field in [&mut scenario.duration, &mut scenario.max_duration] {
            if let Some(text) = field.as_mut()
                && stampede_crds::duration::parse(text).is_ok_and(|d| d < Duration::from_secs(1))
            {
                *text = "1s".to_string();
            }
        }
    }
    out.scenarios = scenarios;
    out.stages.clear();
    out.duration = None;
    out.iterations = None;
    out.vus = None;
    out
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
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().on_thread_park(flush_current_thread);
    if let Some(threads) = options.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.build()?;
    let outcome = runtime.block_on(run_async(test, &options));
    runtime.shutdown_timeout(Duration::from_secs(1));
    outcome
}

struct Prepared {
    shared: Arc<Shared>,
    shards: Arc<Shards>,
    thresholds: Thresholds,
    setup: CompiledFlow,
    teardown: CompiledFlow,
    jobs: Vec<ScenarioJob>,
    plan: TestPlan,
    steps: Vec<String>,
    checks: Vec<String>,
    /// The test-wide tags (setup and teardown samples carry them too).
    test_tags: Vec<(String, String)>,
}

fn prepare(test: &LoadTest, options: &RunOptions) -> Result<Prepared, RunError> {
    let spec = scale_durations(&test.spec, options.duration_scale);
    let defaults = spec.defaults.clone().unwrap_or_default();
    let mut compiler = Compiler::new(&defaults);
    let setup = compiler.flow(&spec.setup, "spec.setup", "::setup")?;
    let teardown = compiler.flow(&spec.teardown, "spec.teardown", "::teardown")?;
    let mut flows = HashMap::new();
    for (name, steps) in &spec.flows {
        flows.insert(
            name.clone(),
            Arc::new(compiler.flow(steps, &format!("spec.flows.{name}"), "")?),
        );
    }
    let names = compiler.names;
    let mut registry = Registry::new();
    for step in &names.steps {
        let filter = vec![("name".to_string(), step.clone())];
        for metric in [
            Metric::HttpReqs,
            Metric::HttpReqFailed,
            Metric::HttpReqDuration,
        ] {
            registry.add(metric, filter.clone());
        }
    }
    for check in &names.checks {
        registry.add(Metric::Checks, vec![("check".to_string(), check.clone())]);
    }
    for group in &names.groups {
        registry.add(
            Metric::GroupDuration,
            vec![("group".to_string(), group.clone())],
        );
    }
    let thresholds = Thresholds::compile(&spec, &mut registry);
    let shards = Shards::new(Arc::new(registry));

    let env = resolve_env(&spec, &options.env)?;
    let base_url = match &defaults.base_url {
        None => None,
        Some(text) => {
            let template = stampede_crds::template::parse(text)
                .map_err(|e| RunError::BaseUrl(e.to_string()))?;
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
                    .map_err(|e| RunError::BaseUrl(format!("{rendered:?}: {e}")))?,
            )
        }
    };
    let client_config = Arc::new(ClientConfig {
        insecure_skip_tls_verify: defaults.insecure_skip_tls_verify.unwrap_or(false),
        no_connection_reuse: defaults.no_connection_reuse.unwrap_or(false),
        user_agent: defaults.user_agent.clone(),
        dns: Arc::new(DnsCache::new()),
        ..ClientConfig::default()
    });
    let min_iteration_duration = defaults
        .min_iteration_duration
        .as_deref()
        .and_then(|t| stampede_crds::duration::parse(t).ok())
        .filter(|d| !d.is_zero());
    let shared = Arc::new(Shared {
        recorder: shards.recorder(),
        env,
        tables: Tables::load(&spec, &options.base_dir)?,
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
        print_errors: options.print_errors,
    });
    let test_tags: Vec<(String, String)> = spec
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let scenarios = effective_scenarios(&spec);
    let plan = TestPlan::new(&scenarios, &options.segment);
    let mut jobs = Vec::new();
    for (name, scenario) in &scenarios {
        // Validation guarantees the flow exists; an unvalidated spec must not run an empty
        // flow in a hot loop.
        let flow = flows
            .get(scenario.flow_name())
            .cloned()
            .ok_or_else(|| CompileError {
                path: format!("spec.scenarios.{name}.flow"),
                message: format!(
                    "names the flow {:?}, which spec.flows does not define",
                    scenario.flow_name()
                ),
            })?;
        let mut tags = test_tags.clone();
        tags.extend(scenario.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        jobs.push(ScenarioJob {
            context: Arc::new(ScenarioContext {
                name: name.clone(),
                tags,
                env: scenario.env.clone(),
            }),
            flow,
            plan: Arc::new(ScenarioPlan::new(scenario, &options.segment)),
        });
    }
    Ok(Prepared {
        shared,
        shards,
        thresholds,
        setup,
        teardown,
        jobs,
        plan,
        steps: names.steps,
        checks: names.checks,
        test_tags,
    })
}

async fn run_async(test: &LoadTest, options: &RunOptions) -> Result<RunOutcome, RunError> {
    let prepared = prepare(test, options)?;
    let Prepared {
        shared,
        shards,
        thresholds,
        setup,
        teardown,
        jobs,
        plan,
        steps,
        checks,
        test_tags,
    } = prepared;

    // setup(): once, before any scenario; its captures are every VU's ${setup.NAME}.
    let setup_context = ScenarioContext::internal("setup", test_tags.clone());
    let mut setup_vu = Vu::new(0, &shared);
    let values = if setup.steps.is_empty() {
        HashMap::new()
    } else {
        setup_vu
            .run_once(&shared, &setup_context, &setup, "::setup")
            .await
            .map_err(RunError::Setup)?
    };
    let _ = shared.setup.set(values);

    let start = Instant::now();
    let controls = Arc::new(Controls::new(start, options.runner_count));
    let abort_reason: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    if options.handle_signals {
        let controls = Arc::clone(&controls);
        let reason = Arc::clone(&abort_reason);
        let interrupted = Arc::clone(&interrupted);
        tokio::spawn(async move {
            wait_for_signal().await;
            interrupted.store(true, Ordering::Release);
            if let Ok(mut r) = reason.lock() {
                r.get_or_insert_with(|| "interrupted by a signal".to_string());
            }
            controls.stop.cancel();
            eprintln!("\nstopping gracefully (press Ctrl-C again to quit at once)");
            wait_for_signal().await;
            std::process::exit(i32::from(exit::EXTERNAL_ABORT));
        });
    }

    let mut scenario_tasks = tokio::task::JoinSet::new();
    for job in jobs {
        scenario_tasks.spawn(run_scenario(
            job,
            Arc::clone(&shared),
            Arc::clone(&controls),
        ));
    }
    let total = plan.regular_duration();
    let mut progress = Progress::new(options.progress);
    let mut series: Vec<SecondPoint> = Vec::new();
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
                shards.set_gauge(Metric::Vus, active as f64);
                shards.set_gauge(Metric::VusMax, allocated as f64);
                let interval = shards.take_interval();
                series.push(SecondPoint {
                    t: elapsed.as_secs_f64(),
                    vus: active as u64,
                    requests: interval.requests,
                    failed: interval.failed,
                    iterations: interval.iterations,
                    dropped: interval.dropped,
                    p50_ms: interval.duration.percentile(50.0),
                    p95_ms: interval.duration.percentile(95.0),
                    p99_ms: interval.duration.percentile(99.0),
                });
                let snapshot = shards.snapshot();
                let failed_rate = match snapshot.metric(Metric::HttpReqFailed) {
                    Some(Value::Rate { passes, total }) if *total > 0 => *passes as f64 / *total as f64,
                    _ => 0.0,
                };
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
                progress.tick(&last_line);
                if second.is_multiple_of(THRESHOLD_EVERY) && !controls.stop.is_cancelled() {
                    let results = thresholds.evaluate(&snapshot, elapsed.as_secs_f64(), false);
                    if let Some(failed) = thresholds.abort_reason(&results, elapsed) {
                        if let Ok(mut reason) = abort_reason.lock() {
                            *reason = Some(format!(
                                "threshold {} '{}' failed with {} and has abortOnFail",
                                failed.metric, failed.threshold, failed.observed()
                            ));
                        }
                        controls.stop.cancel();
                    }
                }
            }
        }
    }
    let run_time = start.elapsed();
    last_line.elapsed = run_time;

    // teardown(): once, after every scenario (also after an abort, as in k6).
    if !teardown.steps.is_empty() {
        let context = ScenarioContext::internal("teardown", test_tags);
        let mut vu = Vu::new(0, &shared);
        if let Err(message) = vu
            .run_once(&shared, &context, &teardown, "::teardown")
            .await
        {
            shared.report_error("teardown", &message);
        }
    }
    shards.wait_flushed(Duration::from_secs(2)).await;
    let snapshot = shards.snapshot();
    last_line.requests = snapshot.count(Metric::HttpReqs.name()) as u64;
    progress.finish(&last_line);
    let results = thresholds.evaluate(&snapshot, run_time.as_secs_f64(), true);
    let aborted = abort_reason.lock().ok().and_then(|r| r.clone());
    let summary = Summary {
        name: test.metadata.name.clone().unwrap_or_default(),
        test_run_duration_ms: run_time.as_secs_f64() * 1000.0,
        metrics: snapshot,
        thresholds: results,
        series,
        trend_stats: test.spec.summary_trend_stats.clone().unwrap_or_else(|| {
            DEFAULT_TREND_STATS
                .iter()
                .map(|s| (*s).to_string())
                .collect()
        }),
        steps,
        checks,
        aborted,
    };
    let exit_code = if interrupted.load(Ordering::Acquire) {
        exit::EXTERNAL_ABORT
    } else if summary.passed() {
        exit::OK
    } else {
        exit::THRESHOLDS_FAILED
    };
    Ok(RunOutcome {
        summary,
        exit_code,
        errors: shared.errors.load(Ordering::Relaxed),
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
