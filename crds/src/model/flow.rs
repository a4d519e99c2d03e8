//! Flows, setup and teardown as parsed values: URL, header and body templates (JSON bodies as
//! template trees), checks, `if`s, captures and sleeps, each able to say what it reads.

use crate::spec::LoadTestSpec;
use crate::validate::Problem;

/// Every flow of a test, with setup and teardown.
#[derive(Debug, Clone, Default)]
pub struct Flows {}

/// Compiles the flows of a validated spec.
pub fn compile(_spec: &LoadTestSpec) -> Result<Flows, Vec<Problem>> {
    Ok(Flows {})
}
