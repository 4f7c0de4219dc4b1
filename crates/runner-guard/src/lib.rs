//! `runner-guard`, the first step of every job: is this runner isolated for the tier the job
//! touches? The logic lives in `custody-guard`; this crate turns a validated [`Config`] into a
//! verdict ([`run`]) and, when a store and a signing key are configured, stores the verdict as
//! a signed runner attestation, so `policy-check` can require that a production deploy ran on
//! a production runner.
//!
//! The record (the "runner-guard record" contract between issues):
//!
//! - stage `runner-guard`, predicateType [`PREDICATE_TYPE`], predicate = the
//!   [`custody_guard::Report`] JSON;
//! - subject `git:<commit>` when a commit is known (the verified token's `sha`, else
//!   `--commit`, else the CI variable), else the tier model by its digest;
//! - HIPAA controls: the baseline plus §164.308(a)(4) and §164.312(a)(1);
//! - the tier model itself as the record's one material, byte for byte, so an auditor can read
//!   the exact model the job was judged against.
//!
//! The record is stored whatever the verdict: a failed check is evidence too. Storing it can
//! fail (store unreachable or refusing): the verdict still stands, and the exit code is
//! [`EXIT_STORE`], because a step that was asked for evidence and left none must not pass.

mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use custody_evidence::{
    ChainLink, Control, Digest, KeyIdScheme, Material, PipelineContext, RecordInfo,
    ResourceDescriptor, Signer, SubjectSpec,
};
use custody_guard::{Environment, GuardOptions, Report, Request, TierModel, TierModelError};
use custody_platform::context::Env;
use custody_platform::{detect_context, stores};
use custody_store::{Draft, EvidenceStore as _, ObjectSource, Retention, append_record};
use serde::Serialize;
use thiserror::Error;

/// Stage of the record.
pub use report::report;

/// The stage name of the record.
pub const STAGE: &str = "runner-guard";
/// predicateType of the record.
pub const PREDICATE_TYPE: &str = "https://custody.dev/runner-guard/report/v1";
/// Exit code when evidence was asked for and could not be stored (store unreachable, refusing
/// the write, or the runtime failing). The verdict's own codes are 0, 1 and 3; 2 is a
/// configuration error.
pub const EXIT_STORE: i32 = 4;

/// Where and how to store the verdict.
#[derive(Debug)]
pub struct EvidenceConfig {
    /// Store URL (`file://`, `s3://`, `gitlab://`).
    pub store: String,
    pub key: std::sync::Arc<dyn Signer>,
    pub keyid_scheme: KeyIdScheme,
    pub retention: Retention,
    /// `--commit`: used when the verified token names none.
    pub commit: Option<String>,
}

/// Everything `run` needs, validated at the edge.
#[derive(Debug)]
pub struct Config {
    pub tier_model: PathBuf,
    pub request: Request,
    /// Stands in for `/` for the local probes (tests point it at a fake root).
    pub root: PathBuf,
    /// Overrides the tier model's metadata endpoint (tests point it at loopback).
    pub metadata_endpoint: Option<SocketAddr>,
    pub evidence: Option<EvidenceConfig>,
    /// The job's environment, read once by the binary: the guard's signals, the
    /// record's pipeline context and the store's settings all come from it.
    pub env: Environment,
    /// Extra trusted CA certificates for a remote evidence store (`--ca-file`). The
    /// verdict's own lookups trust only the tier model's pinned roots.
    pub ca_files: Vec<PathBuf>,
}

/// A configuration error: exit code 2.
#[derive(Debug, Error)]
pub enum GuardError {
    #[error(transparent)]
    TierModel(#[from] TierModelError),
    #[error("{0}")]
    Usage(String),
}

impl GuardError {
    /// The tier model file, for an annotation.
    pub fn file(&self) -> Option<String> {
        match self {
            Self::TierModel(
                TierModelError::Read { file, .. }
                | TierModelError::Parse { file, .. }
                | TierModelError::Invalid { file, .. },
            ) => Some(file.clone()),
            Self::Usage(_) => None,
        }
    }
}

/// The stored record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRecord {
    pub record: Digest,
    pub store: String,
    pub subject: String,
    pub chain: ChainLink,
}

/// What became of the evidence.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Evidence {
    /// No store configured.
    NotConfigured,
    Stored(StoredRecord),
    /// The store could not be reached or refused the record.
    Failed {
        store: String,
        error: String,
    },
}

/// The verdict and its evidence.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub report: Report,
    pub evidence: Evidence,
}

impl Outcome {
    /// The verdict's exit code, or [`EXIT_STORE`] when evidence was asked for and not stored.
    pub fn exit_code(&self) -> i32 {
        match self.evidence {
            Evidence::Failed { .. } => EXIT_STORE,
            _ => self.report.exit_code,
        }
    }
}

/// Loads the tier model, collects and judges the signals, stores the verdict if configured.
pub fn run(cfg: &Config) -> Result<Outcome, GuardError> {
    let file = cfg.tier_model.display().to_string();
    let bytes = std::fs::read(&cfg.tier_model).map_err(|source| TierModelError::Read {
        file: file.clone(),
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| TierModelError::Parse {
        file: file.clone(),
        line: None,
        message: "the file is not UTF-8 text".into(),
    })?;
    let model = TierModel::from_yaml(text, &file)?;
    let opts = GuardOptions {
        request: cfg.request.clone(),
        env: cfg.env.clone(),
        root: cfg.root.clone(),
        metadata_endpoint: cfg.metadata_endpoint,
        now: None,
        use_platform_api: true,
    };
    let report = custody_guard::run(&model, &opts)?;
    let evidence = match &cfg.evidence {
        None => Evidence::NotConfigured,
        Some(ev) => match store_report(ev, cfg, &bytes, &report) {
            Ok(stored) => Evidence::Stored(stored),
            Err(error) => Evidence::Failed {
                store: ev.store.clone(),
                error,
            },
        },
    };
    Ok(Outcome { report, evidence })
}

/// The guard's snapshot of the environment, read as the platform crate reads one.
struct JobEnv<'a>(&'a Environment);

impl Env for JobEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(str::to_owned)
    }
}

/// Where to store the verdict, from the flags: a store and a key together, or neither.
pub fn evidence_config(
    env: &dyn Env,
    store: Option<&str>,
    key: Option<&str>,
    tsa: &[String],
    ca_files: &[PathBuf],
    record: &custody_platform::step::RecordArgs,
    commit: Option<String>,
) -> Result<Option<EvidenceConfig>, GuardError> {
    let usage = |m: &str| GuardError::Usage(m.to_owned());
    let have_key = key.is_some()
        || env
            .var(custody_platform::env_vars::CUSTODY_SIGNING_KEY_PEM)
            .is_some();
    let store = match (store, have_key) {
        (None, false) => return Ok(None),
        (Some(s), true) => s.to_owned(),
        (Some(_), false) => {
            return Err(usage(
                "a store is configured but no signing key: pass --key FILE|URI or set CUSTODY_SIGNING_KEY or CUSTODY_SIGNING_KEY_PEM, or unset the store to run without evidence",
            ));
        }
        (None, true) => {
            return Err(usage(
                "a signing key is configured but no store: pass --store URL or set CUSTODY_STORE, or unset the key to run without evidence",
            ));
        }
    };
    let key = custody_platform::step::signer(env, key, tsa, ca_files)
        .map_err(GuardError::Usage)?
        .ok_or_else(|| usage("no signing key"))?;
    Ok(Some(EvidenceConfig {
        store,
        key,
        keyid_scheme: record.keyid_scheme,
        retention: record.retention().map_err(GuardError::Usage)?,
        commit,
    }))
}

/// The commit the record is about: the verified token's `sha`, else `--commit`, else the CI
/// variable (already in `context`).
fn commit(report: &Report, flag: Option<&str>, context: &PipelineContext) -> Option<String> {
    report
        .claims
        .as_ref()
        .and_then(|c| c.string("sha"))
        .or_else(|| flag.map(str::to_owned))
        .or_else(|| context.commit.clone())
}

fn subject(
    commit: Option<&str>,
    model_path: &Path,
    model_digest: &Digest,
) -> (ResourceDescriptor, String) {
    if let Some(c) = commit {
        let spec = format!("git:{c}");
        if let Some(d) = SubjectSpec::parse(&spec).ok().and_then(|s| s.descriptor()) {
            return (d, spec);
        }
    }
    let name = model_path
        .file_name()
        .map_or_else(|| "tier-model".into(), |n| n.to_string_lossy().into_owned());
    (
        ResourceDescriptor::sha256(name, model_digest),
        model_digest.to_string(),
    )
}

/// Signs and stores the report; the error is a sentence for the log (never a secret: store
/// errors name the store and the object, and the key is not in reach of any message).
fn store_report(
    ev: &EvidenceConfig,
    cfg: &Config,
    model_bytes: &[u8],
    report: &Report,
) -> Result<StoredRecord, String> {
    let (env, model_path) = (JobEnv(&cfg.env), cfg.tier_model.as_path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?;
    rt.block_on(async {
        let store = stores::create(&ev.store, &env, &cfg.ca_files)
            .map_err(|e| format!("opening store {}: {e}", ev.store))?;
        let stored = store
            .put_object(ObjectSource::Bytes(model_bytes), &ev.retention)
            .await
            .map_err(|e| format!("storing the tier model in {}: {e}", store.uri()))?;

        let mut context = detect_context(&env);
        let commit = commit(report, ev.commit.as_deref(), &context);
        let claim = |name: &str| report.claims.as_ref().and_then(|c| c.string(name));
        context.commit.clone_from(&commit);
        if report.environment.is_some() {
            context.environment.clone_from(&report.environment);
        }
        if context.job_id.is_none() {
            // GitHub exposes the job id only in the token (`check_run_id`); GitLab has `job_id`.
            context.job_id = claim("check_run_id").or_else(|| claim("job_id"));
        }
        if let Some(name) = report.runner.as_ref().and_then(|r| r.name.clone()) {
            context.runner = Some(name);
        }
        if report.claims.is_some() {
            context.source = Some(match context.source.as_deref() {
                Some(s) => format!("{s}+oidc"),
                None => "oidc".into(),
            });
        }
        let chain_id = context.chain_id();
        let (subject, subject_name) = subject(commit.as_deref(), model_path, &stored.digest);

        let predicate = match serde_json::to_value(report) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err("the report did not serialize to a JSON object".into()),
        };
        let mut hipaa = Control::baseline();
        for c in [Control::AccessManagement, Control::AccessControl] {
            if !hipaa.contains(&c) {
                hipaa.push(c);
            }
        }
        let failed: Vec<&str> = report.failed().map(|c| c.id.as_str()).collect();
        let record = RecordInfo {
            stage: STAGE.into(),
            recorded_at: jiff::Timestamp::now(),
            materials: vec![Material {
                name: model_path.file_name().map_or_else(
                    || "tier-model.yaml".into(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                digest: stored.digest,
                size: stored.size,
                media_type: Some("application/yaml".into()),
                format: Some("custody-tier-model-v1".into()),
            }],
            pipeline: context,
            hipaa,
            chain: ChainLink::first(chain_id.clone()),
            summary: Some(serde_json::json!({
                "kind": "runner-guard",
                "tier": report.tier,
                "environment": report.environment,
                "outcome": report.outcome,
                "failedChecks": failed,
                "tierModelDigest": report.tier_model_digest,
            })),
        };
        let draft = Draft {
            subject: vec![subject],
            predicate_type: PREDICATE_TYPE.into(),
            predicate,
            record,
        };
        let appended = append_record(
            &store,
            ev.key.as_ref(),
            ev.keyid_scheme,
            &chain_id,
            draft,
            &ev.retention,
        )
        .await
        .map_err(|e| format!("storing the record in {}: {e}", store.uri()))?;
        Ok(StoredRecord {
            record: appended.outcome.digest,
            store: store.uri(),
            subject: subject_name,
            chain: appended.link,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_the_commit_when_known_else_the_tier_model() {
        let d = Digest::of(b"version: 1");
        let (rd, name) = subject(
            Some("f83a356604ae3c5d03e1b46ef4d1ca77d64a90b0"),
            Path::new("a/t.yaml"),
            &d,
        );
        assert_eq!(name, "git:f83a356604ae3c5d03e1b46ef4d1ca77d64a90b0");
        assert_eq!(
            rd.digest.get("gitCommit").map(String::as_str),
            Some("f83a356604ae3c5d03e1b46ef4d1ca77d64a90b0")
        );
        // Not a commit: the model's digest, never a guess.
        let (rd, name) = subject(Some("not a sha"), Path::new("a/t.yaml"), &d);
        assert_eq!(name, d.to_string());
        assert_eq!(rd.name, "t.yaml");
        assert_eq!(rd.sha256_digest(), Some(d));
        let (_, name) = subject(None, Path::new("t.yaml"), &d);
        assert_eq!(name, d.to_string());
    }
}
