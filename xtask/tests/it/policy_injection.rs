//! Custody's compliance pipeline enforced by a GitLab pipeline execution policy
//! (`docs/examples/gitlab/pipeline-execution-policy/`), under gitlab-ci-local as far as
//! it can stand in for one.
//!
//! The project is the consumer repository of `consumer.rs` (the same scripts, tier model,
//! keys, policy data and stand-in platform), except that its own `.gitlab-ci.yml` is a
//! plain pipeline that names nothing of Custody: the Custody jobs come from the policy.
//! The example files are used byte for byte: `policy.yaml`'s `content: include:` entries
//! are what the emulated pipelines include, and `custody-policy-ci.yml` (and its
//! `override_project_ci` variant) include the published component reference
//! (`$CI_SERVER_FQDN/custody-dev/custody/compliance-pipeline@0.1.0`) unchanged.
//!
//! GitLab fetches the policy's files from the security policy project and the component
//! from Custody's project; gitlab-ci-local fetches `include: project:` files with git,
//! offline here, unless they are in its include cache
//! (`.gitlab-ci-local/includes/<host>/<project>/<ref>/<file>`), so the test puts them
//! there: the policy project's files from the examples, Custody 0.1.0 as this checkout's
//! `templates/`, and, for `override_project_ci`, the project's own `.gitlab-ci.yml` at
//! the pipeline's commit.
//!
//! What the emulation is, per strategy:
//! - `inject_policy`: one YAML that includes the project's `.gitlab-ci.yml` and the
//!   policy's `content: include:`, with the stages merged as GitLab documents it (each
//!   list's order is a constraint, the union sorted topologically). GitLab keeps the two
//!   configurations apart (isolated YAML, job-name suffixes on conflicts); here they share
//!   one namespace, so the test first checks that they name no job in common and that the
//!   project sets no global keyword (`default:`, `variables:`, ...) that would reach the
//!   policy's jobs.
//! - `override_project_ci`: the policy's `content: include:` is the whole pipeline; its
//!   file includes the project's `.gitlab-ci.yml` itself, which gitlab-ci-local resolves.
//!
//! Both reach `allow` at both gates and leave a deploy record `custody verify` accepts
//! (each in its own store, same commit). What gitlab-ci-local cannot show is listed in
//! the examples' README.md ("What gitlab-ci-local cannot emulate").

use std::path::Path;
use std::process::Output;

use serde_yaml_ng::Value;

use crate::consumer::{self, Platform};
use crate::guard::REPOSITORY;
use crate::support;

/// The security policy project `policy.yaml` names.
const POLICY_PROJECT: &str = "acme/security-policies";
/// The host of the consumer repository's `origin` (support::git_repo): gitlab-ci-local's
/// include cache is keyed by it, whatever the included project.
const GITLAB_HOST: &str = "gitlab.example.com";

/// The team's own pipeline: it says nothing about Custody, and uses a stage (`lint`) the
/// policy does not know, so the stages have to be merged.
const PROJECT_CI: &str = r#"stages: [lint, test]

lint:
  stage: lint
  script:
    - for f in ci/*.sh; do sh -n "$f"; done
    - echo "project job lint passed"

unit-tests:
  stage: test
  script:
    - echo "project job unit-tests passed"
"#;

fn example(name: &str) -> String {
    let path = support::root()
        .join("docs/examples/gitlab/pipeline-execution-policy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `content: include:` of policy.yaml's policy with `strategy`.
fn policy_include(policy: &Value, strategy: &str) -> Value {
    let policies = policy["pipeline_execution_policy"]
        .as_sequence()
        .expect("policy.yaml: a pipeline_execution_policy list");
    let found = policies
        .iter()
        .find(|p| p["pipeline_config_strategy"].as_str() == Some(strategy))
        .unwrap_or_else(|| panic!("policy.yaml has no {strategy} policy"));
    for key in ["name", "description", "enabled"] {
        assert!(!found[key].is_null(), "policy.yaml {strategy}: no {key}");
    }
    let include = found["content"]["include"].clone();
    let entries = include.as_sequence().expect("content: include: a list");
    for entry in entries {
        assert_eq!(
            entry["project"].as_str(),
            Some(POLICY_PROJECT),
            "{strategy}: the CI file comes from the security policy project"
        );
        assert!(entry["file"].as_str().is_some(), "{entry:?}");
    }
    include
}

/// The `stages:` of a CI/CD configuration; GitLab's default when it has none.
fn stages_of(config: &str) -> Vec<String> {
    let v: Value = serde_yaml_ng::from_str(config).unwrap();
    match v["stages"].as_sequence() {
        Some(s) => s.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
        None => vec!["build".into(), "test".into(), "deploy".into()],
    }
}

/// inject_policy's stage merge as GitLab documents it: each list's order is a set of
/// constraints, the union is sorted topologically (a cycle fails the pipeline). Among
/// stages the lists leave unordered the project's come first; GitLab's own tie order is
/// not documented.
fn merge_stages(project: &[String], policy: &[String]) -> Vec<String> {
    let mut nodes: Vec<String> = Vec::new();
    for s in project.iter().chain(policy) {
        if !nodes.contains(s) {
            nodes.push(s.clone());
        }
    }
    let mut edges: Vec<(String, String)> = Vec::new();
    for list in [project, policy] {
        for pair in list.windows(2) {
            edges.push((pair[0].clone(), pair[1].clone()));
        }
    }
    let mut merged = Vec::new();
    while merged.len() < nodes.len() {
        let next = nodes
            .iter()
            .find(|n| {
                !merged.contains(*n)
                    && !edges
                        .iter()
                        .any(|(from, to)| to == *n && !merged.contains(from))
            })
            .unwrap_or_else(|| panic!("cyclic stages: {project:?} and {policy:?}"))
            .clone();
        merged.push(next);
    }
    merged
}

/// Puts `body` where gitlab-ci-local looks for `file` of `project` at `reference` before
/// it would fetch it.
fn cache_project_file(dir: &Path, project: &str, reference: &str, file: &str, body: &str) {
    let to = dir
        .join(".gitlab-ci-local/includes")
        .join(GITLAB_HOST)
        .join(project)
        .join(reference)
        .join(file);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, body).unwrap();
}

/// Global keywords: not jobs, and, but for `stages:`, what GitLab keeps apart between
/// the project's configuration and an injected policy's (a project's `default:` does not
/// reach the policy's jobs), and one YAML shares.
const GLOBAL: [&str; 9] = [
    "stages",
    "include",
    "variables",
    "default",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
];

/// The top-level keys of a CI/CD configuration (its own, not its includes').
fn top_level(config: &str) -> Vec<String> {
    let v: Value = serde_yaml_ng::from_str(config).unwrap();
    v.as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .map(str::to_string)
        .collect()
}

/// The jobs (and hidden jobs) the policy's configuration defines: its own and the
/// compliance-pipeline component's.
fn policy_jobs(policy_ci: &str) -> Vec<String> {
    let template =
        std::fs::read_to_string(support::root().join("templates/compliance-pipeline/template.yml"))
            .unwrap();
    let (_, body) = template.split_once("\n---\n").expect("spec, then body");
    top_level(policy_ci)
        .into_iter()
        .chain(top_level(body))
        .filter(|k| !GLOBAL.contains(&k.as_str()))
        .collect()
}

#[test]
fn compliance_pipeline_injected_by_a_pipeline_execution_policy_reaches_allow() {
    let Some(gcl) = support::tool("CUSTODY_GITLAB_CI_LOCAL") else {
        return;
    };
    let Some(platform) = Platform::start() else {
        return;
    };
    assert!(
        !PROJECT_CI.to_lowercase().contains("custody"),
        "the project's own pipeline must not name Custody"
    );
    let policy: Value = serde_yaml_ng::from_str(&example("policy.yaml")).unwrap();
    let inject_include = policy_include(&policy, "inject_policy");
    let override_include = policy_include(&policy, "override_project_ci");
    let policy_ci = example("custody-policy-ci.yml");
    let override_ci = example("custody-policy-override-ci.yml");

    // the team's repository: README's policy data and service pipeline (the child
    // pipeline the policy's custody-services triggers), its own plain .gitlab-ci.yml
    let blocks = consumer::readme_blocks();
    let files = [
        (
            ".custody/policy.yaml",
            consumer::block(&blocks, ".custody/policy.yaml"),
        ),
        (
            ".gitlab/custody-service.yml",
            consumer::block(&blocks, ".gitlab/custody-service.yml"),
        ),
        (".gitlab-ci.yml", PROJECT_CI.to_string()),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    let (ci_key, cosign_key) = consumer::consumer_repo(&dir, &platform, &files);
    std::fs::write(
        dir.join(".gitignore"),
        ".gitlab-ci-local/\n.gitlab-ci-local-variables.yml\n",
    )
    .unwrap();
    support::git_repo(&dir);
    let commit = support::head_commit(&dir);
    platform.gitlab_routes(&commit);

    // what GitLab fetches from other projects, where gitlab-ci-local finds it offline
    for (file, body) in [
        ("custody-policy-ci.yml", &policy_ci),
        ("custody-policy-override-ci.yml", &override_ci),
    ] {
        cache_project_file(&dir, POLICY_PROJECT, "main", file, body);
    }
    let published = dir.join(".gitlab-ci-local/includes").join(GITLAB_HOST);
    crate::gitlab::copy_dir(
        &support::root().join("templates"),
        &published.join("custody-dev/custody/0.1.0/templates"),
    );
    // override_project_ci includes the project's configuration at the pipeline's commit
    // (the project is support::git_repo's origin, acme/app: REPOSITORY)
    cache_project_file(&dir, REPOSITORY, &commit, ".gitlab-ci.yml", PROJECT_CI);

    // inject_policy: the project's configuration and the policy's in one YAML, which is
    // GitLab's result only when they share no job name (GitLab would suffix the policy's)
    // and the project sets no global keyword that would reach the policy's jobs; the
    // stages merged
    let policy_jobs = policy_jobs(&policy_ci);
    assert!(policy_jobs.contains(&"custody-deploy".to_string()));
    for key in top_level(PROJECT_CI) {
        assert!(
            key == "stages" || !GLOBAL.contains(&key.as_str()),
            "{key}: one YAML would apply it to the policy's jobs, GitLab would not"
        );
        assert!(
            !policy_jobs.contains(&key),
            "{key}: GitLab would suffix the policy's job, gitlab-ci-local cannot"
        );
    }
    let stages = merge_stages(&stages_of(PROJECT_CI), &stages_of(&policy_ci));
    assert_eq!(stages, ["lint", "build", "test", "deploy"]);
    let mut include = vec![serde_yaml_ng::from_str::<Value>("local: .gitlab-ci.yml").unwrap()];
    include.extend(inject_include.as_sequence().unwrap().iter().cloned());
    let mut inject = serde_yaml_ng::Mapping::new();
    inject.insert("stages".into(), stages.into());
    inject.insert("include".into(), Value::Sequence(include));
    let inject_file = ".gitlab-ci-local/policy-inject_policy.yml";
    std::fs::write(
        dir.join(inject_file),
        serde_yaml_ng::to_string(&inject).unwrap(),
    )
    .unwrap();
    // override_project_ci: the policy's configuration is the pipeline
    let mut overriding = serde_yaml_ng::Mapping::new();
    overriding.insert("include".into(), override_include);
    let override_file = ".gitlab-ci-local/policy-override_project_ci.yml";
    std::fs::write(
        dir.join(override_file),
        serde_yaml_ng::to_string(&overriding).unwrap(),
    )
    .unwrap();

    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let run = |file: &str, store: &str, digest: &str| -> (Output, String) {
        consumer::run_gitlab_ci_local(
            &gcl,
            &dir,
            &home,
            Some(file),
            &consumer::GitLabRun {
                platform: &platform,
                commit: &commit,
                ci_key: &ci_key,
                cosign_key: &cosign_key,
                store,
                digest,
            },
        )
    };
    let store_for = |name: &str| support::file_url(&tmp.path().join(name));

    // inject_policy
    let store = store_for("store-inject");
    let (out, log) = run(
        inject_file,
        &store,
        &consumer::image_digest("gitlab inject_policy"),
    );
    assert!(
        out.status.success(),
        "gitlab-ci-local failed (inject_policy):\n{log}"
    );
    assert_project_and_policy_jobs_passed(&log);
    consumer::assert_allowed_and_deployed(&log, &store, &commit, &ci_key);
    assert!(log.contains("from CUSTODY_BIN_DIR unverified"), "{log}");

    // override_project_ci, in a store of its own
    let store = store_for("store-override");
    let (out, log) = run(
        override_file,
        &store,
        &consumer::image_digest("gitlab override_project_ci"),
    );
    assert!(
        out.status.success(),
        "gitlab-ci-local failed (override_project_ci):\n{log}"
    );
    assert_project_and_policy_jobs_passed(&log);
    consumer::assert_allowed_and_deployed(&log, &store, &commit, &ci_key);
}

/// Every job of the parent pipeline passed, the project's and the policy's, in the order
/// of the stages `.pre`, `lint`, `build`, `test`, `deploy`, `.post` (gitlab-ci-local's
/// summary lists the jobs by stage, then by their order in the configuration).
fn assert_project_and_policy_jobs_passed(log: &str) {
    let passed: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix(" PASS  "))
        .map(str::trim_end)
        .filter(|job| !job.starts_with('[')) // the child pipeline's
        .collect();
    assert_eq!(
        passed,
        [
            "custody-runner-guard",
            "lint",
            "custody-services: [app]",
            "unit-tests",
            "custody-release-evidence",
            "custody-pre-approval",
            "custody-deploy",
            "custody-deploy-evidence",
        ],
        "{log}"
    );
    for line in ["project job lint passed", "project job unit-tests passed"] {
        assert!(log.contains(line), "{line}\n{log}");
    }
}

/// README.md's policy block is the example's `inject_policy` policy, field for field
/// (the example adds a description and a scope): the YAML the README shows is the one
/// the injection test runs.
#[test]
fn the_readme_policy_is_the_tested_example() {
    let readme = std::fs::read_to_string(support::root().join("README.md")).unwrap();
    let block = readme
        .split("<!-- policy: .gitlab/security-policies/policy.yml -->\n```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md marks its pipeline execution policy block");
    let shown: Value = serde_yaml_ng::from_str(block).unwrap();
    let tested: Value = serde_yaml_ng::from_str(&example("policy.yaml")).unwrap();
    let shown = &shown["pipeline_execution_policy"][0];
    let tested = tested["pipeline_execution_policy"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["pipeline_config_strategy"] == "inject_policy")
        .unwrap();
    let fields = shown.as_mapping().unwrap();
    assert!(fields.len() >= 5, "{shown:?}");
    for (key, value) in fields {
        assert_eq!(&tested[key], value, "README.md's policy differs at {key:?}");
    }
}
