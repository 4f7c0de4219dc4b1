//! Talking to GitLab: requests through the `gitlab` crate's endpoints over Custody's one
//! GitLab client, the package-file operations the store is built from (has, get, upload,
//! list), and GitLab's answers turned into [`GitLabError`]s that name the request and
//! never a token.

use std::borrow::Cow;

use ::gitlab::api::common::NameOrId;
use ::gitlab::api::endpoint_prelude::{Endpoint, Pageable};
use ::gitlab::api::projects::packages::generic::{
    GetPackageFile, UploadPackageFile, UploadPackageSelect,
};
use ::gitlab::api::projects::packages::package_files::PackageFiles;
use ::gitlab::api::{self as glapi, ApiError, AsyncQuery, Pagination};
use custody_evidence::Digest;
use custody_http::gitlab::ClientError;
use thiserror::Error;

use super::GitLabStore;
use super::endpoints::{GenericFileHead, GenericPackages, PackageFileInfo, PackageInfo};
use crate::error::StoreError;

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
    pub(super) fn is_missing_file(&self) -> bool {
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

impl From<GitLabError> for StoreError {
    fn from(e: GitLabError) -> Self {
        Self::GitLab(e)
    }
}

impl GitLabStore {
    pub(super) fn project(&self) -> NameOrId<'_> {
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

    pub(super) fn error<E: Endpoint>(&self, ep: &E, e: ApiError<ClientError>) -> GitLabError {
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

    pub(super) async fn has_file(&self, version: &str, file: &str) -> Result<bool, StoreError> {
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

    pub(super) async fn get_file(
        &self,
        version: &str,
        file: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
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
    pub(super) async fn upload(
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
    pub(super) async fn packages(
        &self,
        version: Option<&str>,
    ) -> Result<Vec<PackageInfo>, StoreError> {
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

    pub(super) async fn files_of(
        &self,
        package_id: u64,
    ) -> Result<Vec<PackageFileInfo>, StoreError> {
        let ep = PackageFiles::builder()
            .project(self.project())
            .package_id(package_id)
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(self.paged(&ep).await?)
    }

    /// The files of one version, oldest first, with the package each belongs to.
    pub(super) async fn list_files(
        &self,
        version: &str,
    ) -> Result<Vec<(u64, PackageFileInfo)>, StoreError> {
        let mut out = Vec::new();
        for p in self.packages(Some(version)).await? {
            out.extend(self.files_of(p.id).await?.into_iter().map(|f| (p.id, f)));
        }
        out.sort_by_key(|(_, f)| f.id);
        Ok(out)
    }
}
