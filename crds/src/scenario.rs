//! Scenarios and executors with k6's names, fields and defaults (k6 `lib/executor`).
//!
//! A scenario is one flat object like k6's: `executor` picks the model and the other fields
//! are that executor's parameters. Which fields apply to which executor, and their defaults,
//! live here ([`Executor::fields`], the `DEFAULT_*` constants) so validation and the engine agree.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a scenario schedules virtual users and iterations; the six executors of k6 v2.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Executor {
    /// A fixed pool of `vus` VUs shares `iterations` iterations; fast VUs run more of them.
    SharedIterations,
    /// Each of `vus` VUs runs exactly `iterations` iterations.
    PerVuIterations,
    /// `vus` VUs loop over the flow for `duration`.
    ConstantVus,
    /// VUs ramp from `startVUs` through `stages` targets (whole VUs, linear in time).
    RampingVus,
    /// `rate` iteration starts per `timeUnit` for `duration`, on `preAllocatedVUs`..`maxVUs` VUs.
    ConstantArrivalRate,
    /// Iteration start rate ramps from `startRate` through `stages` targets per `timeUnit`.
    RampingArrivalRate,
}

/// k6 defaults shared by every executor.
pub const DEFAULT_GRACEFUL_STOP: &str = "30s";
/// k6 default for `gracefulRampDown` of ramping-vus.
pub const DEFAULT_GRACEFUL_RAMP_DOWN: &str = "30s";
/// k6 default for `maxDuration` of the iteration-count executors.
pub const DEFAULT_MAX_DURATION: &str = "10m";
/// k6 default for `timeUnit` of the arrival-rate executors.
pub const DEFAULT_TIME_UNIT: &str = "1s";
/// The flow a scenario runs when it names none (k6's `exec: default`).
pub const DEFAULT_FLOW: &str = "default";

impl Executor {
    /// Every executor, in k6's documentation order.
    pub const ALL: [Executor; 6] = [
        Executor::SharedIterations,
        Executor::PerVuIterations,
        Executor::ConstantVus,
        Executor::RampingVus,
        Executor::ConstantArrivalRate,
        Executor::RampingArrivalRate,
    ];

    /// The k6 name, as written in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Executor::SharedIterations => "shared-iterations",
            Executor::PerVuIterations => "per-vu-iterations",
            Executor::ConstantVus => "constant-vus",
            Executor::RampingVus => "ramping-vus",
            Executor::ConstantArrivalRate => "constant-arrival-rate",
            Executor::RampingArrivalRate => "ramping-arrival-rate",
        }
    }

    /// The executor-specific fields this executor accepts (besides the common ones).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Executor::SharedIterations | Executor::PerVuIterations => {
                &["vus", "iterations", "maxDuration"]
            }
            Executor::ConstantVus => &["vus", "duration"],
            Executor::RampingVus => &["startVUs", "stages", "gracefulRampDown"],
            Executor::ConstantArrivalRate => {
                &["rate", "timeUnit", "duration", "preAllocatedVUs", "maxVUs"]
            }
            Executor::RampingArrivalRate => &[
                "startRate",
                "timeUnit",
                "stages",
                "preAllocatedVUs",
                "maxVUs",
            ],
        }
    }

    /// True for the open-model executors that start iterations at a rate.
    pub fn is_arrival_rate(self) -> bool {
        matches!(
            self,
            Executor::ConstantArrivalRate | Executor::RampingArrivalRate
        )
    }
}

impl std::fmt::Display for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One stage of a ramping executor: move linearly to `target` over `duration`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// How long the stage lasts, as a duration string (`30s`, `1m30s`). `0s` jumps at once.
    pub duration: String,
    /// VUs (ramping-vus) or iterations per `timeUnit` (ramping-arrival-rate) at the stage's end.
    #[schemars(range(min = 0))]
    pub target: i64,
}

/// A k6 scenario: an executor, its parameters, and the flow each iteration runs.
///
/// Fields that do not apply to the chosen executor are rejected by validation, as k6 rejects
/// them. Every duration is a string such as `30s` or `1m30s`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.maxVUs) || !has(self.preAllocatedVUs) || self.maxVUs >= self.preAllocatedVUs",
     "message": "maxVUs must be >= preAllocatedVUs"},
    {"rule": "(self.executor != 'constant-vus' && self.executor != 'constant-arrival-rate') || has(self.duration)",
     "message": "constant-vus and constant-arrival-rate need a duration (e.g. duration: 1m)"},
    {"rule": "self.executor != 'constant-arrival-rate' || has(self.rate)",
     "message": "constant-arrival-rate needs a rate (iteration starts per timeUnit)"},
    {"rule": "(self.executor != 'constant-arrival-rate' && self.executor != 'ramping-arrival-rate') || has(self.preAllocatedVUs)",
     "message": "arrival-rate executors need preAllocatedVUs"}
]))]
pub struct Scenario {
    /// The executor: shared-iterations, per-vu-iterations, constant-vus, ramping-vus,
    /// constant-arrival-rate or ramping-arrival-rate.
    pub executor: Executor,
    /// The flow (from `spec.flows`) each iteration runs; `default` when omitted (k6 `exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Delay from the test start before this scenario begins (k6 default 0s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// How long running iterations may finish after the scenario's regular end before they are
    /// interrupted (k6 default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_stop: Option<String>,
    /// Environment variables for this scenario only, read in templates as `${env.NAME}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Tags added to every metric sample of this scenario.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,

    /// Number of VUs (shared-iterations, per-vu-iterations, constant-vus; k6 default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub vus: Option<i64>,
    /// Iterations: shared by all VUs (shared-iterations) or per VU (per-vu-iterations); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub iterations: Option<i64>,
    /// Hard limit for the iteration-count executors (k6 default 10m); unfinished iterations
    /// become `dropped_iterations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    /// How long constant-vus and constant-arrival-rate run (required for them; at least 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,

    /// VUs at the start of a ramping-vus scenario (k6 default 1).
    #[serde(default, rename = "startVUs", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub start_vus: Option<i64>,
    /// Ramp stages: VU targets (ramping-vus) or rate targets (ramping-arrival-rate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub stages: Vec<Stage>,
    /// How long a VU removed by a ramp-down may finish its iteration (k6 default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_ramp_down: Option<String>,

    /// Iteration starts per `timeUnit` (constant-arrival-rate; required, > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub rate: Option<i64>,
    /// Start rate per `timeUnit` of ramping-arrival-rate (k6 default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub start_rate: Option<i64>,
    /// The period `rate` and stage targets are counted in (k6 default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_unit: Option<String>,
    /// VUs allocated before the arrival-rate scenario starts (required for arrival-rate).
    #[serde(
        default,
        rename = "preAllocatedVUs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0))]
    pub pre_allocated_vus: Option<i64>,
    /// Upper bound of VUs allocated on demand (defaults to preAllocatedVUs; must be ≥ it).
    #[serde(default, rename = "maxVUs", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_vus: Option<i64>,
}

impl Scenario {
    /// A scenario of the given executor with every parameter left to its default.
    pub fn new(executor: Executor) -> Self {
        Scenario {
            executor,
            flow: None,
            start_time: None,
            graceful_stop: None,
            env: BTreeMap::new(),
            tags: BTreeMap::new(),
            vus: None,
            iterations: None,
            max_duration: None,
            duration: None,
            start_vus: None,
            stages: Vec::new(),
            graceful_ramp_down: None,
            rate: None,
            start_rate: None,
            time_unit: None,
            pre_allocated_vus: None,
            max_vus: None,
        }
    }

    /// The flow this scenario runs (k6's `exec`, `default` when unset).
    pub fn flow_name(&self) -> &str {
        self.flow.as_deref().unwrap_or(DEFAULT_FLOW)
    }

    /// The executor-specific fields that are set, by their manifest names.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        let present: [(&'static str, bool); 12] = [
            ("vus", self.vus.is_some()),
            ("iterations", self.iterations.is_some()),
            ("maxDuration", self.max_duration.is_some()),
            ("duration", self.duration.is_some()),
            ("startVUs", self.start_vus.is_some()),
            ("stages", !self.stages.is_empty()),
            ("gracefulRampDown", self.graceful_ramp_down.is_some()),
            ("rate", self.rate.is_some()),
            ("startRate", self.start_rate.is_some()),
            ("timeUnit", self.time_unit.is_some()),
            ("preAllocatedVUs", self.pre_allocated_vus.is_some()),
            ("maxVUs", self.max_vus.is_some()),
        ];
        for (name, is_set) in present {
            if is_set {
                set.push(name);
            }
        }
        set
    }
}
