//! A team adopting Custody from README.md alone: the workflow, pipelines and policy data
//! are the README's blocks marked `<!-- consumer: PATH -->`, byte for byte, in a sample
//! repository (`tests/consumer/`: the team's own build, test, scan, sign and deploy
//! scripts). The GitHub reusable parent runs under `act` (host mode, offline, Custody's
//! `uses:` references mapped to a copy of this checkout by `--local-repository`), the
//! GitLab compliance pipeline under `gitlab-ci-local` (shell executor), both with the
//! binaries of this checkout through `CUSTODY_BIN_DIR`, against:
//! - a real OCI registry on loopback (`CUSTODY_OCI_REGISTRY`, Debian's docker-registry)
//!   holding the cosign signature the sign script pushes;
//! - a loopback stand-in of the platform: the OIDC issuer's JWKS and tokens (neither
//!   runner mints them), the jobs API runner-guard reads, and the approval, environment
//!   and authorship endpoints policy-check reads, answering with the documented shapes in
//!   `crates/custody-policy/tests/data`.
//!
//! Each platform reaches `allow` at pre-approval and pre-deploy and leaves a deploy record
//! that `custody verify` accepts; then the same README YAML, with a sign script that no
//! longer pushes the signature, is denied before anyone is asked, naming what is missing.
//!
//! One emulation is coarser than the platforms: act hands every job the same token
//! request URL and gitlab-ci-local every job the same variables, so every job's token
//! names the environment `production` (on the platforms only the deploy job's does), and
//! every GitLab job has the job id of the deployment the stand-in API describes; and
//! gitlab-ci-local does not pass a trigger job's matrix variable (`CUSTODY_SERVICE`) to
//! the child pipeline as GitLab does, so the variables file sets it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::guard::{self, Api, PROJECT_ID, REPOSITORY};
use crate::support;

/// A fresh image digest (the registry is shared by the tests running at once): the one
/// the team releases, or the next, released with a sign script that no longer pushes its
/// signature.
pub(crate) fn image_digest(label: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let hash = Sha256::digest(format!("{label} {nanos} {}", std::process::id()));
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}
/// GitHub's run id as act reports it (`GITHUB_RUN_ID`), for the run-approvals route.
const GITHUB_RUN_ID: &str = "1";
/// The GitLab job id of the deployment in `deployments.json` (`deployable.id`).
pub(crate) const GITLAB_JOB_ID: &str = "664";

/// README.md's blocks marked `<!-- consumer: PATH -->`: (path, content).
pub fn readme_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(support::root().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line
            .trim()
            .strip_prefix("<!-- consumer: ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "README.md: the block for {path} must follow its marker directly, found {fence:?}"
        );
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        blocks.push((path.to_string(), body));
    }
    blocks
}

pub(crate) fn block(blocks: &[(String, String)], path: &str) -> String {
    blocks
        .iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("README.md has no block marked `<!-- consumer: {path} -->`"))
        .1
        .clone()
}

#[test]
fn the_readme_marks_every_file_a_team_needs() {
    let blocks = readme_blocks();
    let paths: Vec<&str> = blocks.iter().map(|(p, _)| p.as_str()).collect();
    for wanted in [
        ".custody/policy.yaml",
        ".github/workflows/release.yml",
        ".gitlab-ci.yml",
        ".gitlab/custody-service.yml",
    ] {
        assert!(paths.contains(&wanted), "{wanted} missing from {paths:?}");
    }
    // every block is valid YAML
    for (path, body) in &blocks {
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(body)
            .unwrap_or_else(|e| panic!("README.md block {path}: {e}"));
    }
}

/// The stand-in platform: guard's trust anchors plus policy-check's endpoints, and the
/// registry. `None` (after saying why) when a tool is missing.
pub(crate) struct Platform {
    pub(crate) trust: guard::Trust,
    pub(crate) registry: String,
}

impl Platform {
    pub(crate) fn start() -> Option<Platform> {
        support::binaries()?;
        if !guard::is_built("runner-guard") || !guard::is_built("policy-check") {
            return None;
        }
        let registry = match std::env::var("CUSTODY_OCI_REGISTRY") {
            Ok(a) if !a.is_empty() => a,
            _ => {
                eprintln!(
                    "CUSTODY_OCI_REGISTRY is not set: test not run (cargo xtask test sets it)"
                );
                return None;
            }
        };
        assert!(
            registry.starts_with("127.0.0.1:"),
            "loopback only: {registry}"
        );
        Some(Platform {
            trust: guard::Trust::start(),
            registry: format!("http://{registry}"),
        })
    }

    pub(crate) fn api(&self) -> &Api {
        &self.trust.api
    }

    /// GitHub's answers for the run, its environment and the commit's PR.
    fn github_routes(&self, commit: &str) {
        let api = self.api();
        let repo = format!("/repos/{REPOSITORY}");
        for (route, file) in [
            (
                format!("{repo}/actions/runs/{GITHUB_RUN_ID}/approvals"),
                "github/run-approvals.json",
            ),
            (
                format!("{repo}/actions/runs/{GITHUB_RUN_ID}"),
                "github/run.json",
            ),
            (
                format!("{repo}/environments/production"),
                "github/environment.json",
            ),
            (format!("{repo}/commits/{commit}"), "github/commit.json"),
            (
                format!("{repo}/commits/{commit}/pulls"),
                "github/commit-pulls.json",
            ),
            (
                format!("{repo}/pulls/1347/commits"),
                "github/pull-commits.json",
            ),
        ] {
            api.set(&route, policy_data(file));
        }
    }

    /// GitLab's answers for the deployment, the protected environment and the MR.
    pub(crate) fn gitlab_routes(&self, commit: &str) {
        let api = self.api();
        let project = format!("/api/v4/projects/{PROJECT_ID}");
        for (route, file) in [
            (
                format!("{project}/deployments/17"),
                "gitlab/deployment.json",
            ),
            (format!("{project}/deployments"), "gitlab/deployments.json"),
            (
                format!("{project}/protected_environments/production"),
                "gitlab/protected-environment.json",
            ),
            (
                format!("{project}/repository/commits/{commit}"),
                "gitlab/commit.json",
            ),
            (
                format!("{project}/repository/commits/{commit}/merge_requests"),
                "gitlab/commit-mrs.json",
            ),
            (
                format!("{project}/merge_requests/1/commits"),
                "gitlab/mr-commits.json",
            ),
        ] {
            api.set(&route, policy_data(file));
        }
    }

    /// The team's tier model: trust anchors on the stand-in, `production` in a tier of
    /// its own, build jobs in `development`.
    fn tier_model(&self) -> String {
        self.trust.tier_model_with(
            r#"environments:
  production: production
default_tier: development
tiers:
  development:
    runner_environment: hosted
  production:
    runner_environment: hosted
    # act and gitlab-ci-local run every job in this machine's shell, as root: the one
    # hardening a real production runner has and this one cannot
    hardening:
      no_root: false
      no_privileged_capabilities: false
"#,
        )
    }
}

fn policy_data(name: &str) -> String {
    std::fs::read_to_string(
        support::root()
            .join("crates/custody-policy/tests/data")
            .join(name),
    )
    .unwrap()
}

/// The sample repository at `dir`: tests/consumer, the fixtures its scripts read, the
/// README's files, the tier model and fresh keys. Returns (evidence key, cosign key).
pub(crate) fn consumer_repo(
    dir: &Path,
    platform: &Platform,
    readme: &[(&str, String)],
) -> (PathBuf, PathBuf) {
    crate::gitlab::copy_dir(&support::root().join("tests/consumer"), dir);
    let shared = support::root().join("../shared/fixtures");
    for (to, from) in [
        (
            "fixtures/bom.cdx.json",
            shared.join("sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"),
        ),
        (
            "fixtures/lcov.info",
            shared.join("coverage-lcov/istanbul-js.lcov"),
        ),
        (
            "fixtures/trivy.json",
            support::root().join("xtask/data/trivy-alpine-310.json"),
        ),
    ] {
        std::fs::copy(&from, dir.join(to))
            .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    }
    for (path, body) in readme {
        let to = dir.join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, body).unwrap();
    }
    std::fs::create_dir_all(dir.join(".custody/keys")).unwrap();
    std::fs::write(dir.join(".custody/tiers.yaml"), platform.tier_model()).unwrap();
    let keys = dir.parent().unwrap().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let ci = keys.join("ci.key");
    let cosign = keys.join("cosign.key");
    for key in [&ci, &cosign] {
        let (out, text) = support::run(
            Command::new(support::binaries().unwrap().join("custody"))
                .args(["keygen", "--out"])
                .arg(key),
        );
        assert!(out.status.success(), "custody keygen: {text}");
    }
    std::fs::copy(
        ci.with_extension("key.pub"),
        dir.join(".custody/keys/ci.pub"),
    )
    .unwrap();
    std::fs::copy(
        cosign.with_extension("key.pub"),
        dir.join(".custody/cosign.pub"),
    )
    .unwrap();
    (ci, cosign)
}

/// A sign script that forgot `cosign sign`: the signature file, nothing in the registry.
const SIGN_WITHOUT_REGISTRY: &str = "#!/bin/sh\nset -eu\nprintf 'not pushed' > artifact.sig\n";

/// What a run left in the store for `commit`, by stage.
fn stages(store: &str, commit: &str) -> BTreeMap<String, Vec<String>> {
    let mut by_stage: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in support::query_commit(store, commit) {
        by_stage
            .entry(r["stage"].as_str().unwrap_or_default().to_string())
            .or_default()
            .push(r["record"].as_str().unwrap_or_default().to_string());
    }
    by_stage
}

/// `custody verify --commit C --key PUB --require-stages build,test,scan,sign --service
/// app` over the whole run, as an auditor would check it.
fn verify_commit(store: &str, commit: &str, public: &Path) -> (Output, String) {
    support::run(
        Command::new(support::binaries().unwrap().join("custody"))
            .args(["verify", "--store", store, "--commit", commit])
            .arg("--key")
            .arg(public)
            .args([
                "--require-stages",
                "build,test,scan,sign",
                "--service",
                "app",
            ]),
    )
}

pub(crate) fn assert_allowed_and_deployed(log: &str, store: &str, commit: &str, ci_key: &Path) {
    // both gates allowed, and said so in a short table rather than pages of JSON
    assert!(
        log.contains("policy-check pre-approval: allow"),
        "no allow at pre-approval:\n{log}"
    );
    assert!(
        log.contains("policy-check pre-deploy: allow"),
        "no allow at pre-deploy:\n{log}"
    );
    assert!(
        log.contains("PASS  cosign-signature"),
        "no rule table:\n{log}"
    );
    assert!(
        log.contains("deploying ghcr.io/acme/app@"),
        "the deploy did not run:\n{log}"
    );
    let found = stages(store, commit);
    for stage in [
        "build", "test", "scan", "sign", "release", "policy", "deploy",
    ] {
        assert!(
            found.contains_key(stage),
            "no {stage} record: {found:?}\n{log}"
        );
    }
    // two gates, each a decision and its verification summary (VSA)
    assert_eq!(
        found["policy"].len(),
        4,
        "two gate decisions and their VSAs: {found:?}"
    );
    assert_eq!(found["deploy"].len(), 1, "{found:?}");
    let public = ci_key.with_extension("key.pub");
    support::verify_record(store, &found["deploy"][0], &public);
    let (out, text) = verify_commit(store, commit, &public);
    assert!(
        out.status.success(),
        "custody verify of the run failed: {text}"
    );
}

fn assert_denied_before_approval(log: &str, store: &str, commit: &str) {
    assert!(
        log.contains("policy-check pre-approval: deny"),
        "no deny at pre-approval:\n{log}"
    );
    let fail = log
        .lines()
        .find(|l| l.contains("FAIL") && l.contains("cosign-signature"))
        .unwrap_or_else(|| panic!("the deny does not name the signature:\n{log}"));
    assert!(fail.contains("signature"), "{fail}");
    assert!(
        !log.contains("deploying ghcr.io/acme/app@"),
        "the deploy ran:\n{log}"
    );
    let found = stages(store, commit);
    assert!(!found.contains_key("deploy"), "{found:?}");
}

#[test]
fn github_parent_from_the_readme_reaches_allow_and_denies_a_missing_signature() {
    let Some(act) = support::tool("CUSTODY_ACT") else {
        return;
    };
    let Some(platform) = Platform::start() else {
        return;
    };
    let blocks = readme_blocks();
    let readme = [
        (
            ".custody/policy.yaml",
            block(&blocks, ".custody/policy.yaml"),
        ),
        (
            ".github/workflows/release.yml",
            block(&blocks, ".github/workflows/release.yml"),
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("app");
    let (ci_key, cosign_key) = consumer_repo(&ws, &platform, &readme);
    // Custody as published: this checkout, its manifests unreleased, the binaries of
    // this build in CUSTODY_BIN_DIR
    let published = tmp.path().join("custody");
    support::published_copy(&published);
    let store = support::file_url(&tmp.path().join("store"));

    let run = |label: &str, digest: &str| -> (Output, String, String) {
        support::git_repo(&ws);
        // act names the repository (github.repository) after a GitHub origin
        let (out, text) = support::run(
            Command::new("git")
                .args([
                    "remote",
                    "set-url",
                    "origin",
                    &format!("https://github.com/{REPOSITORY}.git"),
                ])
                .current_dir(&ws),
        );
        assert!(out.status.success(), "{text}");
        let commit = support::head_commit(&ws);
        platform.github_routes(&commit);
        let token_url = platform.trust.github_token_url_for(&commit, "production");
        let mut cmd = Command::new(&act);
        cmd.arg("workflow_dispatch")
            .args(["-W", ".github/workflows/release.yml"])
            .args(["-P", "ubuntu-latest=-self-hosted"])
            .args(["--action-offline-mode", "--no-cache-server"])
            .arg("--action-cache-path")
            .arg(tmp.path().join(format!("act-cache-{label}")))
            .args(["--input", &format!("digest={digest}")])
            .args(["--var", &format!("CUSTODY_STORE={store}")])
            .args([
                "--var",
                &format!("CUSTODY_REGISTRY_URL={}", platform.registry),
            ])
            .args([
                "-s",
                "CUSTODY_SIGNING_KEY",
                "-s",
                "COSIGN_KEY",
                "-s",
                "GITHUB_TOKEN=api-token",
            ])
            .args([
                "--env",
                &format!("CUSTODY_BIN_DIR={}", support::binaries().unwrap().display()),
            ])
            .args(["--env", &format!("GITHUB_API_URL={}", platform.api().base)])
            .args([
                "--env",
                &format!("ACTIONS_ID_TOKEN_REQUEST_URL={token_url}"),
            ])
            .args(["--env", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=request-token"])
            .args(["--env", &format!("GITHUB_RUN_ID={GITHUB_RUN_ID}")])
            .args(["--env", &format!("REGISTRY_URL={}", platform.registry)])
            .env(
                "CUSTODY_SIGNING_KEY",
                std::fs::read_to_string(&ci_key).unwrap(),
            )
            .env("COSIGN_KEY", std::fs::read_to_string(&cosign_key).unwrap())
            .env("HOME", tmp.path().join("home"))
            .env("NO_COLOR", "1")
            .current_dir(&ws);
        cmd.args(support::act_cache_standin(tmp.path()));
        for reference in support::custody_refs(&published) {
            cmd.arg("--local-repository").arg(format!(
                "custody-dev/custody@{reference}={}",
                published.display()
            ));
        }
        let (out, log) = support::run(&mut cmd);
        (out, log, commit)
    };

    let (out, log, commit) = run("allow", &image_digest("github release"));
    assert!(out.status.success(), "act failed:\n{log}");
    assert_allowed_and_deployed(&log, &store, &commit, &ci_key);
    // the binaries came from CUSTODY_BIN_DIR, unverified because unreleased, and said so
    assert!(log.contains("from CUSTODY_BIN_DIR unverified"), "{log}");
    // no key material in the log
    let pem = std::fs::read_to_string(&ci_key).unwrap();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(line), "the signing key reached the log");
    }

    std::fs::write(ws.join("ci/sign.sh"), SIGN_WITHOUT_REGISTRY).unwrap();
    let (out, log, commit) = run("deny", &image_digest("github unsigned"));
    assert!(
        !out.status.success(),
        "act passed without a signature:\n{log}"
    );
    assert_denied_before_approval(&log, &store, &commit);
}

#[test]
fn gitlab_parent_from_the_readme_reaches_allow_and_denies_a_missing_signature() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    let Some(platform) = Platform::start() else {
        return;
    };
    let blocks = readme_blocks();
    // the one change: the published component references resolve to this project's
    // templates/ (gitlab-ci-local fetches remote components with git, offline here)
    let local = |body: String| -> String {
        let published = "$CI_SERVER_FQDN/custody-dev/custody/";
        assert!(body.contains(published), "{body}");
        body.lines()
            .map(|l| match l.find(published) {
                Some(i) => {
                    let rest = &l[i + published.len()..];
                    let name = rest.split('@').next().unwrap();
                    format!(
                        "{}$CI_SERVER_FQDN/$CI_PROJECT_PATH/{name}@$CI_COMMIT_SHA",
                        &l[..i]
                    )
                }
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let readme = [
        (
            ".custody/policy.yaml",
            block(&blocks, ".custody/policy.yaml"),
        ),
        (".gitlab-ci.yml", local(block(&blocks, ".gitlab-ci.yml"))),
        (
            ".gitlab/custody-service.yml",
            local(block(&blocks, ".gitlab/custody-service.yml")),
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    let (ci_key, cosign_key) = consumer_repo(&dir, &platform, &readme);
    crate::gitlab::copy_dir(&support::root().join("templates"), &dir.join("templates"));
    std::fs::write(
        dir.join(".gitignore"),
        ".gitlab-ci-local/\n.gitlab-ci-local-variables.yml\n",
    )
    .unwrap();
    let store = support::file_url(&tmp.path().join("store"));
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let run = |digest: &str| -> (Output, String, String) {
        support::git_repo(&dir);
        let commit = support::head_commit(&dir);
        platform.gitlab_routes(&commit);
        let (out, log) = run_gitlab_ci_local(
            &gcl,
            &dir,
            &home,
            None,
            &GitLabRun {
                platform: &platform,
                commit: &commit,
                ci_key: &ci_key,
                cosign_key: &cosign_key,
                store: &store,
                digest,
            },
        );
        (out, log, commit)
    };

    let (out, log, commit) = run(&image_digest("gitlab release"));
    assert!(out.status.success(), "gitlab-ci-local failed:\n{log}");
    assert_allowed_and_deployed(&log, &store, &commit, &ci_key);
    assert!(log.contains("from CUSTODY_BIN_DIR unverified"), "{log}");

    std::fs::write(dir.join("ci/sign.sh"), SIGN_WITHOUT_REGISTRY).unwrap();
    let (out, log, commit) = run(&image_digest("gitlab unsigned"));
    assert!(
        !out.status.success(),
        "the pipeline passed without a signature:\n{log}"
    );
    assert_denied_before_approval(&log, &store, &commit);
}

/// What one gitlab-ci-local run of a consumer pipeline needs.
pub(crate) struct GitLabRun<'a> {
    pub platform: &'a Platform,
    pub commit: &'a str,
    pub ci_key: &'a Path,
    pub cosign_key: &'a Path,
    pub store: &'a str,
    pub digest: &'a str,
}

/// Runs gitlab-ci-local (`gcl`) in `dir` on `file` (default `.gitlab-ci.yml`), shell
/// executor, with the project's CI/CD variables (a path is a File variable) and what
/// GitLab itself sets, the deploy job released by hand. Returns the output and the log.
pub(crate) fn run_gitlab_ci_local(
    gcl: &Path,
    dir: &Path,
    home: &Path,
    file: Option<&str>,
    r: &GitLabRun<'_>,
) -> (Output, String) {
    let token = r.platform.trust.gitlab_token_for(r.commit, "production");
    let vars = [
        ("CUSTODY_SIGNING_KEY", r.ci_key.display().to_string()),
        ("COSIGN_KEY", r.cosign_key.display().to_string()),
        ("CUSTODY_STORE", r.store.to_owned()),
        ("CUSTODY_REGISTRY_URL", r.platform.registry.clone()),
        ("REGISTRY_URL", r.platform.registry.clone()),
        ("IMAGE_DIGEST", r.digest.to_owned()),
        (
            "CUSTODY_BIN_DIR",
            support::binaries().unwrap().display().to_string(),
        ),
        ("CI_REGISTRY_IMAGE", format!("ghcr.io/{REPOSITORY}")),
        ("CUSTODY_ID_TOKEN", token),
        ("CI_JOB_TOKEN", "job-token".to_string()),
        ("CI_API_V4_URL", format!("{}/api/v4", r.platform.api().base)),
        ("CI_PROJECT_ID", PROJECT_ID.to_string()),
        ("CI_JOB_ID", GITLAB_JOB_ID.to_string()),
        ("GITLAB_CI", "true".to_string()),
        // GitLab passes a trigger job's parallel:matrix variables to its child
        // pipeline; gitlab-ci-local passes only its `variables:`
        ("CUSTODY_SERVICE", "app".to_string()),
    ];
    // a plain path value would become a File variable: CUSTODY_BIN_DIR is a directory
    let text: String = vars
        .iter()
        .map(|(k, v)| match *k {
            "CUSTODY_BIN_DIR" => format!("{k}: {{type: variable, values: {{\"*\": {v:?}}}}}\n"),
            _ => format!("{k}: {v:?}\n"),
        })
        .collect();
    std::fs::write(dir.join(".gitlab-ci-local-variables.yml"), text).unwrap();
    let mut cmd = Command::new(gcl);
    cmd.args([
        "--force-shell-executor",
        "--shell-isolation",
        "--color=false",
    ]);
    if let Some(f) = file {
        cmd.args(["--file", f]);
    }
    cmd.arg("--home")
        .arg(home)
        .args(["--unset-variable", "CI_PROJECT_DIR"])
        .args(["--manual", "custody-deploy"])
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .current_dir(dir);
    support::run(&mut cmd)
}
