//! Every evidence format: detection and summary of CycloneDX, SPDX, JUnit, Cobertura,
//! lcov, Trivy, Grype and SARIF, under the names a step sees them by.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = custody_fuzz::MAX_ALLOCATION;
    for name in ["evidence.json", "report.xml", "lcov.info", "results.sarif"] {
        let _ = custody_formats::summarize(name, data);
    }
});
