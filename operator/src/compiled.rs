//! The one place the operator compiles a LoadTest: the shared validation, the effective
//! scenarios, their schedule and the thresholds. When the crds' compiled model replaces these
//! parsers, this module is the only one that changes.

use std::time::Duration;

use stampede_crds::LoadTest;
use stampede_crds::validate::effective_scenarios;
use stampede_runner::metrics::Registry;
use stampede_runner::schedule::{ExecutionSegment, TestPlan};
use stampede_runner::thresholds::Thresholds;

/// A LoadTest's schedule and thresholds, parsed once.
#[derive(Debug, Clone)]
pub struct CompiledTest {
    /// The schedule of the whole test (the full execution segment).
    pub schedule: TestPlan,
    /// The thresholds, compiled against a fresh registry (series keys are canonical, so they
    /// match the runners').
    pub thresholds: Thresholds,
}

impl CompiledTest {
    /// Most VUs the whole test holds at once (arrival-rate scenarios at `maxVUs`).
    pub fn peak_vus(&self) -> u64 {
        self.schedule.peak_vus()
    }

    /// The planned length of the test, graceful stops included.
    pub fn planned(&self) -> Duration {
        self.schedule.total_duration()
    }
}

/// Validates a LoadTest whose run is about to start and compiles it; the error holds every
/// problem, as `stampede validate` prints them.
pub fn compile(test: &LoadTest) -> Result<CompiledTest, Vec<String>> {
    let problems = stampede_crds::validate(test);
    if !problems.is_empty() {
        return Err(problems.iter().map(ToString::to_string).collect());
    }
    Ok(compile_started(test))
}

/// Compiles a LoadTest whose run has started: its spec was validated then and has not changed
/// since (a change starts a new run), so it is not validated again — an upgraded operator with
/// stricter checks does not turn a run it took over into an invalid one.
pub fn compile_started(test: &LoadTest) -> CompiledTest {
    let scenarios = effective_scenarios(&test.spec);
    CompiledTest {
        schedule: TestPlan::new(&scenarios, &ExecutionSegment::full()),
        thresholds: Thresholds::compile(&test.spec, &mut Registry::new()),
    }
}
