//! `stampede run`, `stampede demo` and `stampede demo-server`: load a manifest, run it with the
//! engine, print the summary and verdict, export JSON, and map the outcome to k6's exit codes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use stampede_crds::LoadTest;
use stampede_crds::validate::Options;
use stampede_runner::engine::progress::ProgressMode;
use stampede_runner::engine::{RunOptions, run};
use stampede_runner::schedule::ExecutionSegment;
use stampede_runner::summary::{export_json, write_text};
use stampede_runner::{demo, exit, manifest};

/// The manifest `stampede demo` runs.
const DEMO_MANIFEST: &str = include_str!("../../examples/demo.yaml");

/// Command-line settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `-e NAME=VALUE` pairs.
    pub env: Vec<String>,
    /// JSON summary file.
    pub summary_export: Option<PathBuf>,
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            env: Vec::new(),
            summary_export: None,
            full_summary: false,
            duration_scale: 1.0,
            execution_segment: None,
            threads: None,
            quiet: false,
        }
    }
}

fn parse_env(pairs: &[String], out: &mut impl Write) -> Option<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                env.insert(name.to_string(), value.to_string());
            }
            _ => {
                let _ = writeln!(
                    out,
                    "-e {pair:?}: write NAME=VALUE, e.g. -e BASE_URL=http://127.0.0.1:8080"
                );
                return None;
            }
        }
    }
    Some(env)
}

/// Runs the first LoadTest of `file`.
pub fn run_file(file: &Path, settings: &Settings, out: &mut impl Write) -> u8 {
    let Some(env) = parse_env(&settings.env, out) else {
        return exit::INVALID_CONFIG;
    };
    let options = Options {
        extra_env: env.keys().cloned().collect(),
    };
    let tests = match manifest::load_file(file, &options) {
        Ok(tests) => tests,
        Err(error) => {
            let _ = writeln!(out, "{error}");
            return exit::INVALID_CONFIG;
        }
    };
    let base_dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    execute(&tests[0], env, base_dir, settings, out)
}

fn execute(
    test: &LoadTest,
    env: BTreeMap<String, String>,
    base_dir: PathBuf,
    settings: &Settings,
    out: &mut impl Write,
) -> u8 {
    if !(settings.duration_scale > 0.0 && settings.duration_scale <= 1000.0) {
        let _ = writeln!(
            out,
            "--duration-scale {}: use a factor above 0 (e.g. 0.1)",
            settings.duration_scale
        );
        return exit::INVALID_CONFIG;
    }
    let segment = match settings.execution_segment.as_deref() {
        None => ExecutionSegment::full(),
        Some(text) => match ExecutionSegment::parse(text) {
            Ok(segment) => segment,
            Err(error) => {
                let _ = writeln!(out, "--execution-segment {text:?}: {error}");
                return exit::INVALID_CONFIG;
            }
        },
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
        ..RunOptions::default()
    };
    let outcome = match run(test, options) {
        Ok(outcome) => outcome,
        Err(error) => {
            let _ = writeln!(out, "{error}");
            return exit::INVALID_CONFIG;
        }
    };
    let _ = write_text(&outcome.summary, settings.full_summary, out);
    if let Some(path) = &settings.summary_export {
        let json = export_json(&outcome.summary);
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        if let Err(error) = std::fs::write(path, text) {
            let _ = writeln!(out, "--summary-export {}: {error}", path.display());
        }
    }
    outcome.exit_code
}

/// `stampede demo`: the demo server in-process on a free loopback port, and the demo test.
pub fn demo(settings: &Settings, out: &mut impl Write) -> u8 {
    let test: LoadTest = match serde_yaml_ng::from_str(DEMO_MANIFEST) {
        Ok(test) => test,
        Err(error) => {
            let _ = writeln!(out, "built-in demo manifest does not parse: {error}");
            return exit::INVALID_CONFIG;
        }
    };
    // The server gets its own runtime thread so the load generator's threads stay its own.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(out, "cannot start the demo server runtime: {error}");
            return 1;
        }
    };
    let server = match runtime.block_on(demo::DemoServer::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        demo::DemoConfig::default(),
    )) {
        Ok(server) => server,
        Err(error) => {
            let _ = writeln!(out, "cannot start the demo server: {error}");
            return 1;
        }
    };
    let base_url = server.base_url();
    let _ = writeln!(
        out,
        "demo server listening on {base_url}\nrunning LoadTest {} (examples/demo.yaml): ramping-vus spike to 100 VUs + 50 req/s browse, ~{:.0}s\n",
        test.metadata.name.as_deref().unwrap_or("demo"),
        30.0 * settings.duration_scale
    );
    let env = BTreeMap::from([("BASE_URL".to_string(), base_url)]);
    let code = execute(&test, env, PathBuf::from("."), settings, out);
    runtime.block_on(server.shutdown());
    code
}

/// `stampede demo-server --listen ADDR`.
pub fn demo_server(listen: std::net::SocketAddr) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return 1;
        }
    };
    match runtime.block_on(demo::run_until_signal(listen, demo::DemoConfig::default())) {
        Ok(()) => exit::OK,
        Err(error) => {
            eprintln!("demo server on {listen}: {error}");
            1
        }
    }
}
