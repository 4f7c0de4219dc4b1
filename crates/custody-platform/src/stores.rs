//! Opening the store a URL names, with the credentials the environment provides.
//! Backends take credentials from their caller; this is the one place that reads them.

use custody_store::{
    AnyStore, GitLabOptions, StoreError, create_store, open_gitlab_store, open_store,
};

use crate::context::Env;
use crate::env_vars as v;

fn is_gitlab(url: &str) -> bool {
    url.starts_with("gitlab://") || url.starts_with("gitlab+http://")
}

fn gitlab_options(env: &dyn Env) -> GitLabOptions {
    GitLabOptions::from_env_values(env.var(v::CI_JOB_TOKEN), env.var(v::CUSTODY_GITLAB_TOKEN))
}

/// Opens an existing store for reading.
pub fn open(url: &str, env: &dyn Env) -> Result<AnyStore, StoreError> {
    if is_gitlab(url) {
        return open_gitlab_store(url, &gitlab_options(env));
    }
    open_store(url)
}

/// Opens a store for writing, creating a local one when missing.
pub fn create(url: &str, env: &dyn Env) -> Result<AnyStore, StoreError> {
    if is_gitlab(url) {
        return open_gitlab_store(url, &gitlab_options(env));
    }
    create_store(url)
}
