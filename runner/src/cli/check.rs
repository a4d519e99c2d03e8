//! `stampede validate` and `stampede crd`: check manifests the way the operator does, and print
//! the CRD. Validation diagnostics are `validate`'s normal output (stdout); only files it could
//! not read are errors.

use std::io::Write;
use std::path::PathBuf;

use stampede_crds::validate::Options;
use stampede_runner::exit::Exit;
use stampede_runner::manifest;
use stampede_runner::schedule::sizing::Caps;

use super::{CommandError, Outcome};

/// `stampede validate FILE...`: every problem of every file; [`Exit::InvalidConfig`] when one
/// has a problem or holds no LoadTest. Files it cannot read are reported after the others are
/// checked.
pub fn validate(
    files: &[PathBuf],
    env: &[String],
    quiet: bool,
    caps: &Caps,
    out: &mut impl Write,
) -> Result<Outcome, CommandError> {
    let mut options = Options::default();
    for pair in env {
        let name = pair.split_once('=').map_or(pair.as_str(), |(name, _)| name);
        options.extra_env.insert(name.to_string());
    }
    let mut failed = false;
    let mut unreadable = Vec::new();
    for file in files {
        let result = match manifest::check_file_with(file, &options, Some(caps)) {
            Ok(report) => report,
            Err(error) => {
                unreadable.push(error);
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
                Exit::InvalidConfig.code()
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
    if !unreadable.is_empty() {
        return Err(CommandError::Unreadable(unreadable));
    }
    Ok(if failed {
        Exit::InvalidConfig
    } else {
        Exit::Ok
    }
    .into())
}

/// `stampede crd`: the LoadTest CustomResourceDefinition as YAML.
pub fn crd(out: &mut impl Write) -> Result<Outcome, CommandError> {
    write!(out, "{}", stampede_crds::crd::yaml()).map_err(CommandError::Output)?;
    Ok(Exit::Ok.into())
}
