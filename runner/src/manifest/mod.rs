//! Reads LoadTest manifests (multi-document YAML) and reports everything wrong with them:
//! YAML syntax, unknown fields (with did-you-mean), wrong types, and the shared validation —
//! each as `file:line: field.path: message`.

mod fields;
pub mod limits;
mod lines;

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use stampede_crds::LoadTest;
use stampede_crds::model::{self, Test};
use stampede_crds::path::{FieldPath, Segment};
use stampede_crds::validate::Options;

use crate::schedule::sizing::{self, Caps, SizeError};
use crate::schedule::{ExecutionSegment, TestPlan};

pub use lines::LineIndex;

/// The apiVersion every LoadTest must carry.
pub const API_VERSION: &str = "stampede.dev/v1alpha1";

/// One problem in a manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (or source name) the problem is in.
    pub source: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field, e.g. `spec.scenarios.spike.stages[1].duration` (empty for the whole file).
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What reading one file found.
#[derive(Debug, Default)]
pub struct Report {
    /// The LoadTests that are valid.
    pub tests: Vec<LoadTest>,
    /// The same LoadTests compiled (`stampede_crds::model::compile`), in the same order.
    pub compiled: Vec<Test>,
    /// Every problem, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Documents that are not LoadTests (e.g. a ConfigMap with test data), by `Kind/name`.
    pub skipped: Vec<String>,
}

impl Report {
    /// True when the file had no problem.
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest has problems.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
    /// The file holds no LoadTest.
    #[error(
        "{0}: holds no LoadTest (want a document with apiVersion: {API_VERSION}, kind: LoadTest)"
    )]
    Empty(String),
}

/// Reads and checks a manifest file.
pub fn check_file(path: &Path, options: &Options) -> Result<Report, ManifestError> {
    check_file_with(path, options, None)
}

/// [`check_file`], also refusing tests over an operator's `caps` (see [`check_str_with`]).
pub fn check_file_with(
    path: &Path,
    options: &Options,
    caps: Option<&Caps>,
) -> Result<Report, ManifestError> {
    use std::io::Read;
    let source = path.display().to_string();
    let read_error = |error| ManifestError::Read {
        path: source.clone(),
        source: error,
    };
    // Read at most one byte over the limit, so a huge file is refused without being loaded.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            file.take(limits::MAX_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(read_error)?;
    if bytes.len() > limits::MAX_BYTES {
        let mut report = Report::default();
        report.diagnostics.push(Diagnostic {
            source,
            line: None,
            path: String::new(),
            message: limits::OverLimit::TooLarge.to_string(),
        });
        return Ok(report);
    }
    let text = String::from_utf8(bytes)
        .map_err(|error| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, error)))?;
    Ok(check_str_with(&source, &text, options, caps))
}

/// Reads a manifest file and returns its LoadTests, or every problem.
pub fn load_file(path: &Path, options: &Options) -> Result<Vec<LoadTest>, ManifestError> {
    let report = check_file(path, options)?;
    if !report.is_valid() {
        return Err(ManifestError::Invalid(report.diagnostics));
    }
    if report.tests.is_empty() {
        return Err(ManifestError::Empty(path.display().to_string()));
    }
    Ok(report.tests)
}

/// Checks manifest text; `source` names it in diagnostics.
pub fn check_str(source: &str, text: &str, options: &Options) -> Report {
    check_str_with(source, text, options, None)
}

/// [`check_str`], also refusing tests over an operator's `caps` (as `stampede validate` does:
/// the operator would mark them Invalid when it plans their run).
pub fn check_str_with(source: &str, text: &str, options: &Options, caps: Option<&Caps>) -> Report {
    let mut report = Report::default();
    if let Err(over) = limits::check(text) {
        let line = match over {
            limits::OverLimit::TooDeep { line } => Some(line),
            limits::OverLimit::TooLarge => None,
        };
        report.diagnostics.push(Diagnostic {
            source: source.to_string(),
            line,
            path: String::new(),
            message: over.to_string(),
        });
        return report;
    }
    let lines = LineIndex::build(text);
    let diagnostic = |line: Option<usize>, path: String, message: String| Diagnostic {
        source: source.to_string(),
        line,
        path,
        message,
    };
    for (document, deserializer) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = match serde_yaml_ng::Value::deserialize(deserializer) {
            Ok(value) => value,
            Err(error) => {
                let line = error.location().map(|location| location.line());
                report.diagnostics.push(diagnostic(
                    line,
                    String::new(),
                    format!("is not valid YAML: {}", strip_location(&error.to_string())),
                ));
                break;
            }
        };
        let at = |segments: &[Segment]| lines.line(document, segments);
        if value.is_null() {
            continue;
        }
        let (api_version, kind) = (
            value
                .get("apiVersion")
                .and_then(|v| v.as_str())
                .unwrap_or_default(),
            value
                .get("kind")
                .and_then(|v| v.as_str())
                .unwrap_or_default(),
        );
        if kind != "LoadTest" && !api_version.starts_with("stampede.dev/") {
            let name = value
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(|n| n.as_str())
                .unwrap_or("?");
            report.skipped.push(format!(
                "{}/{name}",
                if kind.is_empty() { "?" } else { kind }
            ));
            continue;
        }
        let mut header_ok = true;
        if kind != "LoadTest" {
            let path = FieldPath::root().key("kind");
            report.diagnostics.push(diagnostic(
                at(path.segments()),
                path.to_string(),
                format!("{kind:?} is not a Stampede kind; write kind: LoadTest"),
            ));
            header_ok = false;
        }
        if api_version != API_VERSION {
            let path = FieldPath::root().key("apiVersion");
            report.diagnostics.push(diagnostic(
                at(path.segments()),
                path.to_string(),
                format!("{api_version:?} is not served; write apiVersion: {API_VERSION}"),
            ));
            header_ok = false;
        }
        let mut unknown = Vec::new();
        let mut record_unknown =
            |path: serde_ignored::Path<'_>| unknown.push(ignored_segments(&path));
        let parsed: Result<LoadTest, _> = serde_path_to_error::deserialize(
            serde_ignored::Deserializer::new(value, &mut record_unknown),
        );
        for segments in unknown {
            // apiVersion and kind are read above; the typed object keeps them implicit.
            if let [Segment::Key(top)] = segments.as_slice()
                && (top == "apiVersion" || top == "kind")
            {
                continue;
            }
            let (parent, field) = segments.split_at(segments.len().saturating_sub(1));
            let field_name = match field.first() {
                Some(Segment::Key(name)) => name.clone(),
                _ => continue,
            };
            let path = FieldPath::from_segments(segments.clone());
            let known = fields::known_fields(parent);
            let hint = match stampede_crds::suggest::did_you_mean(
                &field_name,
                known.iter().map(String::as_str),
            ) {
                Some(best) => format!("did you mean {best:?}?"),
                None if known.is_empty() => "remove it".to_string(),
                None => format!("fields here: {}", known.join(", ")),
            };
            report.diagnostics.push(diagnostic(
                at(&segments),
                path.to_string(),
                format!("unknown field {field_name:?} ({hint}); the API server would drop it"),
            ));
        }
        let test = match parsed {
            Ok(test) => test,
            Err(error) => {
                let segments = path_to_error_segments(error.path());
                let path = FieldPath::from_segments(segments.clone());
                report.diagnostics.push(diagnostic(
                    at(&segments),
                    path.to_string(),
                    explain_serde_error(&error.into_inner().to_string()),
                ));
                continue;
            }
        };
        let problems = match model::compile(&test, options) {
            Ok(compiled) if header_ok => match caps.map(|caps| over_caps(&test, &compiled, caps)) {
                Some(Err(error)) => {
                    let path = error
                        .field()
                        .split('.')
                        .fold(FieldPath::root(), |path, key| path.key(key));
                    report.diagnostics.push(diagnostic(
                        at(path.segments()),
                        path.to_string(),
                        error.to_string(),
                    ));
                    Vec::new()
                }
                _ => {
                    report.tests.push(test);
                    report.compiled.push(compiled);
                    Vec::new()
                }
            },
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        };
        for problem in problems {
            report.diagnostics.push(diagnostic(
                at(problem.path.segments()),
                problem.path.to_string(),
                problem.message,
            ));
        }
    }
    report.diagnostics.sort_by_key(|d| d.line.unwrap_or(0));
    report
}

fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(position) => message[..position].to_string(),
        None => message.to_string(),
    }
}

fn ignored_segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path as P;
    match path {
        P::Root => Vec::new(),
        P::Seq { parent, index } => {
            let mut segments = ignored_segments(parent);
            segments.push(Segment::Index(*index));
            segments
        }
        P::Map { parent, key } => {
            let mut segments = ignored_segments(parent);
            segments.push(Segment::Key(key.clone()));
            segments
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_segments(parent)
        }
    }
}

fn path_to_error_segments(path: &serde_path_to_error::Path) -> Vec<Segment> {
    path.iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => Some(Segment::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

/// Turns serde's wording into a message that says what to write.
fn explain_serde_error(message: &str) -> String {
    if message.contains("untagged enum SleepSpec") {
        return "expected a duration such as 1s, or {min: 1s, max: 3s}".to_string();
    }
    if message.contains("untagged enum ThresholdRule") {
        return "expected a threshold string such as \"p(95)<500\", or {threshold: \"p(95)<500\", abortOnFail: true, delayAbortEval: 10s}".to_string();
    }
    if let Some(rest) = message.strip_prefix("unknown variant `")
        && let Some((variant, expected)) = rest.split_once("`, expected one of ")
    {
        let options: Vec<&str> = expected.split(", ").map(|o| o.trim_matches('`')).collect();
        let hint = stampede_crds::suggest::did_you_mean(variant, options.iter().copied())
            .map(|best| format!(" (did you mean {best:?}?)"))
            .unwrap_or_default();
        return format!(
            "{variant:?} is not allowed here{hint}; use one of {}",
            options.join(", ")
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(field) = rest.strip_suffix('`')
    {
        return format!("is missing the required field `{field}`; add it");
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let rest = ["i64", "i32", "u64", "u32", "u16", "usize"]
            .iter()
            .fold(rest.to_string(), |text, int| {
                text.replace(&format!("expected {int}"), "expected an integer")
            });
        return format!("wrong type: got {rest}");
    }
    message.to_string()
}

/// Whether an operator with `caps` would plan `test`'s run.
fn over_caps(test: &LoadTest, compiled: &model::Test, caps: &Caps) -> Result<(), SizeError> {
    let schedule = TestPlan::for_test(compiled, &ExecutionSegment::full());
    sizing::size(test.spec.runners.as_ref(), &schedule, caps).map(drop)
}
