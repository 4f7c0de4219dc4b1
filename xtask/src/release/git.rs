//! The release's git operations: the commit subjects that mark a release, what HEAD and
//! the tag say about how far an earlier run got, the annotated tag, the atomic push, and
//! putting the release files back when the prepare step fails.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use super::changelog;
use super::plan::Plan;

pub fn release_subject(version: &semver::Version) -> String {
    format!("Release {version}")
}

/// The release commit or one of the pin commits that follow it (`Release 1.2.3: pin …`).
pub fn is_release_commit(subject: &str, version: &semver::Version) -> bool {
    let release = release_subject(version);
    subject == release || subject.starts_with(&format!("{release}: "))
}

pub fn head_subject(root: &Path) -> anyhow::Result<String> {
    Ok(git(root, &["log", "-1", "--format=%s", "HEAD"])?
        .trim()
        .to_owned())
}

/// The commit a tag points at, if the tag exists.
pub fn tag_commit(root: &Path, tag: &str) -> anyhow::Result<Option<String>> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["rev-parse", "-q", "--verify"])
        .arg(format!("refs/tags/{tag}^{{commit}}"))
        .output()
        .context("running git rev-parse")?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()))
}

pub fn git(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    crate::util::output(Command::new("git").current_dir(root).args(args))
}

/// The annotated tag; its message carries the release notes, which the GitLab catalog
/// job uses as the release description (`$CI_COMMIT_TAG_MESSAGE`).
pub fn tag(plan: &Plan) -> anyhow::Result<()> {
    let v = plan.version.to_string();
    let text =
        std::fs::read_to_string(plan.root.join("CHANGELOG.md")).context("reading CHANGELOG.md")?;
    let notes = changelog::released(&text, &v).unwrap_or_default();
    git(
        &plan.root,
        &[
            "tag",
            "-a",
            &plan.tag,
            "-m",
            &format!("Custody {v}\n\n{notes}"),
        ],
    )?;
    eprintln!("  committed \"Release {v}\" and tagged {}", plan.tag);
    Ok(())
}

pub fn push(plan: &Plan, remote: &str) -> anyhow::Result<()> {
    let branch = git(&plan.root, &["symbolic-ref", "-q", "--short", "HEAD"])
        .context("HEAD is not on a branch: check out the branch to release from")?;
    let branch = branch.trim();
    git(
        &plan.root,
        &[
            "push",
            "--atomic",
            remote,
            &format!("HEAD:refs/heads/{branch}"),
            &format!("refs/tags/{}", plan.tag),
        ],
    )?;
    Ok(())
}

/// Puts `paths` back as HEAD has them; best effort, for a prepare step that failed.
pub fn restore(root: &Path, paths: &[&str]) {
    let _ = Command::new("git")
        .current_dir(root)
        .args(["checkout", "HEAD", "--"])
        .args(paths)
        .status();
}
