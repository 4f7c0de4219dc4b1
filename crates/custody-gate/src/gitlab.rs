//! The GitLab side: a service account that a protected environment lists as a
//! required approver approves or rejects blocked deployments.
//!
//! Endpoints (REST v4, through the `gitlab` crate's client on Custody's connector):
//! - `GET /projects/:id/deployments/:deployment_id`: `sha`, `ref`, `status`
//!   (`blocked` while it waits for approvals), `environment.name`, `deployable` (the
//!   job, its pipeline);
//! - `GET /projects/:id/deployments?environment=…` to find a job's deployment from a
//!   job event (GitLab sends deployment events when a deployment starts, succeeds,
//!   fails or is canceled, none when it is blocked; the deployment job's job event
//!   is the signal);
//! - `POST /projects/:id/deployments/:deployment_id/approval` (`status` `approved` |
//!   `rejected`, `comment`, `represented_as`): "Approve or reject a blocked
//!   deployment".

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use custody_http::Secret;
use custody_http::gitlab::{Client as Api, ClientError, Config as ClientConfig, Redirects, Token};
use custody_http::net::Net;
use custody_policy::facts::gitlab::RecentDeployments;
use gitlab::api::common::NameOrId;
use gitlab::api::endpoint_prelude::{BodyError, Endpoint, FormParams, Method};
use gitlab::api::{ApiError, AsyncQuery};
use serde::Deserialize;
use url::Url;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The service account and where GitLab is.
#[derive(Debug, Clone)]
pub struct GitLab {
    /// The API root, `https://gitlab.example.com/api/v4`.
    pub api_url: String,
    /// The service account's token (`api` scope), sent as `PRIVATE-TOKEN`.
    pub token: Secret,
    /// The project webhook's secret token (`X-Gitlab-Token`), for `gate serve`.
    pub webhook_token: Option<Secret>,
    /// The approval rule the account approves for (`represented_as`), when it is in
    /// several.
    pub represented_as: Option<String>,
    pub net: Net,
    pub attempts: u32,
    pub backoff: Duration,
}

/// What the gate needs of a deployment.
#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentInfo {
    pub id: u64,
    pub sha: String,
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub status: String,
    pub environment: EnvironmentRef,
    pub deployable: Option<Deployable>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnvironmentRef {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Deployable {
    pub id: u64,
    pub pipeline: Option<PipelineRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PipelineRef {
    pub id: u64,
}

struct GetDeployment<'a> {
    project: NameOrId<'a>,
    id: u64,
}

impl Endpoint for GetDeployment<'_> {
    fn method(&self) -> Method {
        Method::GET
    }
    fn endpoint(&self) -> Cow<'static, str> {
        format!("projects/{}/deployments/{}", self.project, self.id).into()
    }
}

/// `POST /projects/:id/deployments/:deployment_id/approval`, which the crate lacks.
struct Approve<'a> {
    project: NameOrId<'a>,
    id: u64,
    approve: bool,
    comment: &'a str,
    represented_as: Option<&'a str>,
}

impl Endpoint for Approve<'_> {
    fn method(&self) -> Method {
        Method::POST
    }
    fn endpoint(&self) -> Cow<'static, str> {
        format!("projects/{}/deployments/{}/approval", self.project, self.id).into()
    }
    fn body(&self) -> Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        let mut p = FormParams::default();
        p.push("status", if self.approve { "approved" } else { "rejected" })
            .push("comment", self.comment)
            .push_opt("represented_as", self.represented_as);
        p.into_body()
    }
}

impl GitLab {
    fn client(&self) -> Result<Api, String> {
        let mut base = Url::parse(&self.api_url)
            .map_err(|e| format!("GitLab API URL {}: {e}", self.api_url))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Api::new(
            base,
            Some(Token::private(self.token.expose())),
            &self.net,
            ClientConfig {
                timeout: REQUEST_TIMEOUT,
                connect_timeout: CONNECT_TIMEOUT,
                attempts: 1,
                redirects: Redirects::Refuse,
                https_only: false,
                user_agent: concat!("custody-gate/", env!("CARGO_PKG_VERSION")),
                ..ClientConfig::default()
            },
        )
        .map_err(|e| format!("GitLab client: {e}"))
    }

    /// The deployment `id` of `project` (a path or an id).
    pub async fn deployment(&self, project: &str, id: u64) -> Result<DeploymentInfo, String> {
        let api = self.client()?;
        self.retry("reading the deployment", || async {
            GetDeployment {
                project: NameOrId::from(project),
                id,
            }
            .query_async(&api)
            .await
        })
        .await
    }

    /// The blocked deployment of job `job` to `environment`, if there is one.
    pub async fn blocked_deployment_of_job(
        &self,
        project: &str,
        environment: &str,
        job: u64,
    ) -> Result<Option<DeploymentInfo>, String> {
        let api = self.client()?;
        let list: Vec<DeploymentInfo> = self
            .retry("listing the environment's deployments", || async {
                RecentDeployments {
                    project: NameOrId::from(project),
                    environment: Cow::Borrowed(environment),
                }
                .query_async(&api)
                .await
            })
            .await?;
        Ok(list
            .into_iter()
            .find(|d| d.status == "blocked" && d.deployable.as_ref().is_some_and(|j| j.id == job)))
    }

    /// Approves or rejects the blocked deployment, as the service account.
    pub async fn approve(
        &self,
        project: &str,
        id: u64,
        approve: bool,
        comment: &str,
    ) -> Result<(), String> {
        let api = self.client()?;
        self.retry("the approval call", || async {
            let _: serde_json::Value = Approve {
                project: NameOrId::from(project),
                id,
                approve,
                comment,
                represented_as: self.represented_as.as_deref(),
            }
            .query_async(&api)
            .await?;
            Ok(())
        })
        .await
    }
}

impl GitLab {
    async fn retry<T, F, Fut>(&self, what: &str, f: F) -> Result<T, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ApiError<ClientError>>>,
    {
        crate::retry::retry(
            &format!("GitLab: {what}"),
            self.attempts,
            self.backoff,
            f,
            |e| (e.to_string(), retriable(e)),
        )
        .await
    }
}

/// A 4xx will not change by asking again; transport errors and 5xx may.
fn retriable(e: &ApiError<ClientError>) -> bool {
    match e {
        ApiError::GitlabWithStatus { status, .. }
        | ApiError::GitlabObjectWithStatus { status, .. }
        | ApiError::GitlabUnrecognizedWithStatus { status, .. }
        | ApiError::GitlabService { status, .. } => status.is_server_error(),
        ApiError::Client { .. } => true,
        _ => false,
    }
}
