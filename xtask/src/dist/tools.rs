//! The tools a release build needs, installed into the repository (never system-wide):
//! the rustup targets, zig from PyPI (`ziglang`, pinned in `xtask/dist-requirements.txt`)
//! in `.tools/zig-venv`, and cargo-zigbuild / cargo-bloat from crates.io built with
//! `cargo install --locked` into `.tools/bin`. Each is installed once and reused; a
//! changed pin reinstalls it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

use super::Target;
use crate::util::{self, cargo, output};

/// cargo-zigbuild, pinned: its zig wrapper is part of the toolchain.
pub const CARGO_ZIGBUILD: (&str, &str) = ("cargo-zigbuild", "0.24.1");
/// cargo-bloat, for `cargo xtask bloat`.
pub const CARGO_BLOAT: (&str, &str) = ("cargo-bloat", "0.12.1");

const TOOLS_DIR: &str = ".tools";
const ZIG_VENV: &str = ".tools/zig-venv";
const ZIG_REQUIREMENTS: &str = "xtask/dist-requirements.txt";

/// What `dist` builds with, and the versions the provenance records.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `.tools/bin/cargo-zigbuild`.
    pub zigbuild: PathBuf,
    /// The zig venv's Python (`python -m ziglang` is zig).
    pub zig_python: PathBuf,
    /// `zig version`.
    pub zig_version: String,
    /// `rustc -vV`: release, commit hash, host, LLVM version.
    pub rustc: RustcVersion,
    /// `cargo --version`.
    pub cargo_version: String,
}

/// The parts of `rustc -vV` the provenance records.
#[derive(Debug, Clone)]
pub struct RustcVersion {
    pub release: String,
    pub commit_hash: String,
    pub host: String,
    pub verbose: String,
}

/// Installs what is missing and reports the versions.
pub fn ensure(targets: &[Target]) -> anyhow::Result<Tools> {
    rustup_targets(targets)?;
    let zig_python = PathBuf::from(crate::test::venv_at(
        Path::new(ZIG_VENV),
        Path::new(ZIG_REQUIREMENTS),
    )?);
    let zig_version = output(Command::new(&zig_python).args(["-m", "ziglang", "version"]))
        .context("running zig from .tools/zig-venv; delete .tools/zig-venv to reinstall it")?
        .trim()
        .to_owned();
    let zigbuild = cargo_tool(CARGO_ZIGBUILD)?;
    Ok(Tools {
        zigbuild,
        zig_python,
        zig_version,
        rustc: rustc_version()?,
        cargo_version: output(cargo().arg("--version"))?.trim().to_owned(),
    })
}

/// Adds the rustup targets (the standard library for musl) unless present.
fn rustup_targets(targets: &[Target]) -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("listing rustup targets (is rustup installed?)")?;
    let missing: Vec<&str> = targets
        .iter()
        .map(|t| t.triple())
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if !missing.is_empty() {
        util::run(
            Command::new("rustup")
                .args(["target", "add"])
                .args(&missing),
        )?;
    }
    Ok(())
}

/// Installs a crates.io tool at its pinned version into `.tools` and returns its path.
pub fn cargo_tool((name, version): (&str, &str)) -> anyhow::Result<PathBuf> {
    let bin = std::path::absolute(Path::new(TOOLS_DIR).join("bin").join(name))?;
    let installed = std::fs::read_to_string(Path::new(TOOLS_DIR).join(".crates.toml"))
        .unwrap_or_default()
        .contains(&format!("\"{name} {version} ("));
    if !(installed && bin.exists()) {
        util::run(
            cargo()
                .args(["install", "--locked", "--root", TOOLS_DIR])
                .arg(format!("{name}@{version}")),
        )
        .with_context(|| format!("installing {name} {version} from crates.io into .tools"))?;
    }
    Ok(bin)
}

fn rustc_version() -> anyhow::Result<RustcVersion> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let verbose = output(Command::new(rustc).arg("-vV"))?;
    let field = |key: &str| {
        verbose
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .with_context(|| format!("rustc -vV printed no `{key}` line"))
    };
    Ok(RustcVersion {
        release: field("release:")?,
        commit_hash: field("commit-hash:")?,
        host: field("host:")?,
        verbose: verbose.trim().to_owned(),
    })
}
