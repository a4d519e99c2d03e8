//! Flow rules: step shapes, requests, captures, checks, conditions, sleeps, groups, and the
//! template references they make (variables must be captured before they are read).

use std::collections::{BTreeMap, BTreeSet};

use super::data::{EnvNames, Tables, check_absolute_url, check_expected_statuses};
use super::{Problems, listing, suggestion};
use crate::expr;
use crate::flow::{Capture, Request, SleepRange, SleepSpec, Step};
use crate::path::FieldPath;
use crate::scenario::Scenario;
use crate::spec::LoadTestSpec;
use crate::template::{self, Reference};

/// HTTP methods a request may use.
const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Names the flows define, which sub-metric thresholds may filter on.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// `name` tag values of requests.
    pub steps: BTreeSet<String>,
    /// Check names.
    pub checks: BTreeSet<String>,
    /// Group tags (`::a`, `::a::b`).
    pub groups: BTreeSet<String>,
}

/// What a template may refer to at one point of a flow.
#[derive(Debug)]
pub(super) struct Scope<'a> {
    env: &'a EnvNames,
    tables: Option<&'a Tables>,
    /// Values captured by setup; `None` inside setup itself.
    setup: Option<&'a BTreeSet<String>>,
    /// Variables captured so far in this flow.
    vars: BTreeSet<String>,
    /// Every variable the flow captures anywhere (to tell "later" from "never").
    captured_anywhere: BTreeSet<String>,
    where_: &'static str,
}

impl<'a> Scope<'a> {
    /// The scope of `spec.defaults`: environment only.
    pub(super) fn for_defaults(env: &'a EnvNames) -> Self {
        Scope {
            env,
            tables: None,
            setup: None,
            vars: BTreeSet::new(),
            captured_anywhere: BTreeSet::new(),
            where_: "spec.defaults",
        }
    }
}

pub(super) fn check(
    spec: &LoadTestSpec,
    _scenarios: &BTreeMap<String, Scenario>,
    env: &EnvNames,
    tables: &Tables,
    spec_path: &FieldPath,
    problems: &mut Problems,
) -> Names {
    let mut names = Names::default();
    let has_base_url = spec
        .defaults
        .as_ref()
        .and_then(|d| d.base_url.as_ref())
        .is_some();

    let mut setup_scope = Scope {
        env,
        tables: Some(tables),
        setup: None,
        vars: BTreeSet::new(),
        captured_anywhere: captures_in(&spec.setup),
        where_: "setup",
    };
    let walker = Walker { has_base_url };
    walker.steps(
        &spec.setup,
        &spec_path.key("setup"),
        &mut setup_scope,
        "::setup",
        &mut names,
        problems,
    );
    let setup_values = setup_scope.vars;

    let mut teardown_scope = Scope {
        env,
        tables: Some(tables),
        setup: Some(&setup_values),
        vars: BTreeSet::new(),
        captured_anywhere: captures_in(&spec.teardown),
        where_: "teardown",
    };
    walker.steps(
        &spec.teardown,
        &spec_path.key("teardown"),
        &mut teardown_scope,
        "::teardown",
        &mut names,
        problems,
    );

    for (flow_name, steps) in &spec.flows {
        let path = spec_path.key("flows").key(flow_name);
        if steps.is_empty() {
            problems.push(
                path.clone(),
                "is empty; a flow needs at least one step (a request, sleep or group)",
            );
        }
        let mut scope = Scope {
            env,
            tables: Some(tables),
            setup: Some(&setup_values),
            vars: BTreeSet::new(),
            captured_anywhere: captures_in(steps),
            where_: "flow",
        };
        walker.steps(steps, &path, &mut scope, "", &mut names, problems);
    }
    names
}

fn captures_in(steps: &[Step]) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for step in steps {
        all.extend(step.capture.keys().cloned());
        all.extend(captures_in(&step.steps));
    }
    all
}

/// Checks one template string; returns whether it parsed.
pub(super) fn check_template_text(
    text: &str,
    path: &FieldPath,
    scope: &Scope<'_>,
    problems: &mut Problems,
) -> bool {
    match template::parse(text) {
        Ok(parsed) => {
            for reference in parsed.references() {
                check_reference(reference, path, scope, problems);
            }
            true
        }
        Err(error) => {
            problems.push(path.clone(), format!("{text:?}: {error}"));
            false
        }
    }
}

fn check_reference(
    reference: &Reference,
    path: &FieldPath,
    scope: &Scope<'_>,
    problems: &mut Problems,
) {
    match reference {
        Reference::Var(name) => {
            if scope.vars.contains(name) {
                return;
            }
            let message = if scope.captured_anywhere.contains(name) {
                format!(
                    "reads ${{{name}}} before the step that captures it; move the capturing step earlier"
                )
            } else if scope.where_ == "spec.defaults" {
                format!("reads ${{{name}}}, but defaults can only use ${{env.NAME}}; define it in spec.env")
            } else {
                format!(
                    "reads ${{{name}}}, which no earlier step captures{}; capture it first (capture: {{{name}: {{json: \"$.{name}\"}}}}) or use ${{env.X}}, ${{data.TABLE.COLUMN}} or ${{setup.X}}",
                    suggestion(name, scope.vars.iter().chain(scope.captured_anywhere.iter()).map(String::as_str))
                )
            };
            problems.push(path.clone(), message);
        }
        Reference::Env(name) => {
            if !scope.env.contains(name) {
                problems.push(
                    path.clone(),
                    format!(
                        "reads ${{env.{name}}}, which is not defined{}; add it to spec.env (- {{name: {name}, value: \"...\"}}) or pass -e {name}=... to stampede run",
                        suggestion(name, scope.env.iter().map(String::as_str))
                    ),
                );
            }
        }
        Reference::Data { table, column } => {
            let Some(tables) = scope.tables else {
                problems.push(path.clone(), format!("reads ${{data.{table}.{column}}}, but data tables are not available here"));
                return;
            };
            match tables.get(table) {
                None => problems.push(
                    path.clone(),
                    format!(
                        "reads ${{data.{table}.{column}}}, but spec.data has no table {table:?}{}; defined tables: {}",
                        suggestion(table, tables.keys().map(String::as_str)),
                        listing(tables.keys().map(String::as_str))
                    ),
                ),
                Some(Some(columns)) if !columns.contains(column) => problems.push(
                    path.clone(),
                    format!(
                        "reads ${{data.{table}.{column}}}, but table {table:?} has no column {column:?}{}; its columns: {}",
                        suggestion(column, columns.iter().map(String::as_str)),
                        listing(columns.iter().map(String::as_str))
                    ),
                ),
                Some(_) => {}
            }
        }
        Reference::Setup(name) => match scope.setup {
            None => problems.push(
                path.clone(),
                format!("reads ${{setup.{name}}} inside setup itself; within setup write ${{{name}}} after the step that captures it"),
            ),
            Some(values) if !values.contains(name) => problems.push(
                path.clone(),
                format!(
                    "reads ${{setup.{name}}}, but no spec.setup step captures {name:?}{}; setup captures: {}",
                    suggestion(name, values.iter().map(String::as_str)),
                    listing(values.iter().map(String::as_str))
                ),
            ),
            Some(_) => {}
        },
        Reference::Builtin(_) | Reference::Call(_) => {}
    }
}

struct Walker {
    has_base_url: bool,
}

impl Walker {
    fn steps(
        &self,
        steps: &[Step],
        path: &FieldPath,
        scope: &mut Scope<'_>,
        group: &str,
        names: &mut Names,
        problems: &mut Problems,
    ) {
        for (index, step) in steps.iter().enumerate() {
            self.step(step, &path.index(index), scope, group, names, problems);
        }
    }

    fn step(
        &self,
        step: &Step,
        path: &FieldPath,
        scope: &mut Scope<'_>,
        group: &str,
        names: &mut Names,
        problems: &mut Problems,
    ) {
        match step.actions().as_slice() {
            [] => problems.push(
                path.clone(),
                "does nothing: give the step one of `request`, `sleep` or `group`",
            ),
            [_] => {}
            many => problems.push(
                path.clone(),
                format!(
                    "sets {}; a step does one thing, so split it into one step each",
                    many.iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            ),
        }
        if let Some(name) = &step.name
            && name.trim().is_empty()
        {
            problems.push(
                path.key("name"),
                "is empty; name the step (it tags the step's metrics) or omit `name`",
            );
        }
        if let Some(condition) = &step.condition {
            let at = path.key("if");
            match expr::parse(condition) {
                Ok(parsed) => {
                    if parsed.reads_response() {
                        problems.push(
                            at.clone(),
                            format!(
                                "{condition:?} reads the response (status, duration, body, header, json or cookie), but `if` is decided before the request; capture the value in an earlier step and test ${{var}}"
                            ),
                        );
                    }
                    for reference in parsed.references() {
                        check_reference(reference, &at, scope, problems);
                    }
                }
                Err(error) => problems.push(at, format!("{condition:?}: {error}")),
            }
        }
        if let Some(request) = &step.request {
            self.request(request, &path.key("request"), scope, problems);
            if let Some(name) = step.metric_name() {
                names.steps.insert(name);
            }
        } else {
            if !step.checks.is_empty() {
                problems.push(
                    path.key("checks"),
                    "checks need a response: put them on a step with a `request`",
                );
            }
            if !step.capture.is_empty() {
                problems.push(
                    path.key("capture"),
                    "captures need a response: put them on a step with a `request`",
                );
            }
        }
        // Captures happen as the response arrives, before checks run, so checks may read them.
        for (name, capture) in &step.capture {
            check_capture(
                name,
                capture,
                &path.key("capture").key(name),
                scope,
                problems,
            );
        }
        for name in step.capture.keys() {
            scope.vars.insert(name.clone());
        }
        for (name, check) in &step.checks {
            let at = path.key("checks").key(name);
            if name.trim().is_empty() {
                problems.push(
                    at.clone(),
                    "has an empty name; name each check (e.g. \"login ok\")",
                );
            }
            names.checks.insert(name.clone());
            match expr::parse(check) {
                Ok(parsed) => {
                    for reference in parsed.references() {
                        check_reference(reference, &at, scope, problems);
                    }
                }
                Err(error) => problems.push(at, format!("{check:?}: {error}")),
            }
        }
        if let Some(sleep) = &step.sleep {
            check_sleep(sleep, &path.key("sleep"), problems);
        }
        if let Some(group_name) = &step.group {
            let at = path.key("group");
            if group_name.trim().is_empty() || group_name.contains("::") {
                problems.push(at, format!("{group_name:?} is not a group name: it must be non-empty and may not contain \"::\""));
            }
            let tag = format!("{group}::{group_name}");
            names.groups.insert(tag.clone());
            if step.steps.is_empty() {
                problems.push(
                    path.key("steps"),
                    "a group needs at least one step in `steps`",
                );
            }
            self.steps(
                &step.steps,
                &path.key("steps"),
                scope,
                &tag,
                names,
                problems,
            );
        } else if !step.steps.is_empty() {
            problems.push(
                path.key("steps"),
                "nested `steps` belong to a group: add `group: NAME` to this step, or move the steps into the flow",
            );
        }
    }

    fn request(
        &self,
        request: &Request,
        path: &FieldPath,
        scope: &Scope<'_>,
        problems: &mut Problems,
    ) {
        if let Some(method) = &request.method
            && !METHODS.contains(&method.to_ascii_uppercase().as_str())
        {
            problems.push(
                path.key("method"),
                format!(
                    "{method:?} is not an HTTP method{}; use one of {}",
                    suggestion(&method.to_ascii_uppercase(), METHODS),
                    METHODS.join(", ")
                ),
            );
        }
        let url_path = path.key("url");
        let url = request.url.trim();
        if url.is_empty() {
            problems.push(
                url_path,
                "is empty; write a path such as /api/login or an absolute http(s) URL",
            );
        } else if check_template_text(url, &url_path, scope, problems) {
            if url.starts_with("http://") || url.starts_with("https://") {
                if !url.contains("${") {
                    check_absolute_url(url, &url_path, problems);
                }
            } else if url.starts_with("${") {
                // A templated URL decides at run time whether it is absolute.
            } else if !self.has_base_url {
                problems.push(
                    url_path,
                    format!("{url:?} is relative but spec.defaults.baseUrl is not set; set baseUrl (e.g. http://shop.shop.svc:8080) or write an absolute URL"),
                );
            } else if !url.starts_with('/') && !url.starts_with('?') {
                problems.push(
                    url_path,
                    format!(
                        "{url:?} is neither absolute nor a path; start it with / (e.g. /{url})"
                    ),
                );
            }
        }
        for (name, value) in &request.headers {
            check_template_text(value, &path.key("headers").key(name), scope, problems);
        }
        for (name, value) in &request.query {
            check_template_text(value, &path.key("query").key(name), scope, problems);
        }
        for (name, value) in &request.form {
            check_template_text(value, &path.key("form").key(name), scope, problems);
        }
        if let Some(body) = &request.body {
            check_template_text(body, &path.key("body"), scope, problems);
        }
        if let Some(json) = &request.json {
            match template::references_in_json(json) {
                Ok(references) => {
                    for reference in &references {
                        check_reference(reference, &path.key("json"), scope, problems);
                    }
                }
                Err((pointer, error)) => {
                    problems.push(path.key("json"), format!("at {pointer}: {error}"))
                }
            }
        }
        let bodies: Vec<&str> = [
            ("json", request.json.is_some()),
            ("form", !request.form.is_empty()),
            ("body", request.body.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name)
        .collect();
        if bodies.len() > 1 {
            problems.push(
                path.clone(),
                format!(
                    "sets {}; a request has one body, so keep one of json, form or body",
                    listing(bodies)
                ),
            );
        }
        if let Some(timeout) = &request.timeout
            && let Some(value) = problems.duration(path.key("timeout"), timeout)
            && value.is_zero()
        {
            problems.push(
                path.key("timeout"),
                "must be longer than 0 (k6 default 60s)",
            );
        }
        check_expected_statuses(
            &request.expected_statuses,
            &path.key("expectedStatuses"),
            problems,
        );
        if let Some(redirects) = request.max_redirects
            && redirects < 0
        {
            problems.push(
                path.key("maxRedirects"),
                format!("is {redirects}; use 0 to not follow redirects"),
            );
        }
    }
}

fn check_capture(
    name: &str,
    capture: &Capture,
    path: &FieldPath,
    scope: &Scope<'_>,
    problems: &mut Problems,
) {
    let identifier = {
        let mut chars = name.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !identifier {
        problems.push(
            path.clone(),
            format!("{name:?} is not a usable variable name (letters, digits and '_', e.g. sessionId); it is read as ${{{name}}}"),
        );
    } else if template::is_reserved(name) {
        problems.push(
            path.clone(),
            format!("{name:?} is a reserved name; pick another variable name"),
        );
    }
    match capture.sources().as_slice() {
        [] => problems.push(
            path.clone(),
            "has no source: set one of json (JSONPath), regex, header or cookie",
        ),
        [_] => {}
        many => problems.push(
            path.clone(),
            format!(
                "sets {}; a capture reads one source, so keep one",
                listing(many.iter().copied())
            ),
        ),
    }
    if let Some(json_path) = &capture.json
        && let Err(error) = crate::jsonpath::parse(json_path)
    {
        problems.push(
            path.key("json"),
            crate::jsonpath::problem(json_path, &error),
        );
    }
    match &capture.regex {
        Some(pattern) => match regex::Regex::new(pattern) {
            Ok(compiled) => {
                if let Some(group) = capture.group {
                    let groups = compiled.captures_len() as i64 - 1;
                    if group < 0 || group > groups {
                        problems.push(
                            path.key("group"),
                            format!("is {group}, but the regex has {groups} group(s); use 0 (whole match) to {groups}"),
                        );
                    }
                }
            }
            Err(error) => problems.push(
                path.key("regex"),
                format!(
                    "{pattern:?} is not a valid regular expression: {}",
                    error.to_string().lines().last().unwrap_or("invalid")
                ),
            ),
        },
        None => {
            if capture.group.is_some() {
                problems.push(
                    path.key("group"),
                    "only applies to a `regex` capture; remove it",
                );
            }
        }
    }
    for (field, value) in [("header", &capture.header), ("cookie", &capture.cookie)] {
        if let Some(value) = value
            && value.trim().is_empty()
        {
            problems.push(
                path.key(field),
                format!("is empty; name the {field} to read"),
            );
        }
    }
    if let Some(default) = &capture.default {
        if !capture.optional {
            problems.push(
                path.key("default"),
                "only applies to an optional capture; add `optional: true` or remove it",
            );
        }
        check_template_text(default, &path.key("default"), scope, problems);
    }
}

fn check_sleep(sleep: &SleepSpec, path: &FieldPath, problems: &mut Problems) {
    match sleep {
        SleepSpec::Fixed(text) => {
            problems.duration(path.clone(), text);
        }
        SleepSpec::Range(SleepRange { min, max }) => {
            let low = problems.duration(path.key("min"), min);
            let high = problems.duration(path.key("max"), max);
            if let (Some(low), Some(high)) = (low, high)
                && low > high
            {
                problems.push(
                    path.clone(),
                    format!("min ({min}) is longer than max ({max}); swap them"),
                );
            }
        }
    }
}
