//! Query cost against store size: builds local stores of growing size (records of
//! five stages per pipeline, spread over a year) and times queries whose answers are
//! small (one commit) and larger (one day, one week), listing only and listing plus
//! reading and verifying every envelope, and the whole audit `custody verify` runs
//! (signatures, chains walked, the pipeline's other records, locks read back). Run with
//! `cargo bench -p custody-audit --bench query`; `CUSTODY_BENCH_RECORDS` sets the
//! largest size (default 100000). Stores are kept in target/bench-stores for reuse.
//! Then each store's transparency log: the first checkpoint, the whole log verified,
//! and range proofs (the last 1,000 entries; the whole log) made and checked.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::time::Instant;

use custody_evidence::{
    ChainLink, Control, Digest, Envelope, KeyIdScheme, PipelineContext, Platform, RecordInfo,
    ResourceDescriptor, SigningKey, Statement, TrustedKeys, sign_statement, verify_envelope,
};
use custody_store::{Durability, LocalStore, Query, Retention, log};
use jiff::{Timestamp, ToSpan};

const STAGES: [&str; 5] = ["build", "test", "scan", "sign", "deploy"];

fn commit_of(p: usize) -> String {
    Digest::of(format!("commit {p}").as_bytes()).hex()[..40].to_owned()
}

fn start() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn build(records: usize, key: &SigningKey) -> LocalStore {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../target/bench-stores/{records}"));
    let done = dir.join("complete");
    if done.exists() {
        return LocalStore::open(dir.join("store")).unwrap();
    }
    // An interrupted build resumes: signing is deterministic (RFC 6979) and records
    // carry fixed times, so records already stored are the same bytes again.
    std::fs::create_dir_all(&dir).unwrap();
    if !dir.join("key.pem").exists() {
        std::fs::write(dir.join("key.pem"), key.to_pkcs8_pem().unwrap()).unwrap();
    }
    let store = LocalStore::create(dir.join("store"))
        .unwrap()
        .with_durability(Durability::None);
    let retention = Retention::hipaa_default().unwrap();
    let pipelines = records / STAGES.len();
    let t0 = Instant::now();
    for p in 0..pipelines {
        // pipelines spread evenly over one year
        let at = start()
            .checked_add(((p as i64) * 365 * 86_400 / pipelines as i64).seconds())
            .unwrap();
        let mut prev = None;
        for (i, stage) in STAGES.iter().enumerate() {
            let info = RecordInfo {
                stage: (*stage).into(),
                recorded_at: at.checked_add((i as i64).seconds()).unwrap(),
                materials: vec![],
                pipeline: PipelineContext {
                    platform: Some(Platform::Github),
                    repository: Some("acme/app".into()),
                    commit: Some(commit_of(p)),
                    pipeline_id: Some(p.to_string()),
                    environment: Some(if p % 10 == 0 { "production" } else { "staging" }.into()),
                    ..Default::default()
                },
                hipaa: Control::baseline(),
                chain: ChainLink {
                    id: format!("p{p}"),
                    sequence: i as u64,
                    previous: prev,
                },
                summary: None,
            };
            let st = Statement::new(
                vec![ResourceDescriptor::sha256(
                    "app",
                    &Digest::of(format!("image {p}").as_bytes()),
                )],
                "https://custody.dev/evidence/v1",
                serde_json::Map::new(),
                &info,
            )
            .unwrap();
            let env = sign_statement(&st, key, KeyIdScheme::Empty)
                .unwrap()
                .to_vec();
            prev = Some(store.put_record_blocking(&env, &retention).unwrap().digest);
        }
    }
    eprintln!(
        "built a store of {records} records in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    std::fs::write(&done, b"").unwrap();
    LocalStore::open(dir.join("store")).unwrap()
}

fn key_for(records: usize) -> SigningKey {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../target/bench-stores/{records}"));
    match std::fs::read_to_string(dir.join("key.pem")) {
        Ok(pem) => SigningKey::from_pem(&pem).unwrap(),
        _ => SigningKey::generate(),
    }
}

/// Median milliseconds of `runs` executions, and the answer size.
fn time(runs: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut samples = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let t = Instant::now();
        n = f();
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (samples[runs / 2], n)
}

fn main() {
    let max: usize = std::env::var("CUSTODY_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut sizes = vec![max / 10, max];
    sizes.dedup();
    println!(
        "| store size | query | answer | list (ms) | list + read + verify (ms) | audit (ms) | records audited |"
    );
    println!("|---|---|---|---|---|---|---|");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut logs = Vec::new();
    for records in sizes {
        let key = key_for(records);
        let store = build(records, &key);
        let trusted = TrustedKeys::new(vec![key.public().clone()]);
        let pipelines = records / STAGES.len();
        let probe = pipelines / 3;
        let day = start().checked_add((200 * 24).hours()).unwrap();
        let queries: Vec<(&str, Query)> = vec![
            (
                "one commit",
                Query {
                    commit: Some(commit_of(probe)),
                    ..Default::default()
                },
            ),
            (
                "one pipeline",
                Query {
                    pipeline: Some(format!("github:acme/app:{probe}")),
                    ..Default::default()
                },
            ),
            (
                "one day",
                Query {
                    day: Some(day.to_zoned(jiff::tz::TimeZone::UTC).date()),
                    ..Default::default()
                },
            ),
            (
                "one week of production deploys",
                Query {
                    environment: Some("production".into()),
                    stage: Some("deploy".into()),
                    since: Some(day),
                    until: Some(day.checked_add((7 * 24).hours()).unwrap()),
                    ..Default::default()
                },
            ),
        ];
        for (name, q) in &queries {
            let (list_ms, n) = time(21, || store.query_blocking(q).unwrap().len());
            let (full_ms, _) = time(11, || {
                let refs = store.query_blocking(q).unwrap();
                for r in &refs {
                    let bytes = store.get_object_blocking(&r.digest).unwrap();
                    verify_envelope(&Envelope::from_slice(&bytes).unwrap(), &trusted).unwrap();
                }
                refs.len()
            });
            let opts = custody_audit::AuditOptions {
                keys: trusted.clone(),
                required_stages: STAGES.map(String::from).to_vec(),
                min_retention_years: 6,
                verified_at: Timestamp::now(),
                store_label: None,
                required_services: Vec::new(),
                scope: None,
            };
            let mut audited = 0;
            let (audit_ms, _) = time(11, || {
                let a = rt
                    .block_on(custody_audit::audit_query(&store, q, &opts))
                    .unwrap()
                    .audit;
                assert!(a.ok, "{:?}", a.findings.first());
                audited = a.totals.records;
                a.totals.matched
            });
            println!(
                "| {records} | {name} | {n} | {list_ms:.2} | {full_ms:.2} | {audit_ms:.2} | {audited} |"
            );
        }
        logs.push((records, store));
    }
    // the transparency log of each store (issue 14): its first checkpoint covers every
    // record; then the whole log is verified; then range proofs as a bundle carries
    println!();
    println!(
        "| store size | first checkpoint (s) | tiles | verify whole log (s) | range | proof + entries (bytes) | prove (ms) | verify (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let (signer_text, verifier) = log::generate_log_key("bench.custody.dev/log").unwrap();
    let signer = log::LogSigner::parse(&signer_text).unwrap();
    let retention = Retention::hipaa_default().unwrap();
    for (records, store) in &logs {
        let t = Instant::now();
        let cp = rt
            .block_on(log::checkpoint(store, &signer, &retention))
            .unwrap();
        let checkpoint_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let audit = rt
            .block_on(log::verify_log(store, std::slice::from_ref(&verifier), &[]))
            .unwrap();
        let verify_s = t.elapsed().as_secs_f64();
        assert!(audit.ok(), "{:?}", audit.findings.first());
        let size = cp.checkpoint.size;
        for (name, from) in [
            ("last 1,000 entries", size.saturating_sub(1000)),
            ("whole log", 0),
        ] {
            let mut bytes = 0;
            let (prove_ms, _) = time(5, || {
                let (proof, entries) = rt
                    .block_on(log::prove_range(store, &cp.checkpoint, from))
                    .unwrap();
                bytes = log::entry_bundles(proof.from, &entries)
                    .iter()
                    .map(|(_, b)| b.len())
                    .sum::<usize>()
                    + serde_json::to_vec(&proof).unwrap().len()
                    + cp.checkpoint.note.len();
                entries.len()
            });
            let (proof, entries) = rt
                .block_on(log::prove_range(store, &cp.checkpoint, from))
                .unwrap();
            let (verify_ms, _) = time(5, || {
                log::verify_range(&cp.checkpoint, &proof, &entries).unwrap();
                entries.len()
            });
            println!(
                "| {records} | {checkpoint_s:.1} | {} | {verify_s:.1} | {name} | {bytes} | {prove_ms:.1} | {verify_ms:.1} |",
                cp.tiles_written
            );
        }
    }
}
