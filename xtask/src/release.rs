//! `cargo xtask release VERSION`: cut a release, in steps that each pick up where an
//! earlier run stopped, so rerunning the same command after any failure finishes it.
//!
//! 1. **validate** — VERSION is semver and above the workspace version (equal only when
//!    resuming: the tag `vVERSION` points at HEAD, or HEAD is the release commit); the
//!    working tree is clean; CHANGELOG.md has Unreleased entries; every asset matches
//!    `SHA256SUMS`. Nothing is written or sent before this passes.
//! 2. **prepare** (skipped when resuming) — the `[workspace.package]` version in
//!    Cargo.toml and Cargo.lock (`cargo update -w --offline`), CHANGELOG's Unreleased
//!    entries under `## [VERSION] - DATE`, the assets (`cargo xtask dist`, or `--assets
//!    DIR`), `actions/*/manifest.json` (version, `released`, repository, SHA-256 per
//!    asset), the components' `# release:` defaults and `templates/`
//!    (`cargo xtask components`); one commit "Release VERSION", then the commits that
//!    pin the workflows' and docs' references to Custody by SHA (`cargo xtask pin`), and
//!    the annotated tag on the last.
//! 3. **push** (with `--push REMOTE`) — the branch and the tag, atomically.
//! 4. **github** — a draft release, each missing asset uploaded, published last.
//! 5. **gitlab** — the generic package `custody/VERSION`, then the release with one
//!    link per asset.
//!
//! `--dry-run` prints every step, asset and API call and changes nothing: no file, no
//! git change, no request. Tokens come from `CUSTODY_RELEASE_GITHUB_TOKEN` and
//! `CUSTODY_RELEASE_GITLAB_TOKEN` (declared in `custody_platform::env_vars`) and are
//! never printed. Progress goes to stderr, the summary (or the plan) to stdout.

mod assets;
mod changelog;
mod git;
mod github;
mod gitlab;
mod manifests;
mod plan;

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use assets::Asset;
use git::{git, push, release_subject, tag};
use manifests::{bump_cargo_toml, check_manifests, read_manifest_repo, write_manifests};
use plan::{Plan, Stage, describe, validate};

/// A GitHub token with `contents: write` on the repository.
pub const GITHUB_TOKEN_VAR: &str = "CUSTODY_RELEASE_GITHUB_TOKEN";
/// A GitLab token with the `api` scope, Developer or more on the project.
pub const GITLAB_TOKEN_VAR: &str = "CUSTODY_RELEASE_GITLAB_TOKEN";

/// Files the prepare step changes (what its commit holds).
const RELEASE_PATHS: [&str; 6] = [
    "Cargo.toml",
    "Cargo.lock",
    "CHANGELOG.md",
    "actions",
    "components",
    "templates",
];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The version to release (semver, without a leading `v`), e.g. 0.2.0.
    version: String,
    /// The GitHub REST API.
    #[arg(long, default_value = "https://api.github.com")]
    github_api_url: String,
    /// OWNER/NAME of the GitHub repository; default: the workspace `repository`.
    #[arg(long)]
    github_repo: Option<String>,
    /// The GitLab REST API root.
    #[arg(long, default_value = "https://gitlab.com/api/v4")]
    gitlab_api_url: String,
    /// GitLab project id or path (group/project); required unless --no-gitlab.
    #[arg(long)]
    gitlab_project: Option<String>,
    /// Do not publish to GitHub.
    #[arg(long)]
    no_github: bool,
    /// Do not publish to GitLab.
    #[arg(long)]
    no_gitlab: bool,
    /// Take the assets from DIR (SHA256SUMS and the files it names, as `cargo xtask dist`
    /// writes them) instead of building them.
    #[arg(long, value_name = "DIR")]
    assets: Option<PathBuf>,
    /// The provenance signing key for the build (`cargo xtask dist --key`).
    #[arg(long, conflicts_with = "assets", value_name = "FILE|URI")]
    key: Option<String>,
    /// Push the current branch and the tag to REMOTE before publishing.
    #[arg(long, value_name = "REMOTE")]
    push: Option<String>,
    /// Print the plan; change nothing, send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Allow uncommitted changes (tests); the release commit holds only its own files.
    #[arg(long)]
    allow_dirty: bool,
    /// The repository to release (tests point it at a copy).
    #[arg(long, hide = true, default_value = ".")]
    root: PathBuf,
}

/// A token that never reaches `Debug`, `Display` or a message: Custody's one `Secret`.
pub use custody_http::Secret;

pub fn run(args: &Args) -> anyhow::Result<()> {
    eprintln!("[1/5] validate");
    let plan = validate(args)?;
    if args.dry_run {
        print!("{}", describe(&plan, args)?);
        return Ok(());
    }
    let v = plan.version.to_string();
    let resumes = |step: &str| {
        format!(
            "release {v}: the {step} step failed; fix the cause and rerun the same command: it resumes where this run stopped"
        )
    };
    let assets = prepare(&plan, args).with_context(|| resumes("prepare"))?;
    let commit = git(&plan.root, &["rev-parse", "HEAD"])?.trim().to_owned();
    match &args.push {
        Some(remote) => {
            eprintln!("[3/5] push to {remote}");
            push(&plan, remote).with_context(|| resumes("push"))?;
        }
        None => eprintln!("[3/5] push: skipped (no --push)"),
    }
    let changelog_text =
        std::fs::read_to_string(plan.root.join("CHANGELOG.md")).context("reading CHANGELOG.md")?;
    let notes = changelog::released(&changelog_text, &v)
        .with_context(|| format!("CHANGELOG.md has no `## [{v}]` section at {}", plan.tag))?;
    let name = format!("Custody {v}");
    let mut summary = format!("released {v}: tag {} at {commit}\n", plan.tag);
    match &plan.github {
        Some(g) => {
            eprintln!("[4/5] github: {}", g.repo);
            let token = g.token.as_ref().context("no GitHub token")?;
            let t = github::Target {
                api_url: &g.api_url,
                repo: &g.repo,
                token,
                tag: &plan.tag,
                commit: &commit,
                name: &name,
                body: &notes,
                prerelease: !plan.version.pre.is_empty(),
            };
            let o = block_on(github::publish(&t, &assets)).with_context(|| resumes("github"))?;
            let _ = writeln!(
                summary,
                "github: {} ({} uploaded, {} replaced, {} already there{})",
                o.url,
                o.uploaded.len(),
                o.replaced.len(),
                o.kept.len(),
                if o.published_now {
                    "; published"
                } else {
                    "; was already published"
                }
            );
        }
        None => eprintln!("[4/5] github: skipped (--no-github)"),
    }
    match &plan.gitlab {
        Some(g) => {
            eprintln!("[5/5] gitlab: {}", g.project);
            let token = g.token.as_ref().context("no GitLab token")?;
            let t = gitlab::Target {
                api_url: &g.api_url,
                project: &g.project,
                token,
                version: &v,
                tag: &plan.tag,
                commit: &commit,
                name: &name,
                description: &notes,
            };
            let o = block_on(gitlab::publish(&t, &assets)).with_context(|| resumes("gitlab"))?;
            let _ = writeln!(
                summary,
                "gitlab: {} package {}/{v} ({} uploaded, {} already there); release {} ({} links added)",
                g.project,
                gitlab::PACKAGE,
                o.uploaded.len(),
                o.kept.len(),
                if o.release_created {
                    "created"
                } else {
                    "existed"
                },
                o.links_added.len()
            );
        }
        None => eprintln!("[5/5] gitlab: skipped (--no-gitlab)"),
    }
    print!("{summary}");
    Ok(())
}

fn block_on<F: Future>(f: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        // building a current-thread runtime only fails when the OS refuses a timer or
        // an I/O driver; there is nothing to release without one
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            std::process::exit(1)
        }
    }
}

/// The release's assets: the validated `--assets`, or a fresh `cargo xtask dist`.
fn build_assets(plan: &Plan, args: &Args) -> anyhow::Result<Vec<Asset>> {
    if let Some(a) = &plan.assets {
        return Ok(a.clone());
    }
    eprintln!("  building the assets (cargo xtask dist)");
    let d = crate::dist::dist(&crate::dist::Options {
        targets: crate::dist::Target::ALL.to_vec(),
        out: plan.root.join("target/dist"),
        key: args.key.clone(),
        target_dir: None,
    })?;
    assets::read(&d.out)
}

fn prepare(plan: &Plan, args: &Args) -> anyhow::Result<Vec<Asset>> {
    let root = &plan.root;
    let v = &plan.version;
    match plan.stage {
        Stage::Tagged => {
            eprintln!("[2/5] prepare: {} exists at HEAD, resuming", plan.tag);
            let a = build_assets(plan, args)?;
            check_manifests(root, &a)?;
            return Ok(a);
        }
        Stage::Committed => {
            eprintln!("[2/5] prepare: HEAD is the release commit, pinning and tagging");
            let a = build_assets(plan, args)?;
            check_manifests(root, &a)?;
            crate::pin::pin(root, &format!("{}: ", release_subject(v)))?;
            tag(plan)?;
            return Ok(a);
        }
        Stage::Fresh => eprintln!("[2/5] prepare {v}"),
    }
    let restore = || {
        if !args.allow_dirty {
            git::restore(root, &RELEASE_PATHS);
        }
    };
    let result = prepare_files(plan, args);
    let assets = match result {
        Ok(a) => a,
        Err(e) => {
            restore();
            return Err(e.context(if args.allow_dirty {
                "the release files may be half-changed: restore them with `git checkout HEAD -- Cargo.toml Cargo.lock CHANGELOG.md actions components templates`"
            } else {
                "the release files were restored to HEAD"
            }));
        }
    };
    tag(plan)?;
    Ok(assets)
}

/// The fresh prepare step's changes and commit.
fn prepare_files(plan: &Plan, args: &Args) -> anyhow::Result<Vec<Asset>> {
    let root = &plan.root;
    let v = &plan.version;
    let cargo_toml = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&cargo_toml)?;
    std::fs::write(&cargo_toml, bump_cargo_toml(&text, v)?)?;
    crate::util::run(crate::util::cargo().current_dir(root).args([
        "update",
        "--workspace",
        "--offline",
    ]))
    .context("updating Cargo.lock")?;
    let changelog_path = root.join("CHANGELOG.md");
    let text = std::fs::read_to_string(&changelog_path)?;
    std::fs::write(
        &changelog_path,
        changelog::release(&text, &v.to_string(), &plan.date)?,
    )?;
    eprintln!("  Cargo.toml, Cargo.lock and CHANGELOG.md at {v}");
    let assets = build_assets(plan, args)?;
    let repo = match &plan.repo {
        Some(r) => r.clone(),
        None => read_manifest_repo(root)?,
    };
    let written = write_manifests(plan, &repo, &assets)?;
    eprintln!("  {} manifests carry the checksums", written.len());
    crate::components::render_all(root, false)?;
    git(root, &[&["add", "--"][..], &RELEASE_PATHS[..]].concat())?;
    git(
        root,
        &["commit", "-q", "-m", &release_subject(v), "--"]
            .into_iter()
            .chain(RELEASE_PATHS)
            .collect::<Vec<_>>(),
    )?;
    // the workflows and docs call the released actions by this commit's SHA (a chain of
    // commits: a file cannot name the commit that holds it); the tag goes on the last
    crate::pin::pin(root, &format!("{}: ", release_subject(v)))?;
    Ok(assets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_read_is_declared() {
        let declared = include_str!("../../crates/custody-platform/src/env_vars.rs");
        for var in [GITHUB_TOKEN_VAR, GITLAB_TOKEN_VAR] {
            assert!(
                declared.contains(&format!("pub const {var}: &str = \"{var}\";")),
                "{var} is not declared in custody_platform::env_vars"
            );
        }
    }
}
