//! The GitHub App side: App JWT, installation tokens and the review call, all through
//! octocrab on Custody's HTTP connector.
//!
//! - `POST /app/installations/{id}/access_tokens`, authenticated with the App JWT
//!   (RS256 with the App's private key, `iss` the App id), mints the installation token
//!   (octocrab's `installation_and_token`). That token reads the platform facts.
//! - `POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule`
//!   (`environment_name`, `state` `approved`|`rejected`, `comment`) reviews the run. Only
//!   the App that owns the rule may call it. The route is built from the configured API
//!   URL; the payload's callback URL only names the run, and must be on that API.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use custody_http::Secret;
use custody_http::net::Net;
use octocrab::Octocrab;
use octocrab::auth::AppAuth;
use octocrab::models::{AppId, InstallationId};
use octocrab::secrecy::ExposeSecret as _;
use serde::Serialize;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const USER_AGENT: &str = concat!("custody-gate/", env!("CARGO_PKG_VERSION"));

/// The App's identity and where GitHub is.
#[derive(Clone)]
pub struct App {
    /// `https://api.github.com`, or `https://HOST/api/v3` on GitHub Enterprise Server.
    pub api_url: String,
    pub app_id: u64,
    key: jsonwebtoken::EncodingKey,
    /// The webhook secret deliveries are signed with.
    pub webhook_secret: Secret,
    pub net: Net,
    /// Tries for the review call on a transport error or a 5xx.
    pub attempts: u32,
    pub backoff: Duration,
    /// Installation clients and their tokens (valid an hour), reused for 50 minutes.
    installations: Arc<Mutex<HashMap<u64, Installed>>>,
}

/// An installation's client, its token, and when the token was minted.
type Installed = (Octocrab, Secret, Instant);

/// How long a minted installation token is reused (GitHub's last an hour).
const TOKEN_REUSE: Duration = Duration::from_secs(50 * 60);

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("api_url", &self.api_url)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// The body of the review call.
#[derive(Debug, Serialize)]
struct Review<'a> {
    environment_name: &'a str,
    state: &'a str,
    comment: &'a str,
}

impl App {
    /// `private_key_pem`: the App's RSA private key (the PEM GitHub lets you download).
    pub fn new(
        api_url: &str,
        app_id: u64,
        private_key_pem: &Secret,
        webhook_secret: Secret,
        net: Net,
    ) -> Result<Self, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose().as_bytes())
            .map_err(|e| format!("the GitHub App's private key is not an RSA PEM key ({e})"))?;
        Ok(Self {
            api_url: api_url.trim_end_matches('/').to_owned(),
            app_id,
            key,
            webhook_secret,
            net,
            attempts: 3,
            backoff: Duration::from_secs(2),
            installations: Arc::default(),
        })
    }

    fn client(&self) -> Result<Octocrab, String> {
        custody_http::github::octocrab_app(
            &self.net,
            &custody_http::github::GitHub {
                api_url: &self.api_url,
                upload_url: None,
                token: None,
                connect_timeout: CONNECT_TIMEOUT,
                timeout: REQUEST_TIMEOUT,
                user_agent: USER_AGENT,
            },
            AppAuth {
                app_id: AppId(self.app_id),
                key: self.key.clone(),
            },
        )
        .map_err(|e| format!("GitHub client: {e}"))
    }

    /// A client and token for one installation (minted with the App JWT), with retries.
    pub async fn installation(&self, id: u64) -> Result<(Octocrab, Secret), String> {
        if let Some((crab, token, at)) = self
            .installations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            && at.elapsed() < TOKEN_REUSE
        {
            return Ok((crab.clone(), token.clone()));
        }
        let app = self.client()?;
        let (crab, token) = self
            .retry("minting the installation token", || async {
                app.installation_and_token(InstallationId(id))
                    .await
                    .map(|(crab, token)| (crab, Secret::new(token.expose_secret().to_owned())))
            })
            .await?;
        self.installations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (crab.clone(), token.clone(), Instant::now()));
        Ok((crab, token))
    }

    /// Approves or rejects the run's deployment to `environment`, with retries.
    pub async fn review(
        &self,
        crab: &Octocrab,
        repository: &str,
        run_id: u64,
        environment: &str,
        approve: bool,
        comment: &str,
    ) -> Result<(), String> {
        let route = format!("/repos/{repository}/actions/runs/{run_id}/deployment_protection_rule");
        let body = Review {
            environment_name: environment,
            state: if approve { "approved" } else { "rejected" },
            comment,
        };
        self.retry("the review call", || async {
            let rsp = crab._post(route.as_str(), Some(&body)).await?;
            octocrab::map_github_error(rsp).await.map(drop)
        })
        .await
    }

    async fn retry<T, F, Fut>(&self, what: &str, f: F) -> Result<T, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, octocrab::Error>>,
    {
        let attempts = self.attempts.max(1);
        let mut wait = self.backoff;
        for n in 1..=attempts {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let text = describe(&e);
                    let again = n < attempts && retriable(&e);
                    tracing::warn!(attempt = n, attempts, error = %text, "GitHub: {what} failed");
                    if !again {
                        return Err(format!("GitHub: {what} failed: {text}"));
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        Err(format!("GitHub: {what} failed"))
    }
}

/// A 4xx will not change by asking again; transport errors and 5xx may.
fn retriable(e: &octocrab::Error) -> bool {
    match e {
        octocrab::Error::GitHub { source, .. } => !source.status_code.is_client_error(),
        _ => true,
    }
}

/// One line about what went wrong (GitHub's message and status, or the transport's).
fn describe(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            format!("{} ({})", source.message, source.status_code)
        }
        other => {
            let mut text = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                text.push_str(": ");
                text.push_str(&c.to_string());
                cause = c.source();
            }
            text.lines().next().unwrap_or_default().to_owned()
        }
    }
}
