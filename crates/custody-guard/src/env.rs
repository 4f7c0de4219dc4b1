//! Every environment variable the guard reads, declared in one place, and [`Environment`], the
//! snapshot of variables the guard works from.
//!
//! The guard never calls `std::env::var` outside [`Environment::from_process`], so tests inject
//! a map and production code takes one snapshot at start. Variables are spoofable by earlier
//! steps of the job: what they say is treated as `unverified-variable`, and the OIDC issuer,
//! audience, JWKS URL and API host are never taken from them (they are pinned in the tier model).
//!
//! Credential variables are checked for presence only: [`Environment::is_set`] answers yes or no
//! and there is deliberately no accessor that returns a credential's value.

use std::collections::BTreeMap;
use std::fmt;

/// GitHub: `true` inside GitHub Actions (platform detection only).
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// GitLab: `true` inside GitLab CI (platform detection only).
pub const GITLAB_CI: &str = "GITLAB_CI";
/// GitHub: URL to request the job's OIDC token from (the audience is appended).
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
/// GitHub: bearer token for [`ACTIONS_ID_TOKEN_REQUEST_URL`]. Secret.
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// GitHub: token for the REST API (jobs and environments endpoints). Secret.
pub const GITHUB_TOKEN: &str = "GITHUB_TOKEN";
/// GitHub: `true` when the ref is protected (unverified fallback for `ref_protected`).
pub const GITHUB_REF_PROTECTED: &str = "GITHUB_REF_PROTECTED";
/// GitHub: numeric repository id (unverified fallback for `repository_id`).
pub const GITHUB_REPOSITORY_ID: &str = "GITHUB_REPOSITORY_ID";
/// GitHub: runner name (unverified fallback for the jobs API).
pub const RUNNER_NAME: &str = "RUNNER_NAME";
/// GitHub: `github-hosted` or `self-hosted` (unverified fallback for `runner_environment`).
pub const RUNNER_ENVIRONMENT: &str = "RUNNER_ENVIRONMENT";

/// GitLab: the job token for `GET /api/v4/job`. Secret.
pub const CI_JOB_TOKEN: &str = "CI_JOB_TOKEN";
/// GitLab: environment name (unverified fallback for the `environment` claim).
pub const CI_ENVIRONMENT_NAME: &str = "CI_ENVIRONMENT_NAME";
/// GitLab: deployment tier (unverified fallback for `deployment_tier`).
pub const CI_ENVIRONMENT_TIER: &str = "CI_ENVIRONMENT_TIER";
/// GitLab: `true` when the ref is protected (unverified fallback for `ref_protected`).
pub const CI_COMMIT_REF_PROTECTED: &str = "CI_COMMIT_REF_PROTECTED";
/// GitLab: runner id (unverified fallback for `runner_id`).
pub const CI_RUNNER_ID: &str = "CI_RUNNER_ID";
/// GitLab: runner tags as a JSON array (unverified fallback for the job's tag list).
pub const CI_RUNNER_TAGS: &str = "CI_RUNNER_TAGS";
/// GitLab: project id (unverified fallback for `project_id`).
pub const CI_PROJECT_ID: &str = "CI_PROJECT_ID";

/// Home directory, under which user-level cloud credential files live.
pub const HOME: &str = "HOME";
/// Rootless container runtimes put their sockets under this directory.
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
/// Points a Docker client at a daemon; its presence alone means runtime access.
pub const DOCKER_HOST: &str = "DOCKER_HOST";
/// Alternative location of the AWS shared credentials file (a path, not a secret).
pub const AWS_SHARED_CREDENTIALS_FILE: &str = "AWS_SHARED_CREDENTIALS_FILE";
/// The AWS role a web-identity setup assumes: an identifier, not a credential.
pub const AWS_ROLE_ARN: &str = "AWS_ROLE_ARN";

/// Variables that carry or point at cloud credentials. Checked for presence only.
pub const AMBIENT_CREDENTIAL_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CREDENTIALS",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "CLOUDSDK_AUTH_ACCESS_TOKEN",
    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_PASSWORD",
    "ARM_CLIENT_SECRET",
    "ARM_ACCESS_KEY",
];

/// A snapshot of environment variables. `Debug` lists names only, never values.
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// Snapshot of the guard process's environment (variables that are not UTF-8 are kept
    /// lossily: only presence matters for those the guard cannot parse anyway).
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
        }
    }

    /// An injected environment (tests, or a caller that already resolved one).
    pub fn from_map<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Whether `name` is set (an empty value counts as set: it still shadows later lookups).
    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// The value of a non-secret variable, `None` when unset or empty. Use [`Self::secret`]
    /// for tokens.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of a secret variable, wrapped so it cannot be printed.
    pub fn secret(&self, name: &str) -> Option<crate::Secret> {
        self.get(name).map(crate::Secret::new)
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Environment;

    #[test]
    fn debug_shows_names_not_values() {
        let env = Environment::from_map([("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI")]);
        let shown = format!("{env:?}");
        assert!(shown.contains("AWS_SECRET_ACCESS_KEY"));
        assert!(!shown.contains("wJalrXUtnFEMI"));
    }

    #[test]
    fn empty_values_are_set_but_have_no_value() {
        let env = Environment::from_map([("X", "")]);
        assert!(env.is_set("X"));
        assert_eq!(env.get("X"), None);
        assert!(!env.is_set("Y"));
    }
}
