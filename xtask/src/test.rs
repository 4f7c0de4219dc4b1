//! `cargo xtask test`: the whole test suite, including what it needs installed.
//!
//! 1. A Python venv in `.venv` with the reference verifiers (tests/requirements.txt),
//!    reinstalled only when the requirements change.
//! 2. `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test --workspace`,
//!    with `CUSTODY_PYTHON` pointing at the venv so interop tests run, and
//!    `CUSTODY_MOTO` at its `moto_server` so the S3 store tests run against a real S3
//!    server on loopback (`AWS_EC2_METADATA_DISABLED` keeps any AWS client off the
//!    metadata address).
//! 3. With `CUSTODY_REPRO=1`, the reproducibility check of the release build
//!    (`cargo xtask dist --verify-reproducible` for both targets): two clean release
//!    builds compared byte for byte and the provenance verified by `custody` and
//!    securesystemslib. Opt-in: it is two full cross builds (tens of minutes).

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};

use crate::util::{self, cargo};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Skip fmt and clippy (tests only).
    #[arg(long)]
    no_lint: bool,
    /// Extra arguments for `cargo test` (after `--`).
    #[arg(last = true)]
    rest: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let python = venv()?;
    if !args.no_lint {
        util::run(cargo().args(["fmt", "--all", "--", "--check"]))?;
        util::run(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    util::run(
        cargo()
            .args(["test", "--workspace", "--locked", "--no-fail-fast"])
            .args(&args.rest)
            .env("CUSTODY_PYTHON", &python)
            .env("CUSTODY_MOTO", moto_server()?)
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    )?;
    if std::env::var("CUSTODY_REPRO").is_ok_and(|v| v == "1") {
        crate::dist::verify_reproducible(&crate::dist::Target::ALL, Path::new("target/dist"))?;
    } else {
        eprintln!(
            "CUSTODY_REPRO is not 1: the reproducible-build check was not run (it takes two full release builds)"
        );
    }
    Ok(())
}

/// Creates or refreshes `.venv` and returns its Python.
pub fn venv() -> anyhow::Result<String> {
    venv_at(Path::new(".venv"), Path::new("tests/requirements.txt"))
}

/// Creates or refreshes the venv `dir` from the pinned `requirements` and returns its
/// Python. Packages are reinstalled only when the requirements file changes.
pub fn venv_at(dir: &Path, requirements: &Path) -> anyhow::Result<String> {
    let wanted = hex(&Sha256::digest(
        std::fs::read(requirements)
            .with_context(|| format!("reading {}", requirements.display()))?,
    ));
    let python = dir.join("bin/python");
    let stamp = dir.join("custody-requirements.sha256");
    if !python.exists() {
        util::run(Command::new("python3").args(["-m", "venv"]).arg(dir))?;
    }
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        util::run(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(requirements),
        )?;
        std::fs::write(&stamp, &wanted)?;
    }
    // absolute, but not canonical: resolving the venv's symlink would yield the base
    // interpreter, which does not see the venv's packages
    let abs = std::path::absolute(python)?;
    Ok(abs.display().to_string())
}

/// The venv's `moto_server` (installed by tests/requirements.txt). Not canonicalized:
/// the venv's `python` is a symlink out of the venv, its scripts are not.
fn moto_server() -> anyhow::Result<std::path::PathBuf> {
    std::path::absolute(".venv/bin/moto_server").context("locating .venv/bin/moto_server")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
