//! The runner's cluster side: the code that talks to the Kubernetes API, kept apart from the
//! engine (which never does, and never depends on this module).
//!
//! - `agent`: `stampede agent`, a runner pod's entrypoint;
//! - `report`: a runner's report ConfigMap and the merge of every runner's reports, the
//!   contract between the agent and the operator;
//! - `wait`: `stampede wait`, following a LoadTest to its verdict;
//! - `result`: `stampede report`, reading the merged summary of a LoadTest's last run;
//! - `sealed`: setup()'s values sealed for each runner, so no report holds them in plain text.
//!
//! Only what other crates use is public, and all of it is re-exported here: the report
//! contract (for the operator, and sealing for the tests that size a report), the runner pod's
//! environment variables (for the operator's Job) and the three commands' entry points (for
//! the `stampede` binary).

mod agent;
pub mod forward;
mod report;
mod result;
mod sealed;
mod wait;

pub use agent::{AgentError, AgentFailure, agent, env};
pub use forward::ForwardError;
pub use report::{
    REPORT_EVERY_SECONDS, REPORT_KEY, ReportError, RunnerReport, RunnerState, downsample,
    merge_reports, series_width,
};
pub use result::{ResultError, fetch_result};
pub use sealed::{RunId, SealError, SealedBox, SealedSetup, SetupKey, seal as seal_setup};
pub use wait::{WaitError, wait};
