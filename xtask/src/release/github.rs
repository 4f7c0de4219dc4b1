//! The GitHub release, through octocrab (REST "Releases" and "Release assets").
//!
//! A release is created as a draft and published only once every asset is on it, so a
//! run that fails halfway leaves a draft the next run finds and finishes. GitHub's
//! `GET /repos/{owner}/{repo}/releases/tags/{tag}` does not return drafts, so a missing
//! release is looked for in the release list (which shows drafts to writers) before one
//! is created.

use anyhow::{Context as _, bail};
use bytes::Bytes;
use octocrab::Octocrab;
use octocrab::models::repos::{Asset as RemoteAsset, Release};

use super::Secret;
use super::assets::Asset;

/// What the GitHub step needs.
#[derive(Debug)]
pub struct Target<'a> {
    pub api_url: &'a str,
    /// `OWNER/NAME`.
    pub repo: &'a str,
    pub token: &'a Secret,
    pub tag: &'a str,
    pub commit: &'a str,
    pub name: &'a str,
    pub body: &'a str,
    /// A semver pre-release (`1.0.0-rc.1`) is marked as a GitHub pre-release.
    pub prerelease: bool,
}

/// What happened, for the summary.
#[derive(Debug, Default)]
pub struct Outcome {
    pub url: String,
    pub uploaded: Vec<String>,
    pub kept: Vec<String>,
    pub replaced: Vec<String>,
    pub published_now: bool,
}

/// github.com's API, whose uploads go to uploads.github.com (octocrab's default).
const TIMEOUT_CONNECT: std::time::Duration = std::time::Duration::from_secs(10);
const TIMEOUT_READ: std::time::Duration = std::time::Duration::from_secs(300);

pub fn split_repo(repo: &str) -> anyhow::Result<(&str, &str)> {
    match repo.split_once('/') {
        Some((o, n)) if !o.is_empty() && !n.is_empty() && !n.contains('/') => Ok((o, n)),
        _ => bail!("--github-repo {repo}: expected OWNER/NAME"),
    }
}

/// The API calls [`publish`] makes, for `--dry-run`.
pub fn plan(t: &Target<'_>, assets: &[Asset]) -> anyhow::Result<Vec<String>> {
    let (owner, name) = split_repo(t.repo)?;
    let r = format!("{}/repos/{owner}/{name}", t.api_url.trim_end_matches('/'));
    let mut v = vec![
        format!("GET {r}/releases/tags/{} (a published release)", t.tag),
        format!(
            "GET {r}/releases (a draft for {}, when none is published)",
            t.tag
        ),
        format!(
            "POST {r}/releases {{tag_name: {}, target_commitish: {}, draft: true}} (when neither exists)",
            t.tag, t.commit
        ),
        format!("GET {r}/releases/RELEASE_ID/assets"),
    ];
    for a in assets {
        v.push(format!(
            "POST UPLOAD_URL?name={} ({} bytes) unless an asset of that name, size and digest is there",
            a.name, a.size
        ));
    }
    v.push(format!(
        "DELETE {r}/releases/assets/ASSET_ID before an upload whose name is taken by a differing asset"
    ));
    v.push(format!(
        "PATCH {r}/releases/RELEASE_ID {{draft: false}} (with target_commitish, name, body) once all {} assets are there",
        assets.len()
    ));
    Ok(v)
}

fn client(t: &Target<'_>) -> anyhow::Result<Octocrab> {
    // octocrab sends the token only to the API and upload hosts: uploads go to
    // uploads.github.com for github.com, to the API's own host on GitHub Enterprise
    // Server (and on the test's loopback server)
    let net = custody_http::net::Net::from_env(&[]).context("network settings")?;
    custody_http::github::octocrab(
        &net,
        &custody_http::github::GitHub {
            api_url: t.api_url,
            upload_url: None,
            token: Some(t.token),
            connect_timeout: TIMEOUT_CONNECT,
            timeout: TIMEOUT_READ,
            user_agent: concat!("custody-release/", env!("CARGO_PKG_VERSION")),
        },
    )
    .with_context(|| format!("--github-api-url {}: building the GitHub client", t.api_url))
}

fn status(e: &octocrab::Error) -> Option<u16> {
    match e {
        octocrab::Error::GitHub { source, .. } => Some(source.status_code.as_u16()),
        _ => None,
    }
}

/// The error text; octocrab errors name the API's message, never the token.
fn why(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            format!("HTTP {}: {}", source.status_code.as_u16(), source.message)
        }
        other => other.to_string(),
    }
}

/// Finds (or creates as a draft) the release, uploads what is missing, then publishes.
pub async fn publish(t: &Target<'_>, assets: &[Asset]) -> anyhow::Result<Outcome> {
    let (owner, name) = split_repo(t.repo)?;
    let gh = client(t)?;
    let repos = gh.repos(owner, name);
    let releases = repos.releases();
    let release = find(&gh, t, owner, name).await?;
    let release = match release {
        Some(r) => {
            eprintln!(
                "  github: release {} found ({})",
                t.tag,
                if r.draft { "draft" } else { "published" }
            );
            r
        }
        None => {
            let r = releases
                .create(t.tag)
                .target_commitish(t.commit)
                .name(t.name)
                .body(t.body)
                .prerelease(t.prerelease)
                .draft(true)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("creating the draft release {}: {}", t.tag, why(&e))
                })?;
            eprintln!("  github: draft release {} created", t.tag);
            r
        }
    };
    let id = release.id.into_inner();
    let mut out = Outcome {
        url: release.html_url.to_string(),
        ..Outcome::default()
    };
    let remote = list_assets(&gh, owner, name, id).await?;
    for a in assets {
        let same_name: Vec<&RemoteAsset> = remote.iter().filter(|r| r.name == a.name).collect();
        if same_name.iter().any(|r| matches_local(r, a)) {
            out.kept.push(a.name.clone());
            continue;
        }
        for stale in &same_name {
            repos
                .release_assets()
                .delete(stale.id.into_inner())
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "asset {}: deleting the differing upload: {}",
                        a.name,
                        why(&e)
                    )
                })?;
            eprintln!(
                "  github: asset {} differed ({} bytes): deleted",
                a.name, stale.size
            );
        }
        let bytes = std::fs::read(&a.path)
            .with_context(|| format!("asset {}: reading {}", a.name, a.path.display()))?;
        let uploaded = releases
            .upload_asset(id, &a.name, Bytes::from(bytes))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("asset {}: upload failed: {}", a.name, why(&e)))?;
        if !matches_local(&uploaded, a) {
            bail!(
                "asset {}: GitHub reports {} bytes ({}) after the upload, expected {} bytes (sha256:{})",
                a.name,
                uploaded.size,
                uploaded.digest.as_deref().unwrap_or("no digest"),
                a.size,
                a.sha256
            );
        }
        eprintln!("  github: asset {} uploaded ({} bytes)", a.name, a.size);
        if same_name.is_empty() {
            out.uploaded.push(a.name.clone());
        } else {
            out.replaced.push(a.name.clone());
        }
    }
    // publish only what is complete: list again and check every asset is there
    let remote = list_assets(&gh, owner, name, id).await?;
    let missing: Vec<&str> = assets
        .iter()
        .filter(|a| {
            !remote
                .iter()
                .any(|r| r.name == a.name && matches_local(r, a))
        })
        .map(|a| a.name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the release {} still lacks {}: left as a draft",
            t.tag,
            missing.join(", ")
        );
    }
    if release.draft {
        // a draft an earlier run (or a person) left may name another commit or notes:
        // publish exactly this release's
        let r = releases
            .update(id)
            .target_commitish(t.commit)
            .name(t.name)
            .body(t.body)
            .draft(false)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("publishing the release {}: {}", t.tag, why(&e)))?;
        if r.draft {
            bail!(
                "publishing the release {}: GitHub still reports a draft",
                t.tag
            );
        }
        out.url = r.html_url.to_string();
        out.published_now = true;
        eprintln!("  github: release {} published", t.tag);
    }
    Ok(out)
}

/// A remote asset is the local file when it is fully uploaded with the same size and,
/// where GitHub reports one, the same digest.
fn matches_local(r: &RemoteAsset, a: &Asset) -> bool {
    let digest_ok = r
        .digest
        .as_deref()
        .is_none_or(|d| d.strip_prefix("sha256:") == Some(a.sha256.as_str()));
    r.state == "uploaded" && u64::try_from(r.size).ok() == Some(a.size) && digest_ok
}

async fn find(
    gh: &Octocrab,
    t: &Target<'_>,
    owner: &str,
    name: &str,
) -> anyhow::Result<Option<Release>> {
    let repos = gh.repos(owner, name);
    match repos.releases().get_by_tag(t.tag).await {
        Ok(r) => return Ok(Some(r)),
        Err(e) if status(&e) == Some(404) => {}
        Err(e) => bail!("looking up the release {}: {}", t.tag, why(&e)),
    }
    let first = repos
        .releases()
        .list()
        .per_page(100)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("listing the releases of {}: {}", t.repo, why(&e)))?;
    let all = gh
        .all_pages(first)
        .await
        .map_err(|e| anyhow::anyhow!("listing the releases of {}: {}", t.repo, why(&e)))?;
    let mut drafts = all.into_iter().filter(|r| r.tag_name == t.tag);
    let found = drafts.next();
    if drafts.next().is_some() {
        bail!(
            "{} has several releases for {}: delete the extra drafts, then rerun",
            t.repo,
            t.tag
        );
    }
    Ok(found)
}

async fn list_assets(
    gh: &Octocrab,
    owner: &str,
    name: &str,
    id: u64,
) -> anyhow::Result<Vec<RemoteAsset>> {
    let first = gh
        .repos(owner, name)
        .releases()
        .assets(id)
        .per_page(100)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("listing the assets of release {id}: {}", why(&e)))?;
    gh.all_pages(first)
        .await
        .map_err(|e| anyhow::anyhow!("listing the assets of release {id}: {}", why(&e)))
}
