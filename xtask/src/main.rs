//! `cargo xtask`: every maintainer task in Rust, so CI runs exactly what a maintainer
//! runs. `test` is the one command behind README's test instruction and `.ci/run`.

// xtask works on this repository's own files and tools, not untrusted input; slicing
// strings it just produced is fine here.
#![allow(clippy::indexing_slicing)]

mod bench;
mod components;
mod demo;
mod dist;
mod fuzz;
mod pin;
mod registry;
#[cfg(feature = "release")]
mod release;
mod sbom;
mod test;
mod util;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install what the tests need (Python venv), then fmt check, clippy, all tests.
    Test(test::Args),
    /// Run a compliant pipeline on the embedded local store and tell what happened.
    Demo(demo::Args),
    /// Coverage-guided fuzzing of every parser (fuzz/, libFuzzer); prints the table TESTING.md records.
    Fuzz(fuzz::Args),
    /// Side-by-side benchmarks; prints the tables BENCHMARKS.md records.
    Bench(bench::Args),
    /// Render the GitLab catalog layout (top-level templates/) from components/; --check for drift.
    Components(components::Args),
    /// Static musl release binaries (x86_64, aarch64), size budgets, SHA256SUMS, signed provenance.
    Dist(dist::Args),
    /// Cut a release: versions, CHANGELOG, manifests, templates, tag; GitHub and GitLab releases.
    #[cfg(feature = "release")]
    Release(release::Args),
    /// Cut a release: versions, CHANGELOG, manifests, templates, tag; GitHub and GitLab releases.
    #[cfg(not(feature = "release"))]
    #[command(disable_help_flag = true)]
    Release {
        /// The release's arguments, for xtask built with its `release` feature.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Pin Custody's own `uses:` references by commit SHA (one commit per level); --check.
    Pin(pin::Args),
    /// Where the release binaries' bytes go, per crate (cargo-bloat).
    Bloat(dist::BloatArgs),
    /// Write a CycloneDX 1.5 SBOM of this workspace (from Cargo.lock via cargo metadata).
    Sbom {
        /// Output file.
        #[arg(long, default_value = "target/custody-sbom.cdx.json")]
        out: std::path::PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::env::set_current_dir(util::root()?)?;
    match cli.cmd {
        Cmd::Test(a) => test::run(&a),
        Cmd::Demo(a) => demo::run(&a),
        Cmd::Bench(a) => bench::run(&a),
        Cmd::Fuzz(a) => fuzz::run(&a),
        Cmd::Components(a) => components::run(&a),
        Cmd::Dist(a) => dist::run(&a),
        Cmd::Bloat(a) => dist::bloat(&a),
        #[cfg(feature = "release")]
        Cmd::Release(a) => release::run(&a),
        #[cfg(not(feature = "release"))]
        Cmd::Release { args } => with_release_tooling(&args),
        Cmd::Pin(a) => pin::run(&a),
        Cmd::Sbom { out } => {
            let n = sbom::write(&out)?;
            println!("{} ({n} components)", out.display());
            Ok(())
        }
    }
}

/// `cargo xtask release …` from the default build, which leaves out the release tooling
/// (octocrab and the gitlab crate, which `demo` and `test` do not need for xtask): the same
/// command, run by xtask built with its `release` feature. Paths in the arguments mean the
/// same: both run from the repository root.
#[cfg(not(feature = "release"))]
fn with_release_tooling(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    eprintln!("cargo xtask release: building xtask with its release tooling (feature `release`)");
    let status = util::cargo()
        .args([
            "run",
            "--locked",
            "--quiet",
            "--package",
            "xtask",
            "--features",
            "release",
        ])
        .args(["--", "release"])
        .args(args)
        .status()
        .context("starting cargo run --package xtask --features release")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
