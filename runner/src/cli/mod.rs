//! The `stampede` binary's commands, one shape for all: a command writes its normal output to
//! an `impl Write` (stdout) and returns an [`Outcome`] or a typed [`CommandError`]; `main`
//! prints the error once, on stderr, and exits with its [`Exit`] code.

use std::net::SocketAddr;
use std::path::PathBuf;

use stampede_runner::cluster::{AgentFailure, ResultError, WaitError};
use stampede_runner::engine::RunError;
use stampede_runner::exit::Exit;
use stampede_runner::manifest::ManifestError;
use stampede_runner::schedule::SegmentError;

pub mod check;
pub mod cluster;
pub mod run;

/// How a command that did its job ended.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code: the verdict for `run`, `demo`, `wait` and `report`, 104 for
    /// `validate` when a manifest has problems.
    pub exit: Exit,
    /// Errors that neither stopped the command nor change its exit code (a summary file that
    /// could not be written); `main` prints them on stderr.
    pub warnings: Vec<CommandError>,
}

impl From<Exit> for Outcome {
    fn from(exit: Exit) -> Outcome {
        Outcome {
            exit,
            warnings: Vec::new(),
        }
    }
}

/// Why a command could not do its job. The message is what the user sees on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A `-e` pair is not `NAME=VALUE`.
    #[error("-e {0:?}: write NAME=VALUE, e.g. -e BASE_URL=http://127.0.0.1:8080")]
    EnvPair(String),
    /// `--duration-scale` is out of range.
    #[error("--duration-scale {0}: use a factor above 0 (e.g. 0.1)")]
    DurationScale(f64),
    /// `--execution-segment` does not parse.
    #[error("--execution-segment {text:?}: {source}")]
    ExecutionSegment {
        /// The value given.
        text: String,
        /// Why it is wrong.
        source: SegmentError,
    },
    /// The manifest cannot be read or has problems.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Files `stampede validate` could not read (the others were still checked).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Unreadable(Vec<ManifestError>),
    /// The run could not start or finish.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The live dashboard could not listen.
    #[error(transparent)]
    Dashboard(#[from] stampede_runner::dashboard::DashboardError),
    /// The built-in demo manifest does not parse (a defect of the build).
    #[error("built-in demo manifest does not parse: {0}")]
    DemoManifest(serde_yaml_ng::Error),
    /// `stampede demo`'s server runtime could not start.
    #[error("cannot start the demo server runtime: {0}")]
    DemoRuntime(std::io::Error),
    /// `stampede demo`'s server could not start.
    #[error("cannot start the demo server: {0}")]
    DemoStart(std::io::Error),
    /// `stampede demo-server` could not listen or serve.
    #[error("demo server on {listen}: {source}")]
    DemoServer {
        /// The address it was to listen on.
        listen: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// No cluster client could be made.
    #[error("cannot reach the cluster (KUBECONFIG or in-cluster config): {0}")]
    Connect(kube::Error),
    /// `stampede wait` could not tell a verdict.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// `stampede dashboard` cannot reach the operator's dashboard.
    #[error(transparent)]
    Forward(#[from] stampede_runner::cluster::ForwardError),
    /// `stampede report` found no result to show.
    #[error(transparent)]
    Result(#[from] ResultError),
    /// `stampede agent` could not do its part.
    #[error(transparent)]
    Agent(#[from] AgentFailure),
    /// `--summary-export` could not be written.
    #[error("--summary-export {}: {source}", path.display())]
    SummaryExport {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTML report could not be written.
    #[error("{flag} {}: {source}", path.display())]
    HtmlReport {
        /// The flag that named the file (`--report` or `--html`).
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output could not be written.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

impl CommandError {
    /// The process exit code. A problem with the manifest or a command-line value is an
    /// invalid config (104); a failed wait or agent keeps its own code; anything else is 1.
    pub fn exit(&self) -> Exit {
        match self {
            CommandError::EnvPair(_)
            | CommandError::DurationScale(_)
            | CommandError::ExecutionSegment { .. }
            | CommandError::Manifest(_)
            | CommandError::Unreadable(_)
            | CommandError::Run(_)
            | CommandError::DemoManifest(_) => Exit::InvalidConfig,
            CommandError::Wait(error) => error.exit(),
            CommandError::Agent(error) => error.exit(),
            CommandError::DemoRuntime(_)
            | CommandError::DemoStart(_)
            | CommandError::DemoServer { .. }
            | CommandError::Runtime(_)
            | CommandError::Connect(_)
            | CommandError::Result(_)
            | CommandError::SummaryExport { .. }
            | CommandError::HtmlReport { .. }
            | CommandError::Dashboard(_)
            | CommandError::Forward(_)
            | CommandError::Output(_) => Exit::Failure,
        }
    }
}

/// A single-threaded runtime for the cluster commands.
fn current_thread_runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(message: &str) -> std::io::Error {
        std::io::Error::other(message.to_string())
    }

    #[test]
    fn command_errors_read_as_today_and_map_to_their_exit_code() {
        let cases = [
            (
                CommandError::EnvPair("BASE_URL".into()),
                "-e \"BASE_URL\": write NAME=VALUE, e.g. -e BASE_URL=http://127.0.0.1:8080"
                    .to_string(),
                Exit::InvalidConfig,
            ),
            (
                CommandError::DurationScale(0.0),
                "--duration-scale 0: use a factor above 0 (e.g. 0.1)".to_string(),
                Exit::InvalidConfig,
            ),
            (
                CommandError::ExecutionSegment {
                    text: "1/4:x".into(),
                    source: SegmentError::Malformed("x".into()),
                },
                "--execution-segment \"1/4:x\": \"x\" is not a fraction, decimal or percentage (write 1/4, 0.25 or 25%)"
                    .to_string(),
                Exit::InvalidConfig,
            ),
            (
                CommandError::Unreadable(vec![
                    ManifestError::Read {
                        path: "a.yaml".into(),
                        source: io("gone"),
                    },
                    ManifestError::Read {
                        path: "b.yaml".into(),
                        source: io("denied"),
                    },
                ]),
                "a.yaml: cannot read: gone\nb.yaml: cannot read: denied".to_string(),
                Exit::InvalidConfig,
            ),
            (
                CommandError::DemoStart(io("address in use")),
                "cannot start the demo server: address in use".to_string(),
                Exit::Failure,
            ),
            (
                CommandError::DemoServer {
                    listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                    source: io("address in use"),
                },
                "demo server on 127.0.0.1:8080: address in use".to_string(),
                Exit::Failure,
            ),
            (
                CommandError::Runtime(io("no threads")),
                "cannot start the runtime: no threads".to_string(),
                Exit::Failure,
            ),
            (
                CommandError::SummaryExport {
                    path: PathBuf::from("out/summary.json"),
                    source: io("no such directory"),
                },
                "--summary-export out/summary.json: no such directory".to_string(),
                Exit::Failure,
            ),
            (
                CommandError::Wait(WaitError::TimedOut {
                    name: "gate".into(),
                    limit: std::time::Duration::from_secs(2),
                }),
                "loadtest/gate: timed out after 2s before the run finished".to_string(),
                Exit::Timeout,
            ),
            (
                CommandError::Result(ResultError::NotFinished("gate".into())),
                "loadtest/gate has no result yet (status.resultRef is set when a run finishes); follow it with `stampede wait gate`".to_string(),
                Exit::Failure,
            ),
        ];
        for (error, message, exit) in cases {
            assert_eq!(error.to_string(), message);
            assert_eq!(error.exit(), exit, "{message}");
        }
    }
}
