//! The Stampede operator library: reconciles LoadTests into runner Jobs and writes the verdict.
//!
//! Built by the operator issue; this crate holds its place in the workspace so the dependency
//! direction `crds` ← `runner` ← `operator` is fixed from the start.
