//! Audit bundle archives (`custody verify-bundle`): the gzip and tar layers with their
//! byte and entry limits, the manifest, and everything verified inside.
#![no_main]

use std::io::Write;

use custody_audit::{AuditorChecks, KeySource, verify_bundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    let _ = custody_fuzz::block_on(verify_bundle(
        file.path(),
        &KeySource::Bundled,
        &AuditorChecks::default(),
    ));
});
