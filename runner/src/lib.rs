//! The Stampede runner library: manifest loading and (from the runner issue on) the load engine.
//!
//! Engine modules never touch the Kubernetes API; only the `agent` / `wait` code will.

pub mod exit;
pub mod manifest;
