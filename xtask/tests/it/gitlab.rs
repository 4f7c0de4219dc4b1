//! The GitLab components and the parent pipeline under `gitlab-ci-local` (npm), shell
//! executor (`--force-shell-executor`: the `image` inputs are not pulled). The pipeline
//! lives in a copy of this repository, so `component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/
//! <name>@$CI_COMMIT_SHA` resolves to the rendered `templates/` locally (a remote form
//! would call `git ls-remote`). Binaries come from a loopback mirror (`mirror-url`),
//! checked against the `sha256-*` / `checksums` inputs. Neither runner mints id_tokens:
//! tests inject CI variables in their place.
//!
//! Project-level CI/CD variables are emulated by `.gitlab-ci-local-variables.yml` (a value
//! naming an existing file becomes a File-type variable, as GitLab's would), because
//! gitlab-ci-local hands `--variable` values to the parent pipeline only, not to child
//! pipelines, while GitLab gives project variables to both.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::act::SUBJECT;
use crate::guard::{self, Trust};
use crate::support::{self, FileServer};

pub struct Project {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub server: FileServer,
    /// step -> sha256 of the served asset
    pub sums: Vec<(&'static str, String)>,
    pub key: PathBuf,
}

impl Project {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("project");
        let assets = tmp.path().join("assets");
        // only what a pipeline of this project reads: the rendered catalog
        copy_dir(&support::root().join("templates"), &dir.join("templates"));
        let sums = support::release_assets(&assets);
        let server = FileServer::start(&assets);
        let key = support::keygen(tmp.path());
        Project {
            tmp,
            dir,
            server,
            sums,
            key,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    pub fn sum(&self, step: &str) -> &str {
        &self.sums.iter().find(|(s, _)| *s == step).unwrap().1
    }

    /// The inputs every binary-running component takes in these tests.
    pub fn binary_inputs(&self, sha256: &str) -> String {
        let arch = if support::host_target().starts_with("x86_64") {
            "x86_64"
        } else {
            "aarch64"
        };
        format!(
            "      mirror-url: {}\n      sha256-{arch}: \"{sha256}\"\n",
            self.server.base
        )
    }

    /// Writes the pipeline (and files), commits, and runs gitlab-ci-local with the
    /// project variables given (plus the signing key) and `extra` arguments.
    pub fn run(
        &self,
        gcl: &Path,
        yaml: &str,
        files: &[(&str, &Path)],
        variables: &[(&str, &str)],
        extra: &[&str],
    ) -> (Output, String) {
        self.run_with_extra_vars(gcl, yaml, files, variables, extra, "")
    }

    fn run_with_extra_vars(
        &self,
        gcl: &Path,
        yaml: &str,
        files: &[(&str, &Path)],
        variables: &[(&str, &str)],
        extra: &[&str],
        raw_vars: &str,
    ) -> (Output, String) {
        std::fs::write(self.dir.join(".gitlab-ci.yml"), yaml).unwrap();
        for (name, from) in files {
            let to = self.dir.join(name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(from, to).unwrap();
        }
        // project variables; GITLAB_CI as on GitLab (gitlab-ci-local says `false` so
        // scripts can tell); the API of "this GitLab" on a closed loopback port, so no
        // step reaches for the host the origin remote names
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut vars = format!(
            "CUSTODY_SIGNING_KEY: {:?}\nGITLAB_CI: \"true\"\nCI_API_V4_URL: \"http://{closed}/api/v4\"\n",
            self.key.display().to_string()
        );
        for (k, v) in variables {
            vars.push_str(&format!("{k}: {v:?}\n"));
        }
        vars.push_str(raw_vars);
        std::fs::write(self.dir.join(".gitlab-ci-local-variables.yml"), vars).unwrap();
        std::fs::write(
            self.dir.join(".gitignore"),
            ".gitlab-ci-local/\n.gitlab-ci-local-variables.yml\n",
        )
        .unwrap();
        support::git_repo(&self.dir);
        // the binaries' cache (~/.cache/custody) stays in this test's directory
        let home = self.path("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Command::new(gcl);
        cmd.args([
            "--force-shell-executor",
            "--shell-isolation",
            "--color=false",
            "--home",
        ])
        .arg(&home)
        // for a job with an `image` (run by the shell executor here) gitlab-ci-local
        // names a /builds path that does not exist: the steps use the job's directory
        .args(["--unset-variable", "CI_PROJECT_DIR"])
        .args(extra)
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .current_dir(&self.dir);
        support::run(&mut cmd)
    }
}

impl Project {
    /// Like `run`, with variables whose values are written into the variables file as
    /// YAML as they are (`{type: variable, values: …}` for a path that is no File).
    pub fn run_raw_vars(
        &self,
        gcl: &Path,
        yaml: &str,
        files: &[(&str, &Path)],
        raw: &[(&str, &str)],
    ) -> (Output, String) {
        let extra: String = raw.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        self.run_with_extra_vars(gcl, yaml, files, &[], &[], &extra)
    }

    /// Like `run`, with an id_token for the job's commit in `CUSTODY_ID_TOKEN` (as the
    /// `id_tokens:` of the components declare it) and a job token: the pipeline is
    /// committed first, then the token is minted for that commit.
    pub fn run_with_token(
        &self,
        gcl: &Path,
        yaml: &str,
        trust: &Trust,
        extra: &[&str],
    ) -> (Output, String) {
        std::fs::write(self.dir.join(".gitlab-ci.yml"), yaml).unwrap();
        std::fs::write(
            self.dir.join(".gitignore"),
            ".gitlab-ci-local/\n.gitlab-ci-local-variables.yml\n",
        )
        .unwrap();
        support::git_repo(&self.dir);
        let token = trust.gitlab_token(&support::head_commit(&self.dir));
        self.run(
            gcl,
            yaml,
            &[],
            &[
                ("CUSTODY_ID_TOKEN", &token),
                ("CI_JOB_TOKEN", "job-token"),
                // GitLab passes the trigger job's matrix variable to the child pipeline;
                // gitlab-ci-local does not
                ("CUSTODY_SERVICE", "api"),
            ],
            extra,
        )
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

fn fixture(rel: &str) -> PathBuf {
    support::root().join(rel)
}

#[test]
fn evidence_upload_component_stores_evidence_and_reports_dotenv() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    if support::binaries().is_none() {
        return;
    }
    let p = Project::new();
    let store = support::file_url(&p.path("store"));
    let outputs = p.path("outputs.txt");
    let bin = p.binary_inputs(p.sum("evidence-upload"));
    let yaml = format!(
        r#"stages: [build, evidence, report]
include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/evidence-upload@$CI_COMMIT_SHA
    inputs:
      job-name: sbom-evidence
      job-stage: build
      stage: build
      subject: "{SUBJECT}"
      files: bom.cdx.json
      store: "{store}"
{bin}  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/evidence-upload@$CI_COMMIT_SHA
    inputs:
      job-name: scan-evidence
      job-stage: evidence
      stage: scan
      subject: "{SUBJECT}"
      files: "trivy.json"
      store: "{store}"
{bin}report:
  stage: report
  needs: [sbom-evidence, scan-evidence]
  script:
    - printf '%s\n' "$CUSTODY_RECORD" "$CUSTODY_STORE_URI" > {outputs}
"#,
        outputs = outputs.display(),
    );
    let (out, log) = p.run(
        &gcl,
        &yaml,
        &[
            (
                "bom.cdx.json",
                &fixture("../shared/fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"),
            ),
            ("trivy.json", &fixture("xtask/data/trivy-alpine-310.json")),
        ],
        &[],
        &[],
    );
    assert!(out.status.success(), "gitlab-ci-local failed:\n{log}");
    let asset = format!("/evidence-upload-{}", support::host_target());
    let hits = p.server.hits();
    assert!(
        !hits.is_empty() && hits.iter().all(|h| *h == asset),
        "{hits:?}"
    );
    assert!(
        log.contains("verified evidence-upload 0.1.0") || log.contains("using cached"),
        "{log}"
    );

    // the dotenv report reached a later job
    let text = std::fs::read_to_string(&outputs).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("sha256:"), "{text}\n{log}");
    assert_eq!(lines[1], store);

    let commit = support::head_commit(&p.dir);
    let found = support::query_commit(&store, &commit);
    let stages: Vec<&str> = found
        .iter()
        .filter_map(|r| r.get("stage").and_then(|v| v.as_str()))
        .collect();
    assert!(
        stages.contains(&"build") && stages.contains(&"scan"),
        "{found:?}"
    );
    let public = p.key.with_extension("key.pub");
    for r in &found {
        let digest = r
            .get("record")
            .or_else(|| r.get("digest"))
            .and_then(|v| v.as_str())
            .unwrap();
        support::verify_record(&store, digest, &public);
    }
}

/// `CUSTODY_BIN_DIR` (a runner's or instance's variable) with released checksums: a
/// binary of the pinned checksum is used without a download; another one is refused
/// before it runs, naming both digests.
#[test]
fn a_binary_in_custody_bin_dir_must_match_the_component_checksum() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    if support::binaries().is_none() {
        return;
    }
    let p = Project::new();
    let store_dir = p.path("store");
    let bin = p.binary_inputs(p.sum("evidence-upload"));
    let yaml = format!(
        r#"include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/evidence-upload@$CI_COMMIT_SHA
    inputs:
      stage: scan
      subject: "{SUBJECT}"
      files: trivy.json
      store: "{store}"
{bin}"#,
        store = support::file_url(&store_dir),
    );
    let preinstalled = p.path("bin");
    std::fs::create_dir_all(&preinstalled).unwrap();
    std::fs::copy(
        support::binaries().unwrap().join("evidence-upload"),
        preinstalled.join("evidence-upload"),
    )
    .unwrap();
    // a directory is a plain variable, not a File one
    let dir_var = format!(
        "{{type: variable, values: {{\"*\": {:?}}}}}",
        preinstalled.display().to_string()
    );
    let files = [("trivy.json", fixture("xtask/data/trivy-alpine-310.json"))];
    let files: Vec<(&str, &Path)> = files.iter().map(|(n, f)| (*n, f.as_path())).collect();
    let (out, log) = p.run_raw_vars(&gcl, &yaml, &files, &[("CUSTODY_BIN_DIR", &dir_var)]);
    assert!(out.status.success(), "gitlab-ci-local failed:\n{log}");
    assert!(log.contains("from CUSTODY_BIN_DIR"), "{log}");
    assert!(
        p.server.hits().is_empty(),
        "downloaded: {:?}",
        p.server.hits()
    );
    assert!(store_dir.exists(), "no evidence stored:\n{log}");

    let marker = p.path("ran");
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
    let (out, log) = p.run_raw_vars(&gcl, &yaml, &files, &[("CUSTODY_BIN_DIR", &dir_var)]);
    assert!(
        !out.status.success(),
        "gitlab-ci-local ran an impostor:\n{log}"
    );
    let got = support::sha256_file(&impostor);
    assert!(
        log.contains(&format!("has sha256 {got}"))
            && log.contains(&format!(
                "released with sha256 {}",
                p.sum("evidence-upload")
            )),
        "the refusal names neither digest:\n{log}"
    );
    assert!(!marker.exists(), "the impostor ran");
}

#[test]
fn evidence_upload_component_refuses_a_binary_with_another_checksum() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    if support::binaries().is_none() {
        return;
    }
    let p = Project::new();
    let store_dir = p.path("store");
    // the checksum of another binary: the mirror's file is not the one pinned
    let bin = p.binary_inputs(p.sum("custody"));
    let yaml = format!(
        r#"include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/evidence-upload@$CI_COMMIT_SHA
    inputs:
      stage: scan
      subject: "{SUBJECT}"
      files: trivy.json
      store: "{store}"
{bin}"#,
        store = support::file_url(&store_dir),
    );
    let (out, log) = p.run(
        &gcl,
        &yaml,
        &[("trivy.json", &fixture("xtask/data/trivy-alpine-310.json"))],
        &[],
        &[],
    );
    assert!(!out.status.success(), "gitlab-ci-local passed:\n{log}");
    assert!(log.contains("checksum mismatch for"), "{log}");
    assert!(
        !store_dir.exists(),
        "the binary ran despite the checksum mismatch"
    );
}

#[test]
fn runner_guard_component_verifies_the_id_token_and_records_the_verdict() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    if support::binaries().is_none() || !guard::is_built("runner-guard") {
        return;
    }
    let p = Project::new();
    let trust = Trust::start();
    trust.write_tier_model(&p.dir);
    let store = support::file_url(&p.path("store"));
    let outputs = p.path("outputs.txt");
    let bin = p.binary_inputs(p.sum("runner-guard"));
    let yaml = format!(
        r#"include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/runner-guard@$CI_COMMIT_SHA
    inputs:
      require-verified: true
      store: "{store}"
{bin}report:
  stage: test
  needs: [custody-runner-guard]
  script:
    - env | grep -E '^(CUSTODY_|RUNNER_GUARD)' | sort > {outputs}
"#,
        outputs = outputs.display(),
    );
    // the token names the commit gitlab-ci-local will report: commit first, then mint
    let (out, log) = p.run_with_token(&gcl, &yaml, &trust, &[]);
    assert!(out.status.success(), "gitlab-ci-local failed:\n{log}");
    assert!(
        trust
            .api
            .requests()
            .iter()
            .any(|r| r == "/.well-known/jwks"),
        "{:?}",
        trust.api.requests()
    );
    let commit = support::head_commit(&p.dir);
    let found = support::query_commit(&store, &commit);
    let guard: Vec<&serde_json::Value> = found
        .iter()
        .filter(|r| r.get("stage").and_then(|v| v.as_str()) == Some("runner-guard"))
        .collect();
    assert_eq!(guard.len(), 1, "{found:?}\n{log}");
    let record = guard[0].get("record").and_then(|v| v.as_str()).unwrap();
    support::verify_record(&store, record, &p.key.with_extension("key.pub"));
    let reported = std::fs::read_to_string(&outputs).unwrap_or_default();
    assert!(
        reported.contains(record),
        "dotenv report: {reported}\n{log}"
    );
}

#[test]
fn runner_guard_component_fails_without_a_verifiable_id_token() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    if support::binaries().is_none() || !guard::is_built("runner-guard") {
        return;
    }
    let p = Project::new();
    let trust = Trust::start();
    trust.write_tier_model(&p.dir);
    let bin = p.binary_inputs(p.sum("runner-guard"));
    let yaml = format!(
        r#"include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/runner-guard@$CI_COMMIT_SHA
    inputs:
      require-verified: true
{bin}"#
    );
    // a token signed by another key than the issuer's
    let forged = guard::sign(&guard::gitlab_claims("0".repeat(40).as_str()), true);
    let (out, log) = p.run(
        &gcl,
        &yaml,
        &[],
        &[("CUSTODY_ID_TOKEN", &forged), ("CI_JOB_TOKEN", "job-token")],
        &[],
    );
    assert!(
        !out.status.success(),
        "gitlab-ci-local passed with a forged token:\n{log}"
    );
}

/// The parent pipeline: runner-guard, one child pipeline per service (the child
/// includes service-pipeline: runner-guard, then build, test and scan evidence after
/// the service's own jobs), the verified release record, and policy-check before the
/// approval — which denies here (no signature, no approvals), so the manual deploy to
/// the protected environment never starts: the gate bites before a human is asked.
#[test]
fn compliance_pipeline_runs_children_aggregates_evidence_and_gates_the_deploy() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    if support::binaries().is_none()
        || !guard::is_built("runner-guard")
        || !guard::is_built("policy-check")
    {
        return;
    }
    let p = Project::new();
    let trust = Trust::start();
    trust.write_tier_model(&p.dir);
    std::fs::create_dir_all(p.dir.join(".custody/keys")).unwrap();
    std::fs::copy(
        p.key.with_extension("key.pub"),
        p.dir.join(".custody/keys/ci.pub"),
    )
    .unwrap();
    let store = support::file_url(&p.path("store"));
    let checksums: Vec<String> = p
        .sums
        .iter()
        .map(|(step, sha)| format!("{step}-{}={sha}", support::host_target()))
        .collect();
    let checksums = checksums.join(" ");
    let mirror = &p.server.base;
    let yaml = format!(
        r#"include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/compliance-pipeline@$CI_COMMIT_SHA
    inputs:
      services: [api]
      subject: "{SUBJECT}"
      store: "{store}"
      policy-platform: none
      mirror-url: {mirror}
      checksums: "{checksums}"
custody-deploy:
  script:
    - echo "deploying $CUSTODY_INPUT_SUBJECT"
"#
    );
    let child = format!(
        r#"include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/service-pipeline@$CI_COMMIT_SHA
    inputs:
      mirror-url: {mirror}
      checksums: "{checksums}"
      test-results: junit.xml
build:
  stage: build
  script: [cp fixtures/bom.cdx.json bom.cdx.json]
  artifacts: {{paths: [bom.cdx.json]}}
test:
  stage: test
  script: [cp fixtures/junit.xml junit.xml]
  artifacts: {{paths: [junit.xml]}}
scan:
  stage: test
  script: [cp fixtures/trivy.json trivy.json]
  artifacts: {{paths: [trivy.json]}}
sign:
  stage: deploy
  script: [printf 'signature' > artifact.sig]
  artifacts: {{paths: [artifact.sig]}}
"#
    );
    std::fs::create_dir_all(p.dir.join(".gitlab")).unwrap();
    std::fs::write(p.dir.join(".gitlab/custody-service.yml"), child).unwrap();
    let files = [
        (
            "fixtures/bom.cdx.json",
            fixture("../shared/fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"),
        ),
        (
            "fixtures/junit.xml",
            fixture("../shared/fixtures/tests-junit/cargo-nextest-basic.xml"),
        ),
        (
            "fixtures/trivy.json",
            fixture("xtask/data/trivy-alpine-310.json"),
        ),
    ];
    for (name, from) in &files {
        let to = p.dir.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
    let (out, log) = p.run_with_token(&gcl, &yaml, &trust, &["--manual", "custody-deploy"]);
    // the pre-approval gate denies: the pipeline fails there
    assert!(
        !out.status.success(),
        "the pipeline passed its policy gate:\n{log}"
    );
    for passed in [
        "PASS  custody-runner-guard",
        "-> custody-runner-guard",
        "-> custody-build-evidence",
        "-> custody-test-evidence",
        "-> custody-scan-evidence",
        "-> custody-sign-evidence",
        "PASS  custody-release-evidence",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(passed) && l.contains("PASS")),
            "no `{passed}` passed:\n{log}"
        );
    }
    assert!(log.contains("FAIL  custody-pre-approval"), "{log}");
    assert!(!log.contains("deploying ghcr.io"), "the deploy ran:\n{log}");

    let commit = support::head_commit(&p.dir);
    let found = support::query_commit(&store, &commit);
    let stage_count = |stage: &str| {
        found
            .iter()
            .filter(|r| r.get("stage").and_then(|v| v.as_str()) == Some(stage))
            .count()
    };
    // parent and child runner-guard and the gate's own, the child's evidence, one
    // release record, the denying decision; no deploy record
    assert_eq!(stage_count("runner-guard"), 3, "{found:?}");
    for stage in ["build", "test", "scan", "sign"] {
        assert!(stage_count(stage) >= 1, "no {stage} record: {found:?}");
    }
    assert_eq!(stage_count("release"), 1, "{found:?}");
    // the denying decision and its VSA
    assert_eq!(stage_count("policy"), 2, "{found:?}");
    assert_eq!(stage_count("deploy"), 0, "{found:?}");
    let public = p.key.with_extension("key.pub");
    for r in &found {
        support::verify_record(
            &store,
            r.get("record").and_then(|v| v.as_str()).unwrap(),
            &public,
        );
    }
}

#[test]
fn evidence_upload_component_builds_from_a_source_repository_when_asked() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    if support::binaries().is_none() {
        return;
    }
    let p = Project::new();
    // the stand-in source (see act::tiny_source), tagged as the release the inputs name
    let src = p.path("custody-src");
    crate::act::tiny_source(&src);
    support::git_repo(&src);
    let st = Command::new("git")
        .args(["tag", "v0.1.0"])
        .current_dir(&src)
        .status()
        .unwrap();
    assert!(st.success());
    let yaml = format!(
        r#"include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/evidence-upload@$CI_COMMIT_SHA
    inputs:
      stage: scan
      subject: "{SUBJECT}"
      files: "trivy.json"
      build-from-source: true
      source-url: "file://{src}"
      mirror-url: {mirror}
"#,
        src = src.display(),
        mirror = p.server.base,
    );
    let (out, log) = p.run(&gcl, &yaml, &[], &[], &[]);
    assert!(out.status.success(), "gitlab-ci-local failed:\n{log}");
    assert!(
        log.contains("building evidence-upload from source (build-from-source is set)"),
        "{log}"
    );
    assert!(
        log.contains(&format!("cloning file://{} at v0.1.0", src.display())),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "built from source: --stage scan --subject {SUBJECT} --file trivy.json"
        )),
        "{log}"
    );
    assert!(p.server.hits().is_empty(), "{:?}", p.server.hits());
}

#[test]
fn policy_check_component_denies_without_a_signature_and_reports_the_decision() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    if support::binaries().is_none() || !guard::is_built("policy-check") {
        return;
    }
    let p = Project::new();
    std::fs::create_dir_all(p.dir.join(".custody/keys")).unwrap();
    std::fs::copy(
        p.key.with_extension("key.pub"),
        p.dir.join(".custody/keys/ci.pub"),
    )
    .unwrap();
    let store = support::file_url(&p.path("store"));
    let outputs = p.path("outputs.txt");
    let yaml = format!(
        r#"include:
  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/policy-check@$CI_COMMIT_SHA
    inputs:
      gate: pre-approval
      subject: "{SUBJECT}"
      environment: production
      store: "{store}"
      platform: none
{bin}report:
  stage: deploy
  needs: [custody-policy-check]
  when: always
  script:
    - printf '%s\n' "$CUSTODY_POLICY_DECISION" "$CUSTODY_POLICY_RECORD" > {outputs}
"#,
        bin = p.binary_inputs(p.sum("policy-check")),
        outputs = outputs.display(),
    );
    let (out, log) = p.run(&gcl, &yaml, &[], &[], &[]);
    assert!(
        !out.status.success(),
        "the gate allowed without evidence:\n{log}"
    );
    assert!(log.contains("FAIL  custody-policy-check"), "{log}");
    let text = std::fs::read_to_string(&outputs).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"deny"), "{text}\n{log}");
    let record = lines.get(1).copied().unwrap_or_default();
    assert!(record.starts_with("sha256:"), "{text}\n{log}");
    support::verify_record(&store, record, &p.key.with_extension("key.pub"));
}
