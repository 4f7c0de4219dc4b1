//! GitLab facts through the `gitlab` crate: the deployment's approvals and triggering
//! user, the protected environment's approval rules, the MRs of the commit and the
//! authors and committers of the commit and the MRs' commits.
//!
//! Endpoints (REST v4, shapes in `tests/data/gitlab/`, copied from GitLab's API docs):
//! - `GET /projects/:id/deployments/:deployment_id` ("Get a specific deployment"):
//!   `approvals[]`, `pending_approval_count`, `approval_summary`, `user`, `deployable`;
//!   the crate's `Deployment`; [`RecentDeployments`] to find the job's deployment
//! - `GET /projects/:id/protected_environments/:name`: `required_approval_count`,
//!   `approval_rules[]` — the crate has no endpoint for it: [`ProtectedEnvironment`]
//! - `GET /projects/:id/repository/commits/:sha/merge_requests`: `author`
//! - `GET /projects/:id/repository/commits/:sha`, `GET /projects/:id/merge_requests/:iid/commits`:
//!   `author_name`, `author_email`, `committer_name`, `committer_email`
//!
//! The crate ships endpoint builders but no response types: these structs hold only
//! the fields the policy uses. GitLab commits carry names and e-mails, not usernames,
//! so separation of duties matches approvers by name too.

use std::borrow::Cow;

pub use custody_http::gitlab::TokenKind;
use custody_http::gitlab::{Client as Api, ClientError, Config as ClientConfig, Redirects, Token};
use custody_http::net::Net;
use gitlab::api::common::NameOrId;
use gitlab::api::endpoint_prelude::{Endpoint, Method, QueryParams};
use gitlab::api::projects::deployments::Deployment;
use gitlab::api::projects::merge_requests::MergeRequestCommits;
use gitlab::api::projects::repository::commits::{Commit, MergeRequests};
use gitlab::api::{ApiError, AsyncQuery};
use serde::Deserialize;
use url::Url;

use super::{CONNECT_TIMEOUT, PlatformFacts, REQUEST_TIMEOUT, Secret, push_unique};
use crate::error::PolicyError;
use crate::gate::Gate;
use crate::input::{Approval, ApprovalsFact, PeopleFact, Person, ProtectionFact, Provenance};

/// What to ask GitLab.
#[derive(Debug, Clone)]
pub struct GitLabConfig {
    /// The API root, e.g. `https://gitlab.example.com/api/v4/`.
    pub api_url: String,
    pub token: Option<(TokenKind, Secret)>,
    /// Project path (`group/project`) or id.
    pub project: String,
    /// The deployment to read; found from `job_id` when absent.
    pub deployment_id: Option<u64>,
    pub job_id: Option<u64>,
    pub commit: Option<String>,
    pub environment: String,
    /// Trusted roots and proxy.
    pub net: Net,
}

/// `GET /projects/:id/protected_environments/:name`, which the crate lacks.
#[derive(Debug, Clone)]
pub struct ProtectedEnvironment<'a> {
    pub project: NameOrId<'a>,
    pub name: Cow<'a, str>,
}

impl Endpoint for ProtectedEnvironment<'_> {
    fn method(&self) -> Method {
        Method::GET
    }
    fn endpoint(&self) -> Cow<'static, str> {
        format!(
            "projects/{}/protected_environments/{}",
            self.project,
            gitlab::api::common::path_escaped(&self.name)
        )
        .into()
    }
}

/// The 100 latest deployments to an environment (`GET /projects/:id/deployments`,
/// newest first). The crate's `Deployments` is not `Pageable`, so it would read only
/// GitLab's default page of 20.
#[derive(Debug, Clone)]
pub struct RecentDeployments<'a> {
    pub project: NameOrId<'a>,
    pub environment: Cow<'a, str>,
}

impl Endpoint for RecentDeployments<'_> {
    fn method(&self) -> Method {
        Method::GET
    }
    fn endpoint(&self) -> Cow<'static, str> {
        format!("projects/{}/deployments", self.project).into()
    }
    fn parameters(&self) -> QueryParams<'_> {
        let mut p = QueryParams::default();
        p.push("environment", self.environment.as_ref())
            .push("order_by", "id")
            .push("sort", "desc")
            .push("per_page", 100u64);
        p
    }
}

#[derive(Debug, Deserialize)]
struct User {
    username: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeploymentApproval {
    user: User,
    status: String,
    created_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeploymentJson {
    id: u64,
    user: Option<User>,
    environment: Option<EnvName>,
    deployable: Option<Deployable>,
    #[serde(default)]
    approvals: Vec<DeploymentApproval>,
}

#[derive(Debug, Deserialize)]
struct EnvName {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Deployable {
    id: u64,
    user: Option<User>,
}

#[derive(Debug, Deserialize)]
struct ProtectedEnvironmentJson {
    #[serde(default)]
    required_approval_count: u64,
    #[serde(default)]
    approval_rules: Vec<ApprovalRule>,
}

#[derive(Debug, Deserialize)]
struct ApprovalRule {
    #[serde(default)]
    required_approvals: u64,
    access_level_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MergeRequestJson {
    iid: u64,
    author: Option<User>,
}

#[derive(Debug, Deserialize)]
struct CommitJson {
    author_name: Option<String>,
    author_email: Option<String>,
    committer_name: Option<String>,
    committer_email: Option<String>,
}

fn provenance() -> Provenance {
    Provenance {
        source: "gitlab".into(),
        verified: true,
    }
}

fn api_error(what: &str, e: &ApiError<ClientError>) -> PolicyError {
    PolicyError::Platform(format!(
        "GitLab {what}: {e} (the token needs read_api on the project)"
    ))
}

fn is_not_found(e: &ApiError<ClientError>) -> bool {
    matches!(e, ApiError::GitlabWithStatus { status, .. } | ApiError::GitlabObjectWithStatus { status, .. } | ApiError::GitlabUnrecognizedWithStatus { status, .. } if *status == http::StatusCode::NOT_FOUND)
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, PolicyError> {
    r.map_err(|e| PolicyError::Usage(format!("GitLab request: {e}")))
}

/// Gathers the facts a gate needs.
pub async fn gather(cfg: &GitLabConfig, gate: Gate) -> Result<PlatformFacts, PolicyError> {
    let mut base = Url::parse(&cfg.api_url)
        .map_err(|e| PolicyError::Usage(format!("GitLab API URL {}: {e}", cfg.api_url)))?;
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let token = cfg.token.as_ref().map(|(kind, secret)| match kind {
        TokenKind::Job => Token::job(secret.expose()),
        TokenKind::Private => Token::private(secret.expose()),
    });
    let api = Api::new(
        base,
        token,
        &cfg.net,
        ClientConfig {
            timeout: REQUEST_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
            // a gate reads; a flaky API gets a second chance, not a long wait
            attempts: 2,
            redirects: Redirects::Refuse,
            https_only: false,
            user_agent: concat!("custody-policy-check/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        },
    )
    .map_err(|e| PolicyError::Platform(format!("GitLab client: {e}")))?;
    let project = || NameOrId::from(cfg.project.as_str());
    let mut facts = PlatformFacts::default();

    let ep = ProtectedEnvironment {
        project: project(),
        name: Cow::Borrowed(&cfg.environment),
    };
    let protected: Result<ProtectedEnvironmentJson, _> = ep.query_async(&api).await;
    match protected {
        Ok(p) => {
            let rules_need = p.approval_rules.iter().any(|r| r.required_approvals > 0);
            facts.protection = Some(ProtectionFact {
                provenance: provenance(),
                required_reviewers: p.required_approval_count > 0 || rules_need,
                reviewers: p
                    .approval_rules
                    .iter()
                    .filter_map(|r| r.access_level_description.clone())
                    .collect(),
                prevent_self_review: None,
                can_admins_bypass: None,
            });
        }
        Err(e) if is_not_found(&e) => facts.problems.push(format!(
            "environment {} is not protected in GitLab project {}",
            cfg.environment, cfg.project
        )),
        Err(e) => return Err(api_error("protected environment", &e)),
    }
    if gate == Gate::PreApproval {
        return Ok(facts);
    }

    let mut people = PeopleFact::new(provenance());
    match find_deployment(&api, cfg).await? {
        Some(d) => {
            facts.approvals = Some(ApprovalsFact {
                provenance: provenance(),
                approvals: d
                    .approvals
                    .into_iter()
                    .map(|a| Approval {
                        login: a.user.username,
                        name: a.user.name,
                        email: None,
                        at: a.created_at,
                        state: a.status,
                    })
                    .collect(),
            });
            for u in [d.user, d.deployable.and_then(|j| j.user)]
                .into_iter()
                .flatten()
            {
                push_unique(
                    &mut people.triggering_actors,
                    Person {
                        login: Some(u.username),
                        name: u.name,
                        email: None,
                    },
                );
            }
        }
        None => facts.problems.push(format!(
            "no deployment of job {} to {} found (pass --gitlab-deployment ID)",
            cfg.job_id
                .map_or_else(|| "(unknown)".into(), |j| j.to_string()),
            cfg.environment
        )),
    }
    let Some(sha) = &cfg.commit else {
        facts
            .problems
            .push("no commit (CI_COMMIT_SHA or --commit): authorship unknown".into());
        return Ok(facts);
    };
    let ep = built(
        Commit::builder()
            .project(project())
            .commit(sha.as_str())
            .build(),
    )?;
    let commit: CommitJson = ep
        .query_async(&api)
        .await
        .map_err(|e| api_error("commit", &e))?;
    add_commit(&mut people, commit);
    let ep = built(
        MergeRequests::builder()
            .project(project())
            .sha(sha.as_str())
            .build(),
    )?;
    let mrs: Vec<MergeRequestJson> = gitlab::api::paged(ep, gitlab::api::Pagination::Limit(100))
        .query_async(&api)
        .await
        .map_err(|e| api_error("merge requests of the commit", &e))?;
    for mr in mrs {
        if let Some(a) = mr.author {
            push_unique(
                &mut people.pr_authors,
                Person {
                    login: Some(a.username),
                    name: a.name,
                    email: None,
                },
            );
        }
        let ep = built(
            MergeRequestCommits::builder()
                .project(project())
                .merge_request(mr.iid)
                .build(),
        )?;
        let commits: Vec<CommitJson> = gitlab::api::paged(ep, gitlab::api::Pagination::Limit(100))
            .query_async(&api)
            .await
            .map_err(|e| api_error("merge request commits", &e))?;
        for c in commits {
            add_commit(&mut people, c);
        }
    }
    facts.people = Some(people);
    Ok(facts)
}

async fn find_deployment(
    api: &Api,
    cfg: &GitLabConfig,
) -> Result<Option<DeploymentJson>, PolicyError> {
    let project = NameOrId::from(cfg.project.as_str());
    if let Some(id) = cfg.deployment_id {
        let ep = built(
            Deployment::builder()
                .project(project)
                .deployment_id(id)
                .build(),
        )?;
        let d: DeploymentJson = ep
            .query_async(api)
            .await
            .map_err(|e| api_error("deployment", &e))?;
        if d.environment
            .as_ref()
            .is_some_and(|e| e.name != cfg.environment)
        {
            return Err(PolicyError::Usage(format!(
                "GitLab deployment {} is not to environment {}",
                d.id, cfg.environment
            )));
        }
        return Ok(Some(d));
    }
    let Some(job) = cfg.job_id else {
        return Ok(None);
    };
    let ep = RecentDeployments {
        project,
        environment: Cow::Borrowed(&cfg.environment),
    };
    let list: Vec<DeploymentJson> = ep
        .query_async(api)
        .await
        .map_err(|e| api_error("deployments", &e))?;
    Ok(list
        .into_iter()
        .find(|d| d.deployable.as_ref().is_some_and(|j| j.id == job)))
}

fn add_commit(people: &mut PeopleFact, c: CommitJson) {
    push_unique(
        &mut people.commit_authors,
        Person {
            login: None,
            name: c.author_name,
            email: c.author_email,
        },
    );
    push_unique(
        &mut people.committers,
        Person {
            login: None,
            name: c.committer_name,
            email: c.committer_email,
        },
    );
}
