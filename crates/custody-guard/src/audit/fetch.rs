//! Fetching the runner inventory with an administrator's token (feature `audit`).
//!
//! - GitHub through octocrab: `GET /orgs/{org}/actions/runner-groups` ("List self-hosted runner
//!   groups for an organization") and `GET /orgs/{org}/actions/runner-groups/{id}/runners`
//!   ("List self-hosted runners in a group for an organization"), 100 per page. octocrab's typed
//!   runner model has no `ephemeral` field and its group-runners call returns untyped JSON, so
//!   the responses are read into our own structs through its generic `get`. Built without
//!   octocrab's `follow-redirect` and `retry` features: a redirect is an error, so the token is
//!   never sent to another host.
//! - GitLab through the `gitlab` crate's `AllRunners` and `Runner` endpoints (it ships no
//!   response types: the structs are ours), over a small client of our own
//!   ([`GitLabApi`]): timeouts, no redirects, the token in a sensitive header only.
//!
//! The API base URLs come from the tier model (`trust.*.api_url`) or a flag, and follow the
//! model's rule: `https://`, or plain `http://` for loopback hosts only. Tokens are
//! [`Secret`]s; no error message carries one.

use std::time::Duration;

use custody_http::gitlab::{
    Client as GitLabApi, ClientError as GitLabClientError, Config as GitLabConfig, Redirects, Token,
};
use custody_http::net::Net;
use gitlab::api::{self as glapi, ApiError, AsyncQuery as _, Pagination};
use serde::Deserialize;
use thiserror::Error;
use url::Url;

use super::{GitHubGroup, GitHubInventory, GitHubRunner, GitLabRunner, Inventory};
use crate::platform::segment;
use crate::secret::Secret;
use crate::tier::pinned_url_problem;

/// Most pages read from one listing: 100 pages of 100 is far beyond any real organization,
/// and bounds a server that never stops answering.
const MAX_PAGES: u32 = 100;

/// Where and how to audit GitHub.
#[derive(Debug, Clone)]
pub struct GitHubSource {
    /// REST API base, e.g. `https://api.github.com`.
    pub api_url: String,
    pub org: String,
    /// Needs `admin:org` (classic) or the organization permission "Self-hosted runners: read".
    pub token: Secret,
}

/// Where and how to audit GitLab.
#[derive(Debug, Clone)]
pub struct GitLabSource {
    /// Instance URL without `/api/v4`, e.g. `https://gitlab.example.com`.
    pub api_url: String,
    /// An administrator's (or auditor's) token: `GET /runners/all` needs it.
    pub token: Secret,
}

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditSources {
    pub github: Option<GitHubSource>,
    pub gitlab: Option<GitLabSource>,
    /// Per request.
    pub timeout: Duration,
    /// Trusted roots and proxy.
    pub net: Net,
}

/// The inventory could not be fetched.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("{url}: {problem}")]
    Url { url: String, problem: String },
    #[error("github {url}: {reason}")]
    GitHub { url: String, reason: String },
    #[error("gitlab {url}: {reason}")]
    GitLab { url: String, reason: String },
}

/// Fetches every platform `sources` names.
pub async fn collect(sources: &AuditSources) -> Result<Inventory, FetchError> {
    let github = match &sources.github {
        Some(gh) => Some(github(gh, sources.timeout, &sources.net).await?),
        None => None,
    };
    let gitlab = match &sources.gitlab {
        Some(gl) => Some(gitlab(gl, sources.timeout, &sources.net).await?),
        None => None,
    };
    Ok(Inventory { github, gitlab })
}

fn check_url(url: &str) -> Result<(), FetchError> {
    match pinned_url_problem(url) {
        Some(problem) => Err(FetchError::Url {
            url: url.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// GitHub

#[derive(Deserialize)]
struct GroupsPage {
    #[serde(default)]
    total_count: u64,
    runner_groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
struct RawGroup {
    id: u64,
    name: String,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    default: Option<bool>,
    #[serde(default)]
    allows_public_repositories: Option<bool>,
    #[serde(default)]
    restricted_to_workflows: Option<bool>,
    #[serde(default)]
    selected_workflows: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RunnersPage {
    #[serde(default)]
    total_count: u64,
    runners: Vec<RawRunner>,
}

#[derive(Deserialize)]
struct RawRunner {
    id: u64,
    name: String,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    ephemeral: Option<bool>,
    #[serde(default)]
    labels: Vec<RawLabel>,
}

#[derive(Deserialize)]
struct RawLabel {
    name: String,
}

fn github_reason(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let hint = match status {
                401 => " (the token was refused: check CUSTODY_GITHUB_ADMIN_TOKEN)",
                403 | 404 => {
                    " (the token needs `admin:org`, or the fine-grained organization permission \"Self-hosted runners: read\", on this organization)"
                }
                _ => "",
            };
            format!("HTTP {status}: {}{hint}", source.message)
        }
        // octocrab appends a backtrace to some messages: keep the first line. Its errors
        // describe the transport and GitHub's answer; they never hold the token.
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Reads every page of a GitHub listing of `T`, `per_page=100`.
async fn github_pages<T, P>(
    crab: &octocrab::Octocrab,
    url_for_errors: &str,
    route: &str,
    mut take: impl FnMut(P) -> (u64, Vec<T>),
) -> Result<Vec<T>, FetchError>
where
    P: serde::de::DeserializeOwned,
{
    let mut all = Vec::new();
    for page in 1..=MAX_PAGES {
        let params = [("per_page", "100".to_owned()), ("page", page.to_string())];
        let body: P = crab
            .get(route, Some(params.as_slice()))
            .await
            .map_err(|e| FetchError::GitHub {
                url: url_for_errors.to_owned(),
                reason: github_reason(&e),
            })?;
        let (total, items) = take(body);
        let empty = items.is_empty();
        all.extend(items);
        if empty || all.len() as u64 >= total {
            break;
        }
    }
    Ok(all)
}

async fn github(
    src: &GitHubSource,
    timeout: Duration,
    net: &Net,
) -> Result<GitHubInventory, FetchError> {
    check_url(&src.api_url)?;
    let base = src.api_url.trim_end_matches('/');
    let setup = |reason: String| FetchError::GitHub {
        url: base.to_owned(),
        reason,
    };
    let crab = custody_http::github::octocrab(
        net,
        &custody_http::github::GitHub {
            api_url: base,
            upload_url: None,
            token: Some(&src.token),
            connect_timeout: timeout,
            timeout,
            user_agent: concat!("custody-runner-audit/", env!("CARGO_PKG_VERSION")),
        },
    )
    .map_err(|e| setup(e.to_string()))?;
    let org = segment(&src.org);
    let route = format!("/orgs/{org}/actions/runner-groups");
    let raw_groups = github_pages(&crab, &format!("{base}{route}"), &route, |p: GroupsPage| {
        (p.total_count, p.runner_groups)
    })
    .await?;
    let mut groups = Vec::with_capacity(raw_groups.len());
    for g in raw_groups {
        let route = format!("/orgs/{org}/actions/runner-groups/{}/runners", g.id);
        let runners = github_pages(
            &crab,
            &format!("{base}{route}"),
            &route,
            |p: RunnersPage| (p.total_count, p.runners),
        )
        .await?;
        groups.push(GitHubGroup {
            id: g.id,
            name: g.name,
            visibility: g.visibility.unwrap_or_else(|| "all".into()),
            default: g.default.unwrap_or(false),
            // Absent means the API did not say: assume the open setting, never the safe one.
            allows_public_repositories: g.allows_public_repositories.unwrap_or(true),
            restricted_to_workflows: g.restricted_to_workflows.unwrap_or(false),
            selected_workflows: g.selected_workflows.unwrap_or_default(),
            runners: runners
                .into_iter()
                .map(|r| GitHubRunner {
                    id: r.id,
                    name: r.name,
                    os: r.os,
                    status: r.status,
                    ephemeral: r.ephemeral,
                    labels: r.labels.into_iter().map(|l| l.name).collect(),
                })
                .collect(),
        });
    }
    Ok(GitHubInventory {
        org: src.org.clone(),
        groups,
    })
}

// ---------------------------------------------------------------------------------------
// GitLab

/// One entry of `GET /runners/all` (GitLab "List all runners").
#[derive(Deserialize)]
struct ListedRunner {
    id: u64,
}

/// `GET /runners/:id` (GitLab "Get runner's details"; `API::Entities::Ci::RunnerDetails`).
#[derive(Deserialize)]
struct RunnerDetails {
    id: u64,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    runner_type: Option<String>,
    #[serde(default)]
    is_shared: Option<bool>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    access_level: Option<String>,
    #[serde(default)]
    locked: Option<bool>,
    #[serde(default)]
    run_untagged: Option<bool>,
    #[serde(default)]
    tag_list: Vec<String>,
    #[serde(default)]
    projects: Vec<ProjectRef>,
    #[serde(default)]
    groups: Vec<GroupRef>,
}

#[derive(Deserialize)]
struct ProjectRef {
    #[serde(default)]
    path_with_namespace: Option<String>,
    #[serde(default)]
    id: Option<u64>,
}

#[derive(Deserialize)]
struct GroupRef {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<u64>,
}

/// The GitLab client `custody runners audit` uses: Custody's one GitLab client
/// (`custody_http::gitlab`), on `<instance>/api/v4/`, with an admin token that must not
/// follow a redirect anywhere.
fn gitlab_api(
    api_url: &str,
    token: &Secret,
    timeout: Duration,
    net: &Net,
) -> Result<GitLabApi, FetchError> {
    check_url(api_url)?;
    let err = |problem: String| FetchError::Url {
        url: api_url.to_owned(),
        problem,
    };
    let base = Url::parse(&format!("{}/api/v4/", api_url.trim_end_matches('/')))
        .map_err(|e| err(e.to_string()))?;
    GitLabApi::new(
        base,
        Some(Token::private(token.expose().trim())),
        net,
        GitLabConfig {
            timeout,
            connect_timeout: timeout,
            attempts: 2,
            redirects: Redirects::Refuse,
            https_only: false,
            user_agent: concat!("custody-runner-audit/", env!("CARGO_PKG_VERSION")),
            ..GitLabConfig::default()
        },
    )
    .map_err(|e| err(e.to_string()))
}

fn gitlab_reason(e: &ApiError<GitLabClientError>) -> String {
    let text = e.to_string();
    let hint = if text.contains("401") {
        " (the token was refused: check CUSTODY_GITLAB_ADMIN_TOKEN)"
    } else if text.contains("403") {
        " (listing every runner needs an administrator or auditor token with `read_api`)"
    } else {
        ""
    };
    format!("{text}{hint}")
}

async fn gitlab(
    src: &GitLabSource,
    timeout: Duration,
    net: &Net,
) -> Result<Vec<GitLabRunner>, FetchError> {
    let api = gitlab_api(&src.api_url, &src.token, timeout, net)?;
    let base = api.base().as_str().trim_end_matches('/').to_owned();
    let err = |url: String, e: &ApiError<GitLabClientError>| FetchError::GitLab {
        url,
        reason: gitlab_reason(e),
    };
    let list = glapi::runners::AllRunners::builder()
        .build()
        .map_err(|e| FetchError::GitLab {
            url: format!("{base}/runners/all"),
            reason: e.to_string(),
        })?;
    let listed: Vec<ListedRunner> = glapi::paged(list, Pagination::Limit(100 * MAX_PAGES as usize))
        .query_async(&api)
        .await
        .map_err(|e| err(format!("{base}/runners/all"), &e))?;
    let mut runners = Vec::with_capacity(listed.len());
    for l in listed {
        let url = format!("{base}/runners/{}", l.id);
        let endpoint = glapi::runners::Runner::builder()
            .runner(l.id)
            .build()
            .map_err(|e| FetchError::GitLab {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let d: RunnerDetails = endpoint
            .query_async(&api)
            .await
            .map_err(|e| err(url.clone(), &e))?;
        runners.push(GitLabRunner {
            id: d.id,
            description: d.description,
            runner_type: d.runner_type,
            is_shared: d.is_shared.unwrap_or(false),
            paused: d.paused.unwrap_or_else(|| d.active == Some(false)),
            status: d.status,
            access_level: d.access_level,
            locked: d.locked,
            run_untagged: d.run_untagged,
            tags: d.tag_list,
            projects: d
                .projects
                .into_iter()
                .map(|p| {
                    p.path_with_namespace
                        .unwrap_or_else(|| format!("project {}", p.id.unwrap_or_default()))
                })
                .collect(),
            groups: d
                .groups
                .into_iter()
                .map(|g| {
                    g.name
                        .unwrap_or_else(|| format!("group {}", g.id.unwrap_or_default()))
                })
                .collect(),
        });
    }
    Ok(runners)
}
