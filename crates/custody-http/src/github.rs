//! The one way Custody builds an octocrab client: octocrab's own layers (base URI,
//! headers, the token for the API and upload hosts only) over Custody's connector, so
//! GitHub calls use the same roots, proxy and TLS provider as every other call.
//! Redirects are not followed (as octocrab without `follow-redirect`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as Hyper;
use octocrab::service::middleware::auth_header::AuthHeaderLayer;
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::service::middleware::extra_headers::ExtraHeadersLayer;
use octocrab::{AuthState, OctoBody, Octocrab, OctocrabBuilder};

use crate::Secret;
use crate::client::{self, HttpError};
use crate::net::{Net, ProxyConnector};

/// github.com's API; uploads go elsewhere there, to the API's host on GitHub Enterprise
/// Server.
const GITHUB_API: &str = "https://api.github.com";
const GITHUB_UPLOADS: &str = "https://uploads.github.com";

/// What an octocrab client is made for.
#[derive(Debug, Clone)]
pub struct GitHub<'a> {
    /// `https://api.github.com`, or `https://HOST/api/v3` on GitHub Enterprise Server.
    pub api_url: &'a str,
    /// `None`: uploads.github.com for github.com, the API's host otherwise.
    pub upload_url: Option<&'a str>,
    pub token: Option<&'a Secret>,
    pub connect_timeout: Duration,
    /// Limit for one request, until the answer's head arrives.
    pub timeout: Duration,
    pub user_agent: &'static str,
}

/// An octocrab client on Custody's connector.
pub fn octocrab(net: &Net, gh: &GitHub<'_>) -> Result<Octocrab, HttpError> {
    build(net, gh, AuthState::None)
}

fn build(net: &Net, gh: &GitHub<'_>, state: AuthState) -> Result<Octocrab, HttpError> {
    let uri = |what: &str, u: &str| -> Result<Uri, HttpError> {
        u.trim_end_matches('/')
            .parse::<Uri>()
            .map_err(|e| HttpError::Request(format!("{what} {u}: not a URL ({e})")))
    };
    let base = uri("the GitHub API URL", gh.api_url)?;
    let upload = match gh.upload_url {
        Some(u) => uri("the GitHub upload URL", u)?,
        None if gh.api_url.trim_end_matches('/') == GITHUB_API => {
            uri("the GitHub upload URL", GITHUB_UPLOADS)?
        }
        None => base.clone(),
    };
    let transport = Transport {
        hyper: client::hyper::<OctoBody>(net, gh.connect_timeout)?,
        timeout: gh.timeout,
        net: net.clone(),
    };
    let auth = match gh.token {
        Some(t) => {
            let mut v =
                HeaderValue::from_str(&format!("Bearer {}", t.expose().trim())).map_err(|_| {
                    HttpError::Request(
                        "the GitHub token contains characters not allowed in a header".into(),
                    )
                })?;
            v.set_sensitive(true);
            Some(v)
        }
        None => None,
    };
    let headers: Vec<(HeaderName, HeaderValue)> = vec![(
        http::header::USER_AGENT,
        HeaderValue::from_static(gh.user_agent),
    )];
    let crab = OctocrabBuilder::new_empty()
        .with_service(transport)
        .with_layer(&ExtraHeadersLayer::new(Arc::new(headers)))
        .with_layer(&BaseUriLayer::new(base.clone()))
        .with_layer(&AuthHeaderLayer::new(auth, base, upload))
        .with_auth(state)
        .build();
    match crab {
        Ok(c) => Ok(c),
        Err(never) => match never {},
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper's client with a timeout and Custody's error text.
#[derive(Clone)]
struct Transport {
    hyper: Hyper<hyper_rustls::HttpsConnector<ProxyConnector>, OctoBody>,
    timeout: Duration,
    net: Net,
}

impl tower_service::Service<Request<OctoBody>> for Transport {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Incoming>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<OctoBody>) -> Self::Future {
        let hyper = self.hyper.clone();
        let timeout = self.timeout;
        let net = self.net.clone();
        Box::pin(async move {
            match tokio::time::timeout(timeout, hyper.request(req)).await {
                Ok(Ok(rsp)) => Ok(rsp),
                Ok(Err(e)) => Err(client::describe(&e, &net).into()),
                Err(_) => Err(format!("timed out after {} s", timeout.as_secs_f32()).into()),
            }
        })
    }
}
