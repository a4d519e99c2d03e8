//! The Stampede runner library: manifest loading, the load engine and the demo server.
//!
//! Engine modules never touch the Kubernetes API; only the `agent` / `wait` code will.

pub mod agent;
pub mod demo;
pub mod engine;
pub mod exit;
pub mod http;
pub mod manifest;
pub mod metrics;
pub mod report;
pub mod result;
pub mod schedule;
pub mod summary;
pub mod thresholds;
pub mod wait;
