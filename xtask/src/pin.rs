//! `cargo xtask pin`: Custody's own `uses: custody-dev/custody/<path>@<ref>` references,
//! pinned by full commit SHA, so a consumer whose policy requires SHA-pinned actions
//! (GitHub's repository or organization setting, zizmor's default) can call the reusable
//! workflows.
//!
//! A file cannot name the commit that contains it, so pinning is a chain of commits, one
//! per level of reference: the child workflow (`custody-service.yml`, which calls the
//! actions) is pinned to HEAD and committed; the parent (`custody-parent.yml`, which calls
//! the actions and the child) to that commit; the docs (README, the actions' READMEs and
//! the examples, which call the parent, the child and the actions) to the next. Each
//! reference then names a commit whose copy of the referenced path equals the working
//! tree's, which is what `--check` verifies (run by the test suite): a changed action or
//! workflow without a new pin fails the check instead of shipping a stale reference.
//!
//! `cargo xtask release` runs the chain after the release commit, so the tag holds
//! references to the released actions.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The repository every self-reference names.
pub const REPO: &str = "custody-dev/custody";

/// Files that call Custody by `uses:`, in the order they are pinned: each level only
/// references paths of earlier levels (or the actions, which reference nothing).
const LEVELS: &[&[&str]] = &[
    &[".github/workflows/custody-service.yml"],
    &[".github/workflows/custody-parent.yml"],
    &[
        "README.md",
        "actions/README.md",
        "actions/custody/README.md",
        "actions/evidence-upload/README.md",
        "actions/policy-check/README.md",
        "actions/runner-guard/README.md",
        "docs/examples/github/custody.yml",
    ],
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check the references instead of rewriting them (no commit, no change).
    #[arg(long)]
    check: bool,
    /// Prefix of the commit subjects (the release tool passes "Release VERSION: ").
    #[arg(long, default_value = "")]
    subject_prefix: String,
    /// The repository to pin (tests point it at a copy).
    #[arg(long, hide = true, default_value = ".")]
    root: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let root = args.root.clone();
    if args.check {
        let problems = check(&root)?;
        if problems.is_empty() {
            println!("every self-reference is pinned to a commit holding the same files");
            return Ok(());
        }
        for p in &problems {
            eprintln!("{p}");
        }
        bail!(
            "{} stale or unpinned self-references: run `cargo xtask pin` on a clean tree",
            problems.len()
        );
    }
    for commit in pin(&root, &args.subject_prefix)? {
        println!("{commit}");
    }
    Ok(())
}

/// One `uses:` reference to this repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub file: PathBuf,
    pub line: usize,
    /// The path inside the repository (`actions/runner-guard`,
    /// `.github/workflows/custody-service.yml`).
    pub path: String,
    pub reference: String,
}

/// Every `uses: custody-dev/custody/<path>@<ref>` in `text`.
pub fn refs_in(file: &Path, text: &str) -> Vec<Ref> {
    let prefix = format!("uses: {REPO}/");
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let start = line.find(&prefix)? + prefix.len();
            let rest = line[start..].split_whitespace().next()?;
            let (path, reference) = rest.split_once('@')?;
            Some(Ref {
                file: file.to_path_buf(),
                line: i + 1,
                path: path.to_string(),
                reference: reference.to_string(),
            })
        })
        .collect()
}

/// `text` with every self-reference pointing at `sha`, each followed by `# v<version>`.
pub fn rewrite(text: &str, sha: &str, version: &str) -> String {
    let prefix = format!("uses: {REPO}/");
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        match body.find(&prefix) {
            Some(i) => {
                let start = i + prefix.len();
                let rest = &body[start..];
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                match rest[..end].split_once('@') {
                    Some((path, _)) => {
                        out.push_str(&body[..start]);
                        out.push_str(&format!("{path}@{sha} # v{version}"));
                    }
                    None => out.push_str(body),
                }
            }
            None => out.push_str(body),
        }
        out.push_str(newline);
    }
    out
}

fn is_sha(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn git(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .current_dir(root)
        .args(args)
        .output()
        .with_context(|| format!("running git {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn workspace_version(root: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let mut in_package = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[workspace.package]";
        } else if in_package
            && let Some(v) = t.strip_prefix("version")
            && let Some(v) = v.trim_start().strip_prefix('=')
        {
            return Ok(v.trim().trim_matches('"').to_string());
        }
    }
    bail!("Cargo.toml has no [workspace.package] version")
}

/// Pins level by level, committing each level that changed; returns the new commits.
pub fn pin(root: &Path, subject_prefix: &str) -> anyhow::Result<Vec<String>> {
    let version = workspace_version(root)?;
    let mut commits = Vec::new();
    for level in LEVELS {
        let head = git(root, &["rev-parse", "HEAD"])?.trim().to_string();
        let mut changed = Vec::new();
        for rel in *level {
            let path = root.join(rel);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            // a file whose references are all sound is left alone: pinning is idempotent
            let sound = refs_in(Path::new(rel), &text).iter().all(|r| {
                is_sha(&r.reference)
                    && ref_paths(r)
                        .iter()
                        .all(|p| same_as_worktree(root, &r.reference, p).unwrap_or(false))
            });
            if sound {
                continue;
            }
            let new = rewrite(&text, &head, &version);
            if new != text {
                std::fs::write(&path, new)
                    .with_context(|| format!("writing {}", path.display()))?;
                changed.push(*rel);
            }
        }
        if changed.is_empty() {
            continue;
        }
        git(root, &[&["add", "--"][..], &changed[..]].concat())?;
        let what = format!("in {} to {}", changed.join(", "), &head[..12]);
        let subject = if subject_prefix.is_empty() {
            format!("Pin Custody's own references {what}")
        } else {
            format!("{subject_prefix}pin Custody's own references {what}")
        };
        git(
            root,
            &[&["commit", "-q", "-m", &subject, "--"][..], &changed[..]].concat(),
        )?;
        let commit = git(root, &["rev-parse", "HEAD"])?.trim().to_string();
        eprintln!("  {subject}: {commit}");
        commits.push(commit);
    }
    Ok(commits)
}

/// Every self-reference in the pinned files: a full SHA, naming a commit whose copy of
/// the referenced path (for an action: its directory and `actions/lib`) equals the
/// working tree's. Returns the problems found.
pub fn check(root: &Path) -> anyhow::Result<Vec<String>> {
    let shallow = git(root, &["rev-parse", "--is-shallow-repository"])?.trim() == "true";
    let mut problems = Vec::new();
    for rel in LEVELS.iter().flat_map(|l| l.iter()) {
        let path = root.join(rel);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for r in refs_in(Path::new(rel), &text) {
            let at = format!("{}:{}", r.file.display(), r.line);
            if !is_sha(&r.reference) {
                problems.push(format!(
                    "{at}: {REPO}/{}@{} is not pinned to a full commit SHA",
                    r.path, r.reference
                ));
                continue;
            }
            for p in ref_paths(&r) {
                match same_as_worktree(root, &r.reference, p.as_str()) {
                    Ok(true) => {}
                    Ok(false) => problems.push(format!(
                        "{at}: {p} at {} differs from this tree's: pin again",
                        r.reference
                    )),
                    Err(_) if shallow => eprintln!(
                        "{at}: {} is not in this shallow clone: not compared",
                        r.reference
                    ),
                    Err(e) => problems.push(format!("{at}: {e:#}")),
                }
            }
        }
    }
    Ok(problems)
}

/// What a reference runs: an action's directory and the script every action sources
/// (`actions/lib`), or a workflow file.
fn ref_paths(r: &Ref) -> Vec<String> {
    if r.path.starts_with("actions/") {
        vec![r.path.clone(), "actions/lib".into()]
    } else {
        vec![r.path.clone()]
    }
}

/// Whether `path` (a file or directory) at `commit` holds the same blobs as the working
/// tree. Documentation (`*.md`) is not compared: it does not run, and an action's README
/// names the action itself, so it could never match its own pin.
fn same_as_worktree(root: &Path, commit: &str, path: &str) -> anyhow::Result<bool> {
    let listed = git(root, &["ls-tree", "-r", commit, "--", path])
        .with_context(|| format!("{commit} is not a commit of this repository"))?;
    git(root, &["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .with_context(|| format!("{commit} is not a commit of this repository"))?;
    let mut at_commit: Vec<(String, String)> = listed
        .lines()
        .filter_map(|l| {
            let (meta, name) = l.split_once('\t')?;
            if name.ends_with(".md") {
                return None;
            }
            let blob = meta.split_whitespace().nth(2)?;
            Some((name.to_string(), blob.to_string()))
        })
        .collect();
    at_commit.sort();
    let mut files = Vec::new();
    let full = root.join(path);
    if full.is_dir() {
        let mut stack = vec![full];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let p = entry?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_none_or(|e| e != "md") {
                    files.push(p);
                }
            }
        }
    } else if full.is_file() {
        files.push(full);
    }
    let mut here = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root)?
            .to_str()
            .context("non-UTF-8 path")?
            .to_string();
        let blob = git(root, &["hash-object", "--", &rel])?.trim().to_string();
        here.push((rel, blob));
    }
    here.sort();
    Ok(here == at_commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_self_references_and_keeps_the_rest_of_the_line() {
        let text = "      - uses: custody-dev/custody/actions/runner-guard@v0.1.0\n      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n    uses: custody-dev/custody/.github/workflows/custody-service.yml@0123456789012345678901234567890123456789 # v0.0.9\n";
        let sha = "a".repeat(40);
        let out = rewrite(text, &sha, "0.2.0");
        assert_eq!(
            out,
            format!(
                "      - uses: custody-dev/custody/actions/runner-guard@{sha} # v0.2.0\n      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n    uses: custody-dev/custody/.github/workflows/custody-service.yml@{sha} # v0.2.0\n"
            )
        );
        let refs = refs_in(Path::new("x.yml"), &out);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[1].path, ".github/workflows/custody-service.yml");
        assert!(refs.iter().all(|r| is_sha(&r.reference) && r.line > 0));
    }

    #[test]
    fn a_tag_or_short_sha_is_not_a_pin() {
        assert!(!is_sha("v0.1.0"));
        assert!(!is_sha("11bd719"));
        assert!(!is_sha(&"A".repeat(40)));
        assert!(is_sha(&"0".repeat(40)));
    }
}
