//! Throughput of the secrets and PHI scan on text evidence: 64 MiB made of the real
//! fixtures (a Trivy report, SBOMs, coverage, JUnit), as evidence-upload reads a
//! material (a 256 KiB buffered reader), single-threaded. The goal is 200 MiB/s on two
//! cores (issue 19); BENCHMARKS.md records the figures.

#![allow(clippy::panic, clippy::expect_used)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use custody_scan::{Config, Scanner};

fn corpus() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    let mut seed = Vec::new();
    for f in [
        "scan-trivy/trivy-debian-buster.json",
        "sbom-cyclonedx/syft-1.5.0-alpine.cdx.json",
        "sbom-spdx/trivy-centos-7-2.2.spdx.json",
        "coverage-lcov/istanbul-js.lcov",
        "coverage-cobertura/gcovr-5.0.cobertura.xml",
        "scan-sarif/codeql-2.5.4.sarif",
    ] {
        seed.extend(std::fs::read(root.join(f)).unwrap_or_default());
        seed.push(b'\n');
    }
    let mut out = Vec::with_capacity(64 << 20);
    while out.len() < 64 << 20 {
        out.extend_from_slice(&seed);
    }
    out.truncate(64 << 20);
    out
}

fn scan(c: &mut Criterion) {
    let text = corpus();
    let scanner = Scanner::new(&Config::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("scan");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("fixtures-64MiB", |b| {
        b.iter(|| {
            let r = std::io::BufReader::with_capacity(256 << 10, text.as_slice());
            scanner.scan_reader("bench", r).map(|f| f.len())
        })
    });
    g.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
