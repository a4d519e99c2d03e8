//! What the cluster admin allows one LoadTest (operator flags / environment) and the defaults
//! a LoadTest does not set.

use k8s_openapi::api::core::v1::ResourceRequirements;
use stampede_runner::schedule::sizing::{self, Caps};

use stampede_runner::http::TargetPolicy;
use stampede_runner::http::target_policy;

use crate::runner_policy::RunnerPolicy;

/// `--denied-targets` by default: link-local addresses (cloud metadata services among them),
/// the metadata services' other addresses and names, and the API server's names (its address
/// is denied by each runner, from its pod's `KUBERNETES_SERVICE_HOST`).
pub const DEFAULT_DENIED_TARGETS: &str = "169.254.0.0/16,fe80::/10,fd00:ec2::254,100.100.100.200,\
metadata.google.internal,metadata.goog,kubernetes,kubernetes.default,kubernetes.default.svc,\
kubernetes.default.svc.cluster.local";

/// The default target policy: nothing allowed-listed, [`DEFAULT_DENIED_TARGETS`] denied.
pub fn default_targets() -> TargetPolicy {
    TargetPolicy {
        allowed: Vec::new(),
        // The constant parses; a mistake in it fails the tests, not the operator.
        denied: target_policy::parse_list(DEFAULT_DENIED_TARGETS).unwrap_or_default(),
    }
}

/// Operator-level limits and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Most runners one LoadTest may use.
    pub max_runners: u64,
    /// Most VUs (peak, whole fleet) one LoadTest may ask for.
    pub max_vus_per_test: u64,
    /// VUs per runner when `spec.runners` sets neither `count` nor `maxVUsPerRunner`.
    pub default_max_vus_per_runner: u64,
    /// The runner image when `spec.runners.image` is unset.
    pub runner_image: String,
    /// Seconds the runners have to report Ready before the run is Errored.
    pub start_deadline_seconds: u64,
    /// Runner container resources when `spec.runners.resources` is unset.
    pub default_runner_resources: Option<ResourceRequirements>,
    /// What a LoadTest may ask of its runner pods.
    pub runners: RunnerPolicy,
    /// Where the runners may send load (the runners check every connection; the plan checks
    /// literal URLs).
    pub targets: TargetPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_runners: sizing::DEFAULT_MAX_RUNNERS,
            max_vus_per_test: sizing::DEFAULT_MAX_VUS_PER_TEST,
            default_max_vus_per_runner: sizing::DEFAULT_MAX_VUS_PER_RUNNER,
            runner_image: format!(
                "ghcr.io/stampede-dev/stampede:{}",
                env!("CARGO_PKG_VERSION")
            ),
            start_deadline_seconds: 300,
            default_runner_resources: None,
            runners: RunnerPolicy::default(),
            targets: default_targets(),
        }
    }
}

impl Policy {
    /// The caps a LoadTest's size is checked against.
    pub fn caps(&self) -> Caps {
        Caps {
            max_runners: self.max_runners,
            max_vus_per_test: self.max_vus_per_test,
            default_max_vus_per_runner: self.default_max_vus_per_runner,
        }
    }
}
