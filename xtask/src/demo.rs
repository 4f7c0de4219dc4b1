//! `cargo xtask demo`: the main job of the README quick start. Builds the binaries
//! and runs a pipeline on the embedded local store with no network, then tells what
//! happened. Each run starts from a fresh directory, so running it twice works.
//!
//! What it covers grows with the product: today keys, `evidence-upload` of an SBOM of
//! this workspace (with SLSA provenance) at build, a real Trivy report at scan, a
//! deployment, the chain, a query by commit, the auditor's verification of the commit
//! (signatures, materials, chains, stages, locks), a tampered copy that verification
//! rejects, and an audit bundle verified offline with its HTML report.

use std::path::PathBuf;
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
    build.args([
        "build",
        "--locked",
        "-p",
        "custody",
        "-p",
        "evidence-upload",
    ]);
    if args.release {
        build.arg("--release");
    }
    util::run(&mut build)?;
    let profile = if args.release { "release" } else { "debug" };
    let target = util::target_dir();
    let bin = std::fs::canonicalize(target.join(profile).join("custody"))?;
    let upload = std::fs::canonicalize(target.join(profile).join("evidence-upload"))?;
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

    // the artifact: this workspace's custody binary, named like an image by digest
    let digest_line = output(&mut d.custody(&["digest", bin.to_str().context("path")?]))?;
    let digest = digest_line
        .split_whitespace()
        .next()
        .context("custody digest output")?
        .to_owned();
    let subject = format!("localhost/custody@{digest}");
    let n = crate::sbom::write(&dir.join("custody.cdx.json"))?;
    std::fs::copy("xtask/data/trivy-alpine-310.json", dir.join("trivy.json"))
        .context("the demo attests a real Trivy report kept in xtask/data")?;
    let stage = |stage: &str, files: &[&str], extra: &[&str]| -> anyhow::Result<Value> {
        let mut c = Command::new(&upload);
        c.current_dir(&dir)
            .env("NO_COLOR", "1")
            .env_remove("CUSTODY_STORE")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .args([
                "--stage",
                stage,
                "--subject",
                &subject,
                "--key",
                "pipeline.key",
                "--store",
                "store",
            ])
            .args([
                "--commit",
                &commit,
                "--pipeline",
                "1",
                "--job",
                "release",
                "--format",
                "json",
            ])
            .args(extra);
        for f in files {
            c.args(["--file", f]);
        }
        Ok(serde_json::from_str(&output(&mut c)?)?)
    };
    let b = stage("build", &["custody.cdx.json"], &[])?;
    step(
        2,
        "build",
        &format!(
            "SBOM of this workspace ({n} components) and SLSA provenance for {}: records {} and {}",
            &subject[..subject.len().min(40)],
            short(&b["records"][0]["record"]),
            short(&b["records"][1]["record"])
        ),
    );
    let s = stage("scan", &["trivy.json"], &[])?;
    let counts = &s["records"][0]["summary"]["counts"];
    step(
        3,
        "scan",
        &format!(
            "Trivy report stored byte for byte and summarized ({} critical, {} high, {} medium): record {} (chain position {})",
            counts["critical"],
            counts["high"],
            counts["medium"],
            short(&s["records"][0]["record"]),
            s["records"][0]["chain"]["sequence"]
        ),
    );
    let dep = stage("deploy", &[], &["--environment", "demo"])?;
    step(
        4,
        "deploy",
        &format!(
            "deployment to `demo` recorded: record {}",
            short(&dep["records"][0]["record"])
        ),
    );

    let rows = d.json(&[
        "query", "--store", "store", "--commit", &commit, "--format", "json",
    ])?;
    let count = rows.as_array().map_or(0, Vec::len);
    step(
        5,
        "query",
        &format!(
            "commit {}: {count} record(s), found by prefix listing, not a scan",
            &commit[..12.min(commit.len())]
        ),
    );

    // the auditor's check: signatures, materials, chains, stages and locks in one go
    let audit = d.json(&[
        "verify",
        "--store",
        "store",
        "--commit",
        &commit,
        "--require-stages",
        "build,scan,deploy",
        "--key",
        "pipeline.key.pub",
        "--format",
        "json",
    ])?;
    step(
        6,
        "verify",
        &format!(
            "all {} signatures verify against pipeline.key.pub; materials match their digests; {} chain(s) intact; build, scan and deploy present; every object locked for 6 years",
            audit["totals"]["verified"], audit["totals"]["chains"]
        ),
    );

    let rec = s["records"][0]["record"].as_str().unwrap_or_default();
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
        7,
        "tamper",
        &format!(
            "an altered copy of the scan record is rejected (exit {}): {}",
            out.status.code().unwrap_or(-1),
            reason.trim().trim_start_matches("error: ")
        ),
    );

    let bundle = dir.join("audit.tar.gz");
    output(&mut d.custody(&[
        "export",
        "--store",
        "store",
        "--commit",
        &commit,
        "--require-stages",
        "build,scan,deploy",
        "--key",
        "pipeline.key.pub",
        "--out",
        "audit.tar.gz",
    ]))?;
    output(&mut d.custody(&["verify-bundle", "audit.tar.gz", "--key", "pipeline.key.pub"]))?;
    let report = dir.join("report");
    let _ = std::fs::remove_dir_all(&report);
    std::fs::create_dir_all(&report)?;
    util_untar(&bundle, &report)?;
    step(
        8,
        "export",
        &format!(
            "audit bundle {} verified offline (evidence, keys, verification, report)",
            bundle.display()
        ),
    );
    println!();
    println!(
        "The auditor's report: {}",
        report.join("custody-bundle/report.html").display()
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

/// Unpacks a bundle with the system's tar (for the reader to open the report).
fn util_untar(bundle: &std::path::Path, into: &std::path::Path) -> anyhow::Result<()> {
    output(
        Command::new("tar")
            .arg("xzf")
            .arg(bundle)
            .arg("-C")
            .arg(into),
    )?;
    Ok(())
}
