//! What every VU of a test shares, read-only during the run: recorder, env, data, setup
//! values, client configuration, options — and per-scenario context (name, tags, env).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::http::{ClientConfig, Target};
use crate::metrics::Recorder;
use crate::metrics::errors::ErrorLog;
use crate::metrics::in_flight::InFlight;
use crate::schedule::ExecutionSegment;

use super::data::Tables;

/// How many distinct error messages are printed before the rest are only counted.
const ERRORS_PRINTED: u64 = 10;

/// Shared by every VU of a test.
#[derive(Debug)]
pub struct Shared {
    /// Where samples go.
    pub recorder: Recorder,
    /// `spec.env` values (and `-e` overrides).
    pub env: HashMap<String, String>,
    /// Data tables.
    pub tables: Tables,
    /// Values captured by setup.
    pub setup: OnceLock<HashMap<String, String>>,
    /// Rendered `defaults.baseUrl`.
    pub base_url: Option<Target>,
    /// HTTP client configuration.
    pub client_config: Arc<ClientConfig>,
    /// This runner's execution segment.
    pub segment: ExecutionSegment,
    /// This runner's index.
    pub runner_index: u64,
    /// Keep cookies across iterations.
    pub no_cookies_reset: bool,
    /// Close connections between iterations.
    pub no_vu_connection_reuse: bool,
    /// Pad short iterations.
    pub min_iteration_duration: Option<Duration>,
    /// Seed of the VUs' random sources.
    pub seed: u64,
    /// Iteration errors so far.
    pub errors: AtomicU64,
    /// The errors by kind, with a sample message each.
    pub error_log: Arc<ErrorLog>,
    /// Requests awaiting their response now.
    pub in_flight: InFlight,
    /// Print errors (off in tests that expect them).
    pub print_errors: bool,
}

impl Shared {
    /// A value captured by setup.
    pub fn setup_value(&self, name: &str) -> Option<String> {
        self.setup
            .get()
            .and_then(|values| values.get(name).cloned())
    }

    /// Counts an error of a request (`code`: k6's `error_code`) or an iteration, at `place`
    /// (a step's name, `iteration`, `teardown`), and prints the first few (an overloaded
    /// target must not flood stderr).
    pub fn report_error(&self, scenario: &str, code: Option<u32>, place: &str, message: &str) {
        self.error_log.record(code, place, || message.to_string());
        let count = self.errors.fetch_add(1, Ordering::Relaxed);
        if self.print_errors && count < ERRORS_PRINTED {
            eprintln!("error [{scenario}]: {message}");
            if count + 1 == ERRORS_PRINTED {
                eprintln!("(further errors are counted, not printed)");
            }
        }
    }
}

/// Context of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioContext {
    /// Scenario name.
    pub name: String,
    /// Test tags then scenario tags, added to every sample.
    pub tags: Vec<(String, String)>,
    /// Scenario env (overrides `spec.env`).
    pub env: BTreeMap<String, String>,
}

impl ScenarioContext {
    /// Context for the setup / teardown pseudo-scenarios.
    pub fn internal(name: &str, tags: Vec<(String, String)>) -> Self {
        ScenarioContext {
            name: name.to_string(),
            tags,
            env: BTreeMap::new(),
        }
    }
}
