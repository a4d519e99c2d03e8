//! The `stampede` command: run LoadTests locally, the demo, the demo server, validation, the
//! CRD, and `wait` for a LoadTest's verdict in a cluster (the agent arrives with the operator).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stampede_crds::validate::Options;
use stampede_runner::{exit, manifest};

#[derive(Debug, Parser)]
#[command(
    name = "stampede",
    version,
    about = "k6-style load tests as Kubernetes resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check LoadTest manifests and list every problem (exit 0 when valid, 104 when not).
    Validate {
        /// Manifest files (multi-document YAML; non-LoadTest documents are skipped).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Environment variables the test will get from the command line (`-e NAME=value`),
        /// so templates may read them.
        #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
        env: Vec<String>,
        /// Print only problems.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print the LoadTest CustomResourceDefinition as YAML.
    Crd,
    /// Run a LoadTest on this machine: progress while it runs, then the summary and verdict
    /// (exit 0 passed, 99 thresholds failed, 104 invalid, 105 interrupted).
    Run(RunArgs),
    /// Start the built-in demo server on a free loopback port and load-test it (~30 s).
    Demo {
        /// Summary details.
        #[arg(long, value_enum, default_value_t = SummaryMode::Compact)]
        summary_mode: SummaryMode,
        /// Also write the summary as JSON to this file.
        #[arg(long, value_name = "FILE")]
        summary_export: Option<PathBuf>,
        /// Multiply the demo's durations and stages by this factor (0.2 runs it in ~6 s).
        #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
        duration_scale: f64,
    },
    /// Follow a LoadTest in the cluster until its run is over, printing progress and the verdict
    /// (exit 0 passed, 99 thresholds failed, 103 errored, 104 invalid, 108 aborted, 102 timed
    /// out, 1 not found or no cluster access). Uses $KUBECONFIG or the in-cluster config.
    Wait {
        /// The LoadTest's name.
        name: String,
        /// Its namespace (default: the kubeconfig context's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Give up after this long (e.g. 30m, 90s); default: wait as long as it takes.
        #[arg(long, value_name = "DURATION")]
        timeout: Option<String>,
    },
    /// Print the merged summary of a LoadTest's last finished run in a cluster (from the
    /// ConfigMap its status.resultRef names), as `stampede run` prints it; exit 0 passed, 99
    /// thresholds failed, 1 no result or no cluster access.
    Report {
        /// The LoadTest's name.
        name: String,
        /// Its namespace (default: the kubeconfig context's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Print every metric, not only the k6 default set.
        #[arg(long)]
        full: bool,
        /// Also write k6's --summary-export JSON to this file.
        #[arg(long, value_name = "FILE")]
        summary_export: Option<PathBuf>,
    },
    /// Run one runner's part of a LoadTest in a cluster (the runner pods' entrypoint; the
    /// operator's Job sets STAMPEDE_LOADTEST, STAMPEDE_NAMESPACE, STAMPEDE_RUN, STAMPEDE_RUNNERS,
    /// STAMPEDE_REPORTS and JOB_COMPLETION_INDEX). Exit 0 unless the runner itself failed.
    Agent,
    /// Serve the demo API (shop, trading, reservations, concert queue, httpbin-style endpoints).
    DemoServer {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SummaryMode {
    /// k6's default: hides the timing phases.
    Compact,
    /// Every metric.
    Full,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The manifest (the first LoadTest in it runs).
    file: PathBuf,
    /// Set an environment variable for templates (`${env.NAME}`), overriding spec.env.
    #[arg(short = 'e', long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Write the summary as JSON to this file (schema: runner/summary.schema.json).
    #[arg(long, value_name = "FILE")]
    summary_export: Option<PathBuf>,
    /// Summary details.
    #[arg(long, value_enum, default_value_t = SummaryMode::Compact)]
    summary_mode: SummaryMode,
    /// Multiply scenario durations, stages and start times by this factor (e.g. 0.1 runs a
    /// 10-minute ramp in 1 minute); sleeps and timeouts keep their values.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    duration_scale: f64,
    /// Run only this segment of the test (k6 --execution-segment, e.g. 1/4:2/4).
    #[arg(long, value_name = "a:b")]
    execution_segment: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Do not show progress.
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match cli.command {
        Command::Validate { files, env, quiet } => validate(&files, &env, quiet, &mut out),
        Command::Crd => match write!(out, "{}", stampede_crds::crd::yaml()) {
            Ok(()) => exit::OK,
            Err(_) => 1,
        },
        Command::Run(args) => run::run_file(&args.file, &run::Settings::from(&args), &mut out),
        Command::Demo {
            summary_mode,
            summary_export,
            duration_scale,
        } => run::demo(
            &run::Settings {
                full_summary: summary_mode == SummaryMode::Full,
                summary_export,
                duration_scale,
                ..run::Settings::default()
            },
            &mut out,
        ),
        Command::DemoServer { listen } => run::demo_server(listen),
        Command::Agent => stampede_runner::agent::agent(),
        Command::Report {
            name,
            namespace,
            full,
            summary_export,
        } => report(&name, namespace, full, summary_export.as_deref(), &mut out),
        Command::Wait {
            name,
            namespace,
            timeout,
        } => wait(&name, namespace, timeout.as_deref(), &mut out),
    };
    ExitCode::from(code)
}

mod run;

impl From<&RunArgs> for run::Settings {
    fn from(args: &RunArgs) -> Self {
        run::Settings {
            env: args.env.clone(),
            summary_export: args.summary_export.clone(),
            full_summary: args.summary_mode == SummaryMode::Full,
            duration_scale: args.duration_scale,
            execution_segment: args.execution_segment.clone(),
            threads: args.threads,
            quiet: args.quiet,
        }
    }
}

fn validate(files: &[PathBuf], env: &[String], quiet: bool, out: &mut impl Write) -> u8 {
    let mut options = Options::default();
    for pair in env {
        let name = pair.split_once('=').map_or(pair.as_str(), |(name, _)| name);
        options.extra_env.insert(name.to_string());
    }
    let mut failed = false;
    for file in files {
        let result = match manifest::check_file(file, &options) {
            Ok(report) => report,
            Err(error) => {
                failed = true;
                let _ = writeln!(out, "{error}");
                continue;
            }
        };
        for diagnostic in &result.diagnostics {
            let _ = writeln!(out, "{diagnostic}");
        }
        if !result.is_valid() {
            failed = true;
            let count = result.diagnostics.len();
            let _ = writeln!(
                out,
                "{}: {count} problem{} (exit {})",
                file.display(),
                if count == 1 { "" } else { "s" },
                exit::INVALID_CONFIG
            );
        } else if result.tests.is_empty() {
            failed = true;
            let _ = writeln!(
                out,
                "{}: holds no LoadTest (want apiVersion: {}, kind: LoadTest)",
                file.display(),
                manifest::API_VERSION
            );
        } else if !quiet {
            for (test, compiled) in result.tests.iter().zip(&result.compiled) {
                let scenarios = &compiled.scenarios;
                let _ = writeln!(
                    out,
                    "{}: LoadTest {} is valid ({} scenario{}: {})",
                    file.display(),
                    test.metadata.name.as_deref().unwrap_or("?"),
                    scenarios.len(),
                    if scenarios.len() == 1 { "" } else { "s" },
                    scenarios
                        .iter()
                        .map(|s| format!("{} [{}]", s.name, s.executor.kind()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    if failed {
        exit::INVALID_CONFIG
    } else {
        exit::OK
    }
}

/// `stampede wait`: parses the timeout, connects, follows.
fn report(
    name: &str,
    namespace: Option<String>,
    full: bool,
    summary_export: Option<&std::path::Path>,
    out: &mut impl Write,
) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(out, "cannot start the runtime: {error}");
            return exit::FAILURE;
        }
    };
    let summary = runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(|error| {
            format!("cannot reach the cluster (KUBECONFIG or in-cluster config): {error}")
        })?;
        let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
        stampede_runner::result::fetch(client, &namespace, name)
            .await
            .map_err(|e| e.to_string())
    });
    let summary = match summary {
        Ok(summary) => summary,
        Err(message) => {
            let _ = writeln!(out, "{message}");
            return exit::FAILURE;
        }
    };
    let _ = stampede_runner::summary::write_text(&summary, full, out);
    if let Some(path) = summary_export {
        let json = stampede_runner::summary::export_json(&summary);
        if let Err(error) = std::fs::write(
            path,
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        ) {
            let _ = writeln!(out, "--summary-export {}: {error}", path.display());
        }
    }
    if summary.passed() {
        exit::OK
    } else {
        exit::THRESHOLDS_FAILED
    }
}

fn wait(name: &str, namespace: Option<String>, timeout: Option<&str>, out: &mut impl Write) -> u8 {
    let timeout = match timeout.map(stampede_crds::duration::parse) {
        None => None,
        Some(Ok(duration)) => Some(duration),
        Some(Err(error)) => {
            let _ = writeln!(out, "--timeout: {error} (write it like 90s, 30m or 1h)");
            return exit::INVALID_CONFIG;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(out, "cannot start the runtime: {error}");
            return exit::FAILURE;
        }
    };
    runtime.block_on(async {
        let client = match kube::Client::try_default().await {
            Ok(client) => client,
            Err(error) => {
                let _ = writeln!(
                    out,
                    "cannot reach the cluster (KUBECONFIG or in-cluster config): {error}"
                );
                return exit::FAILURE;
            }
        };
        let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_string());
        stampede_runner::wait::follow(client, &namespace, name, timeout, out).await
    })
}
