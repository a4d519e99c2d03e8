//! Rules for the test's inputs: env, data tables, request defaults, runners and summary options.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Options, Problems, flows::check_template_text, listing};
use crate::model::summary::TrendStat;
use crate::path::FieldPath;
use crate::spec::LoadTestSpec;

/// Columns of each data table; `None` when they are only known at run time (files, ConfigMaps).
pub(super) type Tables = BTreeMap<String, Option<BTreeSet<String>>>;

/// Environment names a template may read as `${env.NAME}`.
pub(super) type EnvNames = BTreeSet<String>;

/// Names usable as `${env.NAME}`: letters, digits and '_', not starting with a digit.
pub(super) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Who sets `name` in a runner pod, when it is not the LoadTest's to set: the operator's
/// `STAMPEDE_*` (run identity, target policy), Kubernetes' `JOB_COMPLETION_INDEX` and
/// `KUBERNETES_*` (the API server the agent sends its token to).
fn reserved_env(name: &str) -> Option<&'static str> {
    if name.starts_with("STAMPEDE_") {
        Some("the operator")
    } else if name == "JOB_COMPLETION_INDEX" || name.starts_with("KUBERNETES_") {
        Some("Kubernetes")
    } else {
        None
    }
}

pub(super) fn check_env(
    spec: &LoadTestSpec,
    options: &Options,
    spec_path: &FieldPath,
    problems: &mut Problems,
) -> EnvNames {
    let mut names: EnvNames = options.extra_env.clone();
    for scenario in spec.scenarios.values() {
        names.extend(scenario.env.keys().cloned());
    }
    let mut seen = BTreeSet::new();
    for (index, var) in spec.env.iter().enumerate() {
        let path = spec_path.key("env").index(index);
        if !is_env_name(&var.name) {
            problems.push(
                path.key("name"),
                format!(
                    "{:?} is not a usable environment variable name (use letters, digits and '_', not starting with a digit, e.g. BASE_URL)",
                    var.name
                ),
            );
        }
        if let Some(owner) = reserved_env(&var.name) {
            problems.push(
                path.key("name"),
                format!(
                    "{:?} is reserved: {owner} sets it in every runner pod, and a LoadTest must not change it; rename the variable",
                    var.name
                ),
            );
        }
        if !seen.insert(var.name.clone()) {
            problems.push(
                path.key("name"),
                format!("{:?} is defined twice in spec.env; keep one", var.name),
            );
        }
        names.insert(var.name.clone());
        match (&var.value, &var.value_from) {
            (Some(_), Some(_)) => problems.push(
                path.clone(),
                "sets both `value` and `valueFrom`; keep one (valueFrom.secretKeyRef for secrets)",
            ),
            (None, Some(from)) => {
                let sources = [
                    from.secret_key_ref.is_some(),
                    from.config_map_key_ref.is_some(),
                    from.field_ref.is_some(),
                    from.resource_field_ref.is_some(),
                ];
                let count = sources.iter().filter(|set| **set).count();
                if count != 1 {
                    problems.push(
                        path.key("valueFrom"),
                        format!(
                            "sets {count} sources; set exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef"
                        ),
                    );
                }
                if let Some(secret) = &from.secret_key_ref
                    && (secret.name.is_empty() || secret.key.is_empty())
                {
                    problems.push(
                        path.key("valueFrom").key("secretKeyRef"),
                        "needs both `name` and `key` (e.g. {name: shop-test-user, key: password})",
                    );
                }
            }
            _ => {}
        }
    }
    names
}

pub(super) fn check_tables(
    spec: &LoadTestSpec,
    spec_path: &FieldPath,
    problems: &mut Problems,
) -> Tables {
    let mut tables = Tables::new();
    for (name, table) in &spec.data {
        let path = spec_path.key("data").key(name);
        if !is_env_name(name) {
            problems.push(
                path.clone(),
                format!(
                    "{name:?} is not a usable table name (use letters, digits and '_', e.g. users)"
                ),
            );
        }
        let sources = table.sources();
        let mut columns = None;
        match sources.as_slice() {
            [] => problems.push(
                path.clone(),
                "has no rows: set exactly one of `rows` (inline), `csv` (inline text), `file` (local) or `configMapRef` (in a cluster)",
            ),
            [_] => {}
            many => problems.push(
                path.clone(),
                format!("sets {}; set exactly one row source", listing(many.iter().copied())),
            ),
        }
        if !table.rows.is_empty() {
            let first: BTreeSet<String> = table.rows[0].keys().cloned().collect();
            for (index, row) in table.rows.iter().enumerate().skip(1) {
                let these: BTreeSet<String> = row.keys().cloned().collect();
                if these != first {
                    problems.push(
                        path.key("rows").index(index),
                        format!(
                            "has columns {} but row 0 has {}; every row needs the same columns",
                            listing(these.iter().map(String::as_str)),
                            listing(first.iter().map(String::as_str))
                        ),
                    );
                }
            }
            columns = Some(first);
        }
        if let Some(csv) = &table.csv {
            match csv.lines().find(|line| !line.trim().is_empty()) {
                Some(header) => {
                    columns = Some(header.split(',').map(|c| c.trim().trim_matches('"').to_string()).collect());
                    if csv.lines().filter(|line| !line.trim().is_empty()).count() < 2 {
                        problems.push(path.key("csv"), "has a header line but no rows; add at least one row");
                    }
                }
                None => problems.push(path.key("csv"), "is empty; write a header line and rows, e.g. \"username,password\\nalice,secret\""),
            }
        }
        if let Some(file) = &table.file
            && file.trim().is_empty()
        {
            problems.push(
                path.key("file"),
                "is empty; name a CSV or JSON file relative to the manifest",
            );
        }
        if let Some(reference) = &table.config_map_ref
            && (reference.name.is_empty() || reference.key.is_empty())
        {
            problems.push(
                path.key("configMapRef"),
                "needs both `name` and `key` (e.g. {name: test-users, key: users.csv})",
            );
        }
        tables.insert(name.clone(), columns);
    }
    tables
}

pub(super) fn check_defaults(
    spec: &LoadTestSpec,
    env: &EnvNames,
    options: &Options,
    spec_path: &FieldPath,
    problems: &mut Problems,
) {
    let Some(defaults) = &spec.defaults else {
        return;
    };
    let path = spec_path.key("defaults");
    if let Some(base) = &defaults.base_url {
        let scope = super::flows::Scope::for_defaults(env);
        if check_template_text(base, &path.key("baseUrl"), &scope, problems) {
            if !base.contains("${") {
                check_absolute_url(base, &path.key("baseUrl"), problems);
            } else if let Some(rendered) = render_static(base, spec, options) {
                check_static_url(base, &rendered, &path.key("baseUrl"), problems);
            }
        }
    }
    if let Some(timeout) = &defaults.timeout
        && let Some(value) = problems.duration(path.key("timeout"), timeout)
        && value.is_zero()
    {
        problems.push(
            path.key("timeout"),
            "must be longer than 0 (k6 default 60s)",
        );
    }
    if let Some(text) = &defaults.min_iteration_duration {
        problems.duration(path.key("minIterationDuration"), text);
    }
    if let Some(redirects) = defaults.max_redirects
        && redirects < 0
    {
        problems.push(
            path.key("maxRedirects"),
            format!("is {redirects}; use 0 to not follow redirects"),
        );
    }
    check_expected_statuses(
        &defaults.expected_statuses,
        &path.key("expectedStatuses"),
        problems,
    );
    for (name, value) in &defaults.headers {
        check_template_text(
            value,
            &path.key("headers").key(name),
            &super::flows::Scope::for_defaults(env),
            problems,
        );
    }
}

/// Checks that a literal URL is absolute http(s).
/// `text` rendered when every reference in it is `${env.NAME}` of a static `spec.env` value
/// that nothing else can replace (no `valueFrom`, no scenario `env`, no `-e` on the command
/// line): what every runner will see, so it can be checked now.
pub(super) fn render_static(text: &str, spec: &LoadTestSpec, options: &Options) -> Option<String> {
    let template = crate::template::parse(text).ok()?;
    let mut rendered = String::new();
    for segment in &template.segments {
        match segment {
            crate::template::Segment::Literal(literal) => rendered.push_str(literal),
            crate::template::Segment::Ref(crate::template::Reference::Env(name)) => {
                let overridable = options.extra_env.contains(name)
                    || spec.scenarios.values().any(|s| s.env.contains_key(name));
                if overridable {
                    return None;
                }
                let var = spec.env.iter().find(|v| &v.name == name)?;
                if var.value_from.is_some() {
                    return None;
                }
                rendered.push_str(var.value.as_deref()?);
            }
            crate::template::Segment::Ref(_) => return None,
        }
    }
    Some(rendered)
}

/// Checks a URL rendered from static `spec.env` values, naming both the template and the value.
fn check_static_url(template: &str, url: &str, path: &FieldPath, problems: &mut Problems) {
    if !is_http_url(url) {
        problems.push(
            path.clone(),
            format!(
                "{template:?} renders to {url:?} with the values of spec.env, which is not an http(s) URL; set the spec.env value to one (e.g. http://shop.shop.svc:8080)"
            ),
        );
    }
}

/// Whether `url` is an absolute http(s) URL with a host.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

pub(super) fn check_absolute_url(url: &str, path: &FieldPath, problems: &mut Problems) {
    if !is_http_url(url) {
        problems.push(
            path.clone(),
            format!("{url:?} is not an http(s) URL (write e.g. http://shop.shop.svc:8080)"),
        );
    }
}

/// Checks `expectedStatuses` entries: codes 100..=599 or ranges "200-399".
pub(super) fn check_expected_statuses(
    statuses: &[IntOrString],
    path: &FieldPath,
    problems: &mut Problems,
) {
    for (index, status) in statuses.iter().enumerate() {
        // The model parses entries with the same function, so what passes here compiles.
        if crate::model::flow::parse_status_range(status).is_none() {
            let shown = match status {
                IntOrString::Int(code) => code.to_string(),
                IntOrString::String(text) => format!("{text:?}"),
            };
            problems.push(
                path.index(index),
                format!("{shown} is not an HTTP status or range: write a code from 100 to 599 (409) or a range (\"200-399\")"),
            );
        }
    }
}

pub(super) fn check_runners_and_summary(
    spec: &LoadTestSpec,
    spec_path: &FieldPath,
    problems: &mut Problems,
) {
    if let Some(runners) = &spec.runners {
        let path = spec_path.key("runners");
        if let Some(count) = runners.count
            && count < 1
        {
            problems.push(
                path.key("count"),
                format!("is {count}; a test needs at least 1 runner (omit it to size from VUs)"),
            );
        }
        if let Some(max) = runners.max_vus_per_runner
            && max < 1
        {
            problems.push(
                path.key("maxVUsPerRunner"),
                format!("is {max}; it must be at least 1 (default 1000)"),
            );
        }
        if let Some(image) = &runners.image
            && image.trim().is_empty()
        {
            problems.push(
                path.key("image"),
                "is empty; omit it to use the operator's runner image",
            );
        }
    }
    if let Some(ttl) = spec.ttl_seconds_after_finished
        && ttl < 0
    {
        problems.push(
            spec_path.key("ttlSecondsAfterFinished"),
            format!("is {ttl}; use 0 or more seconds, or omit it to keep the LoadTest"),
        );
    }
    if let Some(stats) = &spec.summary_trend_stats {
        for (index, stat) in stats.iter().enumerate() {
            if TrendStat::parse(stat).is_err() {
                problems.push(
                    spec_path.key("summaryTrendStats").index(index),
                    format!(
                        "{stat:?} is not a trend statistic{}; use avg, min, med, max, count or p(N) with 0 <= N <= 100",
                        super::suggestion(stat, TrendStat::NAMES)
                    ),
                );
            }
        }
    }
}
