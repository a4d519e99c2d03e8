//! The `LoadTest` custom resource (`stampede.dev/v1alpha1`): types, shared validation and CRD generation.
//!
//! Every part of Stampede — the `stampede` CLI, the runner agent and the operator — reads a
//! LoadTest through these types and checks it with [`validate::validate`], so a manifest that
//! `stampede validate` accepts is one the operator accepts, and the other way round.

pub mod crd;
pub mod duration;
pub mod expr;
pub mod flow;
pub mod jsonpath;
pub mod metrics;
pub mod model;
pub mod path;
pub mod scenario;
pub mod spec;
pub mod status;
pub mod suggest;
pub mod template;
pub mod threshold;
pub mod validate;

pub use flow::{Capture, Request, SleepSpec, Step};
pub use scenario::{Executor, Scenario, Stage};
pub use spec::{LoadTest, LoadTestSpec};
pub use status::LoadTestStatus;
pub use validate::{Problem, validate};
