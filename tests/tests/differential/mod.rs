//! The differential test's parts: the harness that compares the two servers, and the cases.

pub mod crds;
pub mod fixtures;
pub mod harness;
pub mod manifests;
pub mod meta;
pub mod statuses;
