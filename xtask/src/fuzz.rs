//! `cargo xtask fuzz`: coverage-guided fuzzing of every parser of untrusted input
//! (`fuzz/`, libFuzzer through libfuzzer-sys), on the pinned stable toolchain.
//!
//! The targets are built the way `cargo fuzz build -s none` builds them: SanitizerCoverage
//! passes (inline 8-bit counters, PC table, comparison tracing), `--cfg fuzzing`, debug
//! assertions and overflow checks, for the host triple given explicitly so that build
//! scripts and proc macros stay uninstrumented. No sanitizer runtime is needed (those
//! need a nightly compiler); memory safety comes from `unsafe_code = "forbid"` in the
//! workspace, and the fuzz crate's global allocator aborts on any single allocation over
//! 256 MiB, so "no allocation over the limit" is checked on every execution.
//!
//! Each target starts from its seeds (real files from `../shared/fixtures` and the
//! crate test data, plus `fuzz/seeds/<target>`) and keeps what it finds in
//! `target/fuzz/corpus/<target>`; a crash leaves its input in
//! `target/fuzz/artifacts/<target>/` and fails the command. `cargo xtask test` runs
//! every target for a short fixed budget (`CUSTODY_FUZZ_SECONDS`, default 10).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::util;

/// Every target and where its seeds come from (besides `fuzz/seeds/<target>`).
pub const TARGETS: &[(&str, &[&str])] = &[
    (
        "formats",
        &[
            "../shared/fixtures/sbom-cyclonedx",
            "../shared/fixtures/sbom-spdx",
            "../shared/fixtures/tests-junit",
            "../shared/fixtures/coverage-cobertura",
            "../shared/fixtures/coverage-lcov",
            "../shared/fixtures/scan-trivy",
            "../shared/fixtures/scan-grype",
            "../shared/fixtures/scan-sarif",
            "crates/custody-formats/tests/data",
        ],
    ),
    (
        "dsse",
        &[
            "../shared/fixtures/attestation-dsse",
            "../shared/fixtures/sigstore",
        ],
    ),
    ("bundle", &[]),
    ("tier_model", &["crates/custody-guard/examples"]),
    ("jwt", &[]),
    ("policy_data", &["crates/custody-policy/tests/data"]),
    ("log", &[]),
];

/// Longest input tried: the largest real fixture is about 2 MiB.
const MAX_LEN: usize = 4 << 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Targets to run (default: all).
    targets: Vec<String>,
    /// Seconds per target.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
}

/// What one target's run did.
#[derive(Debug)]
pub struct Run {
    pub target: &'static str,
    pub seconds: u64,
    pub executions: u64,
    pub seeds: usize,
    pub corpus: usize,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    for t in &args.targets {
        if !TARGETS.iter().any(|(n, _)| n == t) {
            bail!(
                "no fuzz target `{t}`: choose from {}",
                TARGETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let picked: Vec<&'static str> = TARGETS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| args.targets.is_empty() || args.targets.iter().any(|t| t == n))
        .collect();
    let runs = fuzz(&picked, args.seconds)?;
    print_table(&runs);
    Ok(())
}

/// Builds the targets and runs each of `targets` for `seconds`. Fails on a crash.
pub fn fuzz(targets: &[&'static str], seconds: u64) -> anyhow::Result<Vec<Run>> {
    let bin_dir = build()?;
    let root = util::root()?;
    let mut runs = Vec::new();
    for &target in targets {
        let seeds_from = TARGETS
            .iter()
            .find(|(n, _)| *n == target)
            .map(|(_, s)| *s)
            .unwrap_or_default();
        let mut seed_dirs: Vec<PathBuf> = vec![root.join("fuzz/seeds").join(target)];
        seed_dirs.extend(seeds_from.iter().map(|s| root.join(s)));
        seed_dirs.retain(|d| d.is_dir());
        let seeds: usize = seed_dirs.iter().map(|d| count_files(d)).sum();
        let corpus = root.join("target/fuzz/corpus").join(target);
        let artifacts = root.join("target/fuzz/artifacts").join(target);
        std::fs::create_dir_all(&corpus)?;
        std::fs::create_dir_all(&artifacts)?;
        eprintln!("fuzz {target}: {seconds} s from {seeds} seeds");
        let started = Instant::now();
        let out = Command::new(bin_dir.join(target))
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-max_len={MAX_LEN}"))
            .arg("-rss_limit_mb=2048")
            .arg("-timeout=20")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg(&corpus)
            .args(&seed_dirs)
            .output()
            .with_context(|| format!("running fuzz target {target}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "fuzz target {target} failed after {:.0} s (its input is in {}):\n{}",
                started.elapsed().as_secs_f64(),
                artifacts.display(),
                tail.join("\n")
            );
        }
        let executions = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        runs.push(Run {
            target,
            seconds,
            executions,
            seeds,
            corpus: count_files(&corpus),
        });
    }
    Ok(runs)
}

/// The table TESTING.md records.
pub fn print_table(runs: &[Run]) {
    println!("| target | seconds | executions | seeds | corpus after |");
    println!("|---|---:|---:|---:|---:|");
    for r in runs {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.target, r.seconds, r.executions, r.seeds, r.corpus
        );
    }
}

/// Builds every target with coverage instrumentation; returns their directory.
fn build() -> anyhow::Result<PathBuf> {
    let root = util::root()?;
    let host = util::output(Command::new("rustc").arg("-vV"))?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV names no host triple")?;
    let target_dir = root.join("target/fuzz/build");
    let flags = [
        "-Cpasses=sancov-module",
        "-Cllvm-args=-sanitizer-coverage-level=4",
        "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
        "-Cllvm-args=-sanitizer-coverage-pc-table",
        "-Cllvm-args=-sanitizer-coverage-trace-compares",
        "--cfg=fuzzing",
        "-Cdebug-assertions",
        "-Coverflow-checks",
    ]
    .join(" ");
    util::run(
        Command::new(env!("CARGO"))
            .current_dir(root.join("fuzz"))
            .args([
                "build",
                "--release",
                "--locked",
                "--bins",
                "--target",
                &host,
            ])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env("RUSTFLAGS", flags)
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
    )
    .context("building the fuzz targets (fuzz/)")?;
    Ok(target_dir.join(host).join("release"))
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() { count_files(&p) } else { 1 }
        })
        .sum()
}
