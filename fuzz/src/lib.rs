//! Shared by the fuzz targets: the time limit every input must meet.
//!
//! libFuzzer's own `-timeout` counts whole seconds; the project's budget is 100 ms per input
//! (issue: never stall on untrusted input), so each target times its work and panics past
//! `STAMPEDE_FUZZ_SLOW_MS` (default 100), which libFuzzer saves as a crash with the input. The
//! time is the thread's CPU time, not the wall clock: on a busy machine a preempted input must
//! not count as slow (wall-clock timing flagged 3 ms inputs at 100 ms while CI ran beside it).

use std::time::Duration;

/// Runs `work` on `input` and panics when it took more CPU time than the limit.
pub fn within_budget<T>(input: &[u8], work: impl FnOnce() -> T) -> T {
    let started = thread_cpu_time();
    let result = work();
    let took = thread_cpu_time().saturating_sub(started);
    if took > limit() {
        panic!(
            "slow input: {took:?} of CPU for {} bytes (limit {:?})",
            input.len(),
            limit()
        );
    }
    result
}

/// CPU time this thread has used (Linux `CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant Linux supports.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

fn limit() -> Duration {
    let millis = std::env::var("STAMPEDE_FUZZ_SLOW_MS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100);
    Duration::from_millis(millis)
}
