//! Flows compiled once before the test: templates parsed, expressions and JSONPaths compiled,
//! durations parsed, metric tags fixed — so an iteration only renders and sends.

use std::collections::BTreeSet;
use std::time::Duration;

use http::{HeaderName, Method};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use stampede_crds::expr::{self, Expr};
use stampede_crds::flow::{Capture, Request, SleepSpec, Step};
use stampede_crds::spec::Defaults;
use stampede_crds::template::{self, Template};

/// k6's default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// k6's default redirect limit.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

/// Why a flow could not be compiled (validation catches these first; this guards the engine).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CompileError {
    /// Field path.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn error(path: &str, message: impl std::fmt::Display) -> CompileError {
    CompileError {
        path: path.to_string(),
        message: message.to_string(),
    }
}

/// Statuses that count as expected (k6 `expectedStatuses`, default 200–399).
#[derive(Debug, Clone)]
pub struct ExpectedStatuses {
    ranges: Vec<(u16, u16)>,
}

impl Default for ExpectedStatuses {
    fn default() -> Self {
        ExpectedStatuses {
            ranges: vec![(200, 399)],
        }
    }
}

impl ExpectedStatuses {
    fn parse(list: &[IntOrString]) -> Option<ExpectedStatuses> {
        if list.is_empty() {
            return None;
        }
        let ranges = list
            .iter()
            .filter_map(|item| match item {
                IntOrString::Int(code) => u16::try_from(*code).ok().map(|c| (c, c)),
                IntOrString::String(text) => match text.split_once('-') {
                    Some((low, high)) => {
                        Some((low.trim().parse().ok()?, high.trim().parse().ok()?))
                    }
                    None => text.trim().parse().ok().map(|c| (c, c)),
                },
            })
            .collect();
        Some(ExpectedStatuses { ranges })
    }

    /// Whether `status` is expected (0, a network error, never is).
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

/// A request body to render.
#[derive(Debug, Clone)]
pub enum BodyTemplate {
    /// No body.
    None,
    /// JSON; string leaves (and keys) are templates.
    Json(serde_json::Value),
    /// Form fields.
    Form(Vec<(String, Template)>),
    /// Raw text.
    Raw(Template),
}

/// A compiled request.
#[derive(Debug, Clone)]
pub struct CompiledRequest {
    /// Method.
    pub method: Method,
    /// URL template (absolute, or relative to the base URL).
    pub url: Template,
    /// Headers, defaults first, then the request's own (which override).
    pub headers: Vec<(HeaderName, Template)>,
    /// Query parameters.
    pub query: Vec<(String, Template)>,
    /// Body.
    pub body: BodyTemplate,
    /// Timeout.
    pub timeout: Duration,
    /// Expected statuses.
    pub expected: ExpectedStatuses,
    /// Redirects to follow.
    pub max_redirects: u32,
    /// The `name` tag.
    pub name: String,
    /// Extra tags (request `tags` other than name).
    pub tags: Vec<(String, String)>,
    /// The resolved target of a literal URL, set on first use.
    pub fixed_target: std::sync::OnceLock<crate::http::Target>,
}

/// A compiled capture.
#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// JSONPath into the body.
    Json(serde_json_path::JsonPath),
    /// Regex over the body, with group.
    Regex(regex::Regex, usize),
    /// A header.
    Header(String),
    /// A cookie.
    Cookie(String),
}

/// A capture: variable name, source, and what to do when nothing is found.
#[derive(Debug, Clone)]
pub struct CompiledCapture {
    /// Variable name.
    pub name: String,
    /// Source.
    pub source: CaptureSource,
    /// Missing values are allowed.
    pub optional: bool,
    /// Value when missing.
    pub default: Option<Template>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send a request.
    Request(Box<CompiledRequest>),
    /// Pause for a fixed or random time.
    Sleep(Duration, Duration),
    /// Run a group of steps.
    Group {
        /// The `group` tag of the steps inside (`::a::b`).
        tag: String,
        /// The steps.
        steps: Vec<CompiledStep>,
    },
}

/// A compiled step.
#[derive(Debug, Clone)]
pub struct CompiledStep {
    /// What it does.
    pub action: Action,
    /// Checks (name, expression).
    pub checks: Vec<(String, Expr)>,
    /// Captures.
    pub captures: Vec<CompiledCapture>,
    /// Condition.
    pub condition: Option<Expr>,
    /// Whether checks or captures need the body.
    pub needs_body: bool,
}

/// A compiled flow with the names its steps and checks use (for the summary).
#[derive(Debug, Clone, Default)]
pub struct CompiledFlow {
    /// The steps.
    pub steps: Vec<CompiledStep>,
}

/// Names found while compiling, in flow order.
#[derive(Debug, Clone, Default)]
pub struct FlowNames {
    /// Request `name` tags.
    pub steps: Vec<String>,
    /// Check names.
    pub checks: Vec<String>,
    /// Group tags.
    pub groups: Vec<String>,
}

impl FlowNames {
    fn push(list: &mut Vec<String>, seen: &mut BTreeSet<String>, name: &str) {
        if seen.insert(name.to_string()) {
            list.push(name.to_string());
        }
    }
}

/// Compiles flows with shared defaults.
#[derive(Debug)]
pub struct Compiler<'a> {
    defaults: &'a Defaults,
    default_expected: ExpectedStatuses,
    /// Names found.
    pub names: FlowNames,
    seen_steps: BTreeSet<String>,
    seen_checks: BTreeSet<String>,
    seen_groups: BTreeSet<String>,
}

impl<'a> Compiler<'a> {
    /// A compiler using `defaults`.
    pub fn new(defaults: &'a Defaults) -> Self {
        Compiler {
            defaults,
            default_expected: ExpectedStatuses::parse(&defaults.expected_statuses)
                .unwrap_or_default(),
            names: FlowNames::default(),
            seen_steps: BTreeSet::new(),
            seen_checks: BTreeSet::new(),
            seen_groups: BTreeSet::new(),
        }
    }

    /// Compiles a list of steps under `group` (the parent group tag, "" at the root).
    pub fn flow(
        &mut self,
        steps: &[Step],
        path: &str,
        group: &str,
    ) -> Result<CompiledFlow, CompileError> {
        let steps = steps
            .iter()
            .enumerate()
            .map(|(index, step)| self.step(step, &format!("{path}[{index}]"), group))
            .collect::<Result<_, _>>()?;
        Ok(CompiledFlow { steps })
    }

    fn step(&mut self, step: &Step, path: &str, group: &str) -> Result<CompiledStep, CompileError> {
        let parse_expr = |text: &str, at: &str| expr::parse(text).map_err(|e| error(at, e));
        let condition = step
            .condition
            .as_deref()
            .map(|text| parse_expr(text, &format!("{path}.if")))
            .transpose()?;
        let mut checks = Vec::new();
        for (name, text) in &step.checks {
            checks.push((
                name.clone(),
                parse_expr(text, &format!("{path}.checks.{name}"))?,
            ));
            FlowNames::push(&mut self.names.checks, &mut self.seen_checks, name);
        }
        let mut captures = Vec::new();
        for (name, capture) in &step.capture {
            captures.push(compile_capture(
                name,
                capture,
                &format!("{path}.capture.{name}"),
            )?);
        }
        let action = if let Some(request) = &step.request {
            let compiled = self.request(step, request, &format!("{path}.request"))?;
            FlowNames::push(&mut self.names.steps, &mut self.seen_steps, &compiled.name);
            Action::Request(Box::new(compiled))
        } else if let Some(sleep) = &step.sleep {
            let parse = |text: &str| {
                stampede_crds::duration::parse(text).map_err(|e| error(&format!("{path}.sleep"), e))
            };
            match sleep {
                SleepSpec::Fixed(text) => {
                    let d = parse(text)?;
                    Action::Sleep(d, d)
                }
                SleepSpec::Range(range) => Action::Sleep(parse(&range.min)?, parse(&range.max)?),
            }
        } else if let Some(name) = &step.group {
            let tag = format!("{group}::{name}");
            FlowNames::push(&mut self.names.groups, &mut self.seen_groups, &tag);
            let inner = self.flow(&step.steps, &format!("{path}.steps"), &tag)?;
            Action::Group {
                tag,
                steps: inner.steps,
            }
        } else {
            return Err(error(
                path,
                "does nothing: give it a request, sleep or group",
            ));
        };
        let needs_body = checks
            .iter()
            .any(|(_, e)| e.source().contains("body") || e.source().contains("json("))
            || captures
                .iter()
                .any(|c| matches!(c.source, CaptureSource::Json(_) | CaptureSource::Regex(..)));
        Ok(CompiledStep {
            action,
            checks,
            captures,
            condition,
            needs_body,
        })
    }

    fn request(
        &self,
        step: &Step,
        request: &Request,
        path: &str,
    ) -> Result<CompiledRequest, CompileError> {
        let template = |text: &str, at: &str| template::parse(text).map_err(|e| error(at, e));
        let method = request
            .method
            .as_deref()
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .parse::<Method>()
            .map_err(|e| error(&format!("{path}.method"), e))?;
        let mut headers = Vec::new();
        for (name, value) in self.defaults.headers.iter().chain(&request.headers) {
            let header = name
                .parse::<HeaderName>()
                .map_err(|e| error(&format!("{path}.headers.{name}"), e))?;
            headers.retain(|(existing, _)| *existing != header);
            headers.push((header, template(value, &format!("{path}.headers.{name}"))?));
        }
        let has_content_type = headers.iter().any(|(h, _)| h == http::header::CONTENT_TYPE);
        let body = if let Some(json) = &request.json {
            if !has_content_type {
                headers.push((
                    http::header::CONTENT_TYPE,
                    template("application/json", path)?,
                ));
            }
            BodyTemplate::Json(json.clone())
        } else if !request.form.is_empty() {
            if !has_content_type {
                headers.push((
                    http::header::CONTENT_TYPE,
                    template("application/x-www-form-urlencoded", path)?,
                ));
            }
            BodyTemplate::Form(
                request
                    .form
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), template(v, &format!("{path}.form.{k}"))?)))
                    .collect::<Result<_, CompileError>>()?,
            )
        } else if let Some(raw) = &request.body {
            BodyTemplate::Raw(template(raw, &format!("{path}.body"))?)
        } else {
            BodyTemplate::None
        };
        let timeout = match request
            .timeout
            .as_deref()
            .or(self.defaults.timeout.as_deref())
        {
            Some(text) => stampede_crds::duration::parse(text)
                .map_err(|e| error(&format!("{path}.timeout"), e))?,
            None => DEFAULT_TIMEOUT,
        };
        let max_redirects = request
            .max_redirects
            .or(self.defaults.max_redirects)
            .map_or(DEFAULT_MAX_REDIRECTS, |n| n.clamp(0, 1000) as u32);
        let name = step.metric_name().unwrap_or_else(|| request.url.clone());
        Ok(CompiledRequest {
            method,
            url: template(&request.url, &format!("{path}.url"))?,
            headers,
            query: request
                .query
                .iter()
                .map(|(k, v)| Ok((k.clone(), template(v, &format!("{path}.query.{k}"))?)))
                .collect::<Result<_, CompileError>>()?,
            body,
            timeout,
            expected: ExpectedStatuses::parse(&request.expected_statuses)
                .unwrap_or_else(|| self.default_expected.clone()),
            max_redirects,
            name,
            tags: request
                .tags
                .iter()
                .filter(|(k, _)| k.as_str() != "name")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            fixed_target: std::sync::OnceLock::new(),
        })
    }
}

fn compile_capture(
    name: &str,
    capture: &Capture,
    path: &str,
) -> Result<CompiledCapture, CompileError> {
    let source = if let Some(json) = &capture.json {
        CaptureSource::Json(serde_json_path::JsonPath::parse(json).map_err(|e| error(path, e))?)
    } else if let Some(pattern) = &capture.regex {
        let regex = regex::Regex::new(pattern).map_err(|e| error(path, e))?;
        let group = capture
            .group
            .map_or(if regex.captures_len() > 1 { 1 } else { 0 }, |g| {
                g.max(0) as usize
            });
        CaptureSource::Regex(regex, group)
    } else if let Some(header) = &capture.header {
        CaptureSource::Header(header.to_ascii_lowercase())
    } else if let Some(cookie) = &capture.cookie {
        CaptureSource::Cookie(cookie.clone())
    } else {
        return Err(error(path, "has no source"));
    };
    Ok(CompiledCapture {
        name: name.to_string(),
        source,
        optional: capture.optional,
        default: capture
            .default
            .as_deref()
            .map(template::parse)
            .transpose()
            .map_err(|e| error(path, e))?,
    })
}
