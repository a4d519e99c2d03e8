//! The Stampede operator library: reconciles LoadTests into runner Jobs and writes the verdict.
//!
//! The core is pure: [`compiled`] parses a LoadTest once, [`plan`] sizes a run when it starts
//! (runner count, execution segments, image, resources, policy caps) and reads it back from the
//! run's status later, [`names`] and [`labels`] give every owned object its deterministic name
//! and labels, [`desired`] builds those objects (typed; runner pods meet the `restricted` Pod Security
//! Standard, [`pod_security`]), [`faults`] reads runner faults from
//! pods, [`advance`] is the run's state machine, [`status`] builds the status from merged
//! reports, and [`decide`] turns one observation into one decision. The I/O is at the edge:
//! [`controller`] (the watches and the reconcile: observe → decide → execute), [`io`] (what a
//! reconcile reads and writes), [`lease`] (leader election) and [`telemetry`] (`/metrics`,
//! `/healthz`, `/readyz`).

pub mod advance;
pub mod compiled;
pub mod controller;
pub mod dashboard;
pub mod decide;
pub mod desired;
pub mod faults;
pub mod io;
pub mod labels;
pub mod lease;
pub mod names;
pub mod plan;
pub mod pod_security;
pub mod policy;
pub mod quantity;
pub mod runner_policy;
pub mod status;
pub mod telemetry;
