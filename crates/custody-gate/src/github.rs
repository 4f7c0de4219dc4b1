//! The GitHub App side: App JWT, installation tokens and the review call, all through
//! octocrab on Custody's HTTP connector.
//!
//! - `POST /app/installations/{id}/access_tokens`, authenticated with the App JWT
//!   (RS256 with the App's private key, `iss` the App id, valid nine minutes, `iat` a
//!   minute back for clock drift, as GitHub's docs advise), mints the installation
//!   token. That token reads the platform facts and sends the review; it is reused until
//!   ten minutes before it expires. (Minted here rather than by octocrab's `jwt`
//!   feature, which would link RSA signing into every binary of the workspace.)
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
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

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
    /// Installation clients and their tokens, reused until shortly before they expire.
    installations: Arc<Mutex<HashMap<u64, Installed>>>,
}

/// An installation's client, its token, and until when to reuse it.
type Installed = (Octocrab, Secret, Instant);

/// A token is not reused in its last ten minutes (GitHub's last an hour).
const TOKEN_MARGIN: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

#[derive(Deserialize)]
struct AccessToken {
    token: String,
    expires_at: Option<String>,
}

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
        let der = rsa_pkcs1(private_key_pem.expose().as_bytes()).ok_or_else(|| {
            "the GitHub App's private key is not an RSA private key in PEM (`-----BEGIN RSA PRIVATE KEY-----`, as GitHub generates it, or PKCS#8)".to_owned()
        })?;
        let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
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

    fn client(&self, token: &Secret) -> Result<Octocrab, String> {
        custody_http::github::octocrab(
            &self.net,
            &custody_http::github::GitHub {
                api_url: &self.api_url,
                upload_url: None,
                token: Some(token),
                connect_timeout: CONNECT_TIMEOUT,
                timeout: REQUEST_TIMEOUT,
                user_agent: USER_AGENT,
            },
        )
        .map_err(|e| format!("GitHub client: {e}"))
    }

    /// A fresh App JWT.
    fn jwt(&self) -> Result<Secret, String> {
        let now = jiff::Timestamp::now().as_second();
        let claims = Claims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: self.app_id.to_string(),
        };
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.key,
        )
        .map(Secret::new)
        .map_err(|e| format!("signing the App JWT: {e}"))
    }

    /// A client and token for one installation, minted with the App JWT (with retries)
    /// or reused.
    pub async fn installation(&self, id: u64) -> Result<(Octocrab, Secret), String> {
        if let Some((crab, token, until)) = self
            .installations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            && Instant::now() < *until
        {
            return Ok((crab.clone(), token.clone()));
        }
        let app = self.client(&self.jwt()?)?;
        let route = format!("/app/installations/{id}/access_tokens");
        let minted: AccessToken = self
            .retry("minting the installation token", || {
                app.post(route.as_str(), None::<&()>)
            })
            .await?;
        let token = Secret::new(minted.token);
        let crab = self.client(&token)?;
        let lifetime = minted
            .expires_at
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .and_then(|t| {
                let left = t.as_second() - jiff::Timestamp::now().as_second();
                u64::try_from(left).ok()
            })
            .map_or(Duration::ZERO, Duration::from_secs);
        let until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
        self.installations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (crab.clone(), token.clone(), until));
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
}

/// The PKCS#1 DER of an RSA private key in PEM: PKCS#1 as is (GitHub's download), or
/// the key inside a PKCS#8 `PrivateKeyInfo` whose algorithm is rsaEncryption.
fn rsa_pkcs1(pem: &[u8]) -> Option<Vec<u8>> {
    if let Ok(der) = PrivatePkcs1KeyDer::from_pem_slice(pem) {
        return Some(der.secret_pkcs1_der().to_vec());
    }
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem).ok()?;
    let info = pkcs8::PrivateKeyInfo::try_from(der.secret_pkcs8_der()).ok()?;
    (info.algorithm.oid == pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"))
        .then(|| info.private_key.to_vec())
}

impl App {
    async fn retry<T, F, Fut>(&self, what: &str, f: F) -> Result<T, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, octocrab::Error>>,
    {
        crate::retry::retry(
            &format!("GitHub: {what}"),
            self.attempts,
            self.backoff,
            f,
            |e| (describe(e), retriable(e)),
        )
        .await
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
