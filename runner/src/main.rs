//! The `stampede` command: run LoadTests locally, the demo, the demo server, validation, the
//! CRD, and the cluster commands (`wait` for a LoadTest's verdict, `report` its result, and
//! `agent`, a runner pod's entrypoint). The commands live in `cli/`; this file parses the
//! command line, prints a command's error once on stderr and exits with its code.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use stampede_runner::exit::Exit;
use stampede_runner::schedule::sizing::{self, Caps};

mod cli;

use cli::run::Settings;
use cli::{CommandError, Outcome};

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
        /// The operator's cap on runners per LoadTest (its --max-runners).
        #[arg(long, default_value_t = sizing::DEFAULT_MAX_RUNNERS)]
        max_runners: u64,
        /// The operator's cap on peak VUs per LoadTest (its --max-vus-per-test).
        #[arg(long, default_value_t = sizing::DEFAULT_MAX_VUS_PER_TEST)]
        max_vus_per_test: u64,
        /// The operator's runner size when a spec sets none (its --default-max-vus-per-runner).
        #[arg(long, default_value_t = sizing::DEFAULT_MAX_VUS_PER_RUNNER)]
        default_max_vus_per_runner: u64,
    },
    /// Print the LoadTest CustomResourceDefinition as YAML.
    Crd,
    /// Run a LoadTest on this machine: progress while it runs, then the summary and verdict
    /// (exit 0 passed, 99 thresholds failed, 104 invalid, 105 interrupted).
    Run(RunArgs),
    /// Start the built-in demo server on a free loopback port and load-test it (~30 s; exit
    /// codes as `stampede run`'s).
    Demo {
        /// Summary details.
        #[arg(long, value_enum, default_value_t = SummaryMode::Compact)]
        summary_mode: SummaryMode,
        /// Also write the summary as JSON to this file.
        #[arg(long, value_name = "FILE")]
        summary_export: Option<PathBuf>,
        #[command(flatten)]
        see: SeeArgs,
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
        #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
        timeout: Option<Duration>,
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
        /// Also write the HTML report (one file that opens offline) to this file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Open the operator's live fleet dashboard: forwards a local port to the leading operator
    /// pod (as `kubectl port-forward` does), prints the LoadTest's page and opens it in a
    /// browser on a desktop; Ctrl-C stops. Needs `get` on loadtests, `list` on pods and
    /// `create` on pods/portforward in the operator's namespace.
    Dashboard {
        /// The LoadTest's name (none: the list of every LoadTest).
        name: Option<String>,
        /// Its namespace (default: the kubeconfig context's).
        #[arg(short, long)]
        namespace: Option<String>,
        /// Where the operator runs (the chart's release namespace).
        #[arg(long, default_value = "stampede-system")]
        operator_namespace: String,
        /// The local port (0: any free one).
        #[arg(long, default_value_t = 5665)]
        port: u16,
        /// Print the address without opening a browser.
        #[arg(long)]
        no_open: bool,
    },
    /// Run one runner's part of a LoadTest in a cluster (the runner pods' entrypoint; the
    /// operator's Job sets STAMPEDE_LOADTEST, STAMPEDE_NAMESPACE, STAMPEDE_RUN, STAMPEDE_RUNNERS,
    /// STAMPEDE_REPORTS and JOB_COMPLETION_INDEX). Exit 0 unless the runner itself failed (1),
    /// 2 outside a runner pod.
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

/// How a person sees a local run (`run` and `demo`): the HTML report and the live dashboard.
#[derive(Debug, Clone, clap::Args)]
struct SeeArgs {
    /// Write the HTML report (one file that opens offline: verdict, thresholds, charts, steps,
    /// checks) to this file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Serve the live dashboard while the test runs, as k6's web dashboard: the report page,
    /// updated every 2 s; at the end it shows the final report.
    #[arg(long)]
    dashboard: bool,
    /// Where the dashboard listens (port 0: any free port, printed at the start).
    #[arg(long, value_name = "ADDR", default_value = stampede_runner::dashboard::DEFAULT_ADDR)]
    dashboard_addr: std::net::SocketAddr,
}

impl SeeArgs {
    /// The live dashboard's address, when it is on.
    fn dashboard(&self) -> Option<std::net::SocketAddr> {
        self.dashboard.then_some(self.dashboard_addr)
    }
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
    #[command(flatten)]
    see: SeeArgs,
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
    /// Refuse a test that needs more VUs than this at once on this machine (each takes 8-20 KiB).
    #[arg(long, value_name = "N", default_value_t = stampede_runner::engine::DEFAULT_MAX_VUS)]
    max_vus: u64,
    /// Do not show progress.
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help and --version on stdout, its errors on stderr.
            let _ = error.print();
            return parse_failure_exit(&error).into();
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = execute(cli.command, &mut out);
    let _ = out.flush();
    match result {
        Ok(outcome) => {
            for warning in &outcome.warnings {
                eprintln!("{warning}");
            }
            outcome.exit.into()
        }
        Err(error) => {
            eprintln!("{error}");
            error.exit().into()
        }
    }
}

/// Runs a command, its normal output to `out`.
fn execute(command: Command, out: &mut impl Write) -> Result<Outcome, CommandError> {
    match command {
        Command::Validate {
            files,
            env,
            quiet,
            max_runners,
            max_vus_per_test,
            default_max_vus_per_runner,
        } => {
            let caps = Caps {
                max_runners,
                max_vus_per_test,
                default_max_vus_per_runner,
            };
            cli::check::validate(&files, &env, quiet, &caps, out)
        }
        Command::Crd => cli::check::crd(out),
        Command::Run(args) => cli::run::run_file(&args.file, &Settings::from(&args), out),
        Command::Demo {
            summary_mode,
            summary_export,
            see,
            duration_scale,
        } => cli::run::demo(
            &Settings {
                full_summary: summary_mode == SummaryMode::Full,
                summary_export,
                dashboard: see.dashboard(),
                html_report: see.report,
                duration_scale,
                ..Settings::default()
            },
            out,
        ),
        Command::DemoServer { listen } => cli::run::demo_server(listen, out),
        Command::Wait {
            name,
            namespace,
            timeout,
        } => cli::cluster::wait(&name, namespace, timeout, out),
        Command::Report {
            name,
            namespace,
            full,
            summary_export,
            html,
        } => cli::cluster::report(
            &name,
            namespace,
            full,
            summary_export.as_deref(),
            html.as_deref(),
            out,
        ),
        Command::Agent => cli::cluster::agent(),
        Command::Dashboard {
            name,
            namespace,
            operator_namespace,
            port,
            no_open,
        } => cli::cluster::dashboard(
            name.as_deref(),
            namespace,
            &operator_namespace,
            port,
            !no_open,
            out,
        ),
    }
}

/// The exit code of a command line clap refused (it has printed why): 0 for `--help` and
/// `--version`, [`Exit::InvalidConfig`] for a value it could not parse (as the commands' own
/// checks of values), [`Exit::Usage`] for anything else (an unknown flag, a missing argument).
fn parse_failure_exit(error: &clap::Error) -> Exit {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => Exit::InvalidConfig,
        _ => Exit::Usage,
    }
}

/// `stampede wait --timeout`: a duration as manifests write them.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    stampede_crds::duration::parse(text)
        .map_err(|error| format!("{error} (write it like 90s, 30m or 1h)"))
}

impl From<&RunArgs> for Settings {
    fn from(args: &RunArgs) -> Self {
        Settings {
            env: args.env.clone(),
            summary_export: args.summary_export.clone(),
            html_report: args.see.report.clone(),
            dashboard: args.see.dashboard(),
            full_summary: args.summary_mode == SummaryMode::Full,
            duration_scale: args.duration_scale,
            execution_segment: args.execution_segment.clone(),
            threads: args.threads,
            quiet: args.quiet,
            max_vus: args.max_vus,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("stampede").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn wait_timeout_is_a_duration_parsed_by_clap() {
        match parse(&["wait", "gate", "--timeout", "1m30s"]) {
            Ok(Cli {
                command: Command::Wait { timeout, .. },
            }) => assert_eq!(timeout, Some(Duration::from_secs(90))),
            other => panic!("not a wait with a timeout: {other:?}"),
        }
        let error = parse(&["wait", "gate", "--timeout", "soon"]).expect_err("not a duration");
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        assert!(
            error.to_string().contains("(write it like 90s, 30m or 1h)"),
            "{error}"
        );
        assert_eq!(parse_failure_exit(&error), Exit::InvalidConfig);
    }

    #[test]
    fn refused_command_lines_exit_with_usage_or_invalid_config() {
        let unknown = parse(&["wait", "gate", "--nope"]).expect_err("unknown flag");
        assert_eq!(parse_failure_exit(&unknown), Exit::Usage);
        let missing = parse(&["wait"]).expect_err("no name");
        assert_eq!(parse_failure_exit(&missing), Exit::Usage);
        let value = parse(&["demo", "--summary-mode", "loud"]).expect_err("no such mode");
        assert_eq!(parse_failure_exit(&value), Exit::InvalidConfig);
        let help = parse(&["--help"]).expect_err("help is not a command");
        assert_eq!(parse_failure_exit(&help), Exit::Ok);
    }
}
