//! Sign and verify throughput of DSSE envelopes (ECDSA P-256, DER), and in-memory
//! SHA-256. Run with `cargo bench -p custody-evidence --bench crypto`; prints a
//! Markdown table. Each figure is the best of three 1-second runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use custody_evidence::{
    Digest, KeyIdScheme, RecordInfo, ResourceDescriptor, SigningKey, Statement, TrustedKeys,
    sign_statement, verify_envelope,
};

fn rate(mut f: impl FnMut()) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(1) {
            f();
            n += 1;
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let key = SigningKey::generate();
    let trusted = TrustedKeys::new(vec![key.public().clone()]);
    let st = Statement::new(
        vec![ResourceDescriptor::sha256("app", &Digest::of(b"app"))],
        "https://custody.dev/evidence/v1",
        serde_json::Map::new(),
        &RecordInfo::for_tests(),
    )
    .unwrap();
    let env = sign_statement(&st, &key, KeyIdScheme::Empty).unwrap();
    let payload = env.payload_bytes().unwrap().len();
    let sign = rate(|| {
        black_box(sign_statement(black_box(&st), &key, KeyIdScheme::Empty).unwrap());
    });
    let verify = rate(|| {
        black_box(verify_envelope(black_box(&env), &trusted).unwrap());
    });
    let buf = vec![0x5au8; 1 << 20];
    let hash = rate(|| {
        black_box(Digest::of(black_box(&buf)));
    });
    println!("| operation | rate |");
    println!("|---|---|");
    println!("| sign a statement ({payload}-byte payload) into a DSSE envelope | {sign:.0} /s |");
    println!("| verify a DSSE envelope (decode, PAE, ECDSA, parse statement) | {verify:.0} /s |");
    println!("| SHA-256 of 1 MiB in memory | {hash:.0} MiB/s |");
}
