//! The compiled test: a LoadTest validated and parsed once into typed values — the only input
//! of the runner's schedules, thresholds and flows and of the operator's plan.
//!
//! [`compile`] runs the shared validation (every message `stampede validate` prints) and, when
//! there is no problem, builds the model; nothing downstream parses a duration, a threshold or
//! a template again, and nothing falls back silently.

pub mod flow;
pub mod scenario;
pub mod summary;
pub mod threshold;

use crate::spec::{LoadTest, LoadTestSpec};
use crate::validate::{self, Options, Problem};

/// A LoadTest ready to plan and run.
#[derive(Debug, Clone)]
pub struct Test {
    /// The flows, setup and teardown, compiled.
    pub flows: flow::Flows,
    /// The effective scenarios (the shortcut `default` one or `spec.scenarios`), in name order.
    pub scenarios: Vec<scenario::Scenario>,
    /// The thresholds, in key order.
    pub thresholds: Vec<threshold::MetricThresholds>,
    /// The summary's trend columns (`summaryTrendStats` or k6's default).
    pub summary_trend_stats: Vec<summary::TrendColumn>,
}

/// Validates `test` and compiles it; the error holds every problem, as `stampede validate`
/// prints them.
pub fn compile(test: &LoadTest, options: &Options) -> Result<Test, Vec<Problem>> {
    let problems = validate::validate_with(test, options);
    if !problems.is_empty() {
        return Err(problems);
    }
    build(&test.spec)
}

/// [`compile`] for a spec alone (paths start at `spec`).
pub fn compile_spec(spec: &LoadTestSpec, options: &Options) -> Result<Test, Vec<Problem>> {
    let problems = validate::validate_spec(spec, options);
    if !problems.is_empty() {
        return Err(problems);
    }
    build(spec)
}

/// Builds the model of a spec validated earlier, without validating it again: a run that
/// started under an older release keeps its spec, and checks added since must not turn it
/// invalid halfway. Values the model cannot parse are still problems.
pub fn compile_validated(spec: &LoadTestSpec) -> Result<Test, Vec<Problem>> {
    build(spec)
}

/// Builds the model of a validated spec. A value the builders cannot parse is a problem (a
/// gap between validation and the model), never a default.
fn build(spec: &LoadTestSpec) -> Result<Test, Vec<Problem>> {
    // Every builder runs, so one compile reports every gap at once.
    match (
        flow::compile(spec),
        scenario::compile(spec),
        threshold::compile(spec),
        summary::compile(spec),
    ) {
        (Ok(flows), Ok(scenarios), Ok(thresholds), Ok(summary_trend_stats)) => Ok(Test {
            flows,
            scenarios,
            thresholds,
            summary_trend_stats,
        }),
        (flows, scenarios, thresholds, summary_trend_stats) => {
            let mut problems: Vec<Problem> = [
                flows.err(),
                scenarios.err(),
                thresholds.err(),
                summary_trend_stats.err(),
            ]
            .into_iter()
            .flatten()
            .flatten()
            .collect();
            problems.sort();
            problems.dedup();
            Err(problems)
        }
    }
}
