//! Opening the store a URL names, with the credentials the environment provides.
//! Backends take credentials from their caller; this is the one place that reads them.

use custody_store::{
    AnyStore, GitLabOptions, LockMode, StoreError, StoreOptions, create_store_with,
    open_gitlab_store, open_store_with,
};

use crate::context::Env;
use crate::env_vars as v;

fn is_gitlab(url: &str) -> bool {
    url.starts_with("gitlab://") || url.starts_with("gitlab+http://")
}

fn gitlab_options(env: &dyn Env) -> GitLabOptions {
    GitLabOptions::from_env_values(env.var(v::CI_JOB_TOKEN), env.var(v::CUSTODY_GITLAB_TOKEN))
}

fn flag(env: &dyn Env, name: &str) -> bool {
    env.var(name).is_some_and(|v| v == "true" || v == "1")
}

/// S3 settings from `CUSTODY_S3_*`; credentials come from the AWS default chain
/// (environment, web identity/OIDC, profiles, ECS, IMDS).
fn s3_options(env: &dyn Env) -> Result<StoreOptions, StoreError> {
    let lock_mode = match env.var(v::CUSTODY_S3_LOCK_MODE).as_deref() {
        None | Some("COMPLIANCE") => LockMode::Compliance,
        Some("GOVERNANCE") => LockMode::Governance,
        Some(other) => {
            return Err(StoreError::Invalid(format!(
                "{}={other}: use COMPLIANCE or GOVERNANCE",
                v::CUSTODY_S3_LOCK_MODE
            )));
        }
    };
    Ok(StoreOptions {
        endpoint_url: env.var(v::CUSTODY_S3_ENDPOINT),
        region: env.var(v::CUSTODY_S3_REGION),
        force_path_style: flag(env, v::CUSTODY_S3_PATH_STYLE),
        lock_mode,
        legal_hold: flag(env, v::CUSTODY_S3_LEGAL_HOLD),
        allow_unlocked_bucket: flag(env, v::CUSTODY_S3_ALLOW_UNLOCKED),
        ..StoreOptions::default()
    })
}

/// Opens an existing store for reading.
pub fn open(url: &str, env: &dyn Env) -> Result<AnyStore, StoreError> {
    if is_gitlab(url) {
        return open_gitlab_store(url, &gitlab_options(env));
    }
    open_store_with(url, &s3_options(env)?)
}

/// Opens a store for writing, creating a local one when missing.
pub fn create(url: &str, env: &dyn Env) -> Result<AnyStore, StoreError> {
    if is_gitlab(url) {
        return open_gitlab_store(url, &gitlab_options(env));
    }
    create_store_with(url, &s3_options(env)?)
}
