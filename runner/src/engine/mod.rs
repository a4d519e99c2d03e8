//! The load engine: prepares a LoadTest (data, flows, series, thresholds), runs setup, the
//! scenarios and teardown on a multi-threaded tokio runtime, and produces the summary.

pub mod calls;
pub mod cookies;
mod cut;
pub mod data;
pub mod executors;
pub mod flow;
mod label;
pub mod progress;
mod redirect;
pub mod run;
pub mod scale;
pub mod shared;
pub mod vu;

pub use run::{
    AbortReasons, DEFAULT_MAX_VUS, LiveSummary, LiveView, PreparedRun, RunError, RunOptions,
    RunOutcome, RunWatcher, ScenariosRun, build_runtime, run, run_watched,
};
