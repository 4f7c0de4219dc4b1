//! The one GitLab API client: a `gitlab::api::AsyncClient` on reqwest, used by the
//! GitLab store, policy-check's GitLab facts, `custody runners audit` and the release
//! tooling (before, each had its own copy, each with other redirect and retry rules).
//!
//! - **Tokens** travel in `JOB-TOKEN` or `PRIVATE-TOKEN`, marked sensitive, and only to
//!   the GitLab origin the client was made for: never to a redirect target elsewhere.
//! - **Redirects**: reads (GET, HEAD) follow up to five, never from https to http (a
//!   package download may redirect to object storage); writes never follow one, and a
//!   redirect answer to a write is returned as it is (the caller's error). With
//!   [`Redirects::Refuse`], a redirect is an error naming it.
//! - **Retries**: idempotent requests (GET, HEAD, PUT, DELETE) are tried up to
//!   [`Config::attempts`] times on transient failures (5xx, 408, 429, timeouts, refused
//!   or reset connections), with exponential backoff; POST is sent once.
//! - **Errors** name what failed, never a header, a token or a URL's query.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gitlab::api::{ApiError, AsyncClient, RestClient};
use http::Method;
use thiserror::Error;
use url::Url;

use crate::Secret;

/// Redirects followed for one read (GitLab → object storage is one).
const MAX_REDIRECTS: usize = 5;

/// Which header a token travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A CI/CD job token (`CI_JOB_TOKEN`), sent as `JOB-TOKEN`.
    Job,
    /// A personal, project or group access token, sent as `PRIVATE-TOKEN`.
    Private,
}

impl TokenKind {
    pub fn header(self) -> &'static str {
        match self {
            Self::Job => "JOB-TOKEN",
            Self::Private => "PRIVATE-TOKEN",
        }
    }
}

/// A GitLab token. It has no `Display`, and its `Debug` shows only its kind.
#[derive(Clone)]
pub struct Token {
    kind: TokenKind,
    secret: Secret,
}

impl Token {
    pub fn job(secret: impl Into<String>) -> Self {
        Self {
            kind: TokenKind::Job,
            secret: Secret::new(secret),
        }
    }

    pub fn private(secret: impl Into<String>) -> Self {
        Self {
            kind: TokenKind::Private,
            secret: Secret::new(secret),
        }
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// Picks the token from the values of `CI_JOB_TOKEN` and `CUSTODY_GITLAB_TOKEN`,
    /// which the caller reads (the workspace declares its environment variables in one
    /// place). An explicitly configured `CUSTODY_GITLAB_TOKEN` wins over the ambient job
    /// token; empty values count as unset.
    pub fn from_env_values(
        ci_job_token: Option<String>,
        custody_gitlab_token: Option<String>,
    ) -> Option<Self> {
        let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        set(custody_gitlab_token)
            .map(Self::private)
            .or_else(|| set(ci_job_token).map(Self::job))
    }

    /// The header value, marked sensitive; an error names the problem, not the value.
    pub fn header_value(&self) -> Result<http::HeaderValue, ClientError> {
        let mut value = http::HeaderValue::from_str(self.secret.expose().trim()).map_err(|_| {
            ClientError::Setup(
                "the gitlab token contains characters not allowed in a header; check the token value"
                    .into(),
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `text` without the token in it.
    pub fn redact(&self, text: &str) -> String {
        self.secret.redact(text)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}: ****)", self.kind.header())
    }
}

/// What a read does with a redirect answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow it (up to five, never from https to http); the token stays with the
    /// GitLab origin.
    FollowReads,
    /// Fail, naming it: for admin tokens, which must not be handed to another URL.
    Refuse,
}

/// How the client talks to GitLab.
#[derive(Debug, Clone)]
pub struct Config {
    /// `None` sends no credentials.
    pub token: Option<Token>,
    /// Limit for one request, body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Tries per idempotent request, the first included, for transient failures.
    pub attempts: u32,
    /// Pause after the first transient failure; doubled after each, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub redirects: Redirects,
    /// Refuse plain `http://` URLs (the store's `gitlab+http://` allows them for tests).
    pub https_only: bool,
    pub user_agent: &'static str,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            token: None,
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            redirects: Redirects::FollowReads,
            https_only: true,
            user_agent: concat!("custody/", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Transport failures of [`Client`]. They name what failed, never a header or a token.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke, on every attempt.
    #[error("{reason}")]
    Transport { attempts: u32, reason: String },
    /// A transient status (5xx, 408, 429) on every attempt.
    #[error("answered {status} {attempts} times")]
    Exhausted { status: u16, attempts: u32 },
    /// A redirect a [`Redirects::Refuse`] client met.
    #[error(
        "answered HTTP {status} (a redirect; redirects are not followed: use the instance's final URL)"
    )]
    Redirect { status: u16 },
    /// The request could not be built or sent.
    #[error("{0}")]
    Request(String),
    /// The client could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// The client: `base` is the API root (`https://HOST/api/v4/`).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    cfg: Config,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.cfg.token)
            .field("attempts", &self.cfg.attempts)
            .field("redirects", &self.cfg.redirects)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API at `base` (its path ends in `/`, e.g. `…/api/v4/`).
    pub fn new(base: Url, cfg: Config) -> Result<Self, ClientError> {
        if let Some(t) = &cfg.token {
            t.header_value()?;
        }
        let http = reqwest::Client::builder()
            // redirects are followed by hand: the token must stay with GitLab
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .https_only(cfg.https_only)
            .user_agent(cfg.user_agent)
            .build()
            .map_err(|e| ClientError::Setup(describe(&e)))?;
        Ok(Self { http, base, cfg })
    }

    /// The API root every endpoint is joined to.
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// `text` without the token in it.
    pub fn redact(&self, text: &str) -> String {
        self.cfg
            .token
            .as_ref()
            .map_or_else(|| text.to_owned(), |t| t.redact(text))
    }

    /// One request, following redirects for reads; the token goes to the GitLab origin
    /// only.
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<http::Response<Bytes>, Failure> {
        let mut url = url.clone();
        let mut hops = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if !body.is_empty() {
                req = req.body(body.to_vec());
            }
            if same_origin(&url, &self.base)
                && let Some(token) = &self.cfg.token
                && let Ok(value) = token.header_value()
            {
                req = req.header(token.kind.header(), value);
            }
            let rsp = req.send().await.map_err(Failure::Http)?;
            let status = rsp.status();
            let redirect = status.is_redirection() && status != http::StatusCode::NOT_MODIFIED;
            if redirect && self.cfg.redirects == Redirects::Refuse {
                return Err(Failure::Refused(status.as_u16()));
            }
            let follow =
                redirect && matches!(*method, Method::GET | Method::HEAD) && hops < MAX_REDIRECTS;
            let next = follow
                .then(|| rsp.headers().get(http::header::LOCATION))
                .flatten()
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok())
                // never downgrade from https
                .filter(|n| !(url.scheme() == "https" && n.scheme() != "https"));
            if let Some(next) = next {
                url = next;
                hops += 1;
                continue;
            }
            let mut out = http::Response::builder().status(status);
            if let Some(h) = out.headers_mut() {
                for (k, v) in rsp.headers() {
                    h.append(k, v.clone());
                }
            }
            let bytes = rsp.bytes().await.map_err(Failure::Http)?;
            return out.body(bytes).map_err(|e| Failure::Other(e.to_string()));
        }
    }
}

/// Why one attempt failed.
enum Failure {
    Http(reqwest::Error),
    Refused(u16),
    Other(String),
}

fn transient_status(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn transient_error(e: &reqwest::Error) -> bool {
    e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// The cause of a transport error without its URL (the caller names the endpoint).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(l) = last {
        text.push_str(" (");
        text.push_str(&l);
        text.push(')');
    }
    text
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl RestClient for Client {
    type Error = ClientError;

    fn rest_endpoint(&self, endpoint: &str) -> Result<Url, ApiError<Self::Error>> {
        Ok(self.base.join(endpoint)?)
    }
}

#[async_trait]
impl AsyncClient for Client {
    async fn rest_async(
        &self,
        request: http::request::Builder,
        body: Vec<u8>,
    ) -> Result<http::Response<Bytes>, ApiError<Self::Error>> {
        let request = request
            .body(body)
            .map_err(|e| ApiError::client(ClientError::Request(e.to_string())))?;
        let (parts, body) = request.into_parts();
        let url = Url::parse(&parts.uri.to_string())
            .map_err(|e| ApiError::client(ClientError::Request(e.to_string())))?;
        let attempts = if idempotent(&parts.method) {
            self.cfg.attempts.max(1)
        } else {
            1
        };
        let mut delay = self.cfg.initial_backoff;
        let mut attempt = 1;
        loop {
            let failure = match self
                .send_once(&parts.method, &url, &parts.headers, &body)
                .await
            {
                Ok(rsp) if transient_status(rsp.status()) => {
                    if attempt >= attempts {
                        // the last answer goes to the caller as GitLab gave it when the
                        // request was sent once; a retried one says how often it failed
                        if attempts == 1 {
                            return Ok(rsp);
                        }
                        return Err(ApiError::client(ClientError::Exhausted {
                            status: rsp.status().as_u16(),
                            attempts: attempt,
                        }));
                    }
                    None
                }
                Ok(rsp) => return Ok(rsp),
                Err(Failure::Refused(status)) => {
                    return Err(ApiError::client(ClientError::Redirect { status }));
                }
                Err(Failure::Other(m)) => return Err(ApiError::client(ClientError::Request(m))),
                Err(Failure::Http(e)) if transient_error(&e) => Some(ClientError::Transport {
                    attempts: attempt,
                    reason: self.redact(&describe(&e)),
                }),
                Err(Failure::Http(e)) => {
                    return Err(ApiError::client(ClientError::Request(
                        self.redact(&describe(&e)),
                    )));
                }
            };
            if attempt >= attempts
                && let Some(f) = failure
            {
                return Err(ApiError::client(f));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.cfg.max_backoff);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn tokens_are_picked_and_never_shown() {
        let t =
            Token::from_env_values(Some("job-123456".into()), Some("glpat-abcdef".into())).unwrap();
        assert_eq!(t.kind(), TokenKind::Private, "the configured token wins");
        let t = Token::from_env_values(Some("job-123456".into()), Some("  ".into())).unwrap();
        assert_eq!(t.kind(), TokenKind::Job, "an empty value counts as unset");
        assert!(Token::from_env_values(None, Some(String::new())).is_none());
        let shown = format!("{t:?}");
        assert!(!shown.contains("job-123456"), "{shown}");
        assert!(t.header_value().unwrap().is_sensitive());
        assert!(Token::private("bad\ntoken").header_value().is_err());
    }

    #[test]
    fn only_idempotent_methods_are_retried_and_origins_compare_whole() {
        assert!(idempotent(&Method::PUT) && idempotent(&Method::GET));
        assert!(!idempotent(&Method::POST));
        let a = Url::parse("https://gitlab.example/api/v4/").unwrap();
        assert!(same_origin(
            &a,
            &Url::parse("https://gitlab.example:443/x").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("http://gitlab.example/x").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://objects.example/x").unwrap()
        ));
        assert!(!same_origin(
            &a,
            &Url::parse("https://gitlab.example:8443/x").unwrap()
        ));
    }
}
