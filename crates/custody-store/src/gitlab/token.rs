//! Secrets: the token the GitLab store sends, the options that carry it (resolved by the
//! caller, never read from the environment here), and store URLs shown without the
//! credentials someone put in them.

use std::time::Duration;

use custody_http::gitlab::Config as ClientConfig;
pub use custody_http::gitlab::{Token as GitLabToken, TokenKind};
use custody_http::net::Net;

/// How the GitLab store talks to GitLab. The caller resolves flags and environment into
/// this once; the store reads no environment itself.
#[derive(Debug, Clone)]
pub struct GitLabOptions {
    /// `None` sends no credentials: reading a public project works, writing does not.
    pub token: Option<GitLabToken>,
    /// Limit for one request, body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Tries per request, the first included, for transient failures.
    pub attempts: u32,
    /// Pause after the first transient failure; doubled after each, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Trusted roots and proxy.
    pub net: Net,
}

impl Default for GitLabOptions {
    fn default() -> Self {
        let d = ClientConfig::default();
        Self {
            token: None,
            timeout: d.timeout,
            connect_timeout: d.connect_timeout,
            attempts: d.attempts,
            initial_backoff: d.initial_backoff,
            max_backoff: d.max_backoff,
            net: Net::default(),
        }
    }
}

impl GitLabOptions {
    /// Defaults, with the token chosen by [`GitLabToken::from_env_values`].
    pub fn from_env_values(
        ci_job_token: Option<String>,
        custody_gitlab_token: Option<String>,
    ) -> Self {
        Self {
            token: GitLabToken::from_env_values(ci_job_token, custody_gitlab_token),
            ..Self::default()
        }
    }
}

/// The URL as it may be shown: credentials someone put in it replaced by `****`.
pub(super) fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest.get(..end).and_then(|a| a.rfind('@')) {
        Some(at) => format!("{scheme}://****{}", rest.get(at..).unwrap_or_default()),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_show() {
        let t = GitLabToken::private("glpat-very-secret");
        assert!(!format!("{t:?}").contains("very-secret"));
        let o = GitLabOptions {
            token: Some(t.clone()),
            ..Default::default()
        };
        assert!(!format!("{o:?}").contains("very-secret"));
        assert_eq!(t.redact("echo glpat-very-secret"), "echo ****");
        let picked = GitLabToken::from_env_values(Some("job".into()), Some(" ".into())).unwrap();
        assert_eq!(picked.kind(), TokenKind::Job);
        let picked = GitLabToken::from_env_values(Some("job".into()), Some("pat".into())).unwrap();
        assert_eq!(picked.kind(), TokenKind::Private);
        assert!(GitLabToken::from_env_values(None, Some(String::new())).is_none());
    }
}
