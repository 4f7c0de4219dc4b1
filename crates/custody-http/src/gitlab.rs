//! The one GitLab API client: a `gitlab::api::AsyncClient` on Custody's HTTP client
//! ([`crate::client`]), used by the GitLab store, policy-check's GitLab facts,
//! `custody runners audit` and the release tooling.
//!
//! Tokens travel in `JOB-TOKEN` or `PRIVATE-TOKEN`, marked sensitive, and only to the
//! GitLab origin the client was made for: never to a redirect target elsewhere.
//! Redirects, retries, limits and error text follow the client's rules.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use gitlab::api::{ApiError, AsyncClient, RestClient};
use url::Url;

use crate::Secret;
use crate::client::{self, Auth};
pub use crate::client::{Config, HttpError as ClientError, Redirects};
use crate::net::Net;

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

    fn header_name(self) -> &'static str {
        match self {
            Self::Job => "job-token",
            Self::Private => "private-token",
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
            ClientError::Request(
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

/// The client: `base` is the API root (`https://HOST/api/v4/`).
#[derive(Clone)]
pub struct Client {
    http: client::Client,
    token: Option<Token>,
    auth: Option<Auth>,
    base: Url,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .field("http", self.http.config())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API at `base` (its path ends in `/`, e.g. `…/api/v4/`) that
    /// sends `token` to that origin only.
    pub fn new(
        base: Url,
        token: Option<Token>,
        net: &Net,
        cfg: Config,
    ) -> Result<Self, ClientError> {
        let auth = match &token {
            Some(t) => Some(Auth::new(
                &base,
                http::HeaderName::from_static(t.kind.header_name()),
                t.header_value()?,
            )),
            None => None,
        };
        Ok(Self {
            http: client::Client::new(net, cfg)?,
            token,
            auth,
            base,
        })
    }

    /// The API root every endpoint is joined to.
    pub fn base(&self) -> &Url {
        &self.base
    }

    pub fn config(&self) -> &Config {
        self.http.config()
    }

    /// `text` without the token in it.
    pub fn redact(&self, text: &str) -> String {
        self.token
            .as_ref()
            .map_or_else(|| text.to_owned(), |t| t.redact(text))
    }
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
        self.http
            .send(
                parts.method,
                &url,
                &parts.headers,
                Bytes::from(body),
                self.auth.as_ref(),
            )
            .await
            .map_err(|e| ApiError::client(redacted(e, &self.token)))
    }
}

/// A server's text may echo the token: it never leaves in an error.
fn redacted(e: ClientError, token: &Option<Token>) -> ClientError {
    let Some(t) = token else { return e };
    match e {
        ClientError::Transport { attempts, reason } => ClientError::Transport {
            attempts,
            reason: t.redact(&reason),
        },
        ClientError::Request(m) => ClientError::Request(t.redact(&m)),
        ClientError::Tls { reason } => ClientError::Tls {
            reason: t.redact(&reason),
        },
        other => other,
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
}
