//! The one HTTP client configuration the guard uses for tokens, JWKS and platform APIs.
//!
//! Blocking `ureq` over rustls (ring provider, webpki roots): no async runtime, small binary.
//! Redirects are never followed, because a redirect would let the pinned host hand the guard
//! to another one; proxy variables are ignored, because an earlier step can set them; a proxy is
//! used only when the tier model pins one. Response bodies are capped.

use std::time::Duration;

use crate::error::TierModelError;
use crate::tier::Trust;

/// Largest response body the guard reads (JWKS, token and API answers are a few KiB).
const BODY_LIMIT: u64 = 1024 * 1024;

/// A configured HTTP client.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
}

/// A response: status and body (bodies of error statuses are not logged by callers: they
/// could echo a token).
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

impl Http {
    /// A client with the given timeout per call and an optional pinned proxy URL.
    pub fn new(timeout: Duration, proxy: Option<&str>) -> Result<Self, TierModelError> {
        let proxy = proxy
            .map(|p| {
                ureq::Proxy::new(p).map_err(|e| TierModelError::Invalid {
                    file: "tier model".into(),
                    line: None,
                    field: "trust.proxy".into(),
                    problem: format!("not a usable proxy URL: {e}"),
                })
            })
            .transpose()?;
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .max_redirects(0)
            .http_status_as_error(false)
            .proxy(proxy)
            .user_agent(concat!("custody-runner-guard/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            agent: config.into(),
        })
    }

    /// The client the tier model's `trust` section describes.
    pub fn from_trust(trust: &Trust) -> Result<Self, TierModelError> {
        Self::new(
            Duration::from_millis(trust.http_timeout_ms),
            trust.proxy.as_deref(),
        )
    }

    /// `GET url` with the given headers (values may be secrets: they are never logged).
    pub(crate) fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
    ) -> Result<Response, String> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        for (name, value) in query {
            request = request.query(*name, *value);
        }
        let mut response = request.call().map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| describe(&e))?;
        Ok(Response { status, body })
    }
}

/// ureq errors describe the transport; they never include request headers.
fn describe(e: &ureq::Error) -> String {
    e.to_string()
}
