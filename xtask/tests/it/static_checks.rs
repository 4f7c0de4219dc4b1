//! Static checks over what users run: every action, workflow and rendered template body
//! against the builtin schemas of `check-jsonschema`; `zizmor --offline` with no findings
//! over `actions/` and `.github/`; the rendered `templates/` in sync with `components/`;
//! the project's own workflows pin actions by SHA, read-only by default, no persisted
//! credentials.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

fn files(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path
            .extension()
            .is_some_and(|e| ext.iter().any(|x| e == *x))
        {
            out.push(path);
        }
    }
    out.sort();
}

fn check_jsonschema(tool: &Path, schema: &str, paths: &[PathBuf]) {
    assert!(!paths.is_empty(), "nothing to check against {schema}");
    let (out, text) = support::run(
        Command::new(tool)
            .args(["--builtin-schema", schema])
            .args(paths),
    );
    assert!(out.status.success(), "check-jsonschema {schema}:\n{text}");
}

#[test]
fn actions_and_workflows_match_the_github_schemas() {
    let Some(tool) = support::tool("CUSTODY_CHECK_JSONSCHEMA") else {
        return;
    };
    let root = support::root();
    let mut actions = Vec::new();
    files(&root.join("actions"), &["yml", "yaml"], &mut actions);
    actions.retain(|p| p.file_stem().is_some_and(|s| s == "action"));
    assert!(actions.len() >= 3, "{actions:?}");
    check_jsonschema(&tool, "vendor.github-actions", &actions);
    let mut workflows = Vec::new();
    files(
        &root.join(".github/workflows"),
        &["yml", "yaml"],
        &mut workflows,
    );
    files(
        &root.join("docs/examples/github"),
        &["yml", "yaml"],
        &mut workflows,
    );
    check_jsonschema(&tool, "vendor.github-workflows", &workflows);
}

#[test]
fn a_broken_action_fails_the_schema_check() {
    let Some(tool) = support::tool("CUSTODY_CHECK_JSONSCHEMA") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("action.yml");
    // `runs.using: composite` without steps, an input without a description
    std::fs::write(
        &bad,
        "name: x\ndescription: x\ninputs:\n  a:\n    defualt: 1\nruns:\n  using: composite\n",
    )
    .unwrap();
    let (out, _) = support::run(
        Command::new(&tool)
            .args(["--builtin-schema", "vendor.github-actions"])
            .arg(&bad),
    );
    assert!(
        !out.status.success(),
        "check-jsonschema accepted a broken action"
    );
}

/// A component template is two YAML documents: the `spec:` header and the jobs. The
/// body is checked as GitLab sees it: every `$[[ inputs.x ]]` interpolated, with the
/// input's default or, for a required input, a sample value.
fn split_template(path: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(path).unwrap();
    let (head, body) = text
        .split_once("\n---\n")
        .unwrap_or_else(|| panic!("{}: no `---` after the spec header", path.display()));
    let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(head).unwrap();
    let inputs = spec["spec"]["inputs"].as_mapping().unwrap();
    let mut body = body.to_string();
    for (name, input) in inputs {
        let name = name.as_str().unwrap();
        let value = match input.get("default") {
            Some(serde_yaml_ng::Value::String(s)) => s.clone(),
            Some(serde_yaml_ng::Value::Sequence(items)) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| serde_json::to_string(i.as_str().unwrap()).unwrap())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
            Some(serde_yaml_ng::Value::Bool(b)) => b.to_string(),
            None => format!("sample@sha256:{}", "0".repeat(64)),
            Some(other) => panic!("{}: input {name} has default {other:?}", path.display()),
        };
        body = body.replace(&format!("$[[ inputs.{name} ]]"), &value);
    }
    assert!(
        !body.contains("$[["),
        "{}: an interpolation names no input",
        path.display()
    );
    let name = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    let h = dir.join(format!("{name}.spec.yml"));
    let b = dir.join(format!("{name}.body.yml"));
    std::fs::write(&h, head).unwrap();
    std::fs::write(&b, body).unwrap();
    (h, b)
}

#[test]
fn rendered_templates_and_examples_match_the_gitlab_schema() {
    let Some(tool) = support::tool("CUSTODY_CHECK_JSONSCHEMA") else {
        return;
    };
    let root = support::root();
    let tmp = tempfile::tempdir().unwrap();
    let mut templates = Vec::new();
    files(&root.join("templates"), &["yml"], &mut templates);
    assert!(templates.len() >= 4, "{templates:?}");
    let mut docs = Vec::new();
    for t in &templates {
        let (h, b) = split_template(t, tmp.path());
        docs.push(h);
        docs.push(b);
    }
    files(&root.join("docs/examples/gitlab"), &["yml"], &mut docs);
    // the project's own pipeline: the catalog release job
    docs.push(root.join(".gitlab-ci.yml"));
    check_jsonschema(&tool, "vendor.gitlab-ci", &docs);
}

#[test]
fn zizmor_finds_nothing_in_actions_and_workflows() {
    let Some(tool) = support::tool("CUSTODY_ZIZMOR") else {
        return;
    };
    let root = support::root();
    let (out, text) = support::run(
        Command::new(&tool)
            .args(["--offline", "--no-progress", "actions/", ".github/"])
            .current_dir(&root),
    );
    assert!(out.status.success(), "zizmor findings:\n{text}");
}

#[test]
fn zizmor_flags_an_input_interpolated_into_shell() {
    let Some(tool) = support::tool("CUSTODY_ZIZMOR") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("actions/bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("action.yml"),
        "name: bad\ndescription: bad\ninputs:\n  subject:\n    description: s\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo ${{ inputs.subject }}\n",
    )
    .unwrap();
    let (out, text) = support::run(
        Command::new(&tool)
            .args(["--offline", "--no-progress", "actions/"])
            .current_dir(tmp.path()),
    );
    assert!(
        !out.status.success(),
        "zizmor accepted shell interpolation:\n{text}"
    );
    assert!(text.contains("template-injection"), "{text}");
}

#[test]
fn rendered_templates_are_in_sync() {
    let (out, text) =
        support::run(Command::new(env!("CARGO_BIN_EXE_xtask")).args(["components", "--check"]));
    assert!(out.status.success(), "{text}");
}

/// `uses:` values of every step and job in a workflow.
fn uses(doc: &serde_yaml_ng::Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(jobs) = doc.get("jobs").and_then(|j| j.as_mapping()) {
        for job in jobs.values() {
            if let Some(u) = job.get("uses").and_then(|u| u.as_str()) {
                found.push(u.to_string());
            }
            for step in job
                .get("steps")
                .and_then(|s| s.as_sequence())
                .into_iter()
                .flatten()
            {
                if let Some(u) = step.get("uses").and_then(|u| u.as_str()) {
                    found.push(u.to_string());
                }
            }
        }
    }
    found
}

#[test]
fn own_workflows_pin_by_sha_read_only_and_without_persisted_credentials() {
    let root = support::root();
    let mut workflows = Vec::new();
    files(&root.join(".github/workflows"), &["yml"], &mut workflows);
    for name in [
        "ci.yml",
        "release.yml",
        "custody-parent.yml",
        "custody-service.yml",
    ] {
        assert!(
            workflows.iter().any(|p| p.ends_with(name)),
            ".github/workflows/{name} is missing"
        );
    }
    for path in &workflows {
        let text = std::fs::read_to_string(path).unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let perms = doc.get("permissions");
        assert!(
            perms
                .and_then(|p| p.get("contents"))
                .and_then(|c| c.as_str())
                == Some("read")
                && perms.and_then(|p| p.as_mapping()).map(|m| m.len()) == Some(1),
            "{}: top-level permissions must be exactly `contents: read`",
            path.display()
        );
        for u in uses(&doc) {
            if u.starts_with("./") {
                continue;
            }
            // everything, our own actions and workflows too (`cargo xtask pin`)
            let (_, reference) = u.split_once('@').unwrap_or((&u, ""));
            let sha = reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit());
            assert!(
                sha,
                "{}: `{u}` is not pinned by a full commit SHA",
                path.display()
            );
        }
        for job in doc
            .get("jobs")
            .and_then(|j| j.as_mapping())
            .into_iter()
            .flat_map(|m| m.values())
        {
            for step in job
                .get("steps")
                .and_then(|s| s.as_sequence())
                .into_iter()
                .flatten()
            {
                let is_checkout = step
                    .get("uses")
                    .and_then(|u| u.as_str())
                    .is_some_and(|u| u.starts_with("actions/checkout@"));
                if is_checkout {
                    let persist = step
                        .get("with")
                        .and_then(|w| w.get("persist-credentials"))
                        .and_then(|p| p.as_bool());
                    assert_eq!(
                        persist,
                        Some(false),
                        "{}: actions/checkout without persist-credentials: false",
                        path.display()
                    );
                }
            }
        }
    }
}

/// Every `uses:` of Custody's own actions and workflows is a full SHA naming a commit
/// whose copy of what it runs equals this tree's (`cargo xtask pin --check`).
#[test]
fn custody_pins_itself_by_sha_to_commits_holding_the_same_files() {
    let root = support::root();
    let (out, text) = support::run(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["pin", "--check"])
            .current_dir(&root),
    );
    assert!(out.status.success(), "{text}");
}

/// The negative twin: in a copy of the repository, a reference by tag and an action
/// changed after its pin are both reported; `cargo xtask pin` fixes both with a chain of
/// commits, after which the check passes and a second pin changes nothing.
#[test]
fn a_stale_or_unpinned_self_reference_is_found_and_pinning_fixes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("custody");
    support::published_copy(&copy);
    let git = |args: &[&str]| {
        let (out, text) = support::run(Command::new("git").args(args).current_dir(&copy));
        assert!(out.status.success(), "git {args:?}: {text}");
        text
    };
    let commit_all = |msg: &str| {
        git(&["add", "-A"]);
        git(&[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@t.invalid",
            "commit",
            "-q",
            "-m",
            msg,
        ]);
    };
    git(&["init", "-q", "-b", "main"]);
    commit_all("copy");
    let xtask = |args: &[&str]| {
        support::run(
            Command::new(env!("CARGO_BIN_EXE_xtask"))
                .args(args)
                .arg("--root")
                .arg(&copy)
                .env("GIT_AUTHOR_NAME", "T")
                .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
                .env("GIT_COMMITTER_NAME", "T")
                .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
                .current_dir(&copy),
        )
    };
    // the copy's pins name commits of another repository: stale here
    let (out, text) = xtask(&["pin", "--check"]);
    assert!(!out.status.success(), "{text}");
    let (out, text) = xtask(&["pin"]);
    assert!(out.status.success(), "{text}");
    let (out, text) = xtask(&["pin", "--check"]);
    assert!(out.status.success(), "{text}");
    let before = git(&["rev-parse", "HEAD"]);
    let (out, text) = xtask(&["pin"]);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        git(&["rev-parse", "HEAD"]),
        before,
        "a second pin committed"
    );

    // an action changed after the pin: its references are stale
    let action = copy.join("actions/runner-guard/action.yml");
    let mut text = std::fs::read_to_string(&action).unwrap();
    text.push_str("# changed\n");
    std::fs::write(&action, text).unwrap();
    commit_all("change an action");
    let (out, text) = xtask(&["pin", "--check"]);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("actions/runner-guard at") && text.contains("differs"),
        "{text}"
    );
    // a reference by tag
    let service = copy.join(".github/workflows/custody-service.yml");
    let text = std::fs::read_to_string(&service).unwrap();
    let re = text.replacen("actions/runner-guard@", "actions/runner-guard@v9.9.9 # ", 1);
    std::fs::write(&service, re).unwrap();
    commit_all("a tag");
    let (out, text) = xtask(&["pin", "--check"]);
    assert!(text.contains("not pinned to a full commit SHA"), "{text}");
    assert!(!out.status.success());
}
