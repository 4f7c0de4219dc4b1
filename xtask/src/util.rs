//! Small helpers: the repository root and running commands with clear failures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, bail};

/// The workspace root (this crate's parent).
pub fn root() -> anyhow::Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent()
        .map(PathBuf::from)
        .context("xtask has no parent directory")
}

/// Runs a command, streaming its output, and fails with the command line on error.
pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let start = Instant::now();
    eprintln!("$ {shown}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    eprintln!("  ({:.1}s)", start.elapsed().as_secs_f64());
    Ok(())
}

/// Runs a command and returns its stdout.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("starting {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Where cargo puts build outputs: `CARGO_TARGET_DIR` when set, else `target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

/// Makes sure Debian package `package` is installed, `binary` being the file it must
/// provide: apt-get install when missing (CI runs as root), `update` first only when
/// the plain install fails, waiting for a dpkg lock another installer holds.
pub fn debian_package(package: &str, binary: &str) -> anyhow::Result<()> {
    if Path::new(binary).exists() {
        return Ok(());
    }
    let apt = |args: &[&str]| {
        run(Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    let install = ["install", "-y", "-qq", "--no-install-recommends", package];
    if apt(&install).is_err() {
        apt(&["update", "-qq"])
            .with_context(|| format!("{package} is missing and apt-get update failed"))?;
        apt(&install).with_context(|| {
            format!("{package} is missing and apt-get could not install it: install {package}")
        })?;
    }
    anyhow::ensure!(
        Path::new(binary).exists(),
        "apt-get installed {package} but {binary} is missing"
    );
    Ok(())
}
