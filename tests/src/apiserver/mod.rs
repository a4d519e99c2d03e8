//! A Kubernetes API server stand-in for tests: in memory, over HTTP on loopback, with a kubeconfig.

pub mod managed;
pub mod patch;
pub mod schema;
