//! Flows, setup and teardown as parsed values: URL, header and body templates (JSON bodies as
//! template trees), checks, `if`s, captures and sleeps, each able to say what it reads; and
//! the request defaults they were resolved against.

pub mod json;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use regex::Regex;
use serde_json_path::JsonPath;

use crate::duration;
use crate::expr::{self, Expr};
use crate::flow::{self as wire, SleepSpec};
use crate::path::FieldPath;
use crate::spec::{Defaults, LoadTestSpec};
use crate::suggest::suggestion;
use crate::template::{self, Reference, Template};
use crate::validate::Problem;

pub use json::{JsonNode, JsonObject, JsonTemplate, JsonTemplateError};

/// k6's default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// k6's default redirect limit.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;
/// The most redirects a request follows whatever the manifest says: bounds a redirect loop.
pub const MAX_REDIRECTS_LIMIT: u32 = 1000;

/// Every flow of a test, with setup, teardown and the request defaults they were built with.
#[derive(Debug, Clone, Default)]
pub struct Flows {
    /// `spec.defaults`, parsed. Requests already carry their effective timeout, headers,
    /// redirects and expected statuses; the rest is for the run as a whole.
    pub defaults: RequestDefaults,
    /// `spec.setup`, run once before the scenarios (group tag `::setup`).
    pub setup: Flow,
    /// `spec.teardown`, run once after them (group tag `::teardown`).
    pub teardown: Flow,
    /// `spec.flows`, by name.
    pub flows: BTreeMap<String, Flow>,
}

/// `spec.defaults`, parsed.
#[derive(Debug, Clone)]
pub struct RequestDefaults {
    /// The base URL relative request URLs join; it may read `${env.NAME}` only.
    pub base_url: Option<Template>,
    /// Request timeout (k6 default 60s).
    pub timeout: Duration,
    /// Headers every request sends, by name as written, in name order.
    pub headers: Vec<(String, Template)>,
    /// Redirects to follow (k6 default 10, at most [`MAX_REDIRECTS_LIMIT`]).
    pub max_redirects: u32,
    /// Statuses that count as expected (k6 default 200-399).
    pub expected_statuses: ExpectedStatuses,
    /// The shortest an iteration may take (k6 `minIterationDuration`); `None` when unset or
    /// zero, i.e. when no iteration is padded.
    pub min_iteration_duration: Option<Duration>,
}

impl Default for RequestDefaults {
    fn default() -> Self {
        RequestDefaults {
            base_url: None,
            timeout: DEFAULT_TIMEOUT,
            headers: Vec::new(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            expected_statuses: ExpectedStatuses::default(),
            min_iteration_duration: None,
        }
    }
}

/// A list of steps.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step: what it does, when, and what it checks and captures from its response.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the step does.
    pub action: Action,
    /// Run the step only when this holds (it reads no response).
    pub condition: Option<Expr>,
    /// Checks on the response, by name order.
    pub checks: Vec<Check>,
    /// Values taken from the response, by variable name order.
    pub captures: Vec<Capture>,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send a request.
    Request(Box<Request>),
    /// Pause.
    Sleep(Sleep),
    /// Run a group of steps.
    Group(Group),
}

/// A pause: `min` when `min == max`, else uniformly random in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sleep {
    /// Shortest pause.
    pub min: Duration,
    /// Longest pause (never shorter than `min`).
    pub max: Duration,
}

/// A named group of steps (k6 `group()`).
#[derive(Debug, Clone)]
pub struct Group {
    /// The name as written.
    pub name: String,
    /// The `group` tag of the steps inside: the parent's tag, `::`, the name (`::a::b`).
    pub tag: String,
    /// The steps.
    pub steps: Vec<Step>,
}

/// A check: a name and an expression on the response.
#[derive(Debug, Clone)]
pub struct Check {
    /// The `check` tag.
    pub name: String,
    /// The expression.
    pub expr: Expr,
}

/// A value captured from the response into a VU variable.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The variable.
    pub name: String,
    /// Where the value comes from.
    pub source: CaptureSource,
    /// Whether finding nothing is allowed (else the rest of the iteration is skipped).
    pub optional: bool,
    /// The value of an optional capture that found nothing.
    pub default: Option<Template>,
}

/// Where a captured value comes from.
#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// A JSONPath into the body.
    Json(JsonPath),
    /// A regex over the body, and the group to take.
    Regex {
        /// The pattern.
        regex: Regex,
        /// The group (0: the whole match).
        group: usize,
    },
    /// A response header, by lowercase name.
    Header(String),
    /// A cookie set by the response, by name.
    Cookie(String),
}

/// An HTTP method a request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// HEAD.
    Head,
    /// OPTIONS.
    Options,
}

/// A request with the defaults applied.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The URL, absolute or relative to the base URL.
    pub url: Template,
    /// Headers: the defaults, then the request's own, a name given twice (in any case)
    /// keeping the request's value in the request's place.
    pub headers: Vec<(String, Template)>,
    /// Query parameters, by name order.
    pub query: Vec<(String, Template)>,
    /// The body.
    pub body: Body,
    /// Timeout.
    pub timeout: Duration,
    /// Statuses that count as expected.
    pub expected_statuses: ExpectedStatuses,
    /// Redirects to follow.
    pub max_redirects: u32,
    /// The `name` tag of its samples.
    pub name: String,
    /// The other tags of its samples (`tags` without `name`).
    pub tags: Vec<(String, String)>,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body.
    None,
    /// JSON.
    Json(JsonTemplate),
    /// Form fields, by name order.
    Form(Vec<(String, Template)>),
    /// Text sent as rendered.
    Raw(Template),
}

/// Statuses that count as expected (k6 `expectedStatuses`), as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedStatuses {
    ranges: Vec<(u16, u16)>,
}

/// The names samples carry, in flow order (setup, teardown, then flows by name), each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowNames {
    /// Request `name` tags.
    pub steps: Vec<String>,
    /// Check names.
    pub checks: Vec<String>,
    /// Group tags.
    pub groups: Vec<String>,
}

impl Flows {
    /// The flow called `name`.
    pub fn get(&self, name: &str) -> Option<&Flow> {
        self.flows.get(name)
    }

    /// The request, check and group names of every flow, for series and the summary.
    pub fn names(&self) -> FlowNames {
        let mut collector = NameCollector::default();
        for flow in [&self.setup, &self.teardown]
            .into_iter()
            .chain(self.flows.values())
        {
            collector.steps(&flow.steps);
        }
        collector.names
    }
}

#[derive(Default)]
struct NameCollector {
    names: FlowNames,
    seen_steps: BTreeSet<String>,
    seen_checks: BTreeSet<String>,
    seen_groups: BTreeSet<String>,
}

impl NameCollector {
    fn steps(&mut self, steps: &[Step]) {
        for step in steps {
            for check in &step.checks {
                push_once(&mut self.names.checks, &mut self.seen_checks, &check.name);
            }
            match &step.action {
                Action::Request(request) => {
                    push_once(&mut self.names.steps, &mut self.seen_steps, &request.name);
                }
                Action::Group(group) => {
                    push_once(&mut self.names.groups, &mut self.seen_groups, &group.tag);
                    self.steps(&group.steps);
                }
                Action::Sleep(_) => {}
            }
        }
    }
}

fn push_once(list: &mut Vec<String>, seen: &mut BTreeSet<String>, name: &str) {
    if seen.insert(name.to_string()) {
        list.push(name.to_string());
    }
}

impl Step {
    /// Whether a check or capture reads the response body (`body`, `json(...)`, a JSON or
    /// regex capture), so the body must be kept.
    pub fn reads_response_body(&self) -> bool {
        self.checks.iter().any(|check| check.expr.reads_body())
            || self
                .captures
                .iter()
                .any(|capture| capture.source.reads_body())
    }

    /// The template references the step reads itself (its condition, request, checks and
    /// capture defaults; a group's steps are not included), in that order.
    pub fn references(&self) -> Vec<&Reference> {
        let mut references = Vec::new();
        if let Some(condition) = &self.condition {
            references.extend(condition.references());
        }
        if let Action::Request(request) = &self.action {
            references.extend(request.references());
        }
        for check in &self.checks {
            references.extend(check.expr.references());
        }
        for capture in &self.captures {
            if let Some(default) = &capture.default {
                references.extend(default.references());
            }
        }
        references
    }
}

impl CaptureSource {
    /// Whether the capture reads the response body.
    pub fn reads_body(&self) -> bool {
        matches!(self, CaptureSource::Json(_) | CaptureSource::Regex { .. })
    }
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Head,
        Method::Options,
    ];

    /// The method as sent, e.g. `GET`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }

    /// The method named `text`, in any case.
    pub fn from_name(text: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|method| method.as_str().eq_ignore_ascii_case(text))
    }
}

impl Request {
    /// The template references the request reads: URL, headers, query, body.
    pub fn references(&self) -> Vec<&Reference> {
        let mut references: Vec<&Reference> = self.url.references().collect();
        for (_, value) in self.headers.iter().chain(&self.query) {
            references.extend(value.references());
        }
        references.extend(self.body.references());
        references
    }
}

impl Body {
    /// The Content-Type the body implies, sent unless a header sets one.
    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            Body::Json(_) => Some("application/json"),
            Body::Form(_) => Some("application/x-www-form-urlencoded"),
            Body::None | Body::Raw(_) => None,
        }
    }

    /// The template references the body reads.
    pub fn references(&self) -> Vec<&Reference> {
        match self {
            Body::None => Vec::new(),
            Body::Json(json) => json.references(),
            Body::Form(fields) => fields
                .iter()
                .flat_map(|(_, value)| value.references())
                .collect(),
            Body::Raw(text) => text.references().collect(),
        }
    }

    /// Whether the body renders to the same bytes every time.
    pub fn is_literal(&self) -> bool {
        self.references().is_empty()
    }
}

impl Default for ExpectedStatuses {
    fn default() -> Self {
        ExpectedStatuses {
            ranges: vec![(200, 399)],
        }
    }
}

impl ExpectedStatuses {
    /// Whether `status` is expected (0, a network error, never is).
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }

    /// The inclusive ranges.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }
}

/// One `expectedStatuses` entry as an inclusive range: a code from 100 to 599 (`409`,
/// `"409"`) or a range (`"200-399"`, low not above high); `None` when it is neither.
pub fn parse_status_range(entry: &IntOrString) -> Option<(u16, u16)> {
    let code = |value: i64| {
        u16::try_from(value)
            .ok()
            .filter(|code| (100..=599).contains(code))
    };
    match entry {
        IntOrString::Int(value) => code(i64::from(*value)).map(|c| (c, c)),
        IntOrString::String(text) => match text.split_once('-') {
            Some((low, high)) => {
                let low = code(low.trim().parse().ok()?)?;
                let high = code(high.trim().parse().ok()?)?;
                (low <= high).then_some((low, high))
            }
            None => code(text.trim().parse().ok()?).map(|c| (c, c)),
        },
    }
}

/// Compiles the flows of a validated spec. Anything that does not parse is a problem at its
/// field path (paths start at `spec`), never a default.
pub fn compile(spec: &LoadTestSpec) -> Result<Flows, Vec<Problem>> {
    let spec_path = FieldPath::root().key("spec");
    let mut problems = Vec::new();
    let no_defaults = Defaults::default();
    let defaults = compile_defaults(
        spec.defaults.as_ref().unwrap_or(&no_defaults),
        &spec_path.key("defaults"),
        &mut problems,
    );
    let mut builder = Builder {
        defaults: &defaults,
        problems: &mut problems,
    };
    let setup = builder.flow(&spec.setup, &spec_path.key("setup"), "::setup");
    let teardown = builder.flow(&spec.teardown, &spec_path.key("teardown"), "::teardown");
    let flows = spec
        .flows
        .iter()
        .map(|(name, steps)| {
            let flow = builder.flow(steps, &spec_path.key("flows").key(name), "");
            (name.clone(), flow)
        })
        .collect();
    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        return Err(problems);
    }
    Ok(Flows {
        defaults,
        setup,
        teardown,
        flows,
    })
}

fn compile_defaults(
    defaults: &Defaults,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> RequestDefaults {
    let base = RequestDefaults::default();
    let base_url = defaults
        .base_url
        .as_deref()
        .and_then(|text| parse_template(text, &path.key("baseUrl"), problems));
    let timeout = defaults
        .timeout
        .as_deref()
        .and_then(|text| parse_timeout(text, &path.key("timeout"), problems))
        .unwrap_or(base.timeout);
    let headers =
        compile_headers(&[], &defaults.headers, &path.key("headers"), problems).unwrap_or_default();
    let max_redirects = defaults
        .max_redirects
        .and_then(|count| parse_max_redirects(count, &path.key("maxRedirects"), problems))
        .unwrap_or(base.max_redirects);
    let expected_statuses = parse_expected_statuses(
        &defaults.expected_statuses,
        &base.expected_statuses,
        &path.key("expectedStatuses"),
        problems,
    )
    .unwrap_or(base.expected_statuses);
    let min_iteration_duration = defaults.min_iteration_duration.as_deref().and_then(|text| {
        parse_duration(text, &path.key("minIterationDuration"), problems)
            .filter(|duration| !duration.is_zero())
    });
    RequestDefaults {
        base_url,
        timeout,
        headers,
        max_redirects,
        expected_statuses,
        min_iteration_duration,
    }
}

/// Builds steps; each problem is recorded and the builder goes on, so one compile reports
/// them all.
struct Builder<'a> {
    defaults: &'a RequestDefaults,
    problems: &'a mut Vec<Problem>,
}

impl Builder<'_> {
    fn flow(&mut self, steps: &[wire::Step], path: &FieldPath, group: &str) -> Flow {
        Flow {
            steps: self.steps(steps, path, group),
        }
    }

    fn steps(&mut self, steps: &[wire::Step], path: &FieldPath, group: &str) -> Vec<Step> {
        steps
            .iter()
            .enumerate()
            .filter_map(|(index, step)| self.step(step, &path.index(index), group))
            .collect()
    }

    fn problem(&mut self, path: FieldPath, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn step(&mut self, step: &wire::Step, path: &FieldPath, group: &str) -> Option<Step> {
        let condition = step.condition.as_deref().and_then(|text| {
            let at = path.key("if");
            let parsed = self.expr(text, &at)?;
            if parsed.reads_response() {
                self.problem(
                    at,
                    format!(
                        "{text:?} reads the response (status, duration, body, header, json or cookie), but `if` is decided before the request; capture the value in an earlier step and test ${{var}}"
                    ),
                );
                return None;
            }
            Some(parsed)
        });
        let checks: Vec<Check> = step
            .checks
            .iter()
            .filter_map(|(name, text)| {
                let expr = self.expr(text, &path.key("checks").key(name))?;
                Some(Check {
                    name: name.clone(),
                    expr,
                })
            })
            .collect();
        let captures: Vec<Capture> = step
            .capture
            .iter()
            .filter_map(|(name, capture)| {
                compile_capture(name, capture, &path.key("capture").key(name), self.problems)
            })
            .collect();
        if step.request.is_none() {
            if !step.checks.is_empty() {
                self.problem(
                    path.key("checks"),
                    "checks need a response: put them on a step with a `request`",
                );
            }
            if !step.capture.is_empty() {
                self.problem(
                    path.key("capture"),
                    "captures need a response: put them on a step with a `request`",
                );
            }
        }
        let action = match (&step.request, &step.sleep, &step.group) {
            (Some(request), None, None) => self
                .request(step, request, &path.key("request"))
                .map(|request| Action::Request(Box::new(request))),
            (None, Some(sleep), None) => self.sleep(sleep, &path.key("sleep")).map(Action::Sleep),
            (None, None, Some(name)) => {
                let tag = format!("{group}::{name}");
                let steps = self.steps(&step.steps, &path.key("steps"), &tag);
                Some(Action::Group(Group {
                    name: name.clone(),
                    tag,
                    steps,
                }))
            }
            (None, None, None) => {
                self.problem(
                    path.clone(),
                    "does nothing: give the step one of `request`, `sleep` or `group`",
                );
                None
            }
            _ => {
                let actions: Vec<String> =
                    step.actions().iter().map(|a| format!("`{a}`")).collect();
                self.problem(
                    path.clone(),
                    format!(
                        "sets {}; a step does one thing, so split it into one step each",
                        actions.join(" and ")
                    ),
                );
                None
            }
        };
        if step.group.is_none() && !step.steps.is_empty() {
            self.problem(
                path.key("steps"),
                "nested `steps` belong to a group: add `group: NAME` to this step, or move the steps into the flow",
            );
        }
        Some(Step {
            action: action?,
            condition,
            checks,
            captures,
        })
    }

    fn expr(&mut self, text: &str, path: &FieldPath) -> Option<Expr> {
        match expr::parse(text) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.problem(path.clone(), format!("{text:?}: {error}"));
                None
            }
        }
    }

    fn sleep(&mut self, sleep: &SleepSpec, path: &FieldPath) -> Option<Sleep> {
        match sleep {
            SleepSpec::Fixed(text) => {
                let pause = parse_duration(text, path, self.problems)?;
                Some(Sleep {
                    min: pause,
                    max: pause,
                })
            }
            SleepSpec::Range(range) => {
                let min = parse_duration(&range.min, &path.key("min"), self.problems);
                let max = parse_duration(&range.max, &path.key("max"), self.problems);
                let (min, max) = (min?, max?);
                if min > max {
                    self.problem(
                        path.clone(),
                        format!(
                            "min ({}) is longer than max ({}); swap them",
                            range.min, range.max
                        ),
                    );
                    return None;
                }
                Some(Sleep { min, max })
            }
        }
    }

    fn request(
        &mut self,
        step: &wire::Step,
        request: &wire::Request,
        path: &FieldPath,
    ) -> Option<Request> {
        let method = match request.method.as_deref() {
            None => Some(Method::Get),
            Some(text) => {
                let method = Method::from_name(text);
                if method.is_none() {
                    let names = Method::ALL.map(Method::as_str);
                    self.problem(
                        path.key("method"),
                        format!(
                            "{text:?} is not an HTTP method{}; use one of {}",
                            suggestion(&text.to_ascii_uppercase(), names),
                            names.join(", ")
                        ),
                    );
                }
                method
            }
        };
        let url = parse_template(&request.url, &path.key("url"), self.problems);
        let headers = compile_headers(
            &self.defaults.headers,
            &request.headers,
            &path.key("headers"),
            self.problems,
        );
        let query = parse_templates(&request.query, &path.key("query"), self.problems);
        let body = self.body(request, path);
        let timeout = match request.timeout.as_deref() {
            Some(text) => parse_timeout(text, &path.key("timeout"), self.problems),
            None => Some(self.defaults.timeout),
        };
        let expected_statuses = parse_expected_statuses(
            &request.expected_statuses,
            &self.defaults.expected_statuses,
            &path.key("expectedStatuses"),
            self.problems,
        );
        let max_redirects = match request.max_redirects {
            Some(count) => parse_max_redirects(count, &path.key("maxRedirects"), self.problems),
            None => Some(self.defaults.max_redirects),
        };
        Some(Request {
            method: method?,
            url: url?,
            headers: headers?,
            query: query?,
            body: body?,
            timeout: timeout?,
            expected_statuses: expected_statuses?,
            max_redirects: max_redirects?,
            name: step.metric_name().unwrap_or_else(|| request.url.clone()),
            tags: request
                .tags
                .iter()
                .filter(|(key, _)| key.as_str() != "name")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
        })
    }

    fn body(&mut self, request: &wire::Request, path: &FieldPath) -> Option<Body> {
        let set: Vec<&str> = [
            ("json", request.json.is_some()),
            ("form", !request.form.is_empty()),
            ("body", request.body.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if set.len() > 1 {
            let listed: Vec<String> = set.iter().map(|name| format!("{name:?}")).collect();
            self.problem(
                path.clone(),
                format!(
                    "sets {}; a request has one body, so keep one of json, form or body",
                    listed.join(", ")
                ),
            );
            return None;
        }
        if let Some(value) = &request.json {
            return match JsonTemplate::parse(value) {
                Ok(json) => Some(Body::Json(json)),
                Err(error) => {
                    self.problem(path.key("json"), error.to_string());
                    None
                }
            };
        }
        if !request.form.is_empty() {
            return parse_templates(&request.form, &path.key("form"), self.problems)
                .map(Body::Form);
        }
        match &request.body {
            Some(text) => parse_template(text, &path.key("body"), self.problems).map(Body::Raw),
            None => Some(Body::None),
        }
    }
}

fn compile_capture(
    name: &str,
    capture: &wire::Capture,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Capture> {
    let source = match capture.sources().as_slice() {
        ["json"] => {
            let text = capture.json.as_deref().unwrap_or_default();
            match crate::jsonpath::parse(text) {
                Ok(parsed) => Some(CaptureSource::Json(parsed)),
                Err(error) => {
                    problems.push(Problem::new(
                        path.key("json"),
                        crate::jsonpath::problem(text, &error),
                    ));
                    None
                }
            }
        }
        ["regex"] => {
            let pattern = capture.regex.as_deref().unwrap_or_default();
            match Regex::new(pattern) {
                Ok(regex) => {
                    let groups = regex.captures_len() - 1;
                    match capture.group {
                        // The first group when there is one, else the whole match.
                        None => Some(CaptureSource::Regex {
                            group: usize::from(groups > 0),
                            regex,
                        }),
                        Some(group) => match usize::try_from(group) {
                            Ok(group) if group <= groups => {
                                Some(CaptureSource::Regex { regex, group })
                            }
                            _ => {
                                problems.push(Problem::new(
                                    path.key("group"),
                                    format!("is {group}, but the regex has {groups} group(s); use 0 (whole match) to {groups}"),
                                ));
                                None
                            }
                        },
                    }
                }
                Err(error) => {
                    problems.push(Problem::new(
                        path.key("regex"),
                        format!(
                            "{pattern:?} is not a valid regular expression: {}",
                            error.to_string().lines().last().unwrap_or("invalid")
                        ),
                    ));
                    None
                }
            }
        }
        ["header"] => Some(CaptureSource::Header(
            capture
                .header
                .as_deref()
                .unwrap_or_default()
                .to_ascii_lowercase(),
        )),
        ["cookie"] => Some(CaptureSource::Cookie(
            capture.cookie.clone().unwrap_or_default(),
        )),
        [] => {
            problems.push(Problem::new(
                path.clone(),
                "has no source: set one of json (JSONPath), regex, header or cookie",
            ));
            None
        }
        many => {
            let listed: Vec<String> = many.iter().map(|name| format!("{name:?}")).collect();
            problems.push(Problem::new(
                path.clone(),
                format!(
                    "sets {}; a capture reads one source, so keep one",
                    listed.join(", ")
                ),
            ));
            None
        }
    };
    let default = match &capture.default {
        Some(text) => Some(parse_template(text, &path.key("default"), problems)?),
        None => None,
    };
    Some(Capture {
        name: name.to_string(),
        source: source?,
        optional: capture.optional,
        default,
    })
}

/// The defaults' headers then `own`, each name (compared without case) once, a later value
/// replacing an earlier one and taking its place at the end, as a header map would.
fn compile_headers(
    defaults: &[(String, Template)],
    own: &BTreeMap<String, String>,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Vec<(String, Template)>> {
    let mut headers = defaults.to_vec();
    let mut ok = true;
    for (name, value) in own {
        let at = path.key(name);
        if !is_header_name(name) {
            problems.push(Problem::new(
                at.clone(),
                format!("{name:?} is not a header name: use letters, digits and !#$%&'*+-.^_`|~ (e.g. X-Request-Id)"),
            ));
            ok = false;
        }
        match parse_template(value, &at, problems) {
            Some(value) => {
                headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
                headers.push((name.clone(), value));
            }
            None => ok = false,
        }
    }
    ok.then_some(headers)
}

/// Whether `name` is an HTTP field name (RFC 9110 `token`).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

fn parse_template(text: &str, path: &FieldPath, problems: &mut Vec<Problem>) -> Option<Template> {
    match template::parse(text) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            problems.push(Problem::new(path.clone(), format!("{text:?}: {error}")));
            None
        }
    }
}

/// Templates by key (`query`, `form`), in key order.
fn parse_templates(
    fields: &BTreeMap<String, String>,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<Vec<(String, Template)>> {
    let parsed: Vec<Option<(String, Template)>> = fields
        .iter()
        .map(|(key, text)| {
            parse_template(text, &path.key(key), problems).map(|value| (key.clone(), value))
        })
        .collect();
    parsed.into_iter().collect()
}

fn parse_duration(text: &str, path: &FieldPath, problems: &mut Vec<Problem>) -> Option<Duration> {
    match duration::parse(text) {
        Ok(value) => Some(value),
        Err(error) => {
            problems.push(Problem::new(path.clone(), error.to_string()));
            None
        }
    }
}

fn parse_timeout(text: &str, path: &FieldPath, problems: &mut Vec<Problem>) -> Option<Duration> {
    let timeout = parse_duration(text, path, problems)?;
    if timeout.is_zero() {
        problems.push(Problem::new(
            path.clone(),
            "must be longer than 0 (k6 default 60s)",
        ));
        return None;
    }
    Some(timeout)
}

fn parse_max_redirects(count: i64, path: &FieldPath, problems: &mut Vec<Problem>) -> Option<u32> {
    match u32::try_from(count) {
        Ok(count) => Some(count.min(MAX_REDIRECTS_LIMIT)),
        Err(_) if count > 0 => Some(MAX_REDIRECTS_LIMIT),
        Err(_) => {
            problems.push(Problem::new(
                path.clone(),
                format!("is {count}; use 0 to not follow redirects"),
            ));
            None
        }
    }
}

/// The statuses `list` gives, `fallback` when it is empty; `None` when an entry does not
/// parse (a problem is recorded for each).
fn parse_expected_statuses(
    list: &[IntOrString],
    fallback: &ExpectedStatuses,
    path: &FieldPath,
    problems: &mut Vec<Problem>,
) -> Option<ExpectedStatuses> {
    if list.is_empty() {
        return Some(fallback.clone());
    }
    let mut ranges = Vec::with_capacity(list.len());
    let mut ok = true;
    for (index, entry) in list.iter().enumerate() {
        match parse_status_range(entry) {
            Some(range) => ranges.push(range),
            None => {
                let shown = match entry {
                    IntOrString::Int(code) => code.to_string(),
                    IntOrString::String(text) => format!("{text:?}"),
                };
                problems.push(Problem::new(
                    path.index(index),
                    format!("{shown} is not an HTTP status or range: write a code from 100 to 599 (409) or a range (\"200-399\")"),
                ));
                ok = false;
            }
        }
    }
    ok.then_some(ExpectedStatuses { ranges })
}

#[cfg(test)]
mod tests;
