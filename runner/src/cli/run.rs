//! `stampede run`, `stampede demo` and `stampede demo-server`: load a manifest, run it with the
//! engine, print the summary and verdict, export JSON and the HTML report, and map the outcome
//! to k6's exit codes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use stampede_crds::LoadTest;
use stampede_crds::validate::Options;
use stampede_runner::dashboard::{DEFAULT_PERIOD, Dashboard};
use stampede_runner::engine::progress::ProgressMode;
use stampede_runner::engine::{RunOptions, run, run_watched};
use stampede_runner::exit::Exit;
use stampede_runner::html_report::render_html;
use stampede_runner::schedule::ExecutionSegment;
use stampede_runner::summary::{Summary, export_json, write_text};
use stampede_runner::{demo, manifest};

use super::{CommandError, Outcome};

/// The manifest `stampede demo` runs.
const DEMO_MANIFEST: &str = include_str!("../../../examples/demo.yaml");

/// Command-line settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `-e NAME=VALUE` pairs.
    pub env: Vec<String>,
    /// JSON summary file.
    pub summary_export: Option<PathBuf>,
    /// HTML report file.
    pub html_report: Option<PathBuf>,
    /// Where the live dashboard listens, if it is on.
    pub dashboard: Option<std::net::SocketAddr>,
    /// Print every metric.
    pub full_summary: bool,
    /// Duration scale.
    pub duration_scale: f64,
    /// Execution segment.
    pub execution_segment: Option<String>,
    /// Worker threads.
    pub threads: Option<usize>,
    /// No progress.
    pub quiet: bool,
    /// The local VU cap.
    pub max_vus: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            env: Vec::new(),
            summary_export: None,
            html_report: None,
            dashboard: None,
            full_summary: false,
            duration_scale: 1.0,
            execution_segment: None,
            threads: None,
            quiet: false,
            max_vus: stampede_runner::engine::DEFAULT_MAX_VUS,
        }
    }
}

fn parse_env(pairs: &[String]) -> Result<BTreeMap<String, String>, CommandError> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                env.insert(name.to_string(), value.to_string());
            }
            _ => return Err(CommandError::EnvPair(pair.clone())),
        }
    }
    Ok(env)
}

/// `stampede run FILE`: runs the first LoadTest of `file`.
pub fn run_file(
    file: &Path,
    settings: &Settings,
    out: &mut impl Write,
) -> Result<Outcome, CommandError> {
    let env = parse_env(&settings.env)?;
    let options = Options {
        extra_env: env.keys().cloned().collect(),
    };
    let tests = manifest::load_file(file, &options)?;
    let Some(test) = tests.first() else {
        return Err(manifest::ManifestError::Empty(file.display().to_string()).into());
    };
    let base_dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    execute(test, env, base_dir, settings, out)
}

fn execute(
    test: &LoadTest,
    env: BTreeMap<String, String>,
    base_dir: PathBuf,
    settings: &Settings,
    out: &mut impl Write,
) -> Result<Outcome, CommandError> {
    if !(settings.duration_scale > 0.0 && settings.duration_scale <= 1000.0) {
        return Err(CommandError::DurationScale(settings.duration_scale));
    }
    let segment = match settings.execution_segment.as_deref() {
        None => ExecutionSegment::full(),
        Some(text) => {
            ExecutionSegment::parse(text).map_err(|source| CommandError::ExecutionSegment {
                text: text.to_string(),
                source,
            })?
        }
    };
    let options = RunOptions {
        env,
        base_dir,
        segment,
        threads: settings.threads,
        progress: if settings.quiet {
            ProgressMode::Off
        } else {
            ProgressMode::Auto
        },
        handle_signals: true,
        duration_scale: settings.duration_scale,
        max_vus: settings.max_vus,
        ..RunOptions::default()
    };
    let outcome = match settings.dashboard {
        None => run(test, options)?,
        Some(addr) => {
            // Bound before the run, so a taken port fails before any load is sent.
            let listener = Dashboard::bind(addr)?;
            run_watched(test, options, |source| {
                let dashboard = Dashboard::serve(listener, source, DEFAULT_PERIOD);
                match &dashboard {
                    Ok(dashboard) => eprintln!("web dashboard: http://{}", dashboard.addr()),
                    Err(error) => eprintln!("{error}; running without the dashboard"),
                }
                dashboard
            })?
        }
    };
    let _ = write_text(&outcome.summary, settings.full_summary, out);
    let warnings = [
        export_summary(&outcome.summary, settings.summary_export.as_deref()),
        write_html_report(
            &outcome.summary,
            "--report",
            settings.html_report.as_deref(),
        ),
    ];
    Ok(Outcome {
        exit: outcome.exit,
        warnings: warnings.into_iter().filter_map(Result::err).collect(),
    })
}

/// Writes the HTML report to `path` (named by `flag`), if asked for.
pub fn write_html_report(
    summary: &Summary,
    flag: &'static str,
    path: Option<&Path>,
) -> Result<(), CommandError> {
    let Some(path) = path else {
        return Ok(());
    };
    std::fs::write(path, render_html(summary)).map_err(|source| CommandError::HtmlReport {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `--summary-export FILE` (k6's JSON), if asked for.
pub fn export_summary(summary: &Summary, path: Option<&Path>) -> Result<(), CommandError> {
    let Some(path) = path else {
        return Ok(());
    };
    let json = export_json(summary);
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    std::fs::write(path, text).map_err(|source| CommandError::SummaryExport {
        path: path.to_path_buf(),
        source,
    })
}

/// `stampede demo`: the demo server in-process on a free loopback port, and the demo test.
pub fn demo(settings: &Settings, out: &mut impl Write) -> Result<Outcome, CommandError> {
    let test: LoadTest =
        serde_yaml_ng::from_str(DEMO_MANIFEST).map_err(CommandError::DemoManifest)?;
    // The server gets its own runtime thread so the load generator's threads stay its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(CommandError::DemoRuntime)?;
    let server = runtime
        .block_on(demo::DemoServer::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            demo::DemoConfig::default(),
        ))
        .map_err(CommandError::DemoStart)?;
    let base_url = server.base_url();
    let _ = writeln!(
        out,
        "demo server listening on {base_url}\nrunning LoadTest {} (examples/demo.yaml): ramping-vus spike to 100 VUs + 50 req/s browse, ~{:.0}s\n",
        test.metadata.name.as_deref().unwrap_or("demo"),
        30.0 * settings.duration_scale
    );
    let env = BTreeMap::from([("BASE_URL".to_string(), base_url)]);
    let outcome = execute(&test, env, PathBuf::from("."), settings, out);
    runtime.block_on(server.shutdown());
    outcome
}

/// `stampede demo-server --listen ADDR`: serves until SIGINT or SIGTERM.
pub fn demo_server(
    listen: std::net::SocketAddr,
    out: &mut impl Write,
) -> Result<Outcome, CommandError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    runtime
        .block_on(demo::run_until_signal(
            listen,
            demo::DemoConfig::default(),
            out,
        ))
        .map_err(|source| CommandError::DemoServer { listen, source })?;
    Ok(Exit::Ok.into())
}
