//! `cargo xtask test`: the whole test suite, including what it needs installed.
//!
//! 1. A Python venv in `.venv` with the reference verifiers (tests/requirements.txt),
//!    reinstalled only when the requirements change.
//! 2. `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test --workspace`,
//!    with `CUSTODY_PYTHON` pointing at the venv so interop tests run, and
//!    `CUSTODY_MOTO` at its `moto_server` so the S3 store tests run against a real S3
//!    server on loopback (`AWS_EC2_METADATA_DISABLED` keeps any AWS client off the
//!    metadata address).
//! 3. Debian's `chromium` (installed with apt-get when missing), named by
//!    `CUSTODY_CHROMIUM`, so the audit report is rendered by a real headless browser.

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
    let chromium = chromium()?;
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
            .env("CUSTODY_CHROMIUM", &chromium)
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    )?;
    Ok(())
}

/// Creates or refreshes `.venv` and returns its Python.
pub fn venv() -> anyhow::Result<String> {
    let req = Path::new("tests/requirements.txt");
    let wanted = hex(&Sha256::digest(
        std::fs::read(req).context("reading tests/requirements.txt")?,
    ));
    let python = Path::new(".venv/bin/python");
    let stamp = Path::new(".venv/custody-requirements.sha256");
    if !python.exists() {
        util::run(Command::new("python3").args(["-m", "venv", ".venv"]))?;
    }
    if std::fs::read_to_string(stamp).ok().as_deref() != Some(wanted.as_str()) {
        util::run(
            Command::new(python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(req),
        )?;
        std::fs::write(stamp, &wanted)?;
    }
    // absolute, but not canonical: resolving the venv's symlink would yield the base
    // interpreter, which does not see the venv's packages
    let abs = std::path::absolute(python)?;
    Ok(abs.display().to_string())
}

/// Debian's headless-capable Chromium, installed when missing (the machine's package
/// registry is Debian's; the browser renders a local file and opens no connection).
fn chromium() -> anyhow::Result<String> {
    const BIN: &str = "/usr/bin/chromium";
    if Path::new(BIN).exists() {
        return Ok(BIN.into());
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if !install().is_ok_and(|s| s.success()) {
        util::run(Command::new("apt-get").args(["update"]))?;
        util::run(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
        .context("installing Debian's chromium for the report rendering test")?;
    }
    Ok(BIN.into())
}

/// The venv's `moto_server` (installed by tests/requirements.txt). Not canonicalized:
/// the venv's `python` is a symlink out of the venv, its scripts are not.
fn moto_server() -> anyhow::Result<std::path::PathBuf> {
    std::path::absolute(".venv/bin/moto_server").context("locating .venv/bin/moto_server")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
