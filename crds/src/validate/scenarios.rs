//! Scenario rules: k6's option shortcuts, scenario names, and each executor's required fields,
//! allowed fields and limits (k6 `lib/executor/*.go` Validate methods).

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::{Problems, listing, suggestion};
use crate::path::FieldPath;
use crate::scenario::{Executor, Scenario};
use crate::spec::LoadTestSpec;

/// k6 scenario names: `^[0-9a-zA-Z_-]+$`.
static SCENARIO_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[0-9a-zA-Z_-]+$").expect("static regex"));

/// The scenarios a spec runs: `spec.scenarios`, or the `default` scenario k6 derives from the
/// top-level shortcuts (`lib/executor/execution_config_shortcuts.go`).
pub fn effective_scenarios(spec: &LoadTestSpec) -> BTreeMap<String, Scenario> {
    if !spec.scenarios.is_empty() {
        return spec.scenarios.clone();
    }
    let scenario = if let Some(iterations) = spec.iterations {
        let mut s = Scenario::new(Executor::SharedIterations);
        s.vus = Some(spec.vus.unwrap_or(1));
        s.iterations = Some(iterations);
        s.max_duration = spec.duration.clone();
        s
    } else if let Some(duration) = &spec.duration {
        let mut s = Scenario::new(Executor::ConstantVus);
        s.vus = Some(spec.vus.unwrap_or(1));
        s.duration = Some(duration.clone());
        s
    } else if !spec.stages.is_empty() {
        let mut s = Scenario::new(Executor::RampingVus);
        s.start_vus = Some(spec.vus.unwrap_or(1));
        s.stages = spec.stages.clone();
        s
    } else if let Some(vus) = spec.vus {
        let mut s = Scenario::new(Executor::SharedIterations);
        s.vus = Some(vus);
        s.iterations = Some(vus);
        s
    } else {
        let mut s = Scenario::new(Executor::PerVuIterations);
        s.vus = Some(1);
        s.iterations = Some(1);
        s
    };
    BTreeMap::from([("default".to_string(), scenario)])
}

pub(super) fn check(
    spec: &LoadTestSpec,
    spec_path: &FieldPath,
    problems: &mut Problems,
) -> BTreeMap<String, Scenario> {
    if !spec.scenarios.is_empty() {
        for (field, set) in [
            ("stages", !spec.stages.is_empty()),
            ("duration", spec.duration.is_some()),
            ("iterations", spec.iterations.is_some()),
        ] {
            if set {
                problems.push(
                    spec_path.key(field),
                    format!(
                        "using `{field}` and `scenarios` together is not allowed (k6 rejects it too): move `{field}` into a scenario, or drop `scenarios`"
                    ),
                );
            }
        }
    }
    // For the `default` scenario derived from shortcuts, point at the top-level field the
    // scenario option came from.
    let shortcut_path = |field: &str| match field {
        "startVUs" => spec_path.key("vus"),
        "maxDuration" => spec_path.key("duration"),
        other => spec_path.key(other),
    };
    let scenarios = effective_scenarios(spec);
    for (name, scenario) in &scenarios {
        let path = if spec.scenarios.is_empty() {
            None
        } else {
            Some(spec_path.key("scenarios").key(name))
        };
        if !SCENARIO_NAME.is_match(name) {
            problems.push(
                spec_path.key("scenarios").key(name),
                format!(
                    "{name:?} is not a valid scenario name: use only letters, digits, '_' and '-' (e.g. {:?})",
                    name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
                ),
            );
        }
        let at = |field: &str| match &path {
            Some(path) => path.key(field),
            None => shortcut_path(field),
        };
        check_scenario(scenario, &at, problems);
        let flow = scenario.flow_name();
        if !spec.flows.contains_key(flow) {
            let known = spec.flows.keys().map(String::as_str);
            let message = if scenario.flow.is_none() {
                format!(
                    "runs the flow \"default\" (no `flow` is set) but spec.flows has no \"default\"; set `flow` to one of {} or add a flow named default",
                    listing(spec.flows.keys().map(String::as_str))
                )
            } else {
                format!(
                    "names the flow {flow:?}, which spec.flows does not define{}; defined flows: {}",
                    suggestion(flow, known),
                    listing(spec.flows.keys().map(String::as_str))
                )
            };
            let target = match &path {
                Some(path) if scenario.flow.is_some() => path.key("flow"),
                Some(path) => path.clone(),
                None => spec_path.key("flows"),
            };
            problems.push(target, message);
        }
        for key in scenario.env.keys() {
            if !super::data::is_env_name(key) {
                problems.push(
                    at("env").key(key),
                    format!("{key:?} is not a valid environment variable name (use letters, digits and '_', not starting with a digit)"),
                );
            }
        }
    }
    scenarios
}

fn check_scenario(scenario: &Scenario, at: &dyn Fn(&str) -> FieldPath, problems: &mut Problems) {
    let executor = scenario.executor;
    for field in scenario.set_fields() {
        if !executor.fields().contains(&field) {
            let owners: Vec<&str> = Executor::ALL
                .iter()
                .filter(|e| e.fields().contains(&field))
                .map(|e| e.name())
                .collect();
            problems.push(
                at(field),
                format!(
                    "`{field}` is not an option of the {executor} executor (it belongs to {}); remove it, or change the executor",
                    owners.join(", ")
                ),
            );
        }
    }
    for (field, text) in [
        ("startTime", &scenario.start_time),
        ("gracefulStop", &scenario.graceful_stop),
        ("gracefulRampDown", &scenario.graceful_ramp_down),
    ] {
        if let Some(text) = text {
            problems.duration(at(field), text);
        }
    }
    let at_least_one_second = |problems: &mut Problems, field: &str, text: &str| {
        if let Some(value) = problems.duration(at(field), text)
            && value < Duration::from_secs(1)
        {
            problems.push(
                at(field),
                format!("{text:?} is shorter than k6's minimum of 1s (write at least 1s)"),
            );
        }
    };
    let positive = |problems: &mut Problems, field: &str, value: Option<i64>, what: &str| {
        if let Some(value) = value
            && value <= 0
        {
            problems.push(
                at(field),
                format!("is {value}; {what} must be greater than 0"),
            );
        }
    };
    let not_negative = |problems: &mut Problems, field: &str, value: Option<i64>| {
        if let Some(value) = value
            && value < 0
        {
            problems.push(at(field), format!("is {value}; it cannot be negative"));
        }
    };
    match executor {
        Executor::SharedIterations | Executor::PerVuIterations => {
            positive(problems, "vus", scenario.vus, "the number of VUs");
            positive(
                problems,
                "iterations",
                scenario.iterations,
                "the number of iterations",
            );
            if executor == Executor::SharedIterations {
                let vus = scenario.vus.unwrap_or(1);
                let iterations = scenario.iterations.unwrap_or(1);
                if vus > 0 && iterations > 0 && iterations < vus {
                    problems.push(
                        at("iterations"),
                        format!(
                            "{iterations} iterations cannot be shared by {vus} VUs (k6 requires iterations >= vus): raise iterations to at least {vus} or lower vus"
                        ),
                    );
                }
            }
            if let Some(text) = &scenario.max_duration {
                at_least_one_second(problems, "maxDuration", text);
            }
        }
        Executor::ConstantVus => {
            positive(problems, "vus", scenario.vus, "the number of VUs");
            match &scenario.duration {
                Some(text) => at_least_one_second(problems, "duration", text),
                None => problems.push(
                    at("duration"),
                    "is required for constant-vus (e.g. duration: 1m)",
                ),
            }
        }
        Executor::RampingVus => {
            not_negative(problems, "startVUs", scenario.start_vus);
            check_stages(scenario, at, problems, "VUs");
            let any_vus = scenario.start_vus.unwrap_or(1) > 0
                || scenario.stages.iter().any(|stage| stage.target > 0);
            if !scenario.stages.is_empty() && !any_vus {
                problems.push(
                    at("stages"),
                    "every target is 0 and startVUs is 0, so no VU would ever run: raise a stage target or startVUs",
                );
            }
        }
        Executor::ConstantArrivalRate => {
            match scenario.rate {
                None => problems.push(
                    at("rate"),
                    "is required for constant-arrival-rate (iteration starts per timeUnit, e.g. rate: 100)",
                ),
                Some(_) => positive(problems, "rate", scenario.rate, "the rate"),
            }
            match &scenario.duration {
                Some(text) => at_least_one_second(problems, "duration", text),
                None => problems.push(
                    at("duration"),
                    "is required for constant-arrival-rate (e.g. duration: 1m)",
                ),
            }
            check_arrival_vus(scenario, at, problems);
        }
        Executor::RampingArrivalRate => {
            not_negative(problems, "startRate", scenario.start_rate);
            check_stages(scenario, at, problems, "iterations per timeUnit");
            check_arrival_vus(scenario, at, problems);
        }
    }
}

fn check_stages(
    scenario: &Scenario,
    at: &dyn Fn(&str) -> FieldPath,
    problems: &mut Problems,
    unit: &str,
) {
    if scenario.stages.is_empty() {
        problems.push(
            at("stages"),
            format!(
                "{} needs at least one stage (e.g. stages: [{{duration: 30s, target: 10}}], target in {unit})",
                scenario.executor
            ),
        );
    }
    for (index, stage) in scenario.stages.iter().enumerate() {
        let path = at("stages").index(index);
        problems.duration(path.key("duration"), &stage.duration);
        if stage.target < 0 {
            problems.push(
                path.key("target"),
                format!("is {}; a target ({unit}) cannot be negative", stage.target),
            );
        }
    }
}

fn check_arrival_vus(scenario: &Scenario, at: &dyn Fn(&str) -> FieldPath, problems: &mut Problems) {
    if let Some(text) = &scenario.time_unit
        && let Some(value) = problems.duration(at("timeUnit"), text)
        && value.is_zero()
    {
        problems.push(at("timeUnit"), "must be longer than 0 (e.g. timeUnit: 1s)");
    }
    match scenario.pre_allocated_vus {
        None => problems.push(
            at("preAllocatedVUs"),
            format!(
                "is required for {} (VUs allocated before the start, e.g. preAllocatedVUs: 50)",
                scenario.executor
            ),
        ),
        Some(pre) if pre < 0 => problems.push(
            at("preAllocatedVUs"),
            format!("is {pre}; it cannot be negative"),
        ),
        Some(pre) => {
            if let Some(max) = scenario.max_vus
                && max < pre
            {
                problems.push(
                    at("maxVUs"),
                    format!(
                        "is {max}, below preAllocatedVUs ({pre}); maxVUs must be >= preAllocatedVUs (raise maxVUs to at least {pre})"
                    ),
                );
            }
            if pre == 0 && scenario.max_vus.unwrap_or(0) == 0 {
                problems.push(
                    at("maxVUs"),
                    "preAllocatedVUs and maxVUs are both 0, so no iteration could ever start: set preAllocatedVUs or maxVUs above 0",
                );
            }
        }
    }
}
