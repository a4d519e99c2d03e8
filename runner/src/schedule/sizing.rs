//! How many runners a test uses and whether an operator's caps allow it: the peak VUs of the
//! whole schedule against the VUs cap, and the runner count (`spec.runners.count`, else the
//! peak over `maxVUsPerRunner`, else over the operator's default) against the runners cap.
//! Shared by the operator's run plan and `stampede validate`, so both refuse the same tests
//! with the same message. Pure.

use stampede_crds::spec::RunnerSpec;

use super::TestPlan;

/// The operator's default cap on runners per LoadTest (`--max-runners`).
pub const DEFAULT_MAX_RUNNERS: u64 = 50;
/// The operator's default cap on peak VUs per LoadTest (`--max-vus-per-test`).
pub const DEFAULT_MAX_VUS_PER_TEST: u64 = 100_000;
/// VUs per runner when the spec sets neither a count nor `maxVUsPerRunner`
/// (`--default-max-vus-per-runner`).
pub const DEFAULT_MAX_VUS_PER_RUNNER: u64 = 1_000;

/// What an operator allows one LoadTest, and its default runner size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Most runners one LoadTest may use.
    pub max_runners: u64,
    /// Most VUs (peak, whole fleet) one LoadTest may ask for.
    pub max_vus_per_test: u64,
    /// VUs per runner when `spec.runners` sets neither `count` nor `maxVUsPerRunner`.
    pub default_max_vus_per_runner: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_runners: DEFAULT_MAX_RUNNERS,
            max_vus_per_test: DEFAULT_MAX_VUS_PER_TEST,
            default_max_vus_per_runner: DEFAULT_MAX_VUS_PER_RUNNER,
        }
    }
}

/// A test's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Most VUs the whole test holds at once.
    pub peak_vus: u64,
    /// Runners it uses.
    pub runners: u64,
}

/// Why a test is over an operator's caps; the message names the field, the limit and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// More VUs than the cap.
    #[error(
        "the test needs {peak} VUs at its peak, but this operator allows at most {max} per \
         LoadTest: lower the scenarios' VUs / maxVUs, or ask the cluster admin to raise the limit \
         (operator flag --max-vus-per-test)"
    )]
    TooManyVus {
        /// The test's peak.
        peak: u64,
        /// The cap.
        max: u64,
    },
    /// More runners than the cap.
    #[error(
        "the test would use {runners} runners, but this operator allows at most {max} per \
         LoadTest: {fix}"
    )]
    TooManyRunners {
        /// The field that sets the count.
        field: &'static str,
        /// The count.
        runners: u64,
        /// The cap.
        max: u64,
        /// What to change.
        fix: String,
    },
}

impl SizeError {
    /// The field the message is about (`spec` for the whole test's VUs).
    pub fn field(&self) -> &'static str {
        match self {
            SizeError::TooManyVus { .. } => "spec",
            SizeError::TooManyRunners { field, .. } => field,
        }
    }
}

/// The size of the test whose whole schedule is `schedule`, with `runners` from its spec, under
/// `caps`.
pub fn size(
    runners: Option<&RunnerSpec>,
    schedule: &TestPlan,
    caps: &Caps,
) -> Result<Size, SizeError> {
    let peak_vus = schedule.peak_vus();
    if peak_vus > caps.max_vus_per_test {
        return Err(SizeError::TooManyVus {
            peak: peak_vus,
            max: caps.max_vus_per_test,
        });
    }
    let count = runners.and_then(|r| r.count).filter(|c| *c > 0);
    let per_runner = runners
        .and_then(|r| r.max_vus_per_runner)
        .filter(|v| *v > 0);
    let least_per_runner = peak_vus.div_ceil(caps.max_runners.max(1));
    let (runners, field, fix) = match (count, per_runner) {
        (Some(count), _) => (
            u64::try_from(count).unwrap_or(u64::MAX),
            "spec.runners.count",
            format!("set spec.runners.count to at most {}", caps.max_runners),
        ),
        (None, Some(per_runner)) => (
            schedule.runners_needed(u64::try_from(per_runner).unwrap_or(1)),
            "spec.runners.maxVUsPerRunner",
            format!("raise spec.runners.maxVUsPerRunner to at least {least_per_runner}"),
        ),
        (None, None) => (
            peak_vus
                .div_ceil(caps.default_max_vus_per_runner.max(1))
                .max(1),
            "spec.runners.maxVUsPerRunner",
            format!("set spec.runners.maxVUsPerRunner to at least {least_per_runner}"),
        ),
    };
    if runners > caps.max_runners {
        return Err(SizeError::TooManyRunners {
            field,
            runners,
            max: caps.max_runners,
            fix,
        });
    }
    Ok(Size { peak_vus, runners })
}
