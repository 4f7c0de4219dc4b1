//! Platform API lookups at the host pinned in the tier model: the runner that runs this job
//! (GitHub's jobs API, GitLab's `GET /api/v4/job`) and, on GitHub, whether the job's environment
//! is protected. OIDC tokens carry no runner name, group or labels on GitHub, so these answers are
//! the only trusted source for them.
//!
//! Request parameters that decide *which* job is asked about come from the verified token
//! (`repository`, `check_run_id`), never from variables.

use serde::{Deserialize, Serialize};

use crate::error::PlatformError;
use crate::http::Http;
use crate::secret::Secret;

/// The runner of this job, as the platform API describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunnerInfo {
    pub id: Option<u64>,
    pub name: Option<String>,
    /// GitHub runner group.
    pub group: Option<String>,
    /// GitHub: the runner's labels the job matched. GitLab: the job's tags (the runner carries
    /// at least these, since GitLab only hands a job to a runner holding all its tags).
    pub labels: Vec<String>,
    /// GitLab: `instance_type`, `group_type` or `project_type`.
    pub runner_type: Option<String>,
    /// GitLab: whether the runner is shared.
    pub is_shared: Option<bool>,
}

/// GitHub environment protection, from `GET /repos/{owner}/{repo}/environments/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentProtection {
    pub required_reviewers: bool,
    pub branch_policy: bool,
    pub can_admins_bypass: Option<bool>,
}

impl EnvironmentProtection {
    /// Protected means a deployment needs a reviewer or comes from an allowed branch only.
    pub fn is_protected(&self) -> bool {
        self.required_reviewers || self.branch_policy
    }
}

fn github_headers(authorization: &str) -> [(&str, &str); 3] {
    [
        ("Authorization", authorization),
        ("Accept", "application/vnd.github+json"),
        ("X-GitHub-Api-Version", "2022-11-28"),
    ]
}

fn call<T: for<'de> Deserialize<'de>>(
    http: &Http,
    url: &str,
    headers: &[(&str, &str)],
    denied_hint: &'static str,
) -> Result<T, PlatformError> {
    let response = http
        .get(url, headers, &[])
        .map_err(|reason| PlatformError::Http {
            url: url.to_owned(),
            reason,
        })?;
    match response.status {
        200 => {}
        401 | 403 => {
            return Err(PlatformError::Status {
                url: url.to_owned(),
                status: response.status,
                hint: denied_hint,
            });
        }
        404 => {
            return Err(PlatformError::Status {
                url: url.to_owned(),
                status: 404,
                hint: "not found: check the repository/project pinned in the tier model and the token's permissions",
            });
        }
        status => {
            return Err(PlatformError::Status {
                url: url.to_owned(),
                status,
                hint: "unexpected status (redirects are not followed: pin the API host exactly)",
            });
        }
    }
    serde_json::from_str(&response.body).map_err(|e| PlatformError::Shape {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// `GET {api}/repos/{repository}/actions/jobs/{job_id}`: the runner of a GitHub job. The job id
/// is the verified token's `check_run_id`.
pub fn github_job_runner(
    api_url: &str,
    repository: &str,
    job_id: &str,
    token: &Secret,
    http: &Http,
) -> Result<RunnerInfo, PlatformError> {
    #[derive(Deserialize)]
    struct Job {
        #[serde(default)]
        labels: Vec<String>,
        runner_id: Option<u64>,
        runner_name: Option<String>,
        runner_group_name: Option<String>,
    }
    let url = format!(
        "{}/repos/{}/actions/jobs/{}",
        api_url.trim_end_matches('/'),
        repository,
        segment(job_id)
    );
    let authorization = format!("Bearer {}", token.expose());
    let job: Job = call(
        http,
        &url,
        &github_headers(&authorization),
        "denied: grant the job `permissions: actions: read` and pass GITHUB_TOKEN to the guard",
    )?;
    Ok(RunnerInfo {
        id: job.runner_id,
        name: job.runner_name,
        group: job.runner_group_name,
        labels: job.labels,
        runner_type: None,
        is_shared: None,
    })
}

/// `GET {api}/repos/{repository}/environments/{name}`: the protection of a GitHub environment.
pub fn github_environment_protection(
    api_url: &str,
    repository: &str,
    environment: &str,
    token: &Secret,
    http: &Http,
) -> Result<EnvironmentProtection, PlatformError> {
    #[derive(Deserialize)]
    struct Rule {
        #[serde(rename = "type")]
        kind: String,
    }
    #[derive(Deserialize)]
    struct Environment {
        #[serde(default)]
        protection_rules: Vec<Rule>,
        #[serde(default)]
        deployment_branch_policy: Option<serde_json::Value>,
        #[serde(default)]
        can_admins_bypass: Option<bool>,
    }
    let url = format!(
        "{}/repos/{}/environments/{}",
        api_url.trim_end_matches('/'),
        repository,
        segment(environment)
    );
    let authorization = format!("Bearer {}", token.expose());
    let env: Environment = call(
        http,
        &url,
        &github_headers(&authorization),
        "denied: grant the job `permissions: actions: read` and pass GITHUB_TOKEN to the guard",
    )?;
    Ok(EnvironmentProtection {
        required_reviewers: env
            .protection_rules
            .iter()
            .any(|r| r.kind == "required_reviewers"),
        branch_policy: env.deployment_branch_policy.is_some_and(|p| !p.is_null())
            || env
                .protection_rules
                .iter()
                .any(|r| r.kind == "branch_policy"),
        can_admins_bypass: env.can_admins_bypass,
    })
}

/// `GET {api}/api/v4/job` with `JOB-TOKEN`: the runner of this GitLab job.
pub fn gitlab_job_runner(
    api_url: &str,
    job_token: &Secret,
    http: &Http,
) -> Result<RunnerInfo, PlatformError> {
    #[derive(Deserialize)]
    struct Runner {
        id: Option<u64>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        runner_type: Option<String>,
        #[serde(default)]
        is_shared: Option<bool>,
    }
    #[derive(Deserialize)]
    struct Job {
        #[serde(default)]
        tag_list: Vec<String>,
        runner: Option<Runner>,
    }
    let url = format!("{}/api/v4/job", api_url.trim_end_matches('/'));
    let job: Job = call(
        http,
        &url,
        &[
            ("JOB-TOKEN", job_token.expose()),
            ("Accept", "application/json"),
        ],
        "denied: the guard needs the job's CI_JOB_TOKEN",
    )?;
    let runner = job.runner.ok_or_else(|| PlatformError::Shape {
        url: url.clone(),
        reason: "the job has no `runner`".into(),
    })?;
    Ok(RunnerInfo {
        id: runner.id,
        name: runner.name.or(runner.description),
        group: None,
        labels: job.tag_list,
        runner_type: runner.runner_type,
        is_shared: runner.is_shared,
    })
}

/// Percent-encodes one URL path segment (environment names may contain `/`; dots are encoded
/// too so no segment can read as `..`).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("review/a b"), "review%2Fa%20b");
        assert_eq!(segment("../x"), "%2E%2E%2Fx");
        assert_eq!(segment("prod-1_x~"), "prod-1_x~");
    }
}
