//! Opening the store a URL names, with the credentials the environment provides.
//! Backends take credentials from their caller; this is the one place that reads them.

use std::path::PathBuf;

use custody_http::net::{Net, ProxySettings};
use custody_store::{
    AnyStore, GitLabOptions, LockMode, StoreError, StoreOptions, create_store_with,
    open_gitlab_store, open_store_with,
};

use crate::context::Env;
use crate::env_vars as v;

/// The network policy of a step: the `--ca-file`s given (or `CUSTODY_CA_FILE`, when
/// none are) and the proxy variables of `env`.
pub fn net(env: &dyn Env, ca_files: &[PathBuf]) -> Result<Net, custody_http::net::NetError> {
    let from_env: Vec<PathBuf>;
    let files = if ca_files.is_empty() {
        from_env = env
            .var(v::CUSTODY_CA_FILE)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        &from_env[..]
    } else {
        ca_files
    };
    let proxy = ProxySettings::from_lookup(|k| env.var(k));
    Net::new(files, proxy)
}

fn net_for_store(env: &dyn Env, ca_files: &[PathBuf]) -> Result<Net, StoreError> {
    net(env, ca_files).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn is_gitlab(url: &str) -> bool {
    url.starts_with("gitlab://") || url.starts_with("gitlab+http://")
}

fn gitlab_options(env: &dyn Env, net: Net) -> GitLabOptions {
    GitLabOptions {
        net,
        ..GitLabOptions::from_env_values(env.var(v::CI_JOB_TOKEN), env.var(v::CUSTODY_GITLAB_TOKEN))
    }
}

fn flag(env: &dyn Env, name: &str) -> bool {
    env.var(name).is_some_and(|v| v == "true" || v == "1")
}

/// S3 settings from `CUSTODY_S3_*`; credentials come from the AWS default chain
/// (environment, web identity/OIDC, profiles, ECS, IMDS).
fn s3_options(env: &dyn Env, net: Net) -> Result<StoreOptions, StoreError> {
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
        net,
        ..StoreOptions::default()
    })
}

/// Opens an existing store for reading; remote stores trust `ca_files` (see [`net`]).
pub fn open(url: &str, env: &dyn Env, ca_files: &[PathBuf]) -> Result<AnyStore, StoreError> {
    let net = net_for_store(env, ca_files)?;
    if is_gitlab(url) {
        return open_gitlab_store(url, &gitlab_options(env, net));
    }
    open_store_with(url, &s3_options(env, net)?)
}

/// Opens a store for writing, creating a local one when missing.
pub fn create(url: &str, env: &dyn Env, ca_files: &[PathBuf]) -> Result<AnyStore, StoreError> {
    let net = net_for_store(env, ca_files)?;
    if is_gitlab(url) {
        return open_gitlab_store(url, &gitlab_options(env, net));
    }
    create_store_with(url, &s3_options(env, net)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;

    use super::*;

    struct Vars(HashMap<&'static str, String>);

    impl Env for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    #[test]
    fn ca_files_come_from_the_flag_or_the_variable_and_proxies_from_env() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pem");
        let missing = dir.path().join("missing.pem");
        std::fs::write(
            &a,
            custody_test_support::TestCa::new("stores test CA").ca_pem(),
        )
        .unwrap();
        let env = Vars(HashMap::from([
            (
                v::CUSTODY_CA_FILE,
                format!("{}, {}", missing.display(), a.display()),
            ),
            (
                "https_proxy",
                "http://user:pw@proxy.example:3128".to_owned(),
            ),
            ("NO_PROXY", ".internal".to_owned()),
        ]));
        // the variable names two files: the missing one is an error naming it
        let e = net(&env, &[]).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
        // a flag replaces the variable
        let n = net(&env, std::slice::from_ref(&a)).unwrap();
        assert_eq!(n.ca_files(), std::slice::from_ref(&a));
        assert_eq!(
            n.proxy().https.as_deref(),
            Some("http://user:pw@proxy.example:3128")
        );
        assert_eq!(n.proxy().no_proxy.as_deref(), Some(".internal"));
        assert!(!format!("{n:?}").contains("pw@"), "{n:?}");
    }
}
