//! OIDC ID tokens (JWTs) as runner-guard verifies them against the platform's JWKS, and
//! JWKS documents themselves (an input starting with `{`).
#![no_main]

use std::sync::OnceLock;

use custody_guard::oidc::{Expectation, verify};
use custody_guard::{Jwks, Secret};
use libfuzzer_sys::fuzz_target;

fn jwks() -> &'static Jwks {
    static JWKS: OnceLock<Jwks> = OnceLock::new();
    JWKS.get_or_init(|| {
        let json = include_str!("../seeds/issuer.jwks.json");
        Jwks::from_json(json, "seed").unwrap_or_else(|e| panic!("seed jwks: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = custody_fuzz::MAX_ALLOCATION;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.starts_with('{') {
        let _ = Jwks::from_json(text, "fuzz");
        return;
    }
    let expect = Expectation {
        issuer: "https://token.actions.githubusercontent.com",
        audience: "custody",
        leeway_seconds: 60,
        now: 1_780_000_000,
    };
    let _ = verify(&Secret::new(text.to_owned()), jwks(), &expect);
});
