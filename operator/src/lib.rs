//! The Stampede operator library: reconciles LoadTests into runner Jobs and writes the verdict.
//!
//! The core is pure: [`plan`] sizes a run (validation, peak VUs, runner count, execution
//! segments, policy caps), [`names`] gives every owned object its deterministic name, and
//! [`desired`] builds those objects. The controller that will apply them (I/O at the edge) is
//! the rest of the operator issue.

pub mod desired;
pub mod names;
pub mod plan;
pub mod policy;
