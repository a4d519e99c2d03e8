//! Fuzz target: threshold expressions (`p(95)<500`) and metric keys (`metric{tag:value}`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    stampede_fuzz::within_budget(data, || {
        let _ = stampede_crds::threshold::parse_expression(text);
        let _ = stampede_crds::threshold::parse_metric_key(text);
    });
});
