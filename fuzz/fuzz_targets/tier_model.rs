//! runner-guard's tier model (YAML).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = custody_fuzz::MAX_ALLOCATION;
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = custody_guard::TierModel::from_yaml(text, "fuzz.yaml");
    }
});
