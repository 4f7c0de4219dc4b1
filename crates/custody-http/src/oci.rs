//! An OCI distribution client on Custody's one HTTP client: reads (manifests, blobs,
//! the referrers API) and pushes (blobs by monolithic upload, manifests), with the
//! registry token flow (`WWW-Authenticate: Bearer realm=…,service=…,scope=…`),
//! anonymous or with credentials sent to the realm's origin only. cosign signatures
//! are read through it (custody-policy) and Sigstore bundles attached as OCI 1.1
//! referrers through it (evidence-upload).

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use url::Url;

use crate::Secret;
use crate::client::{Auth, Client, Config};
use crate::net::Net;

/// An OCI image manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index.
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// What a manifest read accepts: OCI and Docker manifests and indexes.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";
/// The empty descriptor's media type (OCI 1.1) and its content, `{}`.
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Registry credentials, for the token realm.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<Secret>,
}

/// `registry/repo` from an image reference (`host/repo[:tag][@digest]`; Docker Hub when
/// the first part is not a host).
pub fn split_name(name: &str) -> (String, String) {
    let name = name.split('@').next().unwrap_or(name);
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    };
    match name.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            (host.to_owned(), rest.to_owned())
        }
        Some(_) => ("registry-1.docker.io".to_owned(), name.to_owned()),
        None => ("registry-1.docker.io".to_owned(), format!("library/{name}")),
    }
}

/// One repository of one registry.
pub struct Registry {
    http: Client,
    base: String,
    repo: String,
    /// The bearer token, for the registry's origin only.
    token: Option<Auth>,
    creds: Credentials,
    /// `pull`, or `pull,push`.
    actions: &'static str,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base)
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

/// An answer: status, headers, body.
pub type Answer = (StatusCode, HeaderMap, Vec<u8>);

impl Registry {
    /// `base` is `https://HOST` (or an explicit `http://` registry: a loopback test);
    /// `push` asks for push rights when the registry wants a token.
    pub fn new(
        net: &Net,
        base: &str,
        repo: &str,
        creds: Credentials,
        push: bool,
        cfg: Config,
    ) -> Result<Self, crate::client::HttpError> {
        let base = base.trim_end_matches('/').to_owned();
        let http = Client::new(
            net,
            Config {
                https_only: !base.starts_with("http://"),
                ..cfg
            },
        )?;
        Ok(Self {
            http,
            base,
            repo: repo.to_owned(),
            token: None,
            creds,
            actions: if push { "pull,push" } else { "pull" },
        })
    }

    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// `GET /v2/<repo>/<path>`.
    pub async fn get(&mut self, path: &str, accept: &str) -> Result<(StatusCode, Vec<u8>), String> {
        let url = format!("{}/v2/{}/{path}", self.base, self.repo);
        self.send(Method::GET, &url, Some(accept), None, Bytes::new())
            .await
            .map(|(s, _, b)| (s, b))
    }

    /// One request to `url` (the registry's), answering a token challenge once.
    pub async fn send(
        &mut self,
        method: Method,
        url: &str,
        accept: Option<&str>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Answer, String> {
        let parsed = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let mut headers = HeaderMap::new();
        for (name, value) in [
            (http::header::ACCEPT, accept),
            (http::header::CONTENT_TYPE, content_type),
        ] {
            if let Some(v) = value {
                headers.insert(name, HeaderValue::from_str(v).map_err(|e| e.to_string())?);
            }
        }
        for attempt in 0..2 {
            let rsp = self
                .http
                .send(
                    method.clone(),
                    &parsed,
                    &headers,
                    body.clone(),
                    self.token.as_ref(),
                )
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            let status = rsp.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                let challenge = rsp
                    .headers()
                    .get(http::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{url}: 401 without a WWW-Authenticate challenge"))?;
                let token = self.fetch_token(&challenge).await?;
                self.token = Some(
                    Auth::bearer(&parsed, &token)
                        .ok_or_else(|| format!("{url}: the registry's token is not usable"))?,
                );
                continue;
            }
            let headers = rsp.headers().clone();
            return Ok((status, headers, rsp.into_body().to_vec()));
        }
        Err(format!("{url}: unauthorized"))
    }

    /// The token of a `Bearer realm=…,service=…,scope=…` challenge, anonymous or with
    /// the configured credentials (sent to the realm's origin only).
    async fn fetch_token(&self, challenge: &str) -> Result<String, String> {
        let params = challenge
            .strip_prefix("Bearer ")
            .ok_or_else(|| format!("unsupported registry challenge `{challenge}`"))?;
        let mut realm = None;
        let mut query = Vec::new();
        for part in params.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            let v = v.trim_matches('"').to_owned();
            match k {
                "realm" => realm = Some(v),
                "service" | "scope" => query.push((k.to_owned(), v)),
                _ => {}
            }
        }
        if !query.iter().any(|(k, _)| k == "scope") {
            query.push((
                "scope".into(),
                format!("repository:{}:{}", self.repo, self.actions),
            ));
        }
        let realm =
            realm.ok_or_else(|| format!("registry challenge without realm: `{challenge}`"))?;
        let mut url = Url::parse(&realm).map_err(|e| format!("registry realm {realm}: {e}"))?;
        url.query_pairs_mut().extend_pairs(query.iter());
        let auth = match (&self.creds.username, &self.creds.password) {
            (Some(u), Some(p)) => {
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{}", p.expose()));
                let value = HeaderValue::from_str(&format!("Basic {basic}"))
                    .map_err(|_| format!("{realm}: the registry credentials are not usable"))?;
                Some(Auth::new(&url, http::header::AUTHORIZATION, value))
            }
            _ => None,
        };
        let rsp = self
            .http
            .send(
                Method::GET,
                &url,
                &HeaderMap::new(),
                Bytes::new(),
                auth.as_ref(),
            )
            .await
            .map_err(|e| format!("{realm}: {e}"))?;
        if !rsp.status().is_success() {
            return Err(format!("{realm}: token request answered {}", rsp.status()));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = serde_json::from_slice(rsp.body()).map_err(|e| format!("{realm}: {e}"))?;
        t.token
            .or(t.access_token)
            .ok_or_else(|| format!("{realm}: no token in the answer"))
    }

    /// Uploads a blob (monolithic: `POST …/blobs/uploads/`, then `PUT` at the location
    /// with the digest), unless the registry has it. `digest` is `sha256:<hex>`.
    pub async fn put_blob(&mut self, digest: &str, bytes: &[u8]) -> Result<(), String> {
        let head = format!("{}/v2/{}/blobs/{digest}", self.base, self.repo);
        let (s, _, _) = self
            .send(Method::HEAD, &head, None, None, Bytes::new())
            .await?;
        if s.is_success() {
            return Ok(());
        }
        let start = format!("{}/v2/{}/blobs/uploads/", self.base, self.repo);
        let (s, headers, _) = self
            .send(Method::POST, &start, None, None, Bytes::new())
            .await?;
        if s != StatusCode::ACCEPTED {
            return Err(format!(
                "starting the upload of {digest}: the registry answered {s}"
            ));
        }
        let location = headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("starting the upload of {digest}: no Location"))?;
        // the location may be relative to the registry
        let mut url = Url::parse(&self.base)
            .and_then(|b| b.join(location))
            .map_err(|e| format!("upload location {location}: {e}"))?;
        url.query_pairs_mut().append_pair("digest", digest);
        let (s, _, _) = self
            .send(
                Method::PUT,
                url.as_str(),
                None,
                Some("application/octet-stream"),
                Bytes::copy_from_slice(bytes),
            )
            .await?;
        if !s.is_success() {
            return Err(format!("uploading {digest}: the registry answered {s}"));
        }
        Ok(())
    }

    /// `PUT /v2/<repo>/manifests/<reference>`; the answer's headers (`OCI-Subject` says
    /// the registry indexed the manifest's subject for the referrers API).
    pub async fn put_manifest(
        &mut self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<HeaderMap, String> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repo);
        let (s, headers, body) = self
            .send(
                Method::PUT,
                &url,
                None,
                Some(media_type),
                Bytes::copy_from_slice(bytes),
            )
            .await?;
        if !s.is_success() {
            return Err(format!(
                "pushing manifest {reference}: the registry answered {s}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ));
        }
        Ok(headers)
    }
}
