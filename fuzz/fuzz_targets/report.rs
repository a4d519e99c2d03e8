//! Fuzz target: a runner's report as the operator reads it from a ConfigMap (untrusted: the
//! runner image is the LoadTest author's), histograms included, and its merge.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stampede_runner::cluster::RunnerReport;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    stampede_fuzz::within_budget(data, || {
        if let Ok(report) = RunnerReport::from_json(text) {
            let _ = report.to_json();
        }
    });
});
