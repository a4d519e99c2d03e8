//! The Stampede runner library: manifest loading, the load engine, the demo server, and the
//! runner's cluster side.
//!
//! The engine modules (`schedule`, `http`, `engine`, `metrics`, `thresholds`, `summary`, with
//! `manifest` and `exit`) never touch the Kubernetes API; `html_report` renders a summary as
//! one self-contained page. Everything that does — the runner
//! pod's agent, the report contract with the operator, `stampede wait` and `stampede report` —
//! lives in [`cluster`], which uses the engine; the engine never uses it.
//!
//! The `stampede` binary is `main.rs` with its commands in `cli/`; [`exit::Exit`] holds the
//! exit codes of all of them.

pub mod cluster;
pub mod dashboard;
pub mod demo;
pub mod engine;
pub mod exit;
pub mod html_report;
pub mod http;
pub mod manifest;
pub mod metrics;
pub mod schedule;
pub mod summary;
pub mod thresholds;
