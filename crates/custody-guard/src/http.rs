//! The HTTP calls the guard makes for tokens, JWKS and platform APIs, on Custody's one
//! client (`custody_http`: hyper over rustls with ring), driven by a single-threaded
//! runtime because the guard itself is synchronous.
//!
//! What differs from the other steps is pinned on purpose:
//! - redirects are refused, because a redirect would let the pinned host hand the guard
//!   to another one;
//! - proxy variables are ignored, because an earlier step can set them; a proxy is used
//!   only when the tier model pins one (`trust.proxy`);
//! - the roots are the built-in set and the tier model's `trust.ca_certificates` only:
//!   not the runner's system store, `SSL_CERT_FILE` or `--ca-file`, which a previous job
//!   on a persistent runner or the job's own environment could widen to forge a JWKS;
//! - one attempt per call (the guard's verdict must not wait on retries), bodies capped.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use custody_http::client::{Client, Config, Redirects};
use custody_http::net::{Net, ProxySettings};

use crate::error::TierModelError;
use crate::tier::Trust;

/// Largest response body the guard reads (JWKS, token and API answers are a few KiB).
const BODY_LIMIT: usize = 1024 * 1024;

/// A configured HTTP client. The connection machinery (roots, TLS, runtime) is set up
/// on the first call, so a verdict that needs no network (no token) pays nothing.
#[derive(Debug, Clone)]
pub struct Http {
    net: Net,
    config: Config,
    ready: Arc<OnceLock<Result<Ready, String>>>,
}

#[derive(Debug)]
struct Ready {
    client: Client,
    rt: tokio::runtime::Runtime,
}

/// A response: status and body (bodies of error statuses are not logged by callers: they
/// could echo a token).
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

fn invalid(field: &str, problem: String) -> TierModelError {
    TierModelError::Invalid {
        file: "tier model".into(),
        line: None,
        field: field.into(),
        problem,
    }
}

impl Http {
    /// A client with the given timeout per call, an optional pinned proxy URL and
    /// optional pinned CA certificates (PEM).
    pub fn new(
        timeout: Duration,
        proxy: Option<&str>,
        ca_pem: Option<&str>,
    ) -> Result<Self, TierModelError> {
        let proxy = ProxySettings {
            all: proxy.map(str::to_owned),
            ..ProxySettings::default()
        };
        let net = Net::pinned(ca_pem, "trust.ca_certificates", proxy).map_err(|e| match e {
            custody_http::net::NetError::Proxy { problem, .. } => invalid("trust.proxy", problem),
            other => invalid("trust.ca_certificates", other.to_string()),
        })?;
        let config = Config {
            timeout,
            connect_timeout: timeout,
            attempts: 1,
            redirects: Redirects::Refuse,
            // the tier model decides which URLs are allowed (loopback test servers)
            https_only: false,
            body_limit: BODY_LIMIT,
            user_agent: concat!("custody-runner-guard/", env!("CARGO_PKG_VERSION")),
            ..Config::default()
        };
        Ok(Self {
            net,
            config,
            ready: Arc::new(OnceLock::new()),
        })
    }

    fn ready(&self) -> Result<&Ready, String> {
        self.ready
            .get_or_init(|| {
                let client =
                    Client::new(&self.net, self.config.clone()).map_err(|e| e.to_string())?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("could not start the runtime: {e}"))?;
                Ok(Ready { client, rt })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The client the tier model's `trust` section describes.
    pub fn from_trust(trust: &Trust) -> Result<Self, TierModelError> {
        Self::new(
            Duration::from_millis(trust.http_timeout_ms),
            trust.proxy.as_deref(),
            trust.ca_certificates.as_deref(),
        )
    }

    /// `GET url` with the given headers (values may be secrets: they are never logged).
    pub(crate) fn get(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
    ) -> Result<Response, String> {
        let mut url = url::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter());
        }
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header name {name} is not valid"))?;
            let mut value = http::HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header {name} is not valid"))?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        let ready = self.ready()?;
        let rsp = ready
            .rt
            .block_on(
                ready
                    .client
                    .send(http::Method::GET, &url, &map, bytes::Bytes::new(), None),
            )
            .map_err(|e| e.to_string())?;
        let status = rsp.status().as_u16();
        let body = String::from_utf8(rsp.into_body().to_vec())
            .map_err(|_| "the answer is not UTF-8".to_owned())?;
        Ok(Response { status, body })
    }
}
