//! The one place the operator compiles a LoadTest: the shared validation, the effective
//! scenarios, their schedule and the thresholds. When the crds' compiled model replaces these
//! parsers, this module is the only one that changes.

use std::time::Duration;

use stampede_crds::LoadTest;
use stampede_crds::model::{self, Test};
use stampede_crds::validate::{Options, Problem};
use stampede_runner::metrics::Registry;
use stampede_runner::schedule::{ExecutionSegment, TestPlan};
use stampede_runner::thresholds::Thresholds;

/// A LoadTest's model, schedule and thresholds, compiled once.
#[derive(Debug, Clone)]
pub struct CompiledTest {
    /// The compiled model.
    pub model: Test,
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
    from_model(model::compile(test, &Options::default()))
}

/// Compiles a LoadTest whose run has started: its spec was validated then and has not changed
/// since (a change starts a new run), so it is not validated again — an upgraded operator with
/// stricter checks does not turn a run it took over into an invalid one.
pub fn compile_started(test: &LoadTest) -> Result<CompiledTest, Vec<String>> {
    from_model(model::compile_validated(&test.spec))
}

fn from_model(compiled: Result<Test, Vec<Problem>>) -> Result<CompiledTest, Vec<String>> {
    let model =
        compiled.map_err(|problems| problems.iter().map(Problem::to_string).collect::<Vec<_>>())?;
    let thresholds = Thresholds::new(&model.thresholds, &mut Registry::new())
        .map_err(|unknown| vec![unknown.to_string()])?;
    Ok(CompiledTest {
        schedule: TestPlan::for_test(&model, &ExecutionSegment::full()),
        thresholds,
        model,
    })
}
