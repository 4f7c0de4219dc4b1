//! The release plan as data: [`validate`] checks everything (version, working tree,
//! changelog, assets, targets and tokens) before anything changes and returns the
//! [`Plan`] the other steps carry out; [`describe`] prints it for `--dry-run`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use super::assets::{self, Asset};
use super::git::{git, head_subject, is_release_commit, release_subject, tag_commit};
use super::manifests::{check_manifest_names, check_manifests, manifest_paths, workspace_package};
use super::{Args, GITHUB_TOKEN_VAR, GITLAB_TOKEN_VAR, Secret, changelog, github, gitlab};

/// How far an earlier run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Nothing of this release exists yet.
    Fresh,
    /// HEAD is the release commit, the tag is missing.
    Committed,
    /// The tag points at HEAD: only pushing and publishing are left.
    Tagged,
}

#[derive(Debug)]
pub struct Github {
    pub api_url: String,
    pub repo: String,
    pub token: Option<Secret>,
}

#[derive(Debug)]
pub struct Gitlab {
    pub api_url: String,
    pub project: String,
    pub token: Option<Secret>,
}

/// Everything validated, before anything changes.
#[derive(Debug)]
pub struct Plan {
    pub root: PathBuf,
    pub version: semver::Version,
    pub tag: String,
    /// OWNER/NAME for the manifests; `None`: keep theirs.
    pub repo: Option<String>,
    pub workspace_version: semver::Version,
    pub stage: Stage,
    /// `None`: built by `cargo xtask dist` in the prepare step.
    pub assets: Option<Vec<Asset>>,
    pub github: Option<Github>,
    pub gitlab: Option<Gitlab>,
    pub date: String,
    pub notes_lines: usize,
}

fn token(var: &str) -> Option<Secret> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::new(v.trim()))
}

pub fn validate(args: &Args) -> anyhow::Result<Plan> {
    let root = args.root.clone();
    if args.version.starts_with('v') {
        bail!(
            "VERSION {}: write it without the `v` (the tag gets one)",
            args.version
        );
    }
    let version = semver::Version::parse(&args.version).with_context(|| {
        format!(
            "VERSION {}: not a semantic version like 1.2.3",
            args.version
        )
    })?;
    let tag = format!("v{version}");
    let cargo_toml = std::fs::read_to_string(root.join("Cargo.toml"))
        .with_context(|| format!("reading {}", root.join("Cargo.toml").display()))?;
    let (workspace_version, repository) = workspace_package(&cargo_toml)?;
    let head = git(&root, &["rev-parse", "HEAD"])?.trim().to_owned();
    let tagged = tag_commit(&root, &tag)?;
    let stage = match &tagged {
        Some(c) if *c == head => Stage::Tagged,
        Some(c) => bail!(
            "tag {tag} exists at {c}, not at HEAD ({head}): check out {tag} to resume that release, or release another version"
        ),
        None if workspace_version == version
            && is_release_commit(&head_subject(&root)?, &version) =>
        {
            Stage::Committed
        }
        None => Stage::Fresh,
    };
    match stage {
        Stage::Fresh if version <= workspace_version => bail!(
            "VERSION {version} is not above the workspace version {workspace_version}: choose a higher one"
        ),
        Stage::Tagged | Stage::Committed if version != workspace_version => bail!(
            "{tag} is HEAD but the workspace version is {workspace_version}: the release commit was changed; fix it or release another version"
        ),
        _ => {}
    }
    if !args.allow_dirty {
        let status = git(
            &root,
            &[
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=normal",
            ],
        )?;
        if !status.trim().is_empty() {
            bail!(
                "the working tree has uncommitted changes:\n{}commit or stash them first (a release is made from a commit)",
                status
            );
        }
    }
    let changelog_text = std::fs::read_to_string(root.join("CHANGELOG.md"))
        .with_context(|| format!("reading {}", root.join("CHANGELOG.md").display()))?;
    let notes_lines = if stage == Stage::Fresh {
        changelog::unreleased(&changelog_text)?.lines().count()
    } else {
        changelog::released(&changelog_text, &version.to_string())
            .with_context(|| format!("CHANGELOG.md at {tag} has no `## [{version}]` section"))?
            .lines()
            .count()
    };
    let assets = match &args.assets {
        Some(dir) => Some(assets::read(dir)?),
        None => {
            let here = std::fs::canonicalize(&root)?;
            if here != std::fs::canonicalize(crate::util::root()?)? {
                bail!("--root other than this repository needs --assets (the build runs here)");
            }
            None
        }
    };
    if let Some(a) = &assets {
        if stage == Stage::Fresh {
            check_manifest_names(&root, a)?;
        } else {
            check_manifests(&root, a)?;
        }
    }
    // the repository the manifests name (where the Actions download binaries from),
    // also without --no-github
    let repo = match &args.github_repo {
        Some(r) => Some(r.clone()),
        None => repository
            .strip_prefix("https://github.com/")
            .map(|r| r.trim_end_matches(".git").trim_end_matches('/').to_owned()),
    };
    if let Some(r) = &repo {
        github::split_repo(r)?;
    }
    let github = if args.no_github {
        None
    } else {
        let repo = repo.clone().with_context(|| {
            format!("the workspace repository {repository} is not on github.com: pass --github-repo OWNER/NAME")
        })?;
        let token = token(GITHUB_TOKEN_VAR);
        if token.is_none() && !args.dry_run {
            bail!(
                "{GITHUB_TOKEN_VAR} is not set: a token with contents: write on {repo} (or pass --no-github)"
            );
        }
        Some(Github {
            api_url: args.github_api_url.clone(),
            repo,
            token,
        })
    };
    let gitlab = if args.no_gitlab {
        None
    } else {
        let project = args
            .gitlab_project
            .clone()
            .context("--gitlab-project ID-or-PATH is required (or pass --no-gitlab)")?;
        let token = token(GITLAB_TOKEN_VAR);
        if token.is_none() && !args.dry_run {
            bail!(
                "{GITLAB_TOKEN_VAR} is not set: a token with the api scope, Developer or more on {project} (or pass --no-gitlab)"
            );
        }
        Some(Gitlab {
            api_url: args.gitlab_api_url.clone(),
            project,
            token,
        })
    };
    let date = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    Ok(Plan {
        root,
        version,
        tag,
        repo,
        workspace_version,
        stage,
        assets,
        github,
        gitlab,
        date,
        notes_lines,
    })
}

/// The dry run's plan.
pub fn describe(plan: &Plan, args: &Args) -> anyhow::Result<String> {
    let v = plan.version.to_string();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "release {v} (tag {}): dry run, nothing changed",
        plan.tag
    );
    let _ = writeln!(s, "1. validate: done");
    let _ = writeln!(
        s,
        "   version {v} (workspace {}), CHANGELOG {} lines of notes{}",
        plan.workspace_version,
        plan.notes_lines,
        if args.allow_dirty {
            ", uncommitted changes allowed"
        } else {
            ", working tree clean"
        }
    );
    match plan.stage {
        Stage::Fresh => {
            let _ = writeln!(s, "2. prepare:");
            let _ = writeln!(
                s,
                "   - Cargo.toml: [workspace.package] version {} -> {v}; Cargo.lock: cargo update --workspace --offline",
                plan.workspace_version
            );
            let _ = writeln!(
                s,
                "   - CHANGELOG.md: the Unreleased entries move under ## [{v}] - {}",
                plan.date
            );
            if plan.assets.is_none() {
                let _ = writeln!(
                    s,
                    "   - assets: cargo xtask dist (both targets) into target/dist"
                );
            }
            for p in manifest_paths(&plan.root)? {
                let rel = p.strip_prefix(&plan.root).unwrap_or(&p);
                let _ = writeln!(
                    s,
                    "   - {}: version {v}, released true, repository, sha256 per asset",
                    rel.display()
                );
            }
            let _ = writeln!(
                s,
                "   - cargo xtask components: the # release: defaults in components/, then templates/"
            );
            let _ = writeln!(
                s,
                "   - git commit -m \"{}\"; git tag -a {}",
                release_subject(&plan.version),
                plan.tag
            );
        }
        Stage::Committed => {
            let _ = writeln!(
                s,
                "2. prepare: HEAD is the release commit; git tag -a {}",
                plan.tag
            );
        }
        Stage::Tagged => {
            let _ = writeln!(
                s,
                "2. prepare: skipped, {} points at HEAD (resuming)",
                plan.tag
            );
        }
    }
    match &args.push {
        Some(r) => {
            let _ = writeln!(
                s,
                "3. push: git push --atomic {r} HEAD:refs/heads/BRANCH refs/tags/{}",
                plan.tag
            );
        }
        None => {
            let _ = writeln!(s, "3. push: skipped (no --push)");
        }
    }
    let empty = Vec::new();
    let assets = plan.assets.as_ref().unwrap_or(&empty);
    if plan.assets.is_some() {
        let _ = writeln!(s, "assets ({}):", assets.len());
        for a in assets {
            let _ = writeln!(s, "   {}  {} bytes  sha256:{}", a.name, a.size, a.sha256);
        }
    } else {
        let _ = writeln!(
            s,
            "assets: built in the prepare step (sizes and checksums known then)"
        );
    }
    let redacted = Secret::new("");
    let commit = git(&plan.root, &["rev-parse", "HEAD"])?.trim().to_owned();
    let commit = match plan.stage {
        Stage::Fresh => "RELEASE_COMMIT".to_owned(),
        _ => commit,
    };
    let name = format!("Custody {v}");
    match &plan.github {
        Some(g) => {
            let _ = writeln!(
                s,
                "4. github {} ({}; token {}):",
                g.repo,
                g.api_url,
                if g.token.is_some() { "set" } else { "NOT SET" }
            );
            let t = github::Target {
                api_url: &g.api_url,
                repo: &g.repo,
                token: &redacted,
                tag: &plan.tag,
                commit: &commit,
                name: &name,
                body: "",
                prerelease: !plan.version.pre.is_empty(),
            };
            for call in github::plan(&t, assets)? {
                let _ = writeln!(s, "   - {call}");
            }
        }
        None => {
            let _ = writeln!(s, "4. github: skipped (--no-github)");
        }
    }
    match &plan.gitlab {
        Some(g) => {
            let _ = writeln!(
                s,
                "5. gitlab {} ({}; token {}):",
                g.project,
                g.api_url,
                if g.token.is_some() { "set" } else { "NOT SET" }
            );
            let t = gitlab::Target {
                api_url: &g.api_url,
                project: &g.project,
                token: &redacted,
                version: &v,
                tag: &plan.tag,
                commit: &commit,
                name: &name,
                description: "",
            };
            for call in gitlab::plan(&t, assets)? {
                let _ = writeln!(s, "   - {call}");
            }
        }
        None => {
            let _ = writeln!(s, "5. gitlab: skipped (--no-gitlab)");
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        let g = Github {
            api_url: "x".into(),
            repo: "a/b".into(),
            token: Some(s),
        };
        assert!(!format!("{g:?}").contains("hunter2"));
    }
}
