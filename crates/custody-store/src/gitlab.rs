//! The GitLab store (`gitlab://`): evidence kept in a project's generic package registry.
//!
//! # URL
//!
//! ```text
//! gitlab://HOST[:PORT]/GROUP/…/PROJECT/PACKAGE     e.g. gitlab://gitlab.com/acme/app/custody-evidence
//! gitlab://HOST[:PORT]/PROJECT_ID/PACKAGE          e.g. gitlab://gitlab.example.org/1234/custody-evidence
//! gitlab+http://127.0.0.1:PORT/acme/app/evidence   plain HTTP, loopback hosts only (tests)
//! ```
//!
//! The last path segment is the generic package name (`[A-Za-z0-9._-]`); everything
//! between the host and it is the project path, or a numeric project id. The API is
//! `https://HOST[:PORT]/api/v4/`; GitLab under a relative URL root is not supported. The
//! URL never carries credentials: a token comes from [`GitLabOptions`], filled by the
//! caller from `CI_JOB_TOKEN` (sent as `JOB-TOKEN`) or `CUSTODY_GITLAB_TOKEN` (sent as
//! `PRIVATE-TOKEN`; a personal, project or group access token with the `api` scope).
//!
//! # Layout
//!
//! The store is one generic package name; what the local store keeps in directories
//! becomes package *versions*, and the file names stay as they are:
//!
//! ```text
//! version                               file                    content
//! objects-sha256-ab                     abcdef…  (64 hex)       the object's bytes
//! retention-sha256-ab                   abcdef….json            retention marker (JSON)
//! chain-<C(chain id)>                   000000000007_<hex>      the 8th record's digest
//! index-<kind>-<C(value)>               <nanos:020>_<hex>       the record's digest
//! log-<C(dir)>                          <name>_<sha256 hex>     a log file (`log/dir/name`)
//! log-<C(parent)>                       <dir>_dir               (empty) lists `dir`
//! ```
//!
//! The transparency log's write-once files ([`crate::log`]) rely on what the package
//! API does guarantee: file ids grow with every upload, and listing returns them. A log
//! file's name carries the digest of its bytes, so several writers racing for one name
//! (an index claim) each upload their own file, and the *first uploaded* (lowest
//! package-file id) is the name's content for every reader; a download is checked
//! against the digest in its name, so a later upload under the same name and digest
//! with other bytes is an error, never a substitution.
//!
//! `kind` is one of `subject commit pipeline day environment stage control`. GitLab allows
//! `[A-Za-z0-9._-]` in file names and `\A(\.?[\w+-]+\.?)+\z` in versions, so values go
//! through [`encode_component`] (percent-encoding, injective) and then `C`, which maps its
//! output onto `[A-Za-z0-9_-]` without losing injectivity: `_` → `__`, `.` → `_d`,
//! `%` → `_` (a `%` is always followed by a hex digit or `h`, never by `_` or `d`, so
//! the mapping can be undone). A result longer than 128 characters is replaced by `_H`
//! and the SHA-256 of the encoded value (`%H` never occurs, so no short value maps there).
//!
//! # Write-once, and what GitLab does not give
//!
//! GitLab keeps package files until someone deletes them; there is no object lock. A
//! Maintainer (or the API with such a token) can delete files whatever Custody recorded,
//! so retention here is a recorded promise that Custody clients keep, not an enforcement:
//! restrict who is Maintainer, protect the package name (GitLab's protected packages),
//! and mirror to S3 Object Lock when enforcement is required. `retention()` returns the
//! marker Custody wrote; `delete_object` refuses before it expires, like the local store.
//!
//! Every write checks for the file first and skips it when present. GitLab allows several
//! files with one name in one version (unless the namespace forbids duplicate generic
//! packages), and a download returns the most recent one, so nothing below trusts a
//! download to be the first write: objects are checked against their digest; a chain
//! entry names its record in its file name, and the *first uploaded* file for a position
//! (lowest package-file id) is the chain's record there — a later, different record at
//! that position is refused as a fork ([`StoreError::ChainConflict`]), also when it lost
//! a race after its upload. Each retention marker is a name of its own carrying the
//! SHA-256 of its bytes (`<hex>.<sha256>.json`), and an object's retention is the
//! longest of its markers: anyone who can upload can add a marker, but a shorter one
//! changes nothing, and a name uploaded again with other bytes is an error that names it
//! (the first upload of a name cannot be downloaded once a later one exists). An object
//! uploaded again with junk bytes reads as corrupt for the same reason: detected, not
//! recoverable through the API. Disallowing duplicate generic packages in the group's
//! package settings makes GitLab refuse such uploads outright.
//!
//! # Network
//!
//! Requests go through the `gitlab` crate's endpoints and query helpers over Custody's
//! one GitLab client (`custody_http::gitlab::Client`): connect and request timeouts, transient
//! failures (5xx, 429, timeouts, refused or reset connections) retried with bounded
//! exponential backoff, redirects followed by hand so that the token is sent to the
//! GitLab host only (package downloads may redirect to object storage), and tokens kept
//! in a redacting type that never reaches `Debug`, `Display` or an error. Objects are
//! read into memory to upload and download; very large objects are better kept in S3.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::gitlab::api::common::NameOrId;
use ::gitlab::api::endpoint_prelude::{Endpoint, Method, Pageable, QueryParams};
use ::gitlab::api::projects::packages::generic::{
    GetPackageFile, UploadPackageFile, UploadPackageSelect,
};
use ::gitlab::api::projects::packages::package_files::{DeletePackageFile, PackageFiles};
use ::gitlab::api::{self as glapi, ApiError, AsyncQuery, Pagination};
use custody_evidence::Digest;
use jiff::Timestamp;
use serde::Deserialize;
use thiserror::Error;
use url::Url;

use crate::error::StoreError;
use crate::index::{IndexKey, encode_component, index_keys};
use crate::layout::{
    DecodedRecord, chain_entry_name, check_previous, day_in_range, decode_record, finish,
    intersect, merge_retention, parse_pointer_name, pointer_name, retention_holds,
};
use crate::query::{Query, RecordRef};
use crate::{EvidenceStore, ObjectSource, PutOutcome, Retention};

use custody_http::gitlab::{Client as Api, ClientError, Config as ClientConfig, Redirects};
pub use custody_http::gitlab::{Token as GitLabToken, TokenKind};
use custody_http::net::Net;

const SCHEME: &str = "gitlab://";
const SCHEME_HTTP: &str = "gitlab+http://";
/// Longest encoded value kept readable in a version; longer ones are hashed.
const MAX_COMPONENT: usize = 128;

/// Whether a store URL names the GitLab backend.
pub(crate) fn is_gitlab_url(url: &str) -> bool {
    url.starts_with(SCHEME) || url.starts_with(SCHEME_HTTP)
}

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

/// What went wrong talking to GitLab. Messages name the request (method and URL, never
/// a token) and what to check.
#[derive(Debug, Error)]
pub enum GitLabError {
    #[error("gitlab answered {status} to {method} {endpoint}: {message}{hint}")]
    Status {
        method: String,
        endpoint: String,
        status: u16,
        message: String,
        hint: &'static str,
    },
    #[error(
        "cannot reach gitlab for {method} {endpoint} after {attempts} attempts: {reason}; check the store URL, the network and that GitLab is up"
    )]
    Unreachable {
        method: String,
        endpoint: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "gitlab kept failing with {status} on {method} {endpoint} after {attempts} attempts; try again later"
    )]
    Unavailable {
        method: String,
        endpoint: String,
        status: u16,
        attempts: u32,
    },
    #[error("unexpected answer from gitlab to {method} {endpoint}: {reason}")]
    Response {
        method: String,
        endpoint: String,
        reason: String,
    },
    #[error("cannot set up the gitlab client: {reason}")]
    Setup { reason: String },
}

impl GitLabError {
    /// A 404 for a file, not for the project: GitLab answers "404 Project Not Found" when
    /// the project is missing or hidden from the token. (A HEAD answer has no message, so
    /// there a missing project looks like a missing file; the next write tells them apart.)
    fn is_missing_file(&self) -> bool {
        match self {
            Self::Status {
                status: 404,
                message,
                ..
            } => !message.contains("Project"),
            _ => false,
        }
    }
}

fn hint(status: u16) -> &'static str {
    match status {
        401 => {
            "; the token is missing, wrong or expired: set CUSTODY_GITLAB_TOKEN (an access token with the api scope) or run in a job with CI_JOB_TOKEN"
        }
        403 => {
            "; the token may not do this: it needs the api scope (and Developer role for writes), a job token needs the project in its allowlist, and the namespace may refuse duplicate generic packages"
        }
        404 => "; check the project path or id in the store URL and that the token can see it",
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------
// Endpoints the `gitlab` crate lacks.

/// `GET /projects/:id/packages?package_type=generic&package_name=…[&package_version=…]`.
/// The crate's `Packages` endpoint has no `generic` package type.
struct GenericPackages<'a> {
    project: NameOrId<'a>,
    name: &'a str,
    version: Option<&'a str>,
}

impl Endpoint for GenericPackages<'_> {
    fn method(&self) -> Method {
        Method::GET
    }
    fn endpoint(&self) -> Cow<'static, str> {
        format!("projects/{}/packages", self.project).into()
    }
    fn parameters(&self) -> QueryParams<'_> {
        let mut params = QueryParams::default();
        params
            .push("package_type", "generic")
            .push("package_name", self.name)
            .push_opt("package_version", self.version);
        params
    }
}

impl Pageable for GenericPackages<'_> {}

/// `HEAD /projects/:id/packages/generic/:name/:version/:file`: whether a file exists,
/// without downloading it (the crate has only the `GET`).
struct GenericFileHead<'a> {
    project: NameOrId<'a>,
    name: &'a str,
    version: &'a str,
    file: &'a str,
}

impl Endpoint for GenericFileHead<'_> {
    fn method(&self) -> Method {
        Method::HEAD
    }
    fn endpoint(&self) -> Cow<'static, str> {
        // names and versions are already restricted to URL-safe characters
        format!(
            "projects/{}/packages/generic/{}/{}/{}",
            self.project, self.name, self.version, self.file
        )
        .into()
    }
}

/// A package, as `GET /projects/:id/packages` lists it.
#[derive(Debug, Deserialize)]
struct PackageInfo {
    id: u64,
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    package_type: Option<String>,
}

/// A package file, as `GET …/package_files` lists it and `PUT …?select=package_file`
/// answers.
#[derive(Debug, Deserialize)]
struct PackageFileInfo {
    id: u64,
    file_name: String,
    #[serde(default)]
    file_sha256: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Names.

/// Maps [`encode_component`] output onto GitLab's version and file-name alphabet,
/// injectively (see the module docs).
fn gitlab_component(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len() + 8);
    for c in encoded.chars() {
        match c {
            '_' => out.push_str("__"),
            '.' => out.push_str("_d"),
            '%' => out.push('_'),
            c => out.push(c),
        }
    }
    if out.len() > MAX_COMPONENT {
        return format!("_H{}", Digest::of(encoded.as_bytes()).hex());
    }
    out
}

fn hex_prefix(d: &Digest) -> String {
    d.hex().chars().take(2).collect()
}

fn object_version(d: &Digest) -> String {
    format!("objects-sha256-{}", hex_prefix(d))
}

fn retention_version(d: &Digest) -> String {
    format!("retention-sha256-{}", hex_prefix(d))
}

/// The retention marker written before markers carried their bytes' digest (still read,
/// by [`is_retention_marker`]).
#[cfg(test)]
fn retention_file(d: &Digest) -> String {
    format!("{}.json", d.hex())
}

/// A retention marker: its name carries the SHA-256 of its bytes, so each marker is a
/// name of its own and a later upload under that name is seen (GitLab serves only the
/// newest file of a name).
fn retention_marker(d: &Digest, bytes: &[u8]) -> String {
    format!("{}.{}.json", d.hex(), Digest::of(bytes).hex())
}

/// Whether `file` is a retention marker of `d`, and the digest its name carries.
fn is_retention_marker(d: &Digest, file: &str) -> Option<Option<String>> {
    let rest = file.strip_prefix(&d.hex())?.strip_suffix(".json")?;
    if rest.is_empty() {
        return Some(None);
    }
    let sha = rest.strip_prefix('.')?;
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Some(sha.to_owned()))
}

fn chain_version(chain: &str) -> String {
    format!("chain-{}", gitlab_component(&encode_component(chain)))
}

fn chain_file(sequence: u64, d: &Digest) -> String {
    format!("{}_{}", chain_entry_name(sequence), d.hex())
}

fn parse_chain_file(name: &str) -> Option<(u64, Digest)> {
    let (seq, hex) = name.split_once('_')?;
    Some((seq.parse().ok()?, Digest::parse(hex).ok()?))
}

fn index_version(key: &IndexKey) -> String {
    let [kind, value] = key.segments();
    format!("index-{kind}-{}", gitlab_component(&value))
}

/// The version holding a log directory's files (`log/DIR/…`).
fn log_version(dir: &str) -> String {
    format!("log-{}", gitlab_component(&encode_component(dir)))
}

/// A log file's upload name: its base name and the SHA-256 of its bytes, so that a
/// reader can tell the first write from any later upload of the same name.
fn log_file(base: &str, bytes: &[u8]) -> String {
    format!("{base}_{}", Digest::of(bytes).hex())
}

/// The marker a directory leaves in its parent, so that the parent can be listed.
const LOG_DIR_SUFFIX: &str = "_dir";

const DAY_PREFIX: &str = "index-day-";

// ---------------------------------------------------------------------------------------
// URL.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    http: bool,
    /// host with port, as written
    authority: String,
    project: String,
    package: String,
}

fn unsupported(url: &str, reason: impl Into<String>) -> StoreError {
    StoreError::UnsupportedUrl {
        url: without_userinfo(url),
        reason: reason.into(),
    }
}

/// The URL as it may be shown: credentials someone put in it replaced by `****`.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest.get(..end).and_then(|a| a.rfind('@')) {
        Some(at) => format!("{scheme}://****{}", rest.get(at..).unwrap_or_default()),
        None => url.to_owned(),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn parse_location(url: &str) -> Result<Location, StoreError> {
    let (http, rest) = if let Some(rest) = url.strip_prefix(SCHEME_HTTP) {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix(SCHEME) {
        (false, rest)
    } else {
        return Err(unsupported(url, "a GitLab store URL starts with gitlab://"));
    };
    if rest.contains(['?', '#']) {
        return Err(unsupported(
            url,
            "a GitLab store URL has no query or fragment: gitlab://HOST/PROJECT_PATH/PACKAGE",
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(unsupported(
            url,
            "credentials do not belong in the store URL; set CUSTODY_GITLAB_TOKEN or use CI_JOB_TOKEN",
        ));
    }
    let parsed = Url::parse(&format!("https://{authority}/"))
        .map_err(|e| unsupported(url, format!("bad host `{authority}`: {e}")))?;
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err(unsupported(
            url,
            "the URL names no host: gitlab://HOST/PROJECT_PATH/PACKAGE",
        ));
    }
    if http && !is_loopback(host) {
        return Err(unsupported(
            url,
            "gitlab+http:// is for loopback test servers only; use gitlab:// (HTTPS) for a real GitLab",
        ));
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let Some((package, project)) = segments.split_last() else {
        return Err(unsupported(
            url,
            "expected gitlab://HOST/PROJECT_PATH/PACKAGE",
        ));
    };
    if project.is_empty() || !project.iter().all(|s| is_name(s)) {
        return Err(unsupported(
            url,
            "expected gitlab://HOST/PROJECT_PATH_OR_ID/PACKAGE, the project path made of letters, digits, `.`, `_` and `-`",
        ));
    }
    if !is_name(package) {
        return Err(unsupported(
            url,
            "the package name (the last segment) may hold only letters, digits, `.`, `_` and `-`",
        ));
    }
    Ok(Location {
        http,
        authority: authority.to_owned(),
        project: project.join("/"),
        package: (*package).to_owned(),
    })
}

// ---------------------------------------------------------------------------------------
// The store.

/// An evidence store in a GitLab project's generic package registry.
#[derive(Debug, Clone)]
pub struct GitLabStore {
    api: Arc<Api>,
    location: Location,
}

impl GitLabStore {
    /// Parses the URL and prepares the client. No request is made: GitLab creates a
    /// package on its first upload, so opening and creating are the same, and problems
    /// (host, token, project) surface on the first call, with the request named.
    pub fn open(url: &str, options: &GitLabOptions) -> Result<Self, StoreError> {
        let location = parse_location(url)?;
        let scheme = if location.http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}/api/v4/", location.authority))
            .map_err(|e| unsupported(url, e.to_string()))?;
        let api = Api::new(
            base,
            options.token.clone(),
            &options.net,
            ClientConfig {
                timeout: options.timeout,
                connect_timeout: options.connect_timeout,
                attempts: options.attempts,
                initial_backoff: options.initial_backoff,
                max_backoff: options.max_backoff,
                redirects: Redirects::FollowReads,
                https_only: !location.http,
                ..ClientConfig::default()
            },
        )
        .map_err(|e| GitLabError::Setup {
            reason: e.to_string(),
        })?;
        Ok(Self {
            api: Arc::new(api),
            location,
        })
    }

    /// The generic package that holds the store.
    pub fn package_name(&self) -> &str {
        &self.location.package
    }

    fn project(&self) -> NameOrId<'_> {
        match self.location.project.parse::<u64>() {
            Ok(id) => NameOrId::Id(id),
            Err(_) => NameOrId::Name(Cow::Borrowed(&self.location.project)),
        }
    }

    /// The URL of an endpoint, for messages: no query string, never a token.
    fn endpoint_url<E: Endpoint>(&self, ep: &E) -> String {
        self.api
            .base()
            .join(&ep.endpoint())
            .map_or_else(|_| ep.endpoint().into_owned(), String::from)
    }

    fn file_url(&self, version: &str, file: &str) -> PathBuf {
        PathBuf::from(format!("{}/{version}/{file}", self.uri()))
    }

    fn error<E: Endpoint>(&self, ep: &E, e: ApiError<ClientError>) -> GitLabError {
        let method = ep.method().to_string();
        let endpoint = self.endpoint_url(ep);
        let redact = |s: &str| self.api.redact(s).chars().take(300).collect::<String>();
        let status = |status: http::StatusCode, message: String| GitLabError::Status {
            method: method.clone(),
            endpoint: endpoint.clone(),
            status: status.as_u16(),
            message: redact(&message),
            hint: hint(status.as_u16()),
        };
        match e {
            ApiError::GitlabWithStatus { status: s, msg } => status(s, msg),
            ApiError::GitlabObjectWithStatus { status: s, obj }
            | ApiError::GitlabUnrecognizedWithStatus { status: s, obj } => {
                status(s, obj.to_string())
            }
            ApiError::GitlabService { status: s, data } => {
                let text = String::from_utf8_lossy(&data).trim().to_owned();
                let text = if text.is_empty() {
                    s.canonical_reason().unwrap_or("no message").to_owned()
                } else {
                    text
                };
                status(s, text)
            }
            ApiError::Client {
                source: ClientError::Transport { attempts, reason },
            } => GitLabError::Unreachable {
                method,
                endpoint,
                attempts,
                reason: redact(&reason),
            },
            ApiError::Client {
                source: ClientError::Exhausted { status, attempts },
            } => GitLabError::Unavailable {
                method,
                endpoint,
                status,
                attempts,
            },
            ApiError::GitlabRateLimited { .. } => GitLabError::Unavailable {
                method,
                endpoint,
                status: 429,
                attempts: self.api.config().attempts,
            },
            other => GitLabError::Response {
                method,
                endpoint,
                reason: redact(&other.to_string()),
            },
        }
    }

    async fn raw<E: Endpoint + Sync>(&self, ep: &E) -> Result<Vec<u8>, GitLabError> {
        glapi::raw(ep)
            .query_async(&*self.api)
            .await
            .map_err(|e| self.error(ep, e))
    }

    async fn paged<E, T>(&self, ep: &E) -> Result<Vec<T>, GitLabError>
    where
        E: Endpoint + Pageable + Sync,
        T: serde::de::DeserializeOwned + Send + 'static,
    {
        glapi::paged(ep, Pagination::All)
            .query_async(&*self.api)
            .await
            .map_err(|e| self.error(ep, e))
    }

    async fn has_file(&self, version: &str, file: &str) -> Result<bool, StoreError> {
        let ep = GenericFileHead {
            project: self.project(),
            name: &self.location.package,
            version,
            file,
        };
        match self.raw(&ep).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_missing_file() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_file(&self, version: &str, file: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let ep = GetPackageFile::builder()
            .project(self.project())
            .package_name(self.location.package.as_str())
            .package_version(version)
            .file_name(file)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        match self.raw(&ep).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.is_missing_file() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Uploads a file and returns GitLab's record of it (when the server sends one).
    async fn upload(
        &self,
        version: &str,
        file: &str,
        contents: &[u8],
    ) -> Result<Option<PackageFileInfo>, StoreError> {
        let ep = UploadPackageFile::builder()
            .project(self.project())
            .package_name(self.location.package.as_str())
            .package_version(version)
            .file_name(file)
            .select(UploadPackageSelect::PackageFile)
            .contents(contents)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let answer = self.raw(&ep).await?;
        // older GitLab ignores `select` and answers {"message":"201 Created"}
        let info: Option<PackageFileInfo> = serde_json::from_slice(&answer).ok();
        if let Some(sha) = info.as_ref().and_then(|i| i.file_sha256.as_deref())
            && sha.len() == 64
            && !sha.eq_ignore_ascii_case(&Digest::of(contents).hex())
        {
            return Err(GitLabError::Response {
                method: "PUT".into(),
                endpoint: self.endpoint_url(&ep),
                reason: format!(
                    "gitlab stored {file} with SHA-256 {sha}, not the uploaded bytes; the upload was altered on the way, try again"
                ),
            }
            .into());
        }
        Ok(info)
    }

    /// Every generic package of this store, optionally of one version.
    async fn packages(&self, version: Option<&str>) -> Result<Vec<PackageInfo>, StoreError> {
        let ep = GenericPackages {
            project: self.project(),
            name: &self.location.package,
            version,
        };
        let mut found: Vec<PackageInfo> = self.paged(&ep).await?;
        // `package_name` is a fuzzy match: keep exact names (and versions) only
        found.retain(|p| {
            p.name == self.location.package
                && p.package_type.as_deref().is_none_or(|t| t == "generic")
                && version.is_none_or(|v| p.version.as_deref() == Some(v))
        });
        found.sort_by_key(|p| p.id);
        Ok(found)
    }

    async fn files_of(&self, package_id: u64) -> Result<Vec<PackageFileInfo>, StoreError> {
        let ep = PackageFiles::builder()
            .project(self.project())
            .package_id(package_id)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(self.paged(&ep).await?)
    }

    /// The files of one version, oldest first, with the package each belongs to.
    async fn list_files(&self, version: &str) -> Result<Vec<(u64, PackageFileInfo)>, StoreError> {
        let mut out = Vec::new();
        for p in self.packages(Some(version)).await? {
            out.extend(self.files_of(p.id).await?.into_iter().map(|f| (p.id, f)));
        }
        out.sort_by_key(|(_, f)| f.id);
        Ok(out)
    }

    /// An object's retention: the longest of its markers (retention only grows, so a
    /// marker with an earlier date, whoever uploaded it, shortens nothing). A marker name
    /// uploaded twice with different bytes, or bytes that are not what its name carries,
    /// means the first upload can no longer be read: that is an error naming it, never
    /// a silent substitution.
    async fn read_retention(&self, d: &Digest) -> Result<Option<Retention>, StoreError> {
        let version = retention_version(d);
        // (file, the digest its name carries, if any)
        let files: Vec<(PackageFileInfo, Option<String>)> = self
            .list_files(&version)
            .await?
            .into_iter()
            .filter_map(|(_, f)| is_retention_marker(d, &f.file_name).map(|named| (f, named)))
            .collect();
        let mut merged: Option<Retention> = None;
        let mut seen = std::collections::BTreeSet::new();
        for (f, named) in &files {
            if !seen.insert(f.file_name.as_str()) {
                continue;
            }
            let url = self.file_url(&version, &f.file_name);
            let replaced = || {
                StoreError::Invalid(format!(
                    "{}: retention marker of object {d} was uploaded again with other bytes, and GitLab serves only the newest upload of a name: the first cannot be read (disallow duplicate generic packages in the group's package settings)",
                    url.display()
                ))
            };
            let shas: std::collections::BTreeSet<String> = files
                .iter()
                .map(|(x, _)| x)
                .filter(|x| x.file_name == f.file_name)
                .filter_map(|x| x.file_sha256.as_deref().map(str::to_ascii_lowercase))
                .collect();
            if shas.len() > 1 {
                return Err(replaced());
            }
            let bytes = self
                .get_file(&version, &f.file_name)
                .await?
                .ok_or_else(|| {
                    StoreError::Invalid(format!("{}: listed but not downloadable", url.display()))
                })?;
            let actual = Digest::of(&bytes).hex();
            if named
                .as_deref()
                .is_some_and(|n| !n.eq_ignore_ascii_case(&actual))
                || shas.iter().next().is_some_and(|sha| *sha != actual)
            {
                return Err(replaced());
            }
            let r: Retention = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", url.display())))?;
            merged = Some(match merged {
                None => r,
                Some(cur) => merge_retention(&cur, &r).unwrap_or(cur),
            });
        }
        Ok(merged)
    }

    /// Records or extends an object's retention; an earlier date than the recorded one
    /// changes nothing. Each extension is one more marker file, so re-storing (`slack`)
    /// extends only by a day or more: a job re-putting an object with "six years from now"
    /// does not add a file per run.
    async fn lock(&self, d: &Digest, retention: &Retention, slack: bool) -> Result<(), StoreError> {
        let next = match self.read_retention(d).await? {
            None => *retention,
            Some(cur) => match merge_retention(&cur, retention) {
                Some(merged)
                    if !slack
                        || merged.legal_hold != cur.legal_hold
                        || merged.retain_until.duration_since(cur.retain_until)
                            >= jiff::SignedDuration::from_hours(24) =>
                {
                    merged
                }
                _ => return Ok(()),
            },
        };
        let bytes = serde_json::to_vec(&next).map_err(|e| StoreError::Invalid(e.to_string()))?;
        // a new date, so a new name: no marker so far holds these bytes
        self.upload(&retention_version(d), &retention_marker(d, &bytes), &bytes)
            .await?;
        Ok(())
    }

    /// Explicitly sets a retention date: extending is allowed, shortening refused.
    pub async fn extend_retention(
        &self,
        d: &Digest,
        retention: &Retention,
    ) -> Result<(), StoreError> {
        if let Some(cur) = self.read_retention(d).await?
            && retention.retain_until < cur.retain_until
        {
            return Err(StoreError::RetentionShorten {
                digest: *d,
                current: cur.retain_until,
                requested: retention.retain_until,
            });
        }
        self.lock(d, retention, false).await
    }

    /// The chain's records by position: for each position the first uploaded entry.
    async fn chain_entries(&self, chain: &str) -> Result<BTreeMap<u64, Digest>, StoreError> {
        let mut out = BTreeMap::new();
        for (_, f) in self.list_files(&chain_version(chain)).await? {
            if let Some((seq, d)) = parse_chain_file(&f.file_name) {
                out.entry(seq).or_insert(d);
            }
        }
        Ok(out)
    }

    /// The records of a chain in order.
    pub async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        Ok(self.chain_entries(chain_id).await?.into_iter().collect())
    }

    async fn list_key(&self, version: &str) -> Result<Vec<RecordRef>, StoreError> {
        Ok(self
            .list_files(version)
            .await?
            .iter()
            .filter_map(|(_, f)| parse_pointer_name(&f.file_name))
            .collect())
    }

    /// The first upload (lowest package-file id) of a log file, checked against the
    /// digest its upload name carries.
    async fn first_log_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        crate::log::check_log_name(name)?;
        let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
        let version = log_version(dir);
        let first = self.list_files(&version).await?.into_iter().find(|(_, f)| {
            f.file_name
                .rsplit_once('_')
                .is_some_and(|(b, h)| b == base && h.len() == 64)
        });
        let Some((_, f)) = first else {
            return Ok(None);
        };
        let want = f.file_name.rsplit_once('_').map_or("", |(_, h)| h);
        let bytes = self
            .get_file(&version, &f.file_name)
            .await?
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{}: listed but not downloadable",
                    self.file_url(&version, &f.file_name).display()
                ))
            })?;
        if Digest::of(&bytes).hex() != want {
            return Err(StoreError::Invalid(format!(
                "{}: its bytes do not hash to the digest its name carries; a later upload replaced the log file",
                self.file_url(&version, &f.file_name).display()
            )));
        }
        Ok(Some(bytes))
    }

    async fn put_log_file_impl(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        crate::log::check_log_name(name)?;
        // every ancestor directory leaves a marker in its parent (idempotent)
        let parts: Vec<&str> = name.split('/').collect();
        for depth in 1..parts.len().saturating_sub(1) {
            let (Some(above), Some(dir)) = (parts.get(..depth), parts.get(depth)) else {
                continue;
            };
            let parent = above.join("/");
            let marker = format!("{dir}{LOG_DIR_SUFFIX}");
            let version = log_version(&parent);
            if !self.has_file(&version, &marker).await? {
                self.upload(&version, &marker, b"").await?;
            }
        }
        let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
        let version = log_version(dir);
        let file = log_file(base, bytes);
        if !self.has_file(&version, &file).await? {
            self.upload(&version, &file, bytes).await?;
        }
        // the first upload of the name wins, also when another writer raced us
        match self.first_log_file(name).await? {
            Some(held) if held == bytes => Ok(None),
            Some(held) => Ok(Some(held)),
            None => Err(StoreError::Invalid(format!(
                "{}: uploaded, yet not listed",
                self.file_url(&version, &file).display()
            ))),
        }
    }

    async fn list_log_dir_impl(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        crate::log::check_log_name(dir)?;
        let mut out: Vec<String> = self
            .list_files(&log_version(dir))
            .await?
            .into_iter()
            .filter_map(|(_, f)| {
                if let Some(d) = f.file_name.strip_suffix(LOG_DIR_SUFFIX) {
                    return Some(d.to_owned());
                }
                let (base, hex) = f.file_name.rsplit_once('_')?;
                (hex.len() == 64).then(|| base.to_owned())
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    async fn put_bytes(
        &self,
        bytes: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        let digest = Digest::of(bytes);
        let version = object_version(&digest);
        let file = digest.hex();
        let created = if self.has_file(&version, &file).await? {
            false
        } else {
            self.upload(&version, &file, bytes).await?;
            true
        };
        self.lock(&digest, retention, true).await?;
        Ok(PutOutcome {
            digest,
            size: bytes.len() as u64,
            created,
        })
    }
}

impl From<GitLabError> for StoreError {
    fn from(e: GitLabError) -> Self {
        Self::GitLab(e)
    }
}

impl EvidenceStore for GitLabStore {
    fn uri(&self) -> String {
        let scheme = if self.location.http {
            SCHEME_HTTP
        } else {
            SCHEME
        };
        format!(
            "{scheme}{}/{}/{}",
            self.location.authority, self.location.project, self.location.package
        )
    }

    async fn put_object(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        match src {
            ObjectSource::Bytes(bytes) => self.put_bytes(bytes, retention).await,
            ObjectSource::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| StoreError::io(path, e))?;
                self.put_bytes(&bytes, retention).await
            }
        }
    }

    async fn get_object(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let version = object_version(digest);
        let file = digest.hex();
        let Some(bytes) = self.get_file(&version, &file).await? else {
            return Err(StoreError::NotFound { digest: *digest });
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::Corrupt {
                digest: *digest,
                actual,
                path: self.file_url(&version, &file),
            });
        }
        Ok(bytes)
    }

    async fn has_object(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.has_file(&object_version(digest), &digest.hex()).await
    }

    async fn retention(&self, digest: &Digest) -> Result<Option<Retention>, StoreError> {
        self.read_retention(digest).await
    }

    async fn put_record(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        let DecodedRecord {
            statement,
            record,
            digest,
        } = decode_record(envelope)?;
        // the log entry is made (and its size checked) before anything is stored
        let log_entry = crate::log::LogEntry::of_record(&statement, &record, digest);
        log_entry.to_bytes()?;
        for m in &record.materials {
            if !self.has_object(&m.digest).await? {
                return Err(StoreError::MissingMaterial { digest: m.digest });
            }
        }
        let chain = &record.chain;
        let entries = self.chain_entries(&chain.id).await?;
        let prev_actual = chain
            .sequence
            .checked_sub(1)
            .and_then(|s| entries.get(&s).copied());
        check_previous(&record, prev_actual)?;
        let conflict = |existing: Digest| StoreError::ChainConflict {
            chain: chain.id.clone(),
            sequence: chain.sequence,
            existing,
            new: digest,
        };
        let held = entries.get(&chain.sequence).copied();
        if let Some(existing) = held
            && existing != digest
        {
            return Err(conflict(existing));
        }
        let outcome = self.put_bytes(envelope, retention).await?;
        let fresh = held.is_none();
        if fresh {
            let version = chain_version(&chain.id);
            self.upload(
                &version,
                &chain_file(chain.sequence, &digest),
                digest.to_string().as_bytes(),
            )
            .await?;
            // the first upload for a position wins, also when another writer raced us
            let winner = self
                .chain_entries(&chain.id)
                .await?
                .get(&chain.sequence)
                .copied();
            if winner != Some(digest) {
                return Err(conflict(winner.unwrap_or(digest)));
            }
        }
        let name = pointer_name(record.recorded_at, &digest);
        for key in index_keys(&statement, &record) {
            let version = index_version(&key);
            // a fresh chain entry means no pointer of this record exists yet; a re-put
            // (or a retry after a crash) only fills in what is missing
            if fresh || !self.has_file(&version, &name).await? {
                self.upload(&version, &name, digest.to_string().as_bytes())
                    .await?;
            }
        }
        crate::log::sequence(self, &log_entry, retention, !fresh).await?;
        Ok(outcome)
    }

    async fn chain_head(&self, chain_id: &str) -> Result<Option<(u64, Digest)>, StoreError> {
        Ok(self.chain_entries(chain_id).await?.pop_last())
    }

    async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        GitLabStore::chain(self, chain_id).await
    }
    async fn query(&self, query: &Query) -> Result<Vec<RecordRef>, StoreError> {
        let keys = query.keys();
        let result = if keys.is_empty() {
            // no key: walk the days in range, the coarsest index
            let mut all = Vec::new();
            for p in self.packages(None).await? {
                let Some(day) = p
                    .version
                    .as_deref()
                    .and_then(|v| v.strip_prefix(DAY_PREFIX))
                    .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                else {
                    continue;
                };
                if day_in_range(query, day) {
                    all.extend(
                        self.files_of(p.id)
                            .await?
                            .iter()
                            .filter_map(|f| parse_pointer_name(&f.file_name)),
                    );
                }
            }
            all
        } else {
            let mut sets = Vec::with_capacity(keys.len());
            for key in &keys {
                sets.push(self.list_key(&index_version(key)).await?);
            }
            intersect(sets)
        };
        Ok(finish(query, result))
    }

    async fn delete_object(&self, digest: &Digest) -> Result<(), StoreError> {
        if !self.has_object(digest).await? {
            return Err(StoreError::NotFound { digest: *digest });
        }
        if let Some(r) = self.read_retention(digest).await?
            && retention_holds(&r, Timestamp::now())
        {
            return Err(StoreError::RetentionLocked {
                what: format!("object {digest}"),
                until: r.retain_until,
            });
        }
        let targets = [
            (object_version(digest), true),
            (retention_version(digest), false),
        ];
        for (version, object) in targets {
            for (package_id, f) in self.list_files(&version).await? {
                let ours = if object {
                    f.file_name == digest.hex()
                } else {
                    is_retention_marker(digest, &f.file_name).is_some()
                };
                if !ours {
                    continue;
                }
                let ep = DeletePackageFile::builder()
                    .project(self.project())
                    .package_id(package_id)
                    .package_file_id(f.id)
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                glapi::ignore(&ep)
                    .query_async(&*self.api)
                    .await
                    .map_err(|e| self.error(&ep, e))?;
            }
        }
        Ok(())
    }
    async fn put_log_file(
        &self,
        name: &str,
        bytes: &[u8],
        _retention: &Retention,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // GitLab has no lock to give a log file; its retention is the store's promise
        self.put_log_file_impl(name, bytes).await
    }

    async fn get_log_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.first_log_file(name).await
    }

    async fn list_log_dir(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        self.list_log_dir_impl(dir).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_refuse_what_they_should() {
        let l = parse_location("gitlab://gitlab.com/acme/sub/app/custody-evidence").unwrap();
        assert_eq!(
            l,
            Location {
                http: false,
                authority: "gitlab.com".into(),
                project: "acme/sub/app".into(),
                package: "custody-evidence".into(),
            }
        );
        let l = parse_location("gitlab://gitlab.example.org:8443/1234/ev/").unwrap();
        assert_eq!((l.project.as_str(), l.package.as_str()), ("1234", "ev"));
        assert!(parse_location("gitlab+http://127.0.0.1:9/a/p").is_ok());
        assert!(parse_location("gitlab+http://[::1]:9/a/p").is_ok());
        assert!(parse_location("gitlab+http://localhost:9/a/p").is_ok());
        for bad in [
            "gitlab+http://gitlab.com/a/p",
            "gitlab+http://10.0.0.1/a/p",
            "gitlab://gitlab.com/p",
            "gitlab://gitlab.com/",
            "gitlab:///a/p",
            "gitlab://user:glpat-secret@gitlab.com/a/p",
            "gitlab://gitlab.com/a/p?x=1",
            "gitlab://gitlab.com/a/../p",
            "gitlab://gitlab.com/a/p%20q",
            "gitlab://gitlab.com//p",
        ] {
            let err = parse_location(bad).unwrap_err();
            assert!(matches!(err, StoreError::UnsupportedUrl { .. }), "{bad}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    /// GitLab's rules, written as the regexes it documents.
    fn valid_version(v: &str) -> bool {
        // \A(\.?[\w\+-]+\.?)+\z without dots reduces to a non-empty [\w+-]+
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
    }

    fn valid_file(f: &str) -> bool {
        !f.is_empty()
            && f.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }

    /// Undoes `gitlab_component` for short values: the proof that it is injective.
    fn undo(c: &str) -> String {
        let mut out = String::new();
        let mut it = c.chars();
        while let Some(ch) = it.next() {
            if ch != '_' {
                out.push(ch);
                continue;
            }
            match it.next() {
                Some('_') => out.push('_'),
                Some('d') => out.push('.'),
                Some(x) => {
                    out.push('%');
                    out.push(x);
                }
                None => panic!("dangling escape in {c}"),
            }
        }
        out
    }

    #[test]
    fn names_fit_gitlab_and_stay_injective() {
        let inputs = [
            "",
            ".",
            "..",
            "a.b",
            "a..b",
            "a...b",
            "a_b",
            "a__b",
            "a%b",
            "a_2Eb",
            "_",
            "__",
            "%",
            "github:o/r:12",
            "a b",
            "ü",
            "x.",
            "_d",
            "%5F",
            "a_d",
            ".a",
            "a/b",
        ];
        let mut seen = std::collections::HashMap::new();
        for i in inputs {
            let enc = encode_component(i);
            let c = gitlab_component(&enc);
            assert_eq!(undo(&c), enc, "{i}");
            let v = format!("index-commit-{c}");
            assert!(valid_version(&v), "{v}");
            assert!(valid_file(&c), "{c}");
            if let Some(prev) = seen.insert(c.clone(), i) {
                panic!("{i:?} and {prev:?} both map to {c}");
            }
        }
        let long = gitlab_component(&encode_component(&".".repeat(100)));
        assert!(long.starts_with("_H") && long.len() < 70, "{long}");
        assert_ne!(long, gitlab_component(&encode_component(&".".repeat(101))));
        let d = Digest::of(b"x");
        for v in [
            object_version(&d),
            retention_version(&d),
            chain_version("../c"),
        ] {
            assert!(valid_version(&v), "{v}");
        }
        for f in [
            d.hex(),
            retention_file(&d),
            retention_marker(&d, b"{}"),
            chain_file(7, &d),
        ] {
            assert!(valid_file(&f), "{f}");
        }
        assert_eq!(is_retention_marker(&d, &retention_file(&d)), Some(None));
        assert_eq!(
            is_retention_marker(&d, &retention_marker(&d, b"{}")),
            Some(Some(Digest::of(b"{}").hex()))
        );
        assert_eq!(
            is_retention_marker(&d, &format!("{}.x.json", d.hex())),
            None
        );
        assert_eq!(
            is_retention_marker(&Digest::of(b"y"), &retention_file(&d)),
            None
        );
        assert_eq!(parse_chain_file(&chain_file(7, &d)), Some((7, d)));
    }

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
