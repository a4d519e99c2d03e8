//! The `stampede` command: validate manifests and print the CRD (run, demo, agent and wait
//! arrive with the runner and operator issues).

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
    };
    ExitCode::from(code)
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
            for test in &result.tests {
                let scenarios = stampede_crds::validate::effective_scenarios(&test.spec);
                let _ = writeln!(
                    out,
                    "{}: LoadTest {} is valid ({} scenario{}: {})",
                    file.display(),
                    test.metadata.name.as_deref().unwrap_or("?"),
                    scenarios.len(),
                    if scenarios.len() == 1 { "" } else { "s" },
                    scenarios
                        .iter()
                        .map(|(name, s)| format!("{name} [{}]", s.executor))
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
