//! Fuzz target: a manifest file as `stampede validate` and `stampede run` read it — size and
//! nesting limits, YAML, validation, the compile step — then the run plan and its VU peak.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stampede_runner::manifest::check_str;
use stampede_runner::schedule::{ExecutionSegment, TestPlan};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    stampede_fuzz::within_budget(data, || {
        let report = check_str("fuzz.yaml", text, &Default::default());
        for test in &report.compiled {
            let plan = TestPlan::for_test(test, &ExecutionSegment::full());
            let _ = plan.peak_vus();
            let _ = plan.regular_duration();
        }
    });
});
