//! A GitHub stand-in for a GitHub App on loopback, shaped like GitHub's documented REST
//! endpoints:
//!
//! - `POST /app/installations/{id}/access_tokens` mints an installation token, only for
//!   a valid App JWT (RS256 under [`crate::oidc::app_key_pem`]'s key, `iss` the App id,
//!   unexpired);
//! - the facts policy-check reads (`/repos/{repo}/environments/{name}`,
//!   `…/actions/runs/{id}/approvals`, `…/actions/runs/{id}`, `…/commits/{sha}`,
//!   `…/commits/{sha}/pulls`), only with that installation token, for any run id;
//! - `POST /repos/{repo}/actions/runs/{id}/deployment_protection_rule` records the
//!   review (204), only with that token.
//!
//! Faults: the next N fact reads, or review calls, answer 503.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use crate::http::{Recorded, Server};

/// The installation token the stand-in mints.
pub const INSTALLATION_TOKEN: &str = "ghs_testInstallationToken0000000000000000";

/// What the facts endpoints answer.
#[derive(Debug, Clone)]
pub struct Facts {
    pub environment: Value,
    pub run_approvals: Value,
    pub run: Value,
    pub commit: Value,
    pub commit_pulls: Value,
    pub pull_commits: Value,
}

impl Facts {
    /// An environment with required reviewers that admins cannot bypass, approved by
    /// `approvers`, a run started by `author`, who also wrote the commit.
    pub fn approved(environment: &str, approvers: &[&str], author: &str) -> Self {
        let user = |login: &str| json!({"login": login, "id": 1, "type": "User"});
        Self {
            environment: json!({
                "id": 161088068,
                "name": environment,
                "can_admins_bypass": false,
                "protection_rules": [
                    {"id": 3736, "type": "required_reviewers", "prevent_self_review": true,
                     "reviewers": [{"type": "User", "reviewer": user(approvers.first().copied().unwrap_or("alice"))}]},
                    {"id": 3755, "type": "branch_policy"}
                ]
            }),
            run_approvals: Value::Array(
                approvers
                    .iter()
                    .map(|a| {
                        json!({"state": "approved", "comment": "ok",
                               "environments": [{"name": environment}], "user": user(a)})
                    })
                    .collect(),
            ),
            run: json!({"id": 42, "actor": user(author), "triggering_actor": user(author)}),
            commit: json!({
                "sha": "0", "author": user(author), "committer": user(author),
                "commit": {"author": {"name": author, "email": format!("{author}@example.com")},
                           "committer": {"name": author, "email": format!("{author}@example.com")}}
            }),
            commit_pulls: json!([]),
            pull_commits: json!([]),
        }
    }
}

/// The stand-in.
#[derive(Debug)]
pub struct GitHubApp {
    pub server: Server,
    facts: Arc<Mutex<Facts>>,
    facts_down: Arc<AtomicUsize>,
    reviews_down: Arc<AtomicUsize>,
    reviews: Arc<Mutex<Vec<(u64, Value)>>>,
}

impl GitHubApp {
    /// Starts the stand-in for App `app_id` installed as `installation`.
    pub fn start(app_id: u64, installation: u64, facts: Facts) -> Self {
        let facts_down = Arc::new(AtomicUsize::new(0));
        let reviews_down = Arc::new(AtomicUsize::new(0));
        let reviews = Arc::new(Mutex::new(Vec::new()));
        let facts = Arc::new(Mutex::new(facts));
        let (fd, rd, rv, fa) = (
            Arc::clone(&facts_down),
            Arc::clone(&reviews_down),
            Arc::clone(&reviews),
            Arc::clone(&facts),
        );
        let server = Server::handle(move |req| {
            let facts = fa.lock().unwrap_or_else(PoisonError::into_inner).clone();
            answer(req, app_id, installation, &facts, &fd, &rd, &rv)
        });
        Self {
            server,
            facts,
            facts_down,
            reviews_down,
            reviews,
        }
    }

    /// The API base URL.
    pub fn url(&self) -> String {
        self.server.url("")
    }

    /// The reviews received: run id and body (`environment_name`, `state`, `comment`).
    pub fn reviews(&self) -> Vec<(u64, Value)> {
        self.reviews
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What the facts endpoints answer from now on (a reviewer approving, say).
    pub fn set_facts(&self, facts: Facts) {
        *self.facts.lock().unwrap_or_else(PoisonError::into_inner) = facts;
    }

    /// Forgets the reviews received so far.
    pub fn clear_reviews(&self) {
        self.reviews
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The next `n` fact reads answer 503.
    pub fn facts_down(&self, n: usize) {
        self.facts_down.store(n, Ordering::SeqCst);
    }

    /// The next `n` review calls answer 503.
    pub fn reviews_down(&self, n: usize) {
        self.reviews_down.store(n, Ordering::SeqCst);
    }

    /// How many installation tokens were minted.
    pub fn tokens_minted(&self) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path().ends_with("/access_tokens"))
            .count()
    }
}

fn take(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn unauthorized() -> (u16, String) {
    (
        401,
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
            .to_string(),
    )
}

fn bearer(req: &Recorded) -> Option<&str> {
    req.headers
        .get("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
}

#[allow(clippy::too_many_arguments)]
fn answer(
    req: &Recorded,
    app_id: u64,
    installation: u64,
    facts: &Facts,
    facts_down: &AtomicUsize,
    reviews_down: &AtomicUsize,
    reviews: &Mutex<Vec<(u64, Value)>>,
) -> (u16, String) {
    let path = req.path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if req.method == "POST" && path == format!("/app/installations/{installation}/access_tokens") {
        let Some(jwt) = bearer(req) else {
            return unauthorized();
        };
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // `iss` is checked below: octocrab sends the App id as a number
        v.set_required_spec_claims(&["exp"]);
        v.validate_aud = false;
        let Ok(data) = jsonwebtoken::decode::<Value>(jwt, &crate::oidc::app_decoding_key(), &v)
        else {
            return unauthorized();
        };
        let iss = data.claims.get("iss").unwrap_or(&Value::Null);
        if iss != &json!(app_id) && iss != &json!(app_id.to_string()) {
            return unauthorized();
        }
        return (
            201,
            json!({"token": INSTALLATION_TOKEN, "expires_at": "2099-01-01T00:00:00Z",
                   "permissions": {"actions": "read", "deployments": "write"}})
            .to_string(),
        );
    }
    if bearer(req) != Some(INSTALLATION_TOKEN) {
        return unauthorized();
    }
    // /repos/{owner}/{repo}/…
    let rest: Vec<&str> = parts.iter().skip(3).copied().collect();
    if parts.first() != Some(&"repos") {
        return (404, r#"{"message":"Not Found"}"#.into());
    }
    if req.method == "POST" {
        if let ["actions", "runs", run, "deployment_protection_rule"] = rest.as_slice()
            && let Ok(run) = run.parse::<u64>()
        {
            if take(reviews_down) {
                return (503, r#"{"message":"Service Unavailable"}"#.into());
            }
            reviews
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((run, req.json()));
            return (204, String::new());
        }
        return (404, r#"{"message":"Not Found"}"#.into());
    }
    if take(facts_down) {
        return (503, r#"{"message":"Service Unavailable"}"#.into());
    }
    let body = match rest.as_slice() {
        ["environments", _] => &facts.environment,
        ["actions", "runs", _, "approvals"] => &facts.run_approvals,
        ["actions", "runs", _] => &facts.run,
        ["commits", _, "pulls"] => &facts.commit_pulls,
        ["commits", _] => &facts.commit,
        ["pulls", _, "commits"] => &facts.pull_commits,
        _ => return (404, r#"{"message":"Not Found"}"#.into()),
    };
    (200, body.to_string())
}
