//! Shared by the fuzz targets: the time limit every input must meet.
//!
//! libFuzzer's own `-timeout` counts whole seconds; the project's budget is 100 ms per input
//! (issue: never stall on untrusted input), so each target times its work and panics past
//! `STAMPEDE_FUZZ_SLOW_MS` (default 100), which libFuzzer saves as a crash with the input.

use std::time::{Duration, Instant};

/// Runs `work` on `input` and panics when it took longer than the limit.
pub fn within_budget<T>(input: &[u8], work: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = work();
    let took = started.elapsed();
    if took > limit() {
        panic!(
            "slow input: {took:?} for {} bytes (limit {:?})",
            input.len(),
            limit()
        );
    }
    result
}

fn limit() -> Duration {
    let millis = std::env::var("STAMPEDE_FUZZ_SLOW_MS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100);
    Duration::from_millis(millis)
}
