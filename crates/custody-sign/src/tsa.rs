//! RFC 3161 timestamps for every signature a signer makes (`--tsa URL`, repeatable):
//! [`Timestamped`] wraps any [`Signer`] and, after each signature, asks every
//! configured TSA for a token over it. The tokens go into the envelope with the
//! signature (custody-evidence's `timestamp` module says where and how they verify).
//!
//! Every configured TSA must answer: a record promised N timestamps carries N, or it
//! is not signed and nothing is stored. Each request is tried three times on a broken
//! connection or a 5xx answer, with a fresh nonce; a reply that does not echo its
//! request's nonce, or covers other bytes, is refused as a replay.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use custody_evidence::timestamp::{self, QUERY_MEDIA_TYPE, REPLY_MEDIA_TYPE};
use custody_evidence::{PublicKey, SignError, Signer};
use custody_http::client::{Client, Config, Redirects};
use custody_http::net::Net;
use http::{HeaderMap, HeaderValue, Method, header};
use rand_core::RngCore as _;
use url::Url;

use crate::SignerError;
use crate::awskms::{OwnRuntime, run_on};

/// Tries per TSA request, the first included.
const ATTEMPTS: u32 = 3;
/// The largest reply read: a token with its chain is a few KiB.
const MAX_REPLY: usize = timestamp::MAX_TOKEN_LEN + 1024;

/// A signer whose signatures are timestamped by every TSA in `urls`.
pub struct Timestamped {
    inner: Arc<dyn Signer>,
    urls: Vec<Url>,
    client: Client,
    rt: OwnRuntime,
}

impl fmt::Debug for Timestamped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timestamped")
            .field("inner", &self.inner)
            .field(
                "urls",
                &self.urls.iter().map(Url::as_str).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Parses a TSA URL: `https://`, or `http://` (RFC 3161 replies are signed, and many
/// public TSAs serve plain HTTP). Credentials in the URL are refused: they would be
/// printed with it.
pub fn parse_tsa_url(value: &str) -> Result<Url, SignerError> {
    let bad = |reason: &str| SignerError::Unsupported {
        key: "--tsa".into(),
        reason: format!("`{}`: {reason}", redact(value)),
    };
    let url = Url::parse(value.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("a TSA URL is http:// or https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials in a TSA URL are refused (they would appear in logs)",
        ));
    }
    Ok(url)
}

/// `value` without anything between `://` and `@`.
fn redact(value: &str) -> String {
    match (value.find("://"), value.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}****{}", &value[..s + 3], &value[a..]),
        _ => value.to_owned(),
    }
}

impl Timestamped {
    /// Wraps `inner`; `urls` are checked here, the TSAs are first asked at the first
    /// signature.
    pub fn new(inner: Arc<dyn Signer>, urls: &[String], net: &Net) -> Result<Self, SignerError> {
        let urls = urls
            .iter()
            .map(|u| parse_tsa_url(u))
            .collect::<Result<Vec<_>, _>>()?;
        let setup = |reason: String| {
            SignerError::Key(SignError {
                key: inner.name(),
                reason,
            })
        };
        let client = Client::new(
            net,
            Config {
                timeout: Duration::from_secs(30),
                attempts: 1,
                redirects: Redirects::Refuse,
                https_only: false,
                body_limit: MAX_REPLY,
                ..Config::default()
            },
        )
        .map_err(|e| setup(format!("setting up the TSA client: {e}")))?;
        let rt = OwnRuntime(Some(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| setup(format!("starting the TSA client's runtime: {e}")))?,
        ));
        Ok(Self {
            inner,
            urls,
            client,
            rt,
        })
    }

    async fn stamp(&self, url: &Url, signature: &[u8]) -> Result<Vec<u8>, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(QUERY_MEDIA_TYPE),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static(REPLY_MEDIA_TYPE));
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let mut nonce = [0u8; 8];
            rand_core::OsRng
                .try_fill_bytes(&mut nonce)
                .map_err(|e| format!("no randomness for a nonce: {e}"))?;
            let req = timestamp::request(signature, nonce).map_err(|e| e.to_string())?;
            let (error, transient) = match self
                .client
                .send(
                    Method::POST,
                    url,
                    &headers,
                    Bytes::from(req.der.clone()),
                    None,
                )
                .await
            {
                Ok(rsp) if rsp.status().is_success() => {
                    return timestamp::accept_reply(&req, rsp.body()).map_err(|e| e.to_string());
                }
                Ok(rsp) => (
                    format!("answered HTTP {}", rsp.status().as_u16()),
                    rsp.status().is_server_error() || rsp.status().as_u16() == 429,
                ),
                Err(e) => (e.to_string(), e.is_transient()),
            };
            if !transient || attempt >= ATTEMPTS {
                return Err(if attempt > 1 {
                    format!("{error} (after {attempt} attempts)")
                } else {
                    error
                });
            }
            tracing::debug!(%error, attempt, "TSA request failed; retrying");
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}

impl Signer for Timestamped {
    fn public(&self) -> &PublicKey {
        self.inner.public()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        self.inner.sign(msg)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
    fn timestamp(&self, signature: &[u8]) -> Result<Vec<Vec<u8>>, SignError> {
        let mut tokens = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let token = run_on(&self.rt, self.stamp(url, signature))
                .and_then(|r| r)
                .map_err(|reason| SignError {
                    key: self.inner.name(),
                    reason: format!("the TSA {url} gave no timestamp: {reason}"),
                })?;
            tokens.push(token);
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsa_urls_are_checked() {
        assert!(parse_tsa_url("https://freetsa.org/tsr").is_ok());
        assert!(parse_tsa_url("http://timestamp.digicert.com").is_ok());
        for bad in [
            "ftp://tsa/",
            "tsa.example",
            "https://user:hunter2@tsa.example/",
        ] {
            let e = parse_tsa_url(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
