//! The effective scenarios of a test as typed values: every time a `Duration`, every count a
//! `u64`, each executor with exactly its own parameters and k6's defaults applied — what the
//! schedules plan from, so no consumer reads a scenario's text again.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use crate::duration::{self, DurationError};
use crate::path::FieldPath;
use crate::scenario::{
    self as wire, DEFAULT_GRACEFUL_RAMP_DOWN, DEFAULT_GRACEFUL_STOP, DEFAULT_MAX_DURATION,
    DEFAULT_TIME_UNIT,
};
use crate::spec::LoadTestSpec;
use crate::validate::{Problem, effective_scenarios};

/// One scenario as it runs: the shortcut `default` scenario or an entry of `spec.scenarios`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The scenario's name (`default` for the shortcut scenario).
    pub name: String,
    /// The flow each iteration runs (k6's `exec`, `default` when the manifest names none).
    pub flow: String,
    /// Delay from the test start before the scenario begins.
    pub start_time: Duration,
    /// How long running iterations may finish after the regular end.
    pub graceful_stop: Duration,
    /// Environment variables of this scenario only.
    pub env: BTreeMap<String, String>,
    /// Tags added to every sample of this scenario.
    pub tags: BTreeMap<String, String>,
    /// The executor with its parameters.
    pub executor: Executor,
    /// Which times took k6's default instead of a value the manifest wrote.
    pub defaulted: DefaultedTimes,
}

/// The times of a scenario that took k6's default. `--duration-scale` scales only the times a
/// manifest wrote: a default such as the 10m `maxDuration` is a safety net, not a schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultedTimes {
    /// `gracefulStop` was not written (30s).
    pub graceful_stop: bool,
    /// `maxDuration` of an iteration-count executor was not written (10m).
    pub max_duration: bool,
    /// `gracefulRampDown` of ramping-vus was not written (30s).
    pub graceful_ramp_down: bool,
}

/// An executor and its parameters (k6 `lib/executor`).
#[derive(Debug, Clone, PartialEq)]
pub enum Executor {
    /// A pool of VUs shares a number of iterations.
    SharedIterations(Iterations),
    /// Each VU runs a number of iterations.
    PerVuIterations(Iterations),
    /// A fixed number of VUs loop for a duration.
    ConstantVus(ConstantVus),
    /// VUs ramp through stages.
    RampingVus(RampingVus),
    /// Iterations start at a fixed rate.
    ConstantArrivalRate(ConstantArrivalRate),
    /// The iteration start rate ramps through stages.
    RampingArrivalRate(RampingArrivalRate),
}

impl Executor {
    /// The executor's kind, as manifests name it.
    pub fn kind(&self) -> wire::Executor {
        match self {
            Executor::SharedIterations(_) => wire::Executor::SharedIterations,
            Executor::PerVuIterations(_) => wire::Executor::PerVuIterations,
            Executor::ConstantVus(_) => wire::Executor::ConstantVus,
            Executor::RampingVus(_) => wire::Executor::RampingVus,
            Executor::ConstantArrivalRate(_) => wire::Executor::ConstantArrivalRate,
            Executor::RampingArrivalRate(_) => wire::Executor::RampingArrivalRate,
        }
    }
}

/// Parameters of shared-iterations and per-vu-iterations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iterations {
    /// VUs (default 1).
    pub vus: u64,
    /// Iterations shared by all VUs, or per VU (default 1).
    pub iterations: u64,
    /// Hard limit of the scenario (default 10m).
    pub max_duration: Duration,
}

/// Parameters of constant-vus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstantVus {
    /// VUs (default 1).
    pub vus: u64,
    /// How long the VUs loop.
    pub duration: Duration,
}

/// Parameters of ramping-vus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RampingVus {
    /// VUs at the start (default 1).
    pub start_vus: u64,
    /// The VU targets.
    pub stages: Vec<Stage>,
    /// How long a VU removed by a ramp-down may finish its iteration (default 30s).
    pub graceful_ramp_down: Duration,
}

/// Parameters of constant-arrival-rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstantArrivalRate {
    /// Iteration starts per `time_unit`.
    pub rate: u64,
    /// The period `rate` counts in (default 1s; never zero).
    pub time_unit: Duration,
    /// How long iterations start.
    pub duration: Duration,
    /// VUs allocated before the start.
    pub pre_allocated_vus: u64,
    /// Most VUs (default `pre_allocated_vus`).
    pub max_vus: u64,
}

/// Parameters of ramping-arrival-rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RampingArrivalRate {
    /// Starts per `time_unit` at the start (default 0).
    pub start_rate: u64,
    /// The period rates count in (default 1s; never zero).
    pub time_unit: Duration,
    /// The rate targets.
    pub stages: Vec<Stage>,
    /// VUs allocated before the start.
    pub pre_allocated_vus: u64,
    /// Most VUs (default `pre_allocated_vus`).
    pub max_vus: u64,
}

/// One stage of a ramp: move linearly to `target` over `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    /// How long the stage lasts (zero jumps at once).
    pub duration: Duration,
    /// VUs or starts per time unit at the stage's end.
    pub target: u64,
}

/// k6's default times, parsed once from the `DEFAULT_*` constants of [`crate::scenario`].
#[derive(Debug, Clone, Copy)]
struct K6Defaults {
    graceful_stop: Duration,
    graceful_ramp_down: Duration,
    max_duration: Duration,
    time_unit: Duration,
}

static K6_DEFAULTS: LazyLock<Result<K6Defaults, DurationError>> = LazyLock::new(|| {
    Ok(K6Defaults {
        graceful_stop: duration::parse(DEFAULT_GRACEFUL_STOP)?,
        graceful_ramp_down: duration::parse(DEFAULT_GRACEFUL_RAMP_DOWN)?,
        max_duration: duration::parse(DEFAULT_MAX_DURATION)?,
        time_unit: duration::parse(DEFAULT_TIME_UNIT)?,
    })
});

/// Builds every effective scenario of a validated spec, in name order.
pub fn compile(spec: &LoadTestSpec) -> Result<Vec<Scenario>, Vec<Problem>> {
    let spec_path = FieldPath::root().key("spec");
    let shortcut = spec.scenarios.is_empty();
    let mut scenarios = Vec::new();
    let mut problems = Vec::new();
    for (name, scenario) in effective_scenarios(spec) {
        // The shortcut scenario's options come from top-level fields; point at those, as
        // validation does.
        let at = |field: &str| -> FieldPath {
            if shortcut {
                match field {
                    "startVUs" => spec_path.key("vus"),
                    "maxDuration" => spec_path.key("duration"),
                    other => spec_path.key(other),
                }
            } else {
                spec_path.key("scenarios").key(name.as_str()).key(field)
            }
        };
        match build_at(&name, &scenario, &at) {
            Ok(built) => scenarios.push(built),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if problems.is_empty() {
        Ok(scenarios)
    } else {
        Err(problems)
    }
}

/// Builds one scenario of `spec.scenarios` (problems point at `spec.scenarios.NAME`). Missing
/// options take k6's defaults; a time that does not parse, a negative count or a missing
/// required option is a problem.
pub fn build(name: &str, scenario: &wire::Scenario) -> Result<Scenario, Vec<Problem>> {
    let path = FieldPath::root().key("spec").key("scenarios").key(name);
    build_at(name, scenario, &|field: &str| path.key(field))
}

fn build_at(
    name: &str,
    scenario: &wire::Scenario,
    at: &dyn Fn(&str) -> FieldPath,
) -> Result<Scenario, Vec<Problem>> {
    let defaults = match &*K6_DEFAULTS {
        Ok(defaults) => *defaults,
        Err(error) => {
            return Err(vec![Problem::new(
                at("executor"),
                format!("k6's default times do not parse: {error}"),
            )]);
        }
    };
    let mut fields = Fields {
        at,
        executor: scenario.executor,
        problems: Vec::new(),
    };
    let start_time = fields.time("startTime", scenario.start_time.as_ref(), Duration::ZERO);
    let graceful_stop = fields.time(
        "gracefulStop",
        scenario.graceful_stop.as_ref(),
        defaults.graceful_stop,
    );
    let mut defaulted = DefaultedTimes {
        graceful_stop: scenario.graceful_stop.is_none(),
        ..DefaultedTimes::default()
    };
    let executor = match scenario.executor {
        wire::Executor::SharedIterations | wire::Executor::PerVuIterations => {
            defaulted.max_duration = scenario.max_duration.is_none();
            let iterations = Iterations {
                vus: fields.count("vus", scenario.vus, 1),
                iterations: fields.count("iterations", scenario.iterations, 1),
                max_duration: fields.time(
                    "maxDuration",
                    scenario.max_duration.as_ref(),
                    defaults.max_duration,
                ),
            };
            if scenario.executor == wire::Executor::SharedIterations {
                Executor::SharedIterations(iterations)
            } else {
                Executor::PerVuIterations(iterations)
            }
        }
        wire::Executor::ConstantVus => Executor::ConstantVus(ConstantVus {
            vus: fields.count("vus", scenario.vus, 1),
            duration: fields.required_time("duration", scenario.duration.as_ref()),
        }),
        wire::Executor::RampingVus => {
            defaulted.graceful_ramp_down = scenario.graceful_ramp_down.is_none();
            Executor::RampingVus(RampingVus {
                start_vus: fields.count("startVUs", scenario.start_vus, 1),
                stages: fields.stages(&scenario.stages),
                graceful_ramp_down: fields.time(
                    "gracefulRampDown",
                    scenario.graceful_ramp_down.as_ref(),
                    defaults.graceful_ramp_down,
                ),
            })
        }
        wire::Executor::ConstantArrivalRate => {
            let pre_allocated_vus =
                fields.required_count("preAllocatedVUs", scenario.pre_allocated_vus);
            Executor::ConstantArrivalRate(ConstantArrivalRate {
                rate: fields.required_count("rate", scenario.rate),
                time_unit: fields.time_unit(scenario.time_unit.as_ref(), defaults.time_unit),
                duration: fields.required_time("duration", scenario.duration.as_ref()),
                pre_allocated_vus,
                max_vus: fields.count("maxVUs", scenario.max_vus, pre_allocated_vus),
            })
        }
        wire::Executor::RampingArrivalRate => {
            let pre_allocated_vus =
                fields.required_count("preAllocatedVUs", scenario.pre_allocated_vus);
            Executor::RampingArrivalRate(RampingArrivalRate {
                start_rate: fields.count("startRate", scenario.start_rate, 0),
                time_unit: fields.time_unit(scenario.time_unit.as_ref(), defaults.time_unit),
                stages: fields.stages(&scenario.stages),
                pre_allocated_vus,
                max_vus: fields.count("maxVUs", scenario.max_vus, pre_allocated_vus),
            })
        }
    };
    if !fields.problems.is_empty() {
        return Err(fields.problems);
    }
    Ok(Scenario {
        name: name.to_string(),
        flow: scenario.flow_name().to_string(),
        start_time,
        graceful_stop,
        env: scenario.env.clone(),
        tags: scenario.tags.clone(),
        executor,
        defaulted,
    })
}

/// Reads a scenario's options, collecting a problem for each it cannot use. The value returned
/// with a problem is a placeholder: the scenario is then refused as a whole.
struct Fields<'a> {
    at: &'a dyn Fn(&str) -> FieldPath,
    executor: wire::Executor,
    problems: Vec<Problem>,
}

impl Fields<'_> {
    fn parse(&mut self, path: FieldPath, text: &str) -> Duration {
        duration::parse(text).unwrap_or_else(|error| {
            self.problems.push(Problem::new(path, error.to_string()));
            Duration::ZERO
        })
    }

    fn time(&mut self, field: &str, text: Option<&String>, default: Duration) -> Duration {
        match text {
            Some(text) => self.parse((self.at)(field), text),
            None => default,
        }
    }

    fn required_time(&mut self, field: &str, text: Option<&String>) -> Duration {
        match text {
            Some(text) => self.parse((self.at)(field), text),
            None => {
                self.missing(field);
                Duration::ZERO
            }
        }
    }

    /// `timeUnit`, which divides every rate and so can never be zero.
    fn time_unit(&mut self, text: Option<&String>, default: Duration) -> Duration {
        let Some(text) = text else {
            return default;
        };
        let path = (self.at)("timeUnit");
        match duration::parse(text) {
            Ok(time_unit) if time_unit.is_zero() => {
                self.problems.push(Problem::new(
                    path,
                    "must be longer than 0 (e.g. timeUnit: 1s)",
                ));
                time_unit
            }
            Ok(time_unit) => time_unit,
            Err(error) => {
                self.problems.push(Problem::new(path, error.to_string()));
                Duration::ZERO
            }
        }
    }

    fn count(&mut self, field: &str, value: Option<i64>, default: u64) -> u64 {
        match value {
            Some(value) => self.non_negative((self.at)(field), value),
            None => default,
        }
    }

    fn required_count(&mut self, field: &str, value: Option<i64>) -> u64 {
        match value {
            Some(value) => self.non_negative((self.at)(field), value),
            None => {
                self.missing(field);
                0
            }
        }
    }

    fn non_negative(&mut self, path: FieldPath, value: i64) -> u64 {
        u64::try_from(value).unwrap_or_else(|_| {
            self.problems.push(Problem::new(
                path,
                format!("is {value}; it cannot be negative"),
            ));
            0
        })
    }

    fn missing(&mut self, field: &str) {
        let message = format!("is required for {}", self.executor);
        self.problems.push(Problem::new((self.at)(field), message));
    }

    fn stages(&mut self, stages: &[wire::Stage]) -> Vec<Stage> {
        stages
            .iter()
            .enumerate()
            .map(|(index, stage)| {
                let path = (self.at)("stages").index(index);
                Stage {
                    duration: self.parse(path.key("duration"), &stage.duration),
                    target: self.non_negative(path.key("target"), stage.target),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Executor as Kind;

    fn spec(yaml: &str) -> LoadTestSpec {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn k6_default_constants_parse() {
        let defaults = K6_DEFAULTS.as_ref().unwrap();
        assert_eq!(defaults.graceful_stop, secs(30));
        assert_eq!(defaults.graceful_ramp_down, secs(30));
        assert_eq!(defaults.max_duration, secs(600));
        assert_eq!(defaults.time_unit, secs(1));
    }

    #[test]
    fn named_scenarios_get_typed_parameters_and_k6_defaults() {
        let scenarios = compile(&spec(
            r#"
scenarios:
  browse:
    executor: ramping-arrival-rate
    flow: shop
    startTime: 1m30s
    preAllocatedVUs: 5
    stages: [{duration: 500ms, target: 10}, {duration: 0s, target: 3}]
    tags: {team: web}
  spike:
    executor: ramping-vus
    gracefulStop: 5s
    stages: [{duration: 10s, target: 100}]
"#,
        ))
        .unwrap();
        assert_eq!(scenarios.len(), 2);
        let browse = &scenarios[0];
        assert_eq!(browse.name, "browse");
        assert_eq!(browse.flow, "shop");
        assert_eq!(browse.start_time, secs(90));
        assert_eq!(browse.graceful_stop, secs(30));
        assert!(browse.defaulted.graceful_stop);
        assert_eq!(browse.tags.get("team").map(String::as_str), Some("web"));
        assert_eq!(
            browse.executor,
            Executor::RampingArrivalRate(RampingArrivalRate {
                start_rate: 0,
                time_unit: secs(1),
                stages: vec![
                    Stage {
                        duration: Duration::from_millis(500),
                        target: 10
                    },
                    Stage {
                        duration: Duration::ZERO,
                        target: 3
                    },
                ],
                pre_allocated_vus: 5,
                max_vus: 5,
            })
        );
        let spike = &scenarios[1];
        assert_eq!(spike.flow, "default");
        assert_eq!(spike.start_time, Duration::ZERO);
        assert_eq!(spike.graceful_stop, secs(5));
        assert!(!spike.defaulted.graceful_stop && spike.defaulted.graceful_ramp_down);
        assert_eq!(spike.executor.kind(), Kind::RampingVus);
        let Executor::RampingVus(ramp) = &spike.executor else {
            panic!("ramping-vus expected");
        };
        assert_eq!((ramp.start_vus, ramp.graceful_ramp_down), (1, secs(30)));
    }

    #[test]
    fn shortcuts_become_the_default_scenario() {
        let scenarios = compile(&spec("{vus: 3, iterations: 12, duration: 2m}")).unwrap();
        assert_eq!(scenarios.len(), 1);
        assert_eq!(scenarios[0].name, "default");
        assert_eq!(
            scenarios[0].executor,
            Executor::SharedIterations(Iterations {
                vus: 3,
                iterations: 12,
                max_duration: secs(120),
            })
        );
        assert!(!scenarios[0].defaulted.max_duration);
        let scenarios = compile(&spec("{}")).unwrap();
        assert_eq!(
            scenarios[0].executor,
            Executor::PerVuIterations(Iterations {
                vus: 1,
                iterations: 1,
                max_duration: secs(600),
            })
        );
        assert!(scenarios[0].defaulted.max_duration);
    }

    #[test]
    fn what_cannot_be_used_is_a_problem_not_a_default() {
        let problems = compile(&spec(
            r#"
scenarios:
  a: {executor: constant-vus, vus: -1, duration: 10}
  b: {executor: constant-arrival-rate, rate: 5, duration: 1s, timeUnit: 0s}
"#,
        ))
        .unwrap_err();
        let printed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            [
                "spec.scenarios.a.vus: is -1; it cannot be negative",
                "spec.scenarios.a.duration: \"10\" has no unit (write 10s for seconds or 10ms for milliseconds)",
                "spec.scenarios.b.preAllocatedVUs: is required for constant-arrival-rate",
                "spec.scenarios.b.timeUnit: must be longer than 0 (e.g. timeUnit: 1s)",
            ]
        );
        let problems = compile(&spec("{duration: 1x}")).unwrap_err();
        assert_eq!(problems[0].path.to_string(), "spec.duration");
    }

    #[test]
    fn one_scenario_builds_alone() {
        let mut scenario = wire::Scenario::new(Kind::ConstantArrivalRate);
        scenario.rate = Some(10);
        scenario.duration = Some("1m".into());
        scenario.time_unit = Some("100ms".into());
        scenario.pre_allocated_vus = Some(2);
        scenario.max_vus = Some(8);
        let built = build("load", &scenario).unwrap();
        assert_eq!(
            built.executor,
            Executor::ConstantArrivalRate(ConstantArrivalRate {
                rate: 10,
                time_unit: Duration::from_millis(100),
                duration: secs(60),
                pre_allocated_vus: 2,
                max_vus: 8,
            })
        );
        scenario.stages = vec![wire::Stage {
            duration: "soon".into(),
            target: 1,
        }];
        scenario.executor = Kind::RampingArrivalRate;
        let problems = build("load", &scenario).unwrap_err();
        assert_eq!(
            problems[0].path.to_string(),
            "spec.scenarios.load.stages[0].duration"
        );
    }
}
