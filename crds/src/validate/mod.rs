//! The one validation of a LoadTest, shared by `stampede validate`, `stampede run`, the runner
//! agent and the operator. It returns every problem at once, each with its field path and a fix.

mod data;
mod flows;
mod limits;
mod scenarios;
mod thresholds;

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::duration;
use crate::path::FieldPath;
use crate::spec::{LoadTest, LoadTestSpec};
pub(crate) use crate::suggest::suggestion;

pub use scenarios::effective_scenarios;

/// `text` (a template) rendered now, when every reference in it is `${env.NAME}` of a static
/// `spec.env` value that nothing can replace: what every runner in a cluster will see, e.g. a
/// request URL to check against the operator's target policy before the run starts.
pub fn render_static(text: &str, spec: &LoadTestSpec) -> Option<String> {
    data::render_static(text, spec, &Options::default())
}

/// One thing wrong with a manifest: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The field the problem is about.
    pub path: FieldPath,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: FieldPath, message: impl Into<String>) -> Self {
        Problem {
            path,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Options for validation that come from outside the manifest.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Environment variable names supplied on the command line (`stampede run -e NAME=...`);
    /// templates may read them although `spec.env` does not list them.
    pub extra_env: BTreeSet<String>,
}

/// Validates a whole LoadTest (metadata and spec). An empty result means it is valid.
pub fn validate(test: &LoadTest) -> Vec<Problem> {
    validate_with(test, &Options::default())
}

/// [`validate`] with options.
pub fn validate_with(test: &LoadTest, options: &Options) -> Vec<Problem> {
    let mut problems = Problems::default();
    match test.metadata.name.as_deref() {
        None | Some("") if test.metadata.generate_name.is_none() => problems.push(
            FieldPath::keys(&["metadata", "name"]),
            "is missing: every LoadTest needs a name (write metadata: {name: my-test})",
        ),
        Some(name) if !is_dns_subdomain(name) => problems.push(
            FieldPath::keys(&["metadata", "name"]),
            format!(
                "{name:?} is not a valid Kubernetes name (use lower-case letters, digits and '-', e.g. checkout-spike)"
            ),
        ),
        _ => {}
    }
    validate_spec_into(
        &test.spec,
        options,
        &FieldPath::root().key("spec"),
        &mut problems,
    );
    problems.finish()
}

/// Validates a spec alone; paths start at `spec`.
pub fn validate_spec(spec: &LoadTestSpec, options: &Options) -> Vec<Problem> {
    let mut problems = Problems::default();
    validate_spec_into(spec, options, &FieldPath::root().key("spec"), &mut problems);
    problems.finish()
}

fn validate_spec_into(
    spec: &LoadTestSpec,
    options: &Options,
    path: &FieldPath,
    problems: &mut Problems,
) {
    let scenarios = scenarios::check(spec, path, problems);
    let env = data::check_env(spec, options, path, problems);
    let tables = data::check_tables(spec, path, problems);
    data::check_defaults(spec, &env, options, path, problems);
    let names = flows::check(spec, &scenarios, &env, &tables, path, problems);
    thresholds::check(spec, &scenarios, &names, path, problems);
    data::check_runners_and_summary(spec, path, problems);
    limits::check(spec, path, problems);
}

/// Collects problems while validating.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    pub(crate) fn push(&mut self, path: FieldPath, message: impl Into<String>) {
        self.list.push(Problem::new(path, message));
    }

    fn finish(mut self) -> Vec<Problem> {
        self.list.sort();
        self.list.dedup();
        self.list
    }

    /// Parses a duration field, reporting a problem when it does not parse.
    pub(crate) fn duration(&mut self, path: FieldPath, text: &str) -> Option<Duration> {
        match duration::parse(text) {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(path, error.to_string());
                None
            }
        }
    }
}

/// A comma-separated, quoted list for messages.
pub(crate) fn listing<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = items.into_iter().map(|item| format!("{item:?}")).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests;
