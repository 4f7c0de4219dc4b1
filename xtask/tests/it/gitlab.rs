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
        std::fs::write(self.dir.join(".gitlab-ci.yml"), yaml).unwrap();
        for (name, from) in files {
            let to = self.dir.join(name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(from, to).unwrap();
        }
        // project variables; GITLAB_CI as on GitLab (gitlab-ci-local says `false` so
        // scripts can tell)
        let mut vars = format!(
            "CUSTODY_SIGNING_KEY: {:?}\nGITLAB_CI: \"true\"\n",
            self.key.display().to_string()
        );
        for (k, v) in variables {
            vars.push_str(&format!("{k}: {v:?}\n"));
        }
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

fn copy_dir(from: &Path, to: &Path) {
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
