//! The Stampede operator library: reconciles LoadTests into runner Jobs and writes the verdict.
//!
//! The core is pure: [`plan`] sizes a run (validation, peak VUs, runner count, execution
//! segments, policy caps), [`names`] and [`labels`] give every owned object its deterministic
//! name and labels, [`desired`] builds those objects (typed), [`faults`] reads runner faults
//! from pods, [`advance`] is the run's state machine and [`status`] builds the status from
//! merged reports. The I/O is at the edge: [`controller`] (the reconciler), [`lease`] (leader
//! election) and [`telemetry`] (`/metrics`, `/healthz`, `/readyz`).

pub mod advance;
pub mod controller;
pub mod desired;
pub mod faults;
pub mod labels;
pub mod lease;
pub mod names;
pub mod plan;
pub mod policy;
pub mod status;
pub mod telemetry;
