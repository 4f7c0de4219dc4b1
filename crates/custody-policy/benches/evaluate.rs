#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Policy evaluation at scale: the built-in policies on an input with an SBOM of
//! 5,000 components and a scan of 10,000 findings (target: under 50 ms per
//! evaluation). `cargo bench -p custody-policy --bench evaluate`; figures in
//! BENCHMARKS.md. `CUSTODY_BENCH_WRITE=DIR` also writes the input and data there, for
//! the whole-process comparison with regopy (`cargo xtask bench policy`).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use custody_policy::{Evaluator, PolicySet};
use serde_json::{Value, json};

const COMPONENTS: usize = 5_000;
const FINDINGS: usize = 10_000;

pub fn large_input() -> Value {
    let digest = format!("sha256:{}", "1".repeat(64));
    let components: Vec<Value> = (0..COMPONENTS)
        .map(|i| json!({"name": format!("pkg-{i}"), "version": format!("1.{i}.0"), "purl": format!("pkg:npm/pkg-{i}@1.{i}.0"), "licenses": [if i % 3 == 0 { "MIT" } else { "Apache-2.0" }]}))
        .collect();
    let severities = ["low", "medium", "negligible", "unknown", "medium"];
    let mut findings: Vec<Value> = (0..FINDINGS)
        .map(|i| json!({"id": format!("CVE-2026-{i:05}"), "severity": severities[i % severities.len()], "package": format!("pkg-{}", i % COMPONENTS), "version": "1.0.0"}))
        .collect();
    // a few that count, one covered by an exception
    findings[0] = json!({"id": "CVE-2026-99999", "severity": "critical", "package": "pkg-0"});
    findings[1] = json!({"id": "CVE-2026-99998", "severity": "high", "package": "pkg-1"});
    let mut input: Value =
        serde_json::from_str(include_str!("../tests/data/input-ok.json")).unwrap_or_default();
    input["sboms"][0]["components"] = Value::Array(components);
    input["sboms"][0]["componentCount"] = json!(COMPONENTS);
    input["scans"][0]["findings"] = Value::Array(findings);
    input["artifact"]["digest"] = json!(digest);
    input
}

fn policies() -> PolicySet {
    let mut set = PolicySet::builtin().unwrap_or_else(|e| panic!("{e}"));
    let mut data = set.data().clone();
    custody_policy::engine::merge(
        &mut data,
        json!({"custody": {"config": {
            "sbom": {"denied_licenses": ["AGPL-3.0-only", "SSPL-1.0"]},
            "scan": {"max_high": 2},
            "exceptions": [{"id": "CVE-2026-99999", "reason": "not reachable", "expires": "2999-12-31"}],
            "environments": {"production": {"tier": "production", "approvers": ["alice", "bob"], "min_approvals": 2}},
        }}}),
    );
    set = PolicySet::from_parts(set.modules().to_vec(), data).unwrap_or_else(|e| panic!("{e}"));
    set
}

fn bench(c: &mut Criterion) {
    let set = policies();
    let input = large_input();
    if let Ok(dir) = std::env::var("CUSTODY_BENCH_WRITE") {
        let dir = std::path::Path::new(&dir);
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(
            dir.join("input.json"),
            serde_json::to_vec(&input).unwrap_or_default(),
        );
        let _ = std::fs::write(
            dir.join("data.json"),
            serde_json::to_vec(set.data()).unwrap_or_default(),
        );
        let _ = std::fs::write(
            dir.join("data-config.json"),
            serde_json::to_vec(&set.data()["custody"]["config"]).unwrap_or_default(),
        );
    }
    let e = set
        .evaluate_value(input.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.rules.len(), 23);
    assert_eq!(set.evaluator(), Evaluator::Vm);
    let mut g = c.benchmark_group("policy");
    g.sample_size(30);
    // Timed: the input's conversion to the engine's values and the evaluation. Not
    // timed: copying the prepared JSON input for each iteration (policy-check builds
    // its input once and hands it over).
    for (name, evaluator) in [
        ("evaluate 5k components, 10k findings", Evaluator::Vm),
        (
            "evaluate 5k components, 10k findings (interpreter)",
            Evaluator::Interpreter,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || input.clone(),
                |i| {
                    set.evaluate_with(evaluator, i)
                        .unwrap_or_else(|e| panic!("{e}"))
                },
                BatchSize::LargeInput,
            )
        });
    }
    let small: Value =
        serde_json::from_str(include_str!("../tests/data/input-ok.json")).unwrap_or_default();
    g.bench_function("evaluate the small input", |b| {
        b.iter_batched(
            || small.clone(),
            |i| set.evaluate_value(i).unwrap_or_else(|e| panic!("{e}")),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
