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
mod github;
mod gitlab;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use assets::Asset;

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
    #[arg(long, conflicts_with = "assets")]
    key: Option<PathBuf>,
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

fn token(var: &str) -> Option<Secret> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Secret::new(v.trim()))
}

/// How far an earlier run got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nothing of this release exists yet.
    Fresh,
    /// HEAD is the release commit, the tag is missing.
    Committed,
    /// The tag points at HEAD: only pushing and publishing are left.
    Tagged,
}

#[derive(Debug)]
struct Github {
    api_url: String,
    repo: String,
    token: Option<Secret>,
}

#[derive(Debug)]
struct Gitlab {
    api_url: String,
    project: String,
    token: Option<Secret>,
}

/// Everything validated, before anything changes.
#[derive(Debug)]
struct Plan {
    root: PathBuf,
    version: semver::Version,
    tag: String,
    /// OWNER/NAME for the manifests; `None`: keep theirs.
    repo: Option<String>,
    workspace_version: semver::Version,
    stage: Stage,
    /// `None`: built by `cargo xtask dist` in the prepare step.
    assets: Option<Vec<Asset>>,
    github: Option<Github>,
    gitlab: Option<Gitlab>,
    date: String,
    notes_lines: usize,
}

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

fn validate(args: &Args) -> anyhow::Result<Plan> {
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

/// The `[workspace.package]` `version` and `repository` of a root Cargo.toml.
fn workspace_package(cargo_toml: &str) -> anyhow::Result<(semver::Version, String)> {
    let mut in_section = false;
    let (mut version, mut repository) = (None, None);
    for line in cargo_toml.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_section = l == "[workspace.package]";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(v) = string_value(l, "version") {
            version = Some(v);
        } else if let Some(v) = string_value(l, "repository") {
            repository = Some(v);
        }
    }
    let version = version.context("Cargo.toml has no [workspace.package] version")?;
    let version = semver::Version::parse(&version)
        .with_context(|| format!("Cargo.toml: workspace version {version} is not semver"))?;
    Ok((version, repository.unwrap_or_default()))
}

/// `key = "value"` → value.
fn string_value(line: &str, key: &str) -> Option<String> {
    let rest = line
        .strip_prefix(key)?
        .trim_start()
        .strip_prefix('=')?
        .trim();
    let inner = rest.strip_prefix('"')?;
    let end = inner.find('"')?;
    Some(inner.get(..end)?.to_owned())
}

/// Cargo.toml with the `[workspace.package]` version replaced.
fn bump_cargo_toml(text: &str, version: &semver::Version) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut in_section = false;
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let l = line.trim();
        if l.starts_with('[') {
            in_section = l == "[workspace.package]";
        } else if in_section && !done && string_value(l, "version").is_some() {
            let indent = &line[..line.len() - line.trim_start().len()];
            let _ = writeln!(out, "{indent}version = \"{version}\"");
            done = true;
            continue;
        }
        out.push_str(line);
    }
    if !done {
        bail!("Cargo.toml has no [workspace.package] version to bump");
    }
    Ok(out)
}

fn release_subject(version: &semver::Version) -> String {
    format!("Release {version}")
}

/// The release commit or one of the pin commits that follow it (`Release 1.2.3: pin …`).
fn is_release_commit(subject: &str, version: &semver::Version) -> bool {
    let release = release_subject(version);
    subject == release || subject.starts_with(&format!("{release}: "))
}

fn head_subject(root: &Path) -> anyhow::Result<String> {
    Ok(git(root, &["log", "-1", "--format=%s", "HEAD"])?
        .trim()
        .to_owned())
}

/// The commit a tag points at, if the tag exists.
fn tag_commit(root: &Path, tag: &str) -> anyhow::Result<Option<String>> {
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

fn git(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    crate::util::output(Command::new("git").current_dir(root).args(args))
}

/// The binary manifest of one step (`actions/<step>/manifest.json`).
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    version: String,
    released: bool,
    repository: String,
    assets: std::collections::BTreeMap<String, ManifestAsset>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestAsset {
    name: String,
    sha256: Option<String>,
}

fn manifest_paths(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join("actions");
    let mut v = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = entry?.path().join("manifest.json");
        if p.is_file() {
            v.push(p);
        }
    }
    v.sort();
    if v.is_empty() {
        bail!("no actions/*/manifest.json under {}", root.display());
    }
    Ok(v)
}

fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a binary manifest", path.display()))
}

/// Writes version, `released`, repository and every asset's SHA-256 into the manifests.
fn write_manifests(plan: &Plan, repo: &str, assets: &[Asset]) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for path in manifest_paths(&plan.root)? {
        let mut m = read_manifest(&path)?;
        m.version = plan.version.to_string();
        m.released = true;
        m.repository = repo.to_owned();
        for (target, a) in &mut m.assets {
            let found = assets.iter().find(|x| x.name == a.name).with_context(|| {
                format!(
                    "{}: names asset {} ({target}) which the release does not have",
                    path.display(),
                    a.name
                )
            })?;
            a.sha256 = Some(found.sha256.clone());
        }
        let mut text = serde_json::to_string_pretty(&m)?;
        text.push('\n');
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// On resume: the committed manifests must name exactly these assets' checksums.
fn check_manifests(root: &Path, assets: &[Asset]) -> anyhow::Result<()> {
    for path in manifest_paths(root)? {
        let m = read_manifest(&path)?;
        for a in m.assets.values() {
            let found = assets.iter().find(|x| x.name == a.name);
            match (found, &a.sha256) {
                (Some(f), Some(sha)) if &f.sha256 == sha => {}
                (Some(f), _) => bail!(
                    "asset {}: sha256 {} differs from the committed {} ({}): these are not the assets this release was prepared with",
                    a.name,
                    f.sha256,
                    path.display(),
                    a.sha256.as_deref().unwrap_or("null")
                ),
                (None, _) => bail!(
                    "asset {}: named by {} but not among the assets",
                    a.name,
                    path.display()
                ),
            }
        }
    }
    Ok(())
}

/// Before preparing: every binary a manifest names is among the assets.
fn check_manifest_names(root: &Path, assets: &[Asset]) -> anyhow::Result<()> {
    for path in manifest_paths(root)? {
        for a in read_manifest(&path)?.assets.values() {
            if !assets.iter().any(|x| x.name == a.name) {
                bail!(
                    "asset {}: named by {} but not among the assets (SHA256SUMS): build every target",
                    a.name,
                    path.display()
                );
            }
        }
    }
    Ok(())
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
            let _ = Command::new("git")
                .current_dir(root)
                .args(["checkout", "HEAD", "--"])
                .args(RELEASE_PATHS)
                .status();
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

fn read_manifest_repo(root: &Path) -> anyhow::Result<String> {
    let first = manifest_paths(root)?
        .into_iter()
        .next()
        .context("no manifest")?;
    Ok(read_manifest(&first)?.repository)
}

/// The annotated tag; its message carries the release notes, which the GitLab catalog
/// job uses as the release description (`$CI_COMMIT_TAG_MESSAGE`).
fn tag(plan: &Plan) -> anyhow::Result<()> {
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

fn push(plan: &Plan, remote: &str) -> anyhow::Result<()> {
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

/// The dry run's plan.
fn describe(plan: &Plan, args: &Args) -> anyhow::Result<String> {
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
    fn workspace_version_is_read_and_bumped_in_its_section_only() {
        let text = "[workspace]\nmembers = []\n\n[workspace.package]\nversion = \"0.1.0\"\nrepository = \"https://github.com/acme/custody\"\n\n[workspace.dependencies]\nx = { version = \"1\" }\nsemver = \"1\"\n";
        let (v, repo) = workspace_package(text).unwrap();
        assert_eq!(v.to_string(), "0.1.0");
        assert_eq!(repo, "https://github.com/acme/custody");
        let bumped = bump_cargo_toml(text, &semver::Version::new(0, 2, 0)).unwrap();
        assert_eq!(
            bumped,
            text.replace("version = \"0.1.0\"", "version = \"0.2.0\"")
        );
        assert!(bump_cargo_toml("[package]\nversion = \"1.0.0\"\n", &v).is_err());
    }

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
