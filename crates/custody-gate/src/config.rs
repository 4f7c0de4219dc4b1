//! The service's configuration file (YAML). Secrets never go in it: they come from the
//! environment (or, for the App's key, a file the container mounts).
//!
//! ```yaml
//! listen: 0.0.0.0:8080            # CUSTODY_GATE_LISTEN overrides
//! store: s3://evidence/custody    # CUSTODY_STORE overrides
//! trustedKeys: [/etc/custody/pipeline.pub]
//! data: [/etc/custody/policy.yaml]
//! record:                         # store each decision and its VSA (recommended)
//!   signingKey: awskms:///alias/custody-gate   # or CUSTODY_SIGNING_KEY(_PEM)
//! awaitApprovalsSeconds: 3600     # wait for the humans before rejecting
//! reportUrl: https://audit.example/records/{record}
//! github:
//!   appId: 123456
//!   privateKeyFile: /run/secrets/github-app.pem  # or CUSTODY_GATE_GITHUB_PRIVATE_KEY
//!   # the webhook secret: CUSTODY_GATE_GITHUB_WEBHOOK_SECRET
//! gitlab:
//!   apiUrl: https://gitlab.example.com/api/v4
//!   # the service account's token: CUSTODY_GATE_GITLAB_TOKEN
//!   # the webhook's secret token: CUSTODY_GATE_GITLAB_WEBHOOK_TOKEN
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variables the service reads.
pub mod env {
    pub const LISTEN: &str = "CUSTODY_GATE_LISTEN";
    pub const GITHUB_PRIVATE_KEY: &str = "CUSTODY_GATE_GITHUB_PRIVATE_KEY";
    pub const GITHUB_WEBHOOK_SECRET: &str = "CUSTODY_GATE_GITHUB_WEBHOOK_SECRET";
    pub const GITLAB_TOKEN: &str = "CUSTODY_GATE_GITLAB_TOKEN";
    pub const GITLAB_WEBHOOK_TOKEN: &str = "CUSTODY_GATE_GITLAB_WEBHOOK_TOKEN";
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the gate configuration: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a gate configuration: {message}")]
    Parse { path: String, message: String },
}

/// The file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// `HOST:PORT` to listen on; default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// The evidence store URL (as `--store`).
    pub store: Option<String>,
    /// Public keys (PEM files or trusted-keys YAML) evidence records are signed with.
    #[serde(default)]
    pub trusted_keys: Vec<PathBuf>,
    /// Extra Rego policy directories (as `--policy`).
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    /// Policy data files (as `--data`).
    #[serde(default)]
    pub data: Vec<PathBuf>,
    /// Store each decision and its VSA.
    pub record: Option<Record>,
    /// Private CA certificates for the store and the platforms (as `--ca-file`).
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    /// Stages whose records name the artifacts to judge (default: every stage but
    /// `policy` and `runner-guard`).
    #[serde(default)]
    pub subject_stages: Vec<String>,
    /// Tries for a store or platform call that fails (default 3).
    pub attempts: Option<u32>,
    /// Wait before the second try, doubled after (default 2).
    pub backoff_seconds: Option<f64>,
    /// How long to wait for human approvals before rejecting (default 0: no wait).
    pub await_approvals_seconds: Option<u64>,
    /// How often to look again while waiting (default 30).
    pub recheck_seconds: Option<u64>,
    /// A link for the review comment; `{record}` is the decision record's digest.
    pub report_url: Option<String>,
    /// Judgments at once (default 8).
    pub concurrency: Option<usize>,
    /// Accepted deliveries not yet reviewed before answering 503 (default 1000).
    pub max_pending: Option<u64>,
    /// How long shutdown waits for accepted deliveries (default 60).
    pub drain_seconds: Option<u64>,
    pub github: Option<GitHubSection>,
    pub gitlab: Option<GitLabSection>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// A PEM file or key URI (`awskms://…`, `pkcs11:…`); else CUSTODY_SIGNING_KEY(_PEM).
    pub signing_key: Option<String>,
    /// `empty` (default), `sha256` or `fingerprint`.
    pub keyid_scheme: Option<String>,
    /// Retention lock in years (default 6).
    pub retention_years: Option<i16>,
    /// RFC 3161 timestamp authorities for each signature.
    #[serde(default)]
    pub tsa: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitHubSection {
    /// Default `https://api.github.com`; `https://HOST/api/v3` on GitHub Enterprise
    /// Server.
    pub api_url: Option<String>,
    pub app_id: u64,
    /// The App's private key (PEM); else CUSTODY_GATE_GITHUB_PRIVATE_KEY.
    pub private_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitLabSection {
    /// `https://gitlab.example.com/api/v4`.
    pub api_url: String,
    /// The approval rule the service account approves for, when it is in several.
    pub represented_as: Option<String>,
}

impl Config {
    /// Reads and parses `path`; relative paths in it are resolved against its
    /// directory.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg: Config = serde_yaml_ng::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        cfg.trusted_keys.iter_mut().for_each(resolve);
        cfg.policies.iter_mut().for_each(resolve);
        cfg.data.iter_mut().for_each(resolve);
        cfg.ca_files.iter_mut().for_each(resolve);
        if let Some(gh) = &mut cfg.github
            && let Some(p) = &mut gh.private_key_file
        {
            resolve(p);
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_example_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let doc = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.starts_with("//! ```yaml"))
            .skip(1)
            .take_while(|l| !l.starts_with("//! ```"))
            .map(|l| l.strip_prefix("//! ").unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let p = dir.path().join("gate.yaml");
        std::fs::write(&p, &doc).unwrap();
        let cfg = Config::read(&p).unwrap();
        assert_eq!(cfg.github.as_ref().unwrap().app_id, 123_456);
        assert_eq!(cfg.await_approvals_seconds, Some(3600));
        assert_eq!(
            cfg.record.unwrap().signing_key.as_deref(),
            Some("awskms:///alias/custody-gate")
        );
        std::fs::write(&p, "store: x\nwebhookSecret: hunter2\n").unwrap();
        let err = Config::read(&p).unwrap_err().to_string();
        assert!(
            err.contains("gate.yaml") && err.contains("webhookSecret"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = Config::read(&dir.path().join("missing.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.yaml"), "{err}");
    }
}
