//! Fuzz target: `${...}` templates (URLs, headers, bodies).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    stampede_fuzz::within_budget(data, || stampede_crds::template::parse(text).is_ok());
});
