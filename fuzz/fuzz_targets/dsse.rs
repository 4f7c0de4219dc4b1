//! DSSE envelopes and the in-toto statements inside: parsing, every signature tried
//! against a trusted key, the statement and its Custody record read.
#![no_main]

use std::sync::OnceLock;

use custody_evidence::{Envelope, PublicKey, Statement, TrustedKeys, verify_envelope};
use libfuzzer_sys::fuzz_target;

fn trusted() -> &'static TrustedKeys {
    static KEYS: OnceLock<TrustedKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pem = include_str!("../seeds/ci.key.pub");
        let key = PublicKey::from_pem(pem, "ci").unwrap_or_else(|e| panic!("seed key: {e}"));
        TrustedKeys::new(vec![key])
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = custody_fuzz::MAX_ALLOCATION;
    let Ok(env) = Envelope::from_slice(data) else {
        return;
    };
    let _ = verify_envelope(&env, trusted());
    if let Ok(payload) = env.payload_bytes()
        && let Ok(st) = Statement::from_slice(&payload)
    {
        let _ = st.record();
        let _ = st.subject_digests();
    }
});
