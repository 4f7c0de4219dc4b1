//! The one HTTP client: hyper over rustls with the [`Net`] policy, and one set of rules
//! for what every caller needs.
//!
//! - **Credentials** ([`Auth`]) travel only to the origin (scheme, host, port) they
//!   belong to, whatever redirects say; the header is marked sensitive.
//! - **Redirects**: with [`Redirects::FollowReads`], reads (GET, HEAD) follow up to five,
//!   never from https to http (a package download may redirect to object storage);
//!   writes never follow one, and a redirect answer to a write is returned as it is.
//!   With [`Redirects::Refuse`], a redirect is an error naming it.
//! - **Retries**: idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS) are tried up to
//!   [`Config::attempts`] times on transient failures (5xx, 408, 429, timeouts, refused
//!   or broken connections), with exponential backoff; POST is sent once. A certificate
//!   the roots do not trust is not transient.
//! - **Limits**: a connect timeout, a timeout per attempt (body included) and a body
//!   limit.
//! - **Errors** name what failed, never a header, a token or a URL's query; the caller
//!   names the endpoint.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as Hyper;
use thiserror::Error;
use url::Url;

use crate::net::{Net, NetError, ProxyConnector};

/// Redirects followed for one read.
const MAX_REDIRECTS: usize = 5;

/// What a read does with a redirect answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Follow it (up to five, never from https to http); credentials stay with their
    /// origin.
    FollowReads,
    /// Fail, naming it: for admin tokens, which must not be handed to another URL.
    Refuse,
}

/// How a client behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Limit for one attempt, body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Tries per idempotent request, the first included, for transient failures.
    pub attempts: u32,
    /// Pause after the first transient failure; doubled after each, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub redirects: Redirects,
    /// Refuse plain `http://` URLs (loopback tests and `gitlab+http://` allow them).
    pub https_only: bool,
    /// Largest response body read.
    pub body_limit: usize,
    pub user_agent: &'static str,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            redirects: Redirects::FollowReads,
            https_only: true,
            body_limit: 64 * 1024 * 1024,
            user_agent: concat!("custody/", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A credential header pinned to the origin it belongs to.
#[derive(Clone)]
pub struct Auth {
    origin: Url,
    name: HeaderName,
    value: HeaderValue,
}

impl Auth {
    /// `name: value` for requests to `origin`'s scheme, host and port only.
    pub fn new(origin: &Url, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        Self {
            origin: origin.clone(),
            name,
            value,
        }
    }

    /// `Authorization: Bearer TOKEN` for `origin`; `None` when the token cannot be a
    /// header value.
    pub fn bearer(origin: &Url, token: &str) -> Option<Self> {
        let value = HeaderValue::from_str(&format!("Bearer {}", token.trim())).ok()?;
        Some(Self::new(origin, http::header::AUTHORIZATION, value))
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Auth({}: **** for {})",
            self.name,
            self.origin.origin().ascii_serialization()
        )
    }
}

/// Failures of [`Client::send`]. They name what failed, never a header or a token.
#[derive(Debug, Error)]
pub enum HttpError {
    /// The server could not be reached or the connection broke, on every attempt.
    #[error("{reason}")]
    Transport { attempts: u32, reason: String },
    /// The server's certificate is not trusted, or TLS failed.
    #[error("{reason}")]
    Tls { reason: String },
    /// A transient status (5xx, 408, 429) on every attempt.
    #[error("answered {status} {attempts} times")]
    Exhausted { status: u16, attempts: u32 },
    /// A redirect a [`Redirects::Refuse`] client met.
    #[error(
        "answered HTTP {status} (a redirect; redirects are not followed: use the service's final URL)"
    )]
    Redirect { status: u16 },
    /// The answer was larger than the limit.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The request could not be built or sent (a bad URL, an http:// URL where only
    /// https is allowed).
    #[error("{0}")]
    Request(String),
    /// The client could not be set up.
    #[error("{0}")]
    Setup(#[from] NetError),
}

impl HttpError {
    /// Whether trying later may succeed (the server or the network, not the request).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transport { .. } | Self::Exhausted { .. })
    }
}

/// The client. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct Client {
    hyper: Hyper<hyper_rustls::HttpsConnector<ProxyConnector>, Full<Bytes>>,
    net: Net,
    cfg: Config,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("net", &self.net)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Why one attempt failed.
enum Failure {
    Transport(String),
    Tls(String),
    Timeout,
    Refused(u16),
    TooLarge,
    Request(String),
}

impl Client {
    pub fn new(net: &Net, cfg: Config) -> Result<Self, HttpError> {
        Ok(Self {
            hyper: hyper(net, cfg.connect_timeout)?,
            net: net.clone(),
            cfg,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn net(&self) -> &Net {
        &self.net
    }

    /// Sends `method url` with `headers` and `body` under the rules above; `auth` is
    /// added for its origin only.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &http::HeaderMap,
        body: Bytes,
        auth: Option<&Auth>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let attempts = if idempotent(&method) {
            self.cfg.attempts.max(1)
        } else {
            1
        };
        let mut delay = self.cfg.initial_backoff;
        let mut attempt = 1;
        loop {
            let failure = match self.send_once(&method, url, headers, &body, auth).await {
                Ok(rsp) if transient_status(rsp.status()) => {
                    if attempt >= attempts {
                        // the last answer goes to the caller as the server gave it when
                        // the request was sent once; a retried one says how often
                        if attempts == 1 {
                            return Ok(rsp);
                        }
                        return Err(HttpError::Exhausted {
                            status: rsp.status().as_u16(),
                            attempts: attempt,
                        });
                    }
                    None
                }
                Ok(rsp) => return Ok(rsp),
                Err(Failure::Refused(status)) => return Err(HttpError::Redirect { status }),
                Err(Failure::TooLarge) => {
                    return Err(HttpError::TooLarge {
                        limit: self.cfg.body_limit,
                    });
                }
                Err(Failure::Request(m)) => return Err(HttpError::Request(m)),
                Err(Failure::Tls(reason)) => return Err(HttpError::Tls { reason }),
                Err(Failure::Timeout) => Some(HttpError::Transport {
                    attempts: attempt,
                    reason: format!("timed out after {} s", self.cfg.timeout.as_secs_f32()),
                }),
                Err(Failure::Transport(reason)) => Some(HttpError::Transport {
                    attempts: attempt,
                    reason,
                }),
            };
            if attempt >= attempts
                && let Some(f) = failure
            {
                return Err(f);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.cfg.max_backoff);
            attempt += 1;
        }
    }

    /// One attempt, following redirects for reads.
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &http::HeaderMap,
        body: &Bytes,
        auth: Option<&Auth>,
    ) -> Result<http::Response<Bytes>, Failure> {
        let attempt = async {
            let mut url = url.clone();
            let mut hops = 0;
            loop {
                if self.cfg.https_only && url.scheme() != "https" {
                    return Err(Failure::Request(format!(
                        "{}://{} is not https (only https URLs are allowed)",
                        url.scheme(),
                        url.host_str().unwrap_or("")
                    )));
                }
                let uri: http::Uri = url
                    .as_str()
                    .parse()
                    .map_err(|e| Failure::Request(format!("not a usable URL ({e})")))?;
                let mut req = http::Request::builder().method(method.clone()).uri(&uri);
                if let Some(h) = req.headers_mut() {
                    for (k, v) in headers {
                        h.append(k, v.clone());
                    }
                    if !h.contains_key(http::header::USER_AGENT) {
                        h.insert(
                            http::header::USER_AGENT,
                            HeaderValue::from_static(self.cfg.user_agent),
                        );
                    }
                    if let Some(a) = auth
                        && same_origin(&url, &a.origin)
                    {
                        h.insert(a.name.clone(), a.value.clone());
                    }
                    if let Some(p) = self.net.proxy_auth_for(&uri) {
                        h.insert(http::header::PROXY_AUTHORIZATION, p);
                    }
                }
                let req = req
                    .body(Full::new(body.clone()))
                    .map_err(|e| Failure::Request(e.to_string()))?;
                let rsp = self
                    .hyper
                    .request(req)
                    .await
                    .map_err(|e| classify(&e, &self.net))?;
                let status = rsp.status();
                let redirect = status.is_redirection() && status != StatusCode::NOT_MODIFIED;
                if redirect && self.cfg.redirects == Redirects::Refuse {
                    return Err(Failure::Refused(status.as_u16()));
                }
                let follow = redirect
                    && matches!(*method, Method::GET | Method::HEAD)
                    && hops < MAX_REDIRECTS;
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
                let (parts, incoming) = rsp.into_parts();
                let bytes = Limited::new(incoming, self.cfg.body_limit)
                    .collect()
                    .await
                    .map_err(|e| {
                        if e.downcast_ref::<http_body_util::LengthLimitError>()
                            .is_some()
                        {
                            Failure::TooLarge
                        } else {
                            Failure::Transport(format!(
                                "the answer broke off ({})",
                                innermost(e.as_ref())
                            ))
                        }
                    })?
                    .to_bytes();
                return Ok(http::Response::from_parts(parts, bytes));
            }
        };
        tokio::time::timeout(self.cfg.timeout, attempt)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }
}

/// The last cause in an error's chain (transport errors nest deeply).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

fn classify(e: &hyper_util::client::legacy::Error, net: &Net) -> Failure {
    // a certificate the roots do not trust: retrying cannot help
    if let Some(tls) = std::error::Error::source(e).and_then(find_rustls) {
        return Failure::Tls(tls_reason(tls, net));
    }
    let what = if e.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    Failure::Transport(format!("{what} ({})", innermost(e)))
}

/// The rustls error in a chain; I/O errors wrap it (twice, between tokio-rustls and
/// hyper-rustls) without passing it on as their `source`.
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        && let Some(tls) = find_rustls(inner)
    {
        return Some(tls);
    }
    e.source().and_then(find_rustls)
}

/// The text of a hyper transport error: what failed, the innermost cause, and for an
/// untrusted certificate what to do.
#[cfg(feature = "github")]
pub(crate) fn describe(e: &hyper_util::client::legacy::Error, net: &Net) -> String {
    match classify(e, net) {
        Failure::Tls(t) | Failure::Transport(t) => t,
        _ => innermost(e),
    }
}

fn tls_reason(e: &rustls::Error, net: &Net) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => format!(
            "the server's TLS certificate is not trusted ({c:?}); if a private CA signs it (TLS inspection), {}",
            net.ca_hint()
        ),
        other => format!("TLS failed ({other})"),
    }
}

fn transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

pub(crate) fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// Same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// A bare hyper client on `net`'s connector (roots, proxy, TLS), for libraries that take
/// a tower service and apply their own rules (octocrab); [`Client`] is one with ours.
pub fn hyper<B>(
    net: &Net,
    connect_timeout: Duration,
) -> Result<Hyper<hyper_rustls::HttpsConnector<ProxyConnector>, B>, NetError>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Ok(Hyper::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(net.connector(connect_timeout)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_idempotent_methods_are_retried_and_origins_compare_whole() {
        assert!(idempotent(&Method::PUT) && idempotent(&Method::GET));
        assert!(!idempotent(&Method::POST));
        let a = Url::parse("https://gitlab.example/api/v4/").unwrap();
        assert!(same_origin(
            &a,
            &Url::parse("https://gitlab.example:443/x").unwrap()
        ));
        for other in [
            "http://gitlab.example/x",
            "https://objects.example/x",
            "https://gitlab.example:8443/x",
        ] {
            assert!(!same_origin(&a, &Url::parse(other).unwrap()), "{other}");
        }
    }

    #[test]
    fn credentials_never_show() {
        let origin = Url::parse("https://registry.example/").unwrap();
        let a = Auth::bearer(&origin, "tok-123456").unwrap();
        let shown = format!("{a:?}");
        assert!(!shown.contains("tok-123456"), "{shown}");
        assert!(a.value.is_sensitive());
        assert!(Auth::bearer(&origin, "bad\ntoken").is_none());
    }
}
