//! What an auditor reads from a log or a bundle: log entries, C2SP entry bundles,
//! log and witness verifier keys, and signed checkpoints with cosignatures.
#![no_main]

use std::sync::OnceLock;

use custody_store::log::{LogEntry, LogVerifier, SignedCheckpoint, parse_entry_bundle};
use custody_store::witness::WitnessVerifier;
use libfuzzer_sys::fuzz_target;

fn verifiers() -> &'static [LogVerifier] {
    static KEYS: OnceLock<Vec<LogVerifier>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let text = include_str!("../seeds/log.key.pub");
        vec![LogVerifier::parse(text.trim()).unwrap_or_else(|e| panic!("seed key: {e}"))]
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = custody_fuzz::MAX_ALLOCATION;
    let _ = LogEntry::from_bytes(data);
    let _ = parse_entry_bundle(data);
    let _ = SignedCheckpoint::open(data, verifiers());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = LogVerifier::parse(text);
        let _ = WitnessVerifier::parse(text);
    }
});
