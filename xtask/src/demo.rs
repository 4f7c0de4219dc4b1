//! `cargo xtask demo`: the main job of the README quick start. Builds the binaries
//! and runs a pipeline on the embedded local store with no network, then tells what
//! happened. Each run starts from a fresh directory, so running it twice works.
//!
//! What it covers grows with the product: today keys, an SBOM of this workspace
//! attested at build, a real Trivy report attested at scan, the chain, queries by
//! commit and subject, verification, and a tampered copy that verification rejects.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::util::{self, cargo, output};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to run (wiped first).
    #[arg(long, default_value = "target/custody-demo")]
    dir: PathBuf,
    /// Build with the release profile.
    #[arg(long)]
    release: bool,
}

struct Demo {
    bin: PathBuf,
    dir: PathBuf,
}

impl Demo {
    fn custody(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .env_remove("CUSTODY_STORE")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI");
        c
    }
    fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&output(&mut self.custody(args))?)?)
    }
}

fn step(n: usize, title: &str, text: &str) {
    println!("{n:>2}. {title:<9} {text}");
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut build = cargo();
    build.args(["build", "--locked", "-p", "custody"]);
    if args.release {
        build.arg("--release");
    }
    util::run(&mut build)?;
    let profile = if args.release { "release" } else { "debug" };
    let bin = std::fs::canonicalize(format!("target/{profile}/custody"))?;
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("clearing {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let d = Demo {
        bin: bin.clone(),
        dir: dir.clone(),
    };
    let commit = output(Command::new("git").args(["rev-parse", "HEAD"]))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "0000000000000000000000000000000000000000".into());

    println!(
        "Custody demo: one pipeline run, evidence on the embedded store at {}",
        dir.join("store").display()
    );
    println!();
    output(&mut d.custody(&["keygen", "--out", "pipeline.key"]))?;
    step(
        1,
        "keys",
        "generated the pipeline's P-256 signing key (pipeline.key, mode 0600; pipeline.key.pub to verify)",
    );

    let sbom = dir.join("custody.cdx.json");
    let n = crate::sbom::write(&sbom)?;
    let subject = bin.to_str().context("binary path")?;
    let common = |stage: &str, file: &Path| -> Vec<String> {
        [
            "attest",
            file.to_str().unwrap_or_default(),
            "--subject",
            subject,
            "--key",
            "pipeline.key",
            "--store",
            "store",
            "--stage",
            stage,
            "--commit",
            &commit,
            "--pipeline",
            "1",
            "--job",
            "release",
            "--environment",
            "production",
            "--format",
            "json",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let attest = |stage: &str, file: &Path| -> anyhow::Result<Value> {
        let a = common(stage, file);
        d.json(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let b = attest("build", &sbom)?;
    step(
        2,
        "build",
        &format!(
            "SBOM of this workspace ({n} components, CycloneDX 1.5) signed and stored about {}: record {}",
            bin.file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("custody"),
            short(&b["record"])
        ),
    );
    let scan_file = std::fs::canonicalize("xtask/data/trivy-alpine-310.json")
        .context("the demo attests a real Trivy report kept in xtask/data")?;
    let s = attest("scan", &scan_file)?;
    step(
        3,
        "scan",
        &format!(
            "Trivy report stored byte for byte and signed: record {} (chain position {}, previous {})",
            short(&s["record"]),
            s["chain"]["sequence"],
            short(&s["chain"]["previous"])
        ),
    );

    let rows = d.json(&[
        "query", "--store", "store", "--commit", &commit, "--format", "json",
    ])?;
    let count = rows.as_array().map_or(0, Vec::len);
    step(
        4,
        "query",
        &format!(
            "commit {}: {count} record(s), found by prefix listing, not a scan",
            &commit[..12.min(commit.len())]
        ),
    );

    for r in rows.as_array().into_iter().flatten() {
        let rec = r["record"].as_str().unwrap_or_default();
        output(&mut d.custody(&[
            "verify",
            "--record",
            rec,
            "--store",
            "store",
            "--key",
            "pipeline.key.pub",
        ]))?;
    }
    step(
        5,
        "verify",
        &format!(
            "all {count} signatures verify against pipeline.key.pub; materials match their digests"
        ),
    );

    let rec = s["record"].as_str().unwrap_or_default();
    let hex = rec.trim_start_matches("sha256:");
    let stored = dir
        .join("store/objects/sha256")
        .join(&hex[..2])
        .join(&hex[2..]);
    let mut env: Value = serde_json::from_slice(&std::fs::read(&stored)?)?;
    // change one base64 character in the middle of the signed payload
    let mut payload: Vec<u8> = env["payload"]
        .as_str()
        .unwrap_or_default()
        .bytes()
        .collect();
    let mid = payload.len() / 2;
    payload[mid] = if payload[mid] == b'A' { b'B' } else { b'A' };
    env["payload"] = Value::String(String::from_utf8(payload)?);
    let forged = dir.join("forged-scan.json");
    std::fs::write(&forged, serde_json::to_vec(&env)?)?;
    let out = d
        .custody(&[
            "verify",
            forged.to_str().unwrap_or_default(),
            "--key",
            "pipeline.key.pub",
        ])
        .output()?;
    if out.status.success() {
        bail!("a tampered envelope verified: the demo's guard did not bite");
    }
    let reason = String::from_utf8_lossy(&out.stderr);
    step(
        6,
        "tamper",
        &format!(
            "an altered copy of the scan record is rejected (exit {}): {}",
            out.status.code().unwrap_or(-1),
            reason.trim().trim_start_matches("error: ")
        ),
    );

    println!();
    println!("Ask the store yourself:");
    println!(
        "  {} query --store {} --commit {}",
        bin.display(),
        dir.join("store").display(),
        commit
    );
    Ok(())
}

fn short(v: &Value) -> String {
    v.as_str()
        .map_or_else(|| "-".into(), |s| s.chars().take(19).collect())
}
