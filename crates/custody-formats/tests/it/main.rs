//! Integration tests of custody-formats against the shared third-party fixtures
//! (`../shared/fixtures` beside the repository, see its SOURCES.md) and small documents derived from
//! them. Every expected number was worked out from the fixture files with
//! jq/python/grep, independently of this crate; each table says how.

// clippy.toml exempts `#[test]` functions, not the helpers they call; a failing
// helper should panic with a message, exactly like an assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod coverage;
mod errors;
mod sbom;
mod scan;
mod tests_junit;

use std::path::{Path, PathBuf};

/// The shared fixture directory, relative to this crate so no absolute path is
/// baked in: crates/custody-formats → worktree root → its parent holds `shared/`.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// Reads `dir/file` under the fixtures.
fn read(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}

/// Replaces the first occurrence of `from` (which must occur) in a fixture's text.
fn edit(rel: &str, from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(read(rel)).unwrap();
    assert!(text.contains(from), "{rel} does not contain {from:?}");
    text.replacen(from, to, 1).into_bytes()
}

/// Every fixture in a directory of a supported format must be listed in one of the
/// data tables, so a fixture added later cannot go unchecked.
#[test]
fn every_fixture_of_a_supported_format_is_checked() {
    let dirs = [
        "sbom-cyclonedx",
        "sbom-spdx",
        "tests-junit",
        "coverage-cobertura",
        "coverage-lcov",
        "scan-trivy",
        "scan-grype",
        "scan-sarif",
    ];
    let listed: Vec<&str> = sbom::CASES
        .iter()
        .map(|c| c.0)
        .chain(tests_junit::CASES.iter().map(|c| c.0))
        .chain(coverage::CASES.iter().map(|c| c.0))
        .chain(scan::CASES.iter().map(|c| c.0))
        .collect();
    let mut seen = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let rel = format!("{dir}/{name}");
            assert!(
                listed.contains(&rel.as_str()),
                "fixture {rel} has no expectations"
            );
            seen += 1;
        }
    }
    // 5 CycloneDX + 3 SPDX + 5 JUnit + 3 Cobertura + 3 lcov + 3 Trivy + 3 Grype
    // + 3 SARIF (`ls` of each directory).
    assert_eq!(seen, 28);
    assert_eq!(listed.len(), 28);
}
