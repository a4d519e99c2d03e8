//! Executor schedules and execution segments: pure, exact planning of when VUs run and
//! iterations start, for the whole test or one runner's share of it (k6 semantics, reference
//! §b2, §b3, §b9). No I/O and no clocks: the engine turns these plans into timers.

mod graceful;
mod plan;
mod segment;
pub mod sizing;
mod test_plan;
mod wide;

pub use plan::{Arrival, Arrivals, MAX_MATERIALIZED_STEPS, ScenarioPlan, VuStep, VuSteps};
pub use segment::{ExecutionSegment, ExecutionSegmentSequence, MAX_CYCLE, Ratio, SegmentError};
pub use test_plan::{PlannedLoad, TestPlan};
