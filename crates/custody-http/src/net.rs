//! The network policy: which certificate authorities are trusted and which proxy is
//! used. One value, [`Net`], built once by the step (from its flags and the process
//! environment) and handed to every client: the GitLab and GitHub API clients, the
//! cosign registry client and the S3 store, so a private CA that works for one works
//! for all.
//!
//! **Roots**, all of them together:
//! 1. the Mozilla roots built in (`webpki-root-certs`), so a container without a CA
//!    bundle still reaches github.com, gitlab.com and AWS;
//! 2. the system store, as `rustls-native-certs` finds it: `SSL_CERT_FILE` and
//!    `SSL_CERT_DIR` when set (replacing the system's bundle), the platform's otherwise;
//! 3. each `--ca-file` (PEM, one or more certificates): a hospital's TLS-inspection CA.
//!    A `--ca-file` that cannot be read or holds no certificate is an error naming it.
//!
//! **Proxy**: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case), read
//! once by [`Net::from_env`]. HTTPS goes through the proxy in a `CONNECT` tunnel, so the
//! proxy sees only the host name; plain HTTP is sent to the proxy in absolute form.
//! Proxy credentials in the URL are used, never printed.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use thiserror::Error;
use tokio::net::TcpStream;

/// Setting up the network policy failed.
#[derive(Debug, Error)]
pub enum NetError {
    /// A `--ca-file` (or pinned PEM) could not be used; `path` names it.
    #[error("{path}: {problem}")]
    CaFile { path: String, problem: String },
    /// A proxy variable does not hold a usable URL.
    #[error("{variable}: {problem}")]
    Proxy {
        variable: &'static str,
        problem: String,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// Proxy settings as read from the environment (URLs may carry credentials: never shown).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    pub https: Option<String>,
    pub http: Option<String>,
    pub all: Option<String>,
    pub no_proxy: Option<String>,
}

impl ProxySettings {
    /// From the values of the usual variables (`name` → value; upper case wins).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |upper: &str| {
            get(upper)
                .or_else(|| get(&upper.to_ascii_lowercase()))
                .filter(|v| !v.trim().is_empty())
        };
        Self {
            https: var("HTTPS_PROXY"),
            http: var("HTTP_PROXY"),
            all: var("ALL_PROXY"),
            no_proxy: var("NO_PROXY"),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.https.is_none() && self.http.is_none() && self.all.is_none()
    }

    fn matcher(&self) -> Option<Matcher> {
        if self.is_empty() {
            return None;
        }
        let mut b = Matcher::builder();
        if let Some(v) = &self.all {
            b = b.all(v.clone());
        }
        if let Some(v) = &self.http {
            b = b.http(v.clone());
        }
        if let Some(v) = &self.https {
            b = b.https(v.clone());
        }
        if let Some(v) = &self.no_proxy {
            b = b.no(v.clone());
        }
        Some(b.build())
    }

    fn check(&self) -> Result<(), NetError> {
        for (variable, value) in [
            ("HTTPS_PROXY", &self.https),
            ("HTTP_PROXY", &self.http),
            ("ALL_PROXY", &self.all),
        ] {
            if let Some(v) = value {
                let with_scheme = if v.contains("://") {
                    v.clone()
                } else {
                    format!("http://{v}")
                };
                let url = url::Url::parse(&with_scheme).map_err(|e| NetError::Proxy {
                    variable,
                    problem: format!("not a proxy URL ({e})"),
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(NetError::Proxy {
                        variable,
                        problem: format!(
                            "proxy scheme {} is not supported (use http:// or https://)",
                            url.scheme()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A proxy URL without its credentials, for messages.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("****");
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        Err(_) => "(unparsable)".to_owned(),
    }
}

impl fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySettings")
            .field("https", &self.https.as_deref().map(shown))
            .field("http", &self.http.as_deref().map(shown))
            .field("all", &self.all.as_deref().map(shown))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// The network policy. Cheap to clone; the roots are loaded on first use.
#[derive(Clone, Debug, Default)]
pub struct Net {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// `--ca-file` certificates, read and checked when the policy is made.
    extra: Vec<CertificateDer<'static>>,
    /// Leave out the system store and `SSL_CERT_FILE`/`SSL_CERT_DIR` ([`Net::pinned`]).
    pinned: bool,
    /// Where a missing CA is given (for the error of an untrusted certificate); `None`:
    /// `--ca-file` or `SSL_CERT_FILE`.
    pinned_in: Option<String>,
    ca_files: Vec<PathBuf>,
    proxy: ProxySettings,
    tls: OnceLock<Arc<rustls::ClientConfig>>,
    roots: OnceLock<Vec<CertificateDer<'static>>>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net")
            .field("ca_files", &self.ca_files)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// Two policies are equal when they trust the same roots the same way (pinned or not,
/// the same extra certificates from the same files) and use the same proxies.
impl PartialEq for Net {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.inner, &other.inner);
        Arc::ptr_eq(a, b)
            || (a.pinned == b.pinned
                && a.pinned_in == b.pinned_in
                && a.ca_files == b.ca_files
                && a.extra == b.extra
                && a.proxy == b.proxy)
    }
}

impl Eq for Net {}

impl Net {
    /// The policy with these CA files and proxy settings.
    pub fn new(ca_files: &[PathBuf], proxy: ProxySettings) -> Result<Self, NetError> {
        proxy.check()?;
        let mut extra = Vec::new();
        for path in ca_files {
            extra.extend(read_ca_file(path)?);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                extra,
                pinned: false,
                pinned_in: None,
                ca_files: ca_files.to_vec(),
                proxy,
                tls: OnceLock::new(),
                roots: OnceLock::new(),
            }),
        })
    }

    /// A policy nothing on the machine can widen: the built-in roots and `ca_pem` (PEM
    /// certificates pinned in a configuration file) only — not the system store, not
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR`. For runner-guard, whose lookups must hold on a
    /// runner that an earlier job or its environment may have tampered with. `what`
    /// names the source of `ca_pem` in errors.
    pub fn pinned(
        ca_pem: Option<&str>,
        what: &str,
        proxy: ProxySettings,
    ) -> Result<Self, NetError> {
        proxy.check()?;
        let extra = match ca_pem {
            Some(pem) => parse_pem(pem.as_bytes(), what)?,
            None => Vec::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                extra,
                pinned: true,
                pinned_in: Some(what.to_owned()),
                ca_files: Vec::new(),
                proxy,
                tls: OnceLock::new(),
                roots: OnceLock::new(),
            }),
        })
    }

    /// The policy a step uses: its `--ca-file`s and the proxy variables of the process.
    pub fn from_env(ca_files: &[PathBuf]) -> Result<Self, NetError> {
        Self::new(
            ca_files,
            ProxySettings::from_lookup(|k| std::env::var(k).ok()),
        )
    }

    pub fn proxy(&self) -> &ProxySettings {
        &self.inner.proxy
    }

    /// What to do when a server's certificate is not trusted.
    pub fn ca_hint(&self) -> String {
        match &self.inner.pinned_in {
            Some(field) => format!("pin its certificate in {field}"),
            None => "give its certificate with --ca-file or SSL_CERT_FILE".to_owned(),
        }
    }

    pub fn ca_files(&self) -> &[PathBuf] {
        &self.inner.ca_files
    }

    /// Every trusted root: built-in, system (or `SSL_CERT_FILE`/`SSL_CERT_DIR`), `--ca-file`.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        self.inner.roots.get_or_init(|| {
            let mut all: Vec<CertificateDer<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| c.clone().into_owned())
                .collect();
            if !self.inner.pinned {
                let native = rustls_native_certs::load_native_certs();
                for e in &native.errors {
                    tracing::debug!("system certificate store: {e}");
                }
                all.extend(native.certs);
            }
            all.extend(self.inner.extra.iter().cloned());
            all
        })
    }

    /// Every trusted root as one PEM bundle (for clients that take PEM: the AWS SDK's).
    pub fn roots_pem(&self) -> Vec<u8> {
        use base64::Engine as _;
        let mut out = Vec::new();
        for c in self.roots() {
            out.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            let b64 = base64::engine::general_purpose::STANDARD.encode(c.as_ref());
            for line in b64.as_bytes().chunks(64) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            out.extend_from_slice(b"-----END CERTIFICATE-----\n");
        }
        out
    }

    /// The rustls client configuration: ring, the roots above, TLS 1.2 and 1.3.
    pub fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, NetError> {
        if let Some(c) = self.inner.tls.get() {
            return Ok(c.clone());
        }
        let mut store = rustls::RootCertStore::empty();
        // a malformed system certificate is skipped, as every TLS stack does; the
        // `--ca-file` and pinned ones were checked when the policy was made
        let (_added, _ignored) = store.add_parsable_certificates(self.roots().iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| NetError::Tls(e.to_string()))?
            .with_root_certificates(store)
            .with_no_client_auth();
        let config = Arc::new(config);
        Ok(self.inner.tls.get_or_init(|| config).clone())
    }

    /// The connector every hyper client uses: TCP (with a connect timeout), the proxy,
    /// then TLS.
    pub fn connector(
        &self,
        connect_timeout: std::time::Duration,
    ) -> Result<hyper_rustls::HttpsConnector<ProxyConnector>, NetError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let inner = ProxyConnector {
            http,
            proxy: self.inner.proxy.matcher().map(Arc::new),
        };
        Ok(hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(self.tls_config()?))
            .https_or_http()
            .enable_http1()
            .wrap_connector(inner))
    }

    /// The `Proxy-Authorization` value for a plain-HTTP request sent to a proxy.
    pub(crate) fn proxy_auth_for(&self, uri: &Uri) -> Option<http::HeaderValue> {
        if uri.scheme_str() != Some("http") {
            return None;
        }
        let m = self.inner.proxy.matcher()?;
        m.intercept(uri)?.basic_auth().cloned()
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let what = format!("--ca-file {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| NetError::CaFile {
        path: what.clone(),
        problem: format!("cannot be read ({e})"),
    })?;
    parse_pem(&bytes, &what)
}

/// The certificates of a PEM bundle; `what` (a path, a field) names it in errors.
fn parse_pem(bytes: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let err = |problem: String| NetError::CaFile {
        path: what.to_owned(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("is not a PEM certificate bundle ({e})")))?;
    if certs.is_empty() {
        return Err(err(
            "holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    // the same check rustls makes when the roots are loaded, so a bad certificate is
    // named here rather than skipped there
    for (n, c) in certs.iter().enumerate() {
        rustls::RootCertStore::empty().add(c.clone()).map_err(|e| {
            err(format!(
                "certificate {} is not usable as a root ({e})",
                n + 1
            ))
        })?;
    }
    Ok(certs)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// TCP, directly or through the proxy the policy names for a destination.
#[derive(Clone)]
pub struct ProxyConnector {
    http: HttpConnector,
    proxy: Option<Arc<Matcher>>,
}

impl fmt::Debug for ProxyConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConnector")
            .field("proxy", &self.proxy.is_some())
            .finish()
    }
}

/// A connection from [`ProxyConnector`]: says when it goes to a proxy in the clear, so
/// the request is sent in absolute form.
#[derive(Debug)]
pub struct ProxyStream {
    io: TokioIo<TcpStream>,
    to_proxy: bool,
}

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.proxy.as_ref().and_then(|m| m.intercept(&dst));
        let mut http = self.http.clone();
        match intercept {
            None => Box::pin(async move {
                let io = http.call(dst).await?;
                Ok(ProxyStream {
                    io,
                    to_proxy: false,
                })
            }),
            Some(i) if dst.scheme_str() == Some("https") => {
                let mut tunnel = Tunnel::new(i.uri().clone(), http);
                if let Some(auth) = i.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Box::pin(async move {
                    let io = tunnel.call(dst).await.map_err(|e| {
                        BoxError::from(format!("the proxy refused the tunnel ({e})"))
                    })?;
                    Ok(ProxyStream {
                        io,
                        to_proxy: false,
                    })
                })
            }
            Some(i) => {
                let proxy = i.uri().clone();
                Box::pin(async move {
                    let io = http.call(proxy).await?;
                    Ok(ProxyStream { io, to_proxy: true })
                })
            }
        }
    }
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        let c = self.io.connected();
        if self.to_proxy { c.proxy(true) } else { c }
    }
}

impl hyper::rt::Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn proxy_credentials_are_never_shown() {
        let p = ProxySettings::from_lookup(|k| {
            (k == "https_proxy").then(|| "http://alice:s3cret@proxy.example:3128".to_owned())
        });
        assert!(p.https.is_some(), "lower-case variables count");
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("alice"),
            "{shown}"
        );
        assert!(shown.contains("proxy.example:3128"), "{shown}");
    }

    #[test]
    fn bad_ca_files_and_proxies_are_named() {
        let dir = std::env::temp_dir().join(format!("custody-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Net::new(std::slice::from_ref(&empty), ProxySettings::default()).unwrap_err();
        assert!(
            e.to_string().contains("empty.pem") && e.to_string().contains("no certificate"),
            "{e}"
        );
        let e = Net::new(&[dir.join("missing.pem")], ProxySettings::default()).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
        // well-formed PEM around bytes that are no certificate: named now, not
        // silently skipped when the roots are loaded
        let junk = dir.join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = Net::new(std::slice::from_ref(&junk), ProxySettings::default()).unwrap_err();
        assert!(
            e.to_string().contains("junk.pem") && e.to_string().contains("not usable as a root"),
            "{e}"
        );
        let p = ProxySettings {
            https: Some("socks5://proxy:1080".into()),
            ..ProxySettings::default()
        };
        let e = Net::new(&[], p).unwrap_err();
        assert!(e.to_string().contains("HTTPS_PROXY"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pinned_roots_are_the_built_in_set_and_the_pinned_pem_only() {
        let net = Net::pinned(None, "trust.ca_certificates", ProxySettings::default()).unwrap();
        assert_eq!(
            net.roots().len(),
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.len(),
            "no system store, no SSL_CERT_FILE"
        );
        let e = Net::pinned(
            Some("junk"),
            "trust.ca_certificates",
            ProxySettings::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("trust.ca_certificates"), "{e}");
    }

    #[test]
    fn policies_that_trust_differently_are_not_equal() {
        let none = ProxySettings::default;
        let pinned = Net::pinned(None, "trust.ca_certificates", none()).unwrap();
        assert_ne!(
            pinned,
            Net::default(),
            "pinned roots leave out the system store"
        );
        assert_ne!(pinned, Net::pinned(None, "elsewhere", none()).unwrap());
        assert_eq!(
            pinned,
            Net::pinned(None, "trust.ca_certificates", none()).unwrap()
        );
        assert_eq!(Net::new(&[], none()).unwrap(), Net::default());
    }

    #[test]
    fn the_roots_include_the_built_in_set() {
        let net = Net::default();
        assert!(net.roots().len() >= webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        let pem = net.roots_pem();
        let back = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(back.len(), net.roots().len());
        net.tls_config().unwrap();
    }
}
