//! `cargo xtask demo`: the main job of the README quick start. Builds the binaries and
//! runs a complete compliant pipeline on the embedded local store with no network,
//! then tells what happened. Each run starts from a fresh directory, so running it
//! twice works.
//!
//! The pipeline plays one GitHub Actions run on this machine (the `GITHUB_*` variables
//! a runner sets, nothing else; no OIDC token, no API, so runner-guard says what it
//! could not verify): runner-guard first in each job against a demo tier model
//! (`xtask/data/demo/tiers.yaml`); build (a CycloneDX SBOM of this workspace naming the
//! artifact's digest, with SLSA provenance); test (custody-evidence's unit tests as JUnit
//! from libtest, with line coverage from `-C instrument-coverage` and Debian's
//! `llvm-22`); scan (a real Trivy report, re-dated and pointed at the artifact); the
//! pre-approval gate, which denies because the artifact is not signed yet; sign (a
//! `cosign sign-blob`-style ECDSA signature); the gate again; an approval by an
//! authorized approver; the pre-deploy gate; the deploy record; then the auditor's
//! query, verification, a checkpoint of the store's transparency log signed by the
//! parent's log key, and an offline-verified export bundle that proves itself complete
//! against that checkpoint, with its HTML report.
//!
//! `--tamper` runs the same pipeline with three faults, so a newcomer sees the guards
//! bite: the scan record is cut from a copy of the store and a bundle exported without
//! it (`verify-bundle --log-key` names the missing log index); one byte of the stored
//! scan report is changed after upload; and the approval comes from the commit's author. The pre-deploy gate denies (evidence integrity,
//! separation of duties, an unauthorized approver), the GitHub App gate rejects the
//! deployment, nothing is deployed, and the
//! auditor's verification fails naming the altered file. The demo fails if either
//! guard does not bite.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::util::{self, cargo, output};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to run (wiped first).
    #[arg(long, default_value = "target/custody-demo")]
    dir: PathBuf,
    /// Build with the release profile.
    #[arg(long)]
    release: bool,
    /// Use the step binaries and `custody` in DIR instead of building them (the test
    /// suite passes its own build).
    #[arg(long, value_name = "DIR", conflicts_with = "release")]
    bins: Option<PathBuf>,
    /// Alter a stored scan report and let the commit's author approve: the gate must
    /// deny and the audit must fail.
    #[arg(long)]
    tamper: bool,
}

const REPOSITORY: &str = "custody-dev/custody-demo";
const RUN_ID: &str = "1";
const ENVIRONMENT: &str = "staging";
/// Who pushed the commit (and started the run): never an approver of it.
const AUTHOR: &str = "dev";
/// An approver the policy data names for `staging`.
const APPROVER: &str = "alice";
/// The stages the compliant pipeline records, all of which the auditor requires.
const STAGES: &str = "build,test,scan,sign,deploy";

struct Demo {
    bins: PathBuf,
    dir: PathBuf,
    commit: String,
    subject: String,
}

impl Demo {
    /// A step binary as a GitHub Actions job `job` would run it: only the variables a
    /// runner sets, none of this shell's CI, store or key variables.
    fn step(&self, bin: &str, job: &str) -> Command {
        let mut c = Command::new(self.bins.join(bin));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if [
                "GITHUB_", "GITLAB_", "CI_", "CUSTODY_", "ACTIONS_", "RUNNER_",
            ]
            .iter()
            .any(|p| k.starts_with(p))
                || k == "CI"
            {
                c.env_remove(k);
            }
        }
        c.current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_REPOSITORY", REPOSITORY)
            .env("GITHUB_RUN_ID", RUN_ID)
            .env("GITHUB_RUN_ATTEMPT", "1")
            .env("GITHUB_SHA", &self.commit)
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_JOB", job)
            .env("GITHUB_ACTOR", AUTHOR)
            .env("GITHUB_TRIGGERING_ACTOR", AUTHOR)
            .env("RUNNER_NAME", "custody-demo")
            .env("RUNNER_ENVIRONMENT", "self-hosted")
            .env("GITHUB_STEP_SUMMARY", self.dir.join("summary.md"))
            .env("GITHUB_OUTPUT", self.dir.join(format!("outputs-{job}")));
        c
    }

    /// The auditor's `custody`, outside any pipeline.
    fn custody(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bins.join("custody"));
        c.args(args)
            .current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .env_remove("CUSTODY_STORE")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI");
        c
    }

    /// The auditor's `custody verify` or `custody export` (`command`) of this commit's
    /// records in `store`, every stage in `stages` required and every signature checked
    /// against the pipeline key.
    fn audit(&self, command: &str, store: &str, stages: &str) -> Command {
        self.custody(&[
            command,
            "--store",
            store,
            "--commit",
            &self.commit,
            "--require-stages",
            stages,
            "--key",
            "pipeline.key.pub",
        ])
    }

    fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&output(&mut self.custody(args))?)?)
    }

    /// runner-guard, the first step of `job`, judged for `tier` or `environment`.
    fn guard(&self, job: &str, target: (&str, &str)) -> anyhow::Result<Value> {
        let out = self
            .step("runner-guard", job)
            .args(["--tier-model", "tiers.yaml", target.0, target.1])
            .args([
                "--store",
                "store",
                "--key",
                "pipeline.key",
                "--format",
                "json",
            ])
            .output()?;
        let v = parse(&out, "runner-guard")?;
        if !out.status.success() {
            bail!(
                "runner-guard failed the {job} job (exit {}): {}",
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(v)
    }

    /// evidence-upload of `files` at `stage`, in job `stage`.
    fn upload(&self, stage: &str, files: &[&str], extra: &[&str]) -> anyhow::Result<Value> {
        let mut c = self.step("evidence-upload", stage);
        c.args(["--stage", stage, "--subject", &self.subject])
            .args([
                "--key",
                "pipeline.key",
                "--store",
                "store",
                "--format",
                "json",
            ])
            .args(extra);
        for f in files {
            c.args(["--file", f]);
        }
        Ok(serde_json::from_str(&output(&mut c)?)?)
    }

    /// policy-check at `gate` in job `job`; returns the decision and the exit code.
    fn gate(&self, gate: &str, job: &str, approvals: Option<&str>) -> anyhow::Result<Value> {
        let mut c = self.step("policy-check", job);
        c.args(["--gate", gate, "--subject", &self.subject])
            .args(["--environment", ENVIRONMENT, "--store", "store"])
            .args(["--trusted-key", "pipeline.key.pub", "--data", "policy.yaml"])
            .args(["--platform", "none", "--signing-key", "pipeline.key"]);
        if let Some(a) = approvals {
            c.args(["--approvals", a]);
        }
        let out = c.output()?;
        let v = parse(&out, "policy-check")?;
        match out.status.code() {
            Some(0 | 1) => Ok(v),
            code => bail!(
                "policy-check --gate {gate} failed with exit {code:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

fn parse(out: &Output, what: &str) -> anyhow::Result<Value> {
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{what} printed no JSON (exit {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// One line of the story, numbered in order.
fn step(title: &str, text: &str) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    println!("{n:>2}. {title:<10} {text}");
}

fn more(text: &str) {
    println!("    {:<10} {text}", "");
}

fn short(v: &Value) -> String {
    v.as_str()
        .map_or_else(|| "-".into(), |s| s.chars().take(19).collect())
}

/// The rules of a decision with `status`, as `id: message` lines.
fn rules(decision: &Value, status: &str) -> Vec<String> {
    decision["rules"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|r| r["status"] == status)
                .map(|r| {
                    format!(
                        "{}: {}",
                        r["id"].as_str().unwrap_or("?"),
                        r["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn count(decision: &Value, status: &str) -> usize {
    decision["rules"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|r| r["status"] == status).count())
}

fn guard_line(v: &Value) -> String {
    let report = &v["report"];
    let checks = report["checks"].as_array().map_or(&[][..], Vec::as_slice);
    let warn = checks.iter().filter(|c| c["status"] == "warn").count();
    format!(
        "tier {}: {} ({} checks, {} warnings: no OIDC token or API here, running as {}); verdict stored as record {}",
        report["tier"].as_str().unwrap_or("?"),
        report["outcome"].as_str().unwrap_or("?"),
        checks.len(),
        warn,
        if checks
            .iter()
            .any(|c| c["id"] == "no-root" && c["status"] != "pass")
        {
            "root"
        } else {
            "a user"
        },
        short(&v["evidence"]["record"])
    )
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let bins = match &args.bins {
        Some(dir) => std::fs::canonicalize(dir)
            .with_context(|| format!("--bins {}: no such directory", dir.display()))?,
        None => {
            let mut build = cargo();
            build.args(["build", "--locked"]);
            for p in [
                "custody",
                "custody-gate",
                "evidence-upload",
                "policy-check",
                "runner-guard",
            ] {
                build.args(["-p", p]);
            }
            if args.release {
                build.arg("--release");
            }
            util::run(&mut build)?;
            let profile = if args.release { "release" } else { "debug" };
            std::fs::canonicalize(util::target_dir().join(profile))?
        }
    };
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("clearing {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    let commit = output(Command::new("git").args(["rev-parse", "HEAD"]))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "0000000000000000000000000000000000000000".into());

    // the artifact: this workspace's custody binary, named like an image by digest
    let artifact = bins.join("custody");
    let digest_line = output(Command::new(&artifact).arg("digest").arg(&artifact))?;
    let digest = digest_line
        .split_whitespace()
        .next()
        .context("custody digest output")?
        .to_owned();
    let d = Demo {
        bins: bins.clone(),
        dir: dir.clone(),
        commit: commit.clone(),
        subject: format!("localhost/custody@{digest}"),
    };
    // the test stage's report and coverage come first: they build an instrumented copy
    // of custody-evidence, which takes a while on a fresh machine
    let tests = coverage(&dir)?;

    println!(
        "Custody demo{}: one pipeline run of {REPOSITORY} (commit {}), evidence on the embedded store at {}",
        if args.tamper { " --tamper" } else { "" },
        &commit[..12.min(commit.len())],
        dir.join("store").display()
    );
    println!();
    for f in ["tiers.yaml", "policy.yaml"] {
        std::fs::copy(Path::new("xtask/data/demo").join(f), dir.join(f))
            .with_context(|| format!("copying xtask/data/demo/{f}"))?;
    }
    output(&mut d.custody(&["keygen", "--out", "pipeline.key"]))?;
    output(&mut d.custody(&["keygen", "--out", "artifact.key"]))?;
    step(
        "keys",
        "pipeline.key signs evidence, artifact.key signs the artifact (P-256, mode 0600; .pub files to verify)",
    );

    let g = d.guard("build", ("--tier", "development"))?;
    step("guard", &format!("build job: {}", guard_line(&g)));

    let sbom = dir.join("custody.cdx.json");
    let n = crate::sbom::write(&sbom)?;
    let mut bom: Value = serde_json::from_slice(&std::fs::read(&sbom)?)?;
    bom["metadata"]["component"]["purl"] = json!(format!(
        "pkg:oci/custody@{digest}?repository_url=localhost/custody"
    ));
    std::fs::write(&sbom, serde_json::to_vec_pretty(&bom)?)?;
    let b = d.upload("build", &["custody.cdx.json"], &[])?;
    step(
        "build",
        &format!(
            "SBOM of this workspace ({n} components, naming {}) and SLSA provenance: records {} and {}",
            &d.subject[..d.subject.len().min(40)],
            short(&b["records"][0]["record"]),
            short(&b["records"][1]["record"])
        ),
    );

    let t = d.upload("test", &["junit.xml", "lcov.info"], &[])?;
    step(
        "test",
        &format!(
            "custody-evidence's {} unit tests, {} failed (libtest JUnit), line coverage {:.1}% (llvm-cov lcov): record {}",
            tests.tests,
            tests.failures,
            tests.line_rate * 100.0,
            short(&t["records"][0]["record"])
        ),
    );

    std::fs::write(dir.join("trivy.json"), trivy(&d.subject)?)?;
    let s = d.upload("scan", &["trivy.json"], &["--environment", ENVIRONMENT])?;
    let counts = &s["records"][0]["summary"]["counts"];
    step(
        "scan",
        &format!(
            "a real Trivy report ({} critical, {} high, {} medium), re-dated and aimed at the artifact: record {}",
            counts["critical"],
            counts["high"],
            counts["medium"],
            short(&s["records"][0]["record"])
        ),
    );

    let g = d.guard("approve", ("--environment", ENVIRONMENT))?;
    step("guard", &format!("approval job: {}", guard_line(&g)));
    let early = d.gate("pre-approval", "approve", None)?;
    step(
        "gate",
        &format!(
            "policy-check --gate pre-approval: {} — before anyone is asked, it shows what would block:",
            early["decision"].as_str().unwrap_or("?")
        ),
    );
    for r in rules(&early, "fail") {
        more(&format!("✗ {r}"));
    }

    // cosign sign-blob's format: base64 of an ASN.1 ECDSA P-256 SHA-256 signature
    let key = custody_evidence::SigningKey::from_pem(
        &std::fs::read_to_string(dir.join("artifact.key")).context("reading artifact.key")?,
    )?;
    let sig = key.sign_der(&std::fs::read(&artifact)?);
    std::fs::write(dir.join("custody.sig"), base64(&sig))?;
    let sg = d.upload(
        "sign",
        &["custody.sig"],
        &["--signing-key-id", "artifact.key.pub"],
    )?;
    step(
        "sign",
        &format!(
            "the artifact signed with artifact.key (cosign sign-blob format): record {}",
            short(&sg["records"][0]["record"])
        ),
    );
    let again = d.gate("pre-approval", "approve", None)?;
    step(
        "gate",
        &format!(
            "policy-check --gate pre-approval again: {} ({} rules pass, {} left for the pre-deploy gate): a human may be asked",
            again["decision"].as_str().unwrap_or("?"),
            count(&again, "pass"),
            count(&again, "skip")
        ),
    );
    if again["decision"] != "allow" {
        for r in rules(&again, "fail") {
            more(&format!("✗ {r}"));
        }
        bail!("the signed artifact should pass the pre-approval gate");
    }

    if args.tamper {
        return tampered(&d, s["records"][0]["record"].as_str().unwrap_or_default());
    }

    write_approvals(&dir, APPROVER)?;
    step(
        "approve",
        &format!(
            "{APPROVER}, an approver of `{ENVIRONMENT}` in policy.yaml, approves the run of {AUTHOR}'s commit (approvals.json: a platform would supply this)"
        ),
    );
    let g = d.guard("deploy", ("--environment", ENVIRONMENT))?;
    step("guard", &format!("deploy job: {}", guard_line(&g)));
    let fin = d.gate("pre-deploy", "deploy", Some("approvals.json"))?;
    step(
        "gate",
        &format!(
            "policy-check --gate pre-deploy: {} ({} rules pass): decision record {}",
            fin["decision"].as_str().unwrap_or("?"),
            count(&fin, "pass"),
            short(&fin["record"])
        ),
    );
    if fin["decision"] != "allow" {
        for r in rules(&fin, "fail") {
            more(&format!("✗ {r}"));
        }
        bail!("the compliant pipeline was denied at the pre-deploy gate");
    }
    show_review(&github_app(&d, APPROVER)?, "approved")?;
    let dep = d.upload("deploy", &[], &["--environment", ENVIRONMENT])?;
    step(
        "deploy",
        &format!(
            "deployed to `{ENVIRONMENT}` and recorded: record {}",
            short(&dep["records"][0]["record"])
        ),
    );

    let rows = d.json(&[
        "query", "--store", "store", "--commit", &commit, "--format", "json",
    ])?;
    step(
        "query",
        &format!(
            "commit {}: {} record(s), found by prefix listing, not a scan",
            &commit[..12.min(commit.len())],
            rows.as_array().map_or(0, Vec::len)
        ),
    );
    let audit: Value = serde_json::from_str(&output(
        d.audit("verify", "store", STAGES)
            .args(["--format", "json"]),
    )?)?;
    step(
        "verify",
        &format!(
            "all {} signatures verify against pipeline.key.pub; materials match their digests; {} chain(s) intact; build, test, scan, sign and deploy present; every object locked for 6 years",
            audit["totals"]["verified"], audit["totals"]["chains"]
        ),
    );
    forged_copy(&d, s["records"][0]["record"].as_str().unwrap_or_default())?;
    let cp = checkpoint(&d)?;
    output(&mut d.custody(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
    ]))?;
    step(
        "log",
        &format!(
            "the parent signs a checkpoint of the store's transparency log: {} entries, root {}; `custody log verify` proves every stored record is in it",
            cp["size"],
            cp["root"].as_str().unwrap_or("?")
        ),
    );

    let bundle = dir.join("audit.tar.gz");
    output(d.audit("export", "store", STAGES).args([
        "--log-key",
        "log.key.pub",
        "--out",
        "audit.tar.gz",
    ]))?;
    output(&mut d.custody(&[
        "verify-bundle",
        "audit.tar.gz",
        "--key",
        "pipeline.key.pub",
        "--log-key",
        "log.key.pub",
    ]))?;
    let report = dir.join("report");
    std::fs::create_dir_all(&report)?;
    output(
        Command::new("tar")
            .arg("xzf")
            .arg(&bundle)
            .arg("-C")
            .arg(&report),
    )?;
    step(
        "export",
        &format!(
            "audit bundle {} verified offline (evidence, keys, verification, report), and complete: the log's entries for the commit, under the checkpoint, are all in it",
            bundle.display()
        ),
    );
    println!();
    println!(
        "The auditor's report: {}",
        report.join("custody-bundle/report.html").display()
    );
    println!(
        "The gates' step summary: {}",
        dir.join("summary.md").display()
    );
    println!();
    println!("Ask the store yourself:");
    println!(
        "  {} query --store {} --commit {}",
        bins.join("custody").display(),
        dir.join("store").display(),
        commit
    );
    println!("And watch the guards bite: cargo xtask demo --tamper");
    Ok(())
}

/// A copy of the scan record with one base64 character of its payload changed is
/// rejected by `custody verify`.
fn forged_copy(d: &Demo, record: &str) -> anyhow::Result<()> {
    let stored = object_path(&d.dir, record);
    let mut env: Value = serde_json::from_slice(&std::fs::read(&stored)?)?;
    let mut payload: Vec<u8> = env["payload"]
        .as_str()
        .unwrap_or_default()
        .bytes()
        .collect();
    let mid = payload.len() / 2;
    payload[mid] = if payload[mid] == b'A' { b'B' } else { b'A' };
    env["payload"] = Value::String(String::from_utf8(payload)?);
    let forged = d.dir.join("forged-scan.json");
    std::fs::write(&forged, serde_json::to_vec(&env)?)?;
    let out = d
        .custody(&["verify", "forged-scan.json", "--key", "pipeline.key.pub"])
        .output()?;
    if out.status.success() {
        bail!("a tampered envelope verified: the demo's guard did not bite");
    }
    let reason = String::from_utf8_lossy(&out.stderr);
    step(
        "forgery",
        &format!(
            "a copy of the scan record with one changed byte is rejected (exit {}): {}",
            out.status.code().unwrap_or(-1),
            reason.trim().trim_start_matches("error: ")
        ),
    );
    Ok(())
}

/// `--tamper`: the stored scan report loses a byte's honesty and the author approves
/// their own change. Both guards must bite.
fn tampered(d: &Demo, scan_record: &str) -> anyhow::Result<()> {
    removed_from_bundle(d, scan_record)?;
    // the scan report the record names, as stored
    let env: Value = serde_json::from_slice(&std::fs::read(object_path(&d.dir, scan_record))?)?;
    let payload = base64_decode(env["payload"].as_str().unwrap_or_default())?;
    let statement: Value = serde_json::from_slice(&payload)?;
    let material = statement["custodyRecord"]["materials"][0]["digest"]
        .as_str()
        .context("the scan record names no material")?;
    let stored = object_path(&d.dir, material);
    let mut bytes = std::fs::read(&stored)
        .with_context(|| format!("reading the stored scan report {}", stored.display()))?;
    // "CRITICAL" counts are what an insider would lower; any byte will do
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    make_writable(&stored)?;
    std::fs::write(&stored, &bytes)?;
    step(
        "TAMPER",
        &format!(
            "one byte of the stored Trivy report changed after upload ({})",
            stored.strip_prefix(&d.dir).unwrap_or(&stored).display()
        ),
    );
    write_approvals(&d.dir, AUTHOR)?;
    step(
        "TAMPER",
        &format!("{AUTHOR}, the commit's author, approves their own change"),
    );
    let g = d.guard("deploy", ("--environment", ENVIRONMENT))?;
    step("guard", &format!("deploy job: {}", guard_line(&g)));
    let fin = d.gate("pre-deploy", "deploy", Some("approvals.json"))?;
    let failed = rules(&fin, "fail");
    step(
        "gate",
        &format!(
            "policy-check --gate pre-deploy: {} — nothing is deployed:",
            fin["decision"].as_str().unwrap_or("?")
        ),
    );
    for r in &failed {
        more(&format!("✗ {r}"));
    }
    for id in [
        "evidence-integrity",
        "separation-of-duties",
        "approvers-authorized",
    ] {
        if fin["decision"] != "deny" || !failed.iter().any(|r| r.starts_with(id)) {
            bail!("the pre-deploy gate did not deny on {id}: the guard did not bite");
        }
    }
    show_review(&github_app(d, AUTHOR)?, "rejected")?;
    let out = d
        .custody(&[
            "verify",
            "--store",
            "store",
            "--commit",
            &d.commit,
            "--key",
            "pipeline.key.pub",
            "--format",
            "json",
        ])
        .output()?;
    let audit = parse(&out, "custody verify")?;
    if out.status.success() || audit["ok"] != false {
        bail!("custody verify accepted a store with an altered scan report");
    }
    step(
        "verify",
        &format!(
            "custody verify fails (exit {}), {} error(s):",
            out.status.code().unwrap_or(-1),
            audit["totals"]["errors"]
        ),
    );
    for f in audit["findings"].as_array().into_iter().flatten() {
        if f["severity"] == "error" {
            more(&format!(
                "✗ {} {}: {}",
                f["check"].as_str().unwrap_or("?"),
                f["about"].as_str().unwrap_or(""),
                f["message"].as_str().unwrap_or("")
            ));
        }
    }
    println!();
    println!(
        "Every guard bit: the log named the record missing from the bundle, the gate refused the deploy, and the audit names the altered file."
    );
    println!(
        "The gates' step summary: {}",
        d.dir.join("summary.md").display()
    );
    Ok(())
}

/// The parent's log key (made once) and a checkpoint signed with it.
fn checkpoint(d: &Demo) -> anyhow::Result<Value> {
    if !d.dir.join("log.key").exists() {
        output(&mut d.custody(&[
            "log",
            "keygen",
            "--origin",
            "custody.demo/evidence",
            "--out",
            "log.key",
        ]))?;
    }
    d.json(&[
        "log",
        "checkpoint",
        "--store",
        "store",
        "--log-signing-key",
        "log.key",
        "--format",
        "json",
    ])
}

/// `--tamper`, first fault: the scan record is cut from a copy of the store (its
/// envelope, chain entry and index pointers: what an insider exporting a bundle would
/// leave out), and the bundle exported from the copy. With the log's verifier key,
/// `verify-bundle` names the missing log index.
fn removed_from_bundle(d: &Demo, scan_record: &str) -> anyhow::Result<()> {
    checkpoint(d)?;
    let cut = d.dir.join("cut-store");
    copy_tree(&d.dir.join("store"), &cut)?;
    let hex = scan_record.trim_start_matches("sha256:");
    remove_record(&cut, &cut, hex, scan_record)?;
    let _ = d
        .audit("export", "cut-store", "none")
        .args(["--log-key", "log.key.pub", "--out", "cut.tar.gz"])
        .output()?;
    step(
        "TAMPER",
        "the scan record is cut from a copy of the store and an audit bundle exported without it",
    );
    let out = d
        .custody(&[
            "verify-bundle",
            "cut.tar.gz",
            "--key",
            "pipeline.key.pub",
            "--log-key",
            "log.key.pub",
            "--format",
            "json",
        ])
        .output()?;
    let v = parse(&out, "custody verify-bundle")?;
    let missing: Vec<String> = v["consistency"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| {
            f["about"]
                .as_str()
                .is_some_and(|a| a.starts_with("log index"))
        })
        .map(|f| {
            format!(
                "{}: {}",
                f["about"].as_str().unwrap_or(""),
                f["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    if out.status.success() || missing.is_empty() {
        bail!("verify-bundle accepted a bundle with a record removed: the log did not bite");
    }
    step(
        "verify-bundle",
        &format!(
            "the bundle fails (exit {}): the log shows what is missing:",
            out.status.code().unwrap_or(-1)
        ),
    );
    for m in &missing {
        more(&format!("✗ {m}"));
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::write(&dest, std::fs::read(e.path())?)?;
        }
    }
    Ok(())
}

/// Deletes every file outside `log/` that names the record: its envelope (by digest),
/// its index pointers (by name) and its chain entry (by content).
fn remove_record(root: &Path, dir: &Path, hex: &str, digest: &str) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        if path == root.join("log") {
            continue;
        }
        if e.file_type()?.is_dir() {
            remove_record(root, &path, hex, digest)?;
            continue;
        }
        let flat = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('/', "");
        let names_it =
            flat.contains(hex) || std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == digest);
        if names_it {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn object_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    dir.join("store/objects/sha256")
        .join(hex.get(..2).unwrap_or_default())
        .join(hex.get(2..).unwrap_or_default())
}

/// Stored objects are read-only (write-once); the insider has the filesystem.
fn make_writable(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

fn write_approvals(dir: &Path, approver: &str) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now().to_string();
    let doc = json!({
        "approvals": [{"login": approver, "state": "approved", "at": now}],
        "people": {
            "prAuthors": [{"login": AUTHOR}],
            "commitAuthors": [{"login": AUTHOR}],
            "committers": [{"login": AUTHOR}],
            "triggeringActors": [{"login": AUTHOR}]
        }
    });
    std::fs::write(dir.join("approvals.json"), serde_json::to_vec_pretty(&doc)?)?;
    Ok(())
}

/// The Trivy report the demo attests (xtask/data, a byte-exact upstream file), scanned
/// now and of the artifact: `CreatedAt` and `Metadata.RepoDigests` rewritten.
fn trivy(subject: &str) -> anyhow::Result<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(
        &std::fs::read("xtask/data/trivy-alpine-310.json")
            .context("the demo attests a real Trivy report kept in xtask/data")?,
    )?;
    v["CreatedAt"] = json!(jiff::Timestamp::now().to_string());
    v["Metadata"]["RepoDigests"] = json!([subject]);
    Ok(serde_json::to_vec_pretty(&v)?)
}

struct TestRun {
    tests: u64,
    failures: u64,
    line_rate: f64,
}

/// custody-evidence's unit tests, built with `-C instrument-coverage` (in their own
/// target directory, reused by the next run): libtest's JUnit report (`--format junit`,
/// an unstable libtest option that `RUSTC_BOOTSTRAP=1` unlocks on the pinned stable
/// toolchain) and line coverage as lcov from Debian's `llvm-22` (the toolchain's LLVM
/// major version; installed with apt-get when missing).
fn coverage(dir: &Path) -> anyhow::Result<TestRun> {
    util::debian_package("llvm-22", "/usr/bin/llvm-cov-22")
        .context("the demo's coverage needs llvm-profdata-22 and llvm-cov-22")?;
    let target = util::target_dir().join("demo-coverage");
    eprintln!(
        "building custody-evidence's unit tests with coverage instrumentation in {} (slow the first time)",
        target.display()
    );
    let built = output(
        cargo()
            .args(["test", "--locked", "-p", "custody-evidence", "--lib"])
            .args(["--no-run", "--message-format", "json"])
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", "-C instrument-coverage")
            // RUSTFLAGS instruments the build scripts too, and they write their
            // profiles to the working directory (the user's checkout) unless told
            .env(
                "LLVM_PROFILE_FILE",
                target.join("build-scripts-%p-%m.profraw"),
            ),
    )?;
    let exe = built
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["executable"].as_str().map(PathBuf::from))
        .next_back()
        .context("cargo built no custody-evidence test executable")?;
    let raw = dir.join("coverage");
    std::fs::create_dir_all(&raw)?;
    let out = Command::new(&exe)
        .args(["-Z", "unstable-options", "--format", "junit"])
        .env("RUSTC_BOOTSTRAP", "1")
        .env("LLVM_PROFILE_FILE", raw.join("evidence-%p.profraw"))
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let junit = String::from_utf8(out.stdout)?;
    if !junit.contains("<testsuites>") {
        bail!(
            "the unit tests printed no JUnit report (exit {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(dir.join("junit.xml"), &junit)?;
    let profdata = raw.join("evidence.profdata");
    let mut merge = Command::new("/usr/bin/llvm-profdata-22");
    merge.args(["merge", "-sparse", "-o"]).arg(&profdata);
    for e in std::fs::read_dir(&raw)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "profraw") {
            merge.arg(p);
        }
    }
    output(&mut merge)?;
    let root = util::root()?;
    let lcov = output(
        Command::new("/usr/bin/llvm-cov-22")
            .args(["export", "--format=lcov", "--instr-profile"])
            .arg(&profdata)
            .arg(&exe)
            .arg("--ignore-filename-regex=(/\\.cargo/|/rustc/|/registry/)"),
    )?;
    // paths relative to the repository, as coverage tools usually report them
    let lcov = lcov.replace(&format!("SF:{}/", root.display()), "SF:");
    std::fs::write(dir.join("lcov.info"), &lcov)?;
    let (mut found, mut hit) = (0u64, 0u64);
    for l in lcov.lines() {
        if let Some(n) = l.strip_prefix("LF:") {
            found += n.parse::<u64>().unwrap_or(0);
        } else if let Some(n) = l.strip_prefix("LH:") {
            hit += n.parse::<u64>().unwrap_or(0);
        }
    }
    let attr = |name: &str| -> u64 {
        junit
            .split(&format!(" {name}=\""))
            .nth(1)
            .and_then(|s| s.split('"').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    };
    Ok(TestRun {
        tests: attr("tests"),
        failures: attr("failures") + attr("errors"),
        line_rate: if found == 0 {
            0.0
        } else {
            hit as f64 / found as f64
        },
    })
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
}

/// The App path: what GitHub would do once the environment has Custody's deployment
/// protection rule. A loopback GitHub stand-in (custody-test-support's, shaped like
/// GitHub's REST API: App JWT checked, installation token, the run's approvals by
/// `approver`, the review endpoint), `custody gate serve` started on a free port with
/// a config file, one signed `deployment_protection_rule` delivery for this run, and the
/// review the gate sends. Returns the review (`state`, `comment`).
fn github_app(d: &Demo, approver: &str) -> anyhow::Result<Value> {
    use custody_test_support::github_app::{Facts, GitHubApp};
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};

    const APP_ID: u64 = 4242;
    const INSTALLATION: u64 = 7;
    let gh = GitHubApp::start(
        APP_ID,
        INSTALLATION,
        Facts::approved(ENVIRONMENT, &[approver], AUTHOR),
    );
    std::fs::write(
        d.dir.join("github-app.pem"),
        custody_test_support::oidc::app_key_pem(),
    )?;
    std::fs::write(
        d.dir.join("gate.yaml"),
        format!(
            "# custody gate serve's configuration (docs/gate.md)\n\
             store: store\n\
             trustedKeys: [pipeline.key.pub]\n\
             data: [policy.yaml]\n\
             record:\n  signingKey: pipeline.key\n\
             attempts: 2\n\
             backoffSeconds: 0.2\n\
             github:\n  apiUrl: {}\n  appId: {APP_ID}\n  privateKeyFile: github-app.pem\n",
            gh.url()
        ),
    )?;
    let secret = "demo-webhook-secret";
    let mut child = d
        .custody(&[
            "gate",
            "serve",
            "--config",
            "gate.yaml",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("CUSTODY_GATE_GITHUB_WEBHOOK_SECRET", secret)
        .env("CUSTODY_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting custody gate serve")?;
    let stderr = child.stderr.take().context("the gate's stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut said = Vec::new();
    let addr = loop {
        let Some(line) = lines.next().transpose()? else {
            let status = child.wait()?;
            bail!(
                "custody gate serve exited ({status}) before listening:\n{}",
                said.join("\n")
            );
        };
        if let Some(a) = line.strip_prefix("custody-gate: listening on ") {
            break a.trim().to_owned();
        }
        said.push(line);
    };
    // the rest of its log, kept for an error message
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let body = json!({
        "action": "requested",
        "environment": ENVIRONMENT,
        "event": "push",
        "sha": d.commit,
        "ref": "refs/heads/main",
        "deployment_callback_url": format!("{}/repos/{REPOSITORY}/actions/runs/{RUN_ID}/deployment_protection_rule", gh.url()),
        "deployment": {"id": 1, "sha": d.commit, "ref": "main", "environment": ENVIRONMENT},
        "repository": {"full_name": REPOSITORY},
        "installation": {"id": INSTALLATION},
        "sender": {"login": AUTHOR}
    })
    .to_string();
    let signature = {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        mac.update(body.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!(
            "sha256={}",
            tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    let mut s = std::net::TcpStream::connect(&addr)?;
    write!(
        s,
        "POST /github HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-GitHub-Event: deployment_protection_rule\r\nX-GitHub-Delivery: demo-1\r\nX-Hub-Signature-256: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 202") {
        bail!("custody gate serve did not accept the delivery: {answer}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let review = loop {
        if let Some((_, r)) = gh.reviews().into_iter().next() {
            break r;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "no review from custody gate serve within 2 minutes:\n{}",
                log.join().unwrap_or_default().join("\n")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // a container's stop: SIGTERM, and the service drains and exits 0
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let status = child.wait()?;
    if !stopped.success() || !status.success() {
        bail!(
            "custody gate serve did not stop cleanly on SIGTERM ({status}):\n{}",
            log.join().unwrap_or_default().join("\n")
        );
    }
    Ok(review)
}

/// The App's review, as demo lines: its state, then the comment's lines.
fn show_review(review: &Value, expect: &str) -> anyhow::Result<()> {
    let state = review["state"].as_str().unwrap_or("?");
    step(
        "app",
        &format!(
            "GitHub asks the Custody gate App (deployment protection rule): `custody gate serve` judged the run and {state} the deployment to `{ENVIRONMENT}`:"
        ),
    );
    for line in review["comment"].as_str().unwrap_or("").lines().skip(1) {
        more(line);
    }
    if state != expect {
        bail!("the GitHub App gate {state} where it should have {expect}");
    }
    Ok(())
}
