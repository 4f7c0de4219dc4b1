//! The GitLab side, through the `gitlab` crate's endpoints (REST v4): the assets go to
//! the generic package registry (`custody/VERSION/FILE`), then a release for the tag
//! links one asset per file. The catalog itself is published by the `.gitlab-ci.yml`
//! job with the `release:` keyword when the tag reaches GitLab.
//!
//! Endpoints (response shapes in `xtask/tests/data/release/gitlab/`):
//! - `GET /projects/:id/packages?package_name=&package_version=` (`Packages`)
//! - `GET /projects/:id/packages/:package_id/package_files` (`PackageFiles`)
//! - `PUT /projects/:id/packages/generic/custody/:version/:file` (`UploadPackageFile`)
//! - `GET /projects/:id/releases/:tag` (`ProjectReleaseByTag`), `POST /projects/:id/releases`
//!   (`CreateRelease`), `GET|POST /projects/:id/releases/:tag/assets/links`
//!   (`ListReleaseLinks`, `CreateReleaseLink`), `PUT …/links/:link_id` (`UpdateReleaseLink`)
//!
//! The crate has endpoints but no response types: the structs below hold only the fields
//! used. Requests go through Custody's one GitLab client (`custody_http::gitlab`): the
//! token goes only to the API URL given, no redirect is followed, POST is never retried,
//! and errors never carry the token.

use std::borrow::Cow;

use anyhow::{Context as _, bail};
use custody_http::gitlab::{Client as Api, ClientError, Config as ClientConfig, Redirects, Token};
use gitlab::api::common::NameOrId;
use gitlab::api::projects::packages::Packages;
use gitlab::api::projects::packages::generic::UploadPackageFile;
use gitlab::api::projects::packages::package_files::PackageFiles;
use gitlab::api::projects::releases::links::{
    CreateReleaseLink, LinkType, ListReleaseLinks, UpdateReleaseLink,
};
use gitlab::api::projects::releases::{
    CreateRelease, CreateReleaseAssetLinks, ProjectReleaseByTag,
};
use gitlab::api::{ApiError, AsyncQuery as _, Endpoint, Pagination};
use serde::Deserialize;
use url::Url;

use super::Secret;
use super::assets::Asset;

/// The generic package the assets go to.
pub const PACKAGE: &str = "custody";

/// What the GitLab step needs.
#[derive(Debug)]
pub struct Target<'a> {
    /// The API root, e.g. `https://gitlab.com/api/v4`.
    pub api_url: &'a str,
    /// Project id or `group/project`.
    pub project: &'a str,
    pub token: &'a Secret,
    pub version: &'a str,
    pub tag: &'a str,
    pub commit: &'a str,
    pub name: &'a str,
    pub description: &'a str,
}

/// What happened, for the summary.
#[derive(Debug, Default)]
pub struct Outcome {
    pub uploaded: Vec<String>,
    pub kept: Vec<String>,
    pub release_created: bool,
    pub links_added: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct PackageJson {
    id: u64,
    name: String,
    version: String,
    package_type: String,
}

#[derive(Debug, Deserialize)]
struct PackageFileJson {
    file_name: String,
    file_sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReleaseJson {
    tag_name: String,
}

#[derive(Debug, Deserialize)]
struct LinkJson {
    id: u64,
    name: String,
    url: String,
}

fn base(api_url: &str) -> anyhow::Result<Url> {
    let mut base =
        Url::parse(api_url).with_context(|| format!("--gitlab-api-url {api_url}: not a URL"))?;
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    Ok(base)
}

/// The download URL of one package file: what the release links point at.
pub fn file_url(t: &Target<'_>, file: &str) -> anyhow::Result<String> {
    let project = NameOrId::from(t.project);
    Ok(base(t.api_url)?
        .join(&format!(
            "projects/{project}/packages/generic/{PACKAGE}/{}/{}",
            gitlab::api::common::path_escaped(t.version),
            gitlab::api::common::path_escaped(file)
        ))?
        .to_string())
}

/// The API calls [`publish`] makes, for `--dry-run`.
pub fn plan(t: &Target<'_>, assets: &[Asset]) -> anyhow::Result<Vec<String>> {
    let b = base(t.api_url)?;
    let p = format!("{b}projects/{}", NameOrId::from(t.project));
    let mut v = vec![
        format!(
            "GET {p}/packages?package_name={PACKAGE}&package_version={} (the generic package)",
            t.version
        ),
        format!("GET {p}/packages/PACKAGE_ID/package_files (when the package exists)"),
    ];
    for a in assets {
        v.push(format!(
            "PUT {p}/packages/generic/{PACKAGE}/{}/{} ({} bytes) unless a file of that name has sha256 {}",
            t.version, a.name, a.size, a.sha256
        ));
    }
    v.push(format!("GET {p}/releases/{}", t.tag));
    v.push(format!(
        "POST {p}/releases {{tag_name: {}, ref: {}, assets.links: {} links}} when there is none; \
         else GET {p}/releases/{}/assets/links and POST/PUT …/assets/links for each missing or stale link",
        t.tag,
        t.commit,
        assets.len(),
        t.tag
    ));
    Ok(v)
}

fn is_not_found(e: &ApiError<ClientError>) -> bool {
    matches!(e, ApiError::GitlabWithStatus { status, .. } | ApiError::GitlabObjectWithStatus { status, .. } | ApiError::GitlabUnrecognizedWithStatus { status, .. } if *status == http::StatusCode::NOT_FOUND)
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("building a GitLab request: {e}"))
}

/// Sends a request whose answer is not needed; `what` names it in the error.
async fn send<E: Endpoint + Sync>(api: &Api, ep: E, what: &str) -> anyhow::Result<()> {
    gitlab::api::ignore(ep)
        .query_async(api)
        .await
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// Uploads what the package lacks, then creates the release or completes its links.
pub async fn publish(t: &Target<'_>, assets: &[Asset]) -> anyhow::Result<Outcome> {
    let api = Api::new(
        base(t.api_url)?,
        Some(Token::private(t.token.expose())),
        &custody_http::net::Net::from_env(&[]).context("network settings")?,
        ClientConfig {
            redirects: Redirects::Refuse,
            https_only: false,
            user_agent: concat!("custody-release/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        },
    )
    .context("building the GitLab client")?;
    let project = || NameOrId::from(t.project);
    let mut out = Outcome::default();

    // the package's files, when the package exists
    let ep = built(
        Packages::builder()
            .project(project())
            .package_name(PACKAGE)
            .package_version(t.version)
            .build(),
    )?;
    let packages: Vec<PackageJson> = gitlab::api::paged(ep, Pagination::All)
        .query_async(&api)
        .await
        .map_err(|e| anyhow::anyhow!("listing the packages of {}: {e}", t.project))?;
    let mut files: Vec<PackageFileJson> = Vec::new();
    for p in packages
        .iter()
        .filter(|p| p.name == PACKAGE && p.version == t.version && p.package_type == "generic")
    {
        let ep = built(
            PackageFiles::builder()
                .project(project())
                .package_id(p.id)
                .build(),
        )?;
        let mut more: Vec<PackageFileJson> = gitlab::api::paged(ep, Pagination::All)
            .query_async(&api)
            .await
            .map_err(|e| anyhow::anyhow!("listing the files of package {}: {e}", p.id))?;
        files.append(&mut more);
    }
    for a in assets {
        let present = files
            .iter()
            .any(|f| f.file_name == a.name && f.file_sha256.as_deref() == Some(a.sha256.as_str()));
        if present {
            out.kept.push(a.name.clone());
            continue;
        }
        let bytes = std::fs::read(&a.path)
            .with_context(|| format!("asset {}: reading {}", a.name, a.path.display()))?;
        let ep = built(
            UploadPackageFile::builder()
                .project(project())
                .package_name(PACKAGE)
                .package_version(t.version)
                .file_name(a.name.as_str())
                .contents(Cow::Owned(bytes))
                .build(),
        )?;
        send(
            &api,
            ep,
            &format!("asset {}: package upload failed", a.name),
        )
        .await?;
        eprintln!(
            "  gitlab: asset {} uploaded to the package registry ({} bytes)",
            a.name, a.size
        );
        out.uploaded.push(a.name.clone());
    }

    // the release and its links
    let ep = built(
        ProjectReleaseByTag::builder()
            .project(project())
            .tag(t.tag)
            .build(),
    )?;
    let existing: Result<ReleaseJson, _> = ep.query_async(&api).await;
    let links: Vec<(String, String)> = assets
        .iter()
        .map(|a| Ok((a.name.clone(), file_url(t, &a.name)?)))
        .collect::<anyhow::Result<_>>()?;
    match existing {
        Ok(r) => {
            eprintln!("  gitlab: release {} found", r.tag_name);
            let ep = built(
                ListReleaseLinks::builder()
                    .project(project())
                    .tag_name(t.tag)
                    .build(),
            )?;
            let have: Vec<LinkJson> = gitlab::api::paged(ep, Pagination::All)
                .query_async(&api)
                .await
                .map_err(|e| anyhow::anyhow!("listing the links of release {}: {e}", t.tag))?;
            for (name, url) in &links {
                match have.iter().find(|l| &l.name == name) {
                    Some(l) if &l.url == url => continue,
                    Some(l) => {
                        let ep = built(
                            UpdateReleaseLink::builder()
                                .project(project())
                                .tag_name(t.tag)
                                .link_id(l.id)
                                .url(url.as_str())
                                .build(),
                        )?;
                        send(
                            &api,
                            ep,
                            &format!("asset {name}: updating its release link"),
                        )
                        .await?;
                    }
                    None => {
                        let ep = built(
                            CreateReleaseLink::builder()
                                .project(project())
                                .tag_name(t.tag)
                                .name(name.as_str())
                                .url(url.as_str())
                                .link_type(LinkType::Package)
                                .build(),
                        )?;
                        send(&api, ep, &format!("asset {name}: adding its release link")).await?;
                    }
                }
                out.links_added.push(name.clone());
            }
        }
        Err(e) if is_not_found(&e) => {
            let mut b = CreateRelease::builder();
            b.project(project())
                .tag_name(t.tag)
                .name(t.name)
                .description(t.description)
                .ref_sha(t.commit);
            for (name, url) in &links {
                b.asset(built(
                    CreateReleaseAssetLinks::builder()
                        .name(name.as_str())
                        .url(url.as_str())
                        .link_type(LinkType::Package)
                        .build(),
                )?);
            }
            let ep = built(b.build())?;
            let created: ReleaseJson = ep
                .query_async(&api)
                .await
                .map_err(|e| anyhow::anyhow!("creating the GitLab release {}: {e}", t.tag))?;
            if created.tag_name != t.tag {
                bail!(
                    "GitLab created a release for {}, not {}",
                    created.tag_name,
                    t.tag
                );
            }
            eprintln!(
                "  gitlab: release {} created with {} links",
                t.tag,
                links.len()
            );
            out.release_created = true;
            out.links_added = links.into_iter().map(|(n, _)| n).collect();
        }
        Err(e) => bail!("looking up the GitLab release {}: {e}", t.tag),
    }
    Ok(out)
}
