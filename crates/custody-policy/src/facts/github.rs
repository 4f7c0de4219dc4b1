//! GitHub facts through octocrab: the run's approvals and actors, the environment's
//! protection rules, the PRs of the commit and the authors and committers of the
//! commit and of those PRs' commits.
//!
//! Endpoints (REST, shapes in `tests/data/github/`, copied from GitHub's REST docs):
//! - `GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals` ("Get the review history
//!   for a workflow run"): `[{state, comment, environments: [{name}], user: {login}}]`
//! - `GET /repos/{owner}/{repo}/actions/runs/{run_id}`: `actor`, `triggering_actor`
//! - `GET /repos/{owner}/{repo}/environments/{name}`: `protection_rules`,
//!   `can_admins_bypass`
//! - `GET /repos/{owner}/{repo}/commits/{sha}/pulls`: PRs with `user.login`
//! - `GET /repos/{owner}/{repo}/commits/{sha}` and `GET .../pulls/{n}/commits`:
//!   `author.login`, `committer.login`, `commit.author/committer.{name,email}`
//!
//! Response types are our own minimal structs: only the fields the policy uses, so a
//! field GitHub adds never breaks a gate.

use custody_http::net::Net;
use octocrab::Octocrab;
use serde::Deserialize;

use super::{CONNECT_TIMEOUT, PlatformFacts, REQUEST_TIMEOUT, Secret, push_unique};
use crate::error::PolicyError;
use crate::gate::Gate;
use crate::input::{Approval, ApprovalsFact, PeopleFact, Person, ProtectionFact, Provenance};

/// What to ask GitHub.
#[derive(Debug, Clone)]
pub struct GitHubConfig {
    /// `https://api.github.com` (or GHES `https://HOST/api/v3`, or a test server).
    pub api_url: String,
    pub token: Option<Secret>,
    /// `owner/repo`.
    pub repository: String,
    pub run_id: Option<u64>,
    pub commit: Option<String>,
    pub environment: String,
    /// Trusted roots and proxy.
    pub net: Net,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
}

#[derive(Debug, Deserialize)]
struct EnvironmentRef {
    name: String,
}

#[derive(Debug, Deserialize)]
struct RunApproval {
    state: String,
    #[serde(default)]
    environments: Vec<EnvironmentRef>,
    user: User,
}

#[derive(Debug, Deserialize)]
struct Run {
    actor: Option<User>,
    triggering_actor: Option<User>,
}

#[derive(Debug, Deserialize)]
struct Environment {
    #[serde(default)]
    protection_rules: Vec<ProtectionRule>,
    can_admins_bypass: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct ProtectionRule {
    #[serde(rename = "type")]
    type_: String,
    prevent_self_review: Option<bool>,
    #[serde(default)]
    reviewers: Vec<Reviewer>,
}

#[derive(Debug, Deserialize)]
struct Reviewer {
    #[serde(rename = "type")]
    type_: String,
    reviewer: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Pull {
    number: u64,
    user: Option<User>,
}

#[derive(Debug, Deserialize)]
struct Commit {
    author: Option<User>,
    committer: Option<User>,
    commit: GitCommit,
}

#[derive(Debug, Deserialize)]
struct GitCommit {
    author: Option<GitPerson>,
    committer: Option<GitPerson>,
}

#[derive(Debug, Deserialize)]
struct GitPerson {
    name: Option<String>,
    email: Option<String>,
}

fn provenance() -> Provenance {
    Provenance {
        source: "github".into(),
        verified: true,
    }
}

fn is_not_found(e: &octocrab::Error) -> bool {
    matches!(e, octocrab::Error::GitHub { source, .. } if source.status_code == http::StatusCode::NOT_FOUND)
}

pub(crate) fn api_error(what: &str, e: &octocrab::Error) -> PolicyError {
    match e {
        // GitHub answered: the token's rights are the likely cause of a refusal
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let hint = if matches!(status, 401 | 403 | 404) {
                " (check the token's permissions: actions:read, deployments:read, contents:read, pull-requests:read)"
            } else {
                ""
            };
            PolicyError::Platform(format!(
                "GitHub {what}: {} {}{hint}",
                source.status_code, source.message
            ))
        }
        // no answer: the API could not be reached, whatever the token may do
        other => PolicyError::Platform(format!(
            "GitHub {what}: the API did not answer ({}): check the API URL (GITHUB_API_URL or --github-api-url) and the runner's network",
            first_line(&other.to_string())
        )),
    }
}

/// The first line of an error's text: transport errors carry long chains.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Builds the client: configurable base URL, timeouts, the token as a secret, on
/// Custody's connector (roots, proxy).
pub fn client(cfg: &GitHubConfig) -> Result<Octocrab, PolicyError> {
    custody_http::github::octocrab(
        &cfg.net,
        &custody_http::github::GitHub {
            api_url: &cfg.api_url,
            upload_url: None,
            token: cfg.token.as_ref(),
            connect_timeout: CONNECT_TIMEOUT,
            timeout: REQUEST_TIMEOUT,
            user_agent: concat!("custody-policy-check/", env!("CARGO_PKG_VERSION")),
        },
    )
    .map_err(|e| PolicyError::Usage(format!("GitHub client: {e}")))
}

/// Gathers the facts a gate needs. Approvals and authorship only matter before the
/// deploy; protection at both gates.
pub async fn gather(cfg: &GitHubConfig, gate: Gate) -> Result<PlatformFacts, PolicyError> {
    let octo = client(cfg)?;
    let repo = &cfg.repository;
    let mut facts = PlatformFacts::default();

    let route = format!("/repos/{repo}/environments/{}", cfg.environment);
    match octo.get::<Environment, _, ()>(&route, None).await {
        Ok(env) => facts.protection = Some(protection(&env)),
        Err(e) if is_not_found(&e) => facts.problems.push(format!(
            "GitHub has no environment {} in {repo}, so nothing protects it",
            cfg.environment
        )),
        Err(e) => return Err(api_error(&route, &e)),
    }
    if gate == Gate::PreApproval {
        return Ok(facts);
    }

    let mut people = PeopleFact::new(provenance());
    match cfg.run_id {
        Some(id) => {
            let route = format!("/repos/{repo}/actions/runs/{id}/approvals");
            let list: Vec<RunApproval> = octo
                .get(&route, None::<&()>)
                .await
                .map_err(|e| api_error(&route, &e))?;
            facts.approvals = Some(ApprovalsFact {
                provenance: provenance(),
                approvals: list
                    .into_iter()
                    .filter(|a| a.environments.iter().any(|e| e.name == cfg.environment))
                    .map(|a| Approval {
                        login: a.user.login,
                        name: None,
                        email: None,
                        at: None,
                        state: a.state,
                    })
                    .collect(),
            });
            let route = format!("/repos/{repo}/actions/runs/{id}");
            let run: Run = octo
                .get(&route, None::<&()>)
                .await
                .map_err(|e| api_error(&route, &e))?;
            for u in [run.actor, run.triggering_actor].into_iter().flatten() {
                push_unique(&mut people.triggering_actors, Person::login(&u.login));
            }
        }
        None => facts
            .problems
            .push("no run id (GITHUB_RUN_ID or --run-id): run approvals unknown".into()),
    }
    let Some(sha) = &cfg.commit else {
        facts
            .problems
            .push("no commit (GITHUB_SHA or --commit): authorship unknown".into());
        return Ok(facts);
    };
    let route = format!("/repos/{repo}/commits/{sha}");
    let commit: Commit = octo
        .get(&route, None::<&()>)
        .await
        .map_err(|e| api_error(&route, &e))?;
    add_commit(&mut people, commit);
    let route = format!("/repos/{repo}/commits/{sha}/pulls");
    let pulls: Vec<Pull> = octo
        .get(&route, Some(&[("per_page", "100")][..]))
        .await
        .map_err(|e| api_error(&route, &e))?;
    for pr in pulls {
        if let Some(u) = &pr.user {
            push_unique(&mut people.pr_authors, Person::login(&u.login));
        }
        let route = format!("/repos/{repo}/pulls/{}/commits", pr.number);
        let commits: Vec<Commit> = octo
            .get(&route, Some(&[("per_page", "100")][..]))
            .await
            .map_err(|e| api_error(&route, &e))?;
        for c in commits {
            add_commit(&mut people, c);
        }
    }
    facts.people = Some(people);
    Ok(facts)
}

fn protection(env: &Environment) -> ProtectionFact {
    let required = env
        .protection_rules
        .iter()
        .filter(|r| r.type_ == "required_reviewers")
        .collect::<Vec<_>>();
    let reviewers = required
        .iter()
        .flat_map(|r| r.reviewers.iter())
        .filter_map(|r| {
            let key = if r.type_ == "Team" { "slug" } else { "login" };
            r.reviewer
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(|s| format!("{}:{s}", r.type_.to_ascii_lowercase()))
        })
        .collect::<Vec<_>>();
    ProtectionFact {
        provenance: provenance(),
        required_reviewers: !reviewers.is_empty(),
        reviewers,
        prevent_self_review: required.iter().find_map(|r| r.prevent_self_review),
        can_admins_bypass: env.can_admins_bypass,
    }
}

fn add_commit(people: &mut PeopleFact, c: Commit) {
    let person = |login: Option<User>, git: Option<GitPerson>| Person {
        login: login.map(|u| u.login),
        name: git.as_ref().and_then(|g| g.name.clone()),
        email: git.and_then(|g| g.email),
    };
    push_unique(
        &mut people.commit_authors,
        person(c.author, c.commit.author),
    );
    push_unique(
        &mut people.committers,
        person(c.committer, c.commit.committer),
    );
}
