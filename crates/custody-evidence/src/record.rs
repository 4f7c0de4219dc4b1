//! The Custody record: what every statement carries besides its standard predicate,
//! as one statement-level extension field, `custodyRecord` (in-toto v1 parsing rules:
//! producers may add extension fields to any object; names avoid `.` and `$`).
//! It says where the raw materials live, in which pipeline the record was made, which
//! HIPAA controls it supports, and which record came before it (the chain).

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::hipaa::Control;

/// Name of the statement's extension field.
pub const RECORD_EXTENSION: &str = "custodyRecord";

/// One raw input file, stored byte for byte as a content-addressed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Material {
    /// File name as given (not a path: directories are not recorded).
    pub name: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Detected format, e.g. `cyclonedx-json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// The CI platform a record was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Github,
    Gitlab,
    Local,
}

/// Where a record was made. Every field is optional: what the platform did not say is
/// recorded as `null`, never guessed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineContext {
    pub platform: Option<Platform>,
    pub server: Option<String>,
    pub repository: Option<String>,
    pub commit: Option<String>,
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub ref_protected: Option<bool>,
    pub pipeline_id: Option<String>,
    pub attempt: Option<String>,
    pub job: Option<String>,
    pub job_id: Option<String>,
    pub actor: Option<String>,
    pub runner: Option<String>,
    pub environment: Option<String>,
    pub url: Option<String>,
    /// Where these values came from: `environment` (unverified CI variables), `oidc`
    /// (a verified token) or `flags`.
    pub source: Option<String>,
}

impl PipelineContext {
    /// A stable identifier of the pipeline run, used as the index key: platform,
    /// repository and run id (and attempt), or `None` when the run is unknown.
    pub fn pipeline_key(&self) -> Option<String> {
        let id = self.pipeline_id.as_deref()?;
        let platform = match self.platform {
            Some(Platform::Github) => "github",
            Some(Platform::Gitlab) => "gitlab",
            Some(Platform::Local) | None => "local",
        };
        let repo = self.repository.as_deref().unwrap_or("-");
        Some(format!("{platform}:{repo}:{id}"))
    }

    /// The chain a job's records form: one per job and run attempt, so parallel jobs
    /// never contend for a chain position (the parent pipeline aggregates them).
    pub fn chain_id(&self) -> String {
        let mut id = format!(
            "{}:{}",
            self.pipeline_key().unwrap_or_else(|| "local".into()),
            self.job.as_deref().unwrap_or("default")
        );
        if let Some(a) = &self.attempt {
            id.push('#');
            id.push_str(a);
        }
        id
    }
}

/// The link of a record in its chain. A chain is one job's sequence of records in one
/// pipeline run; parallel jobs have their own chains, aggregated by the parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainLink {
    pub id: String,
    /// Position in the chain, from 0.
    pub sequence: u64,
    /// Digest of the previous record's envelope; `None` for the first.
    pub previous: Option<Digest>,
}

/// The record extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordInfo {
    /// `build`, `test`, `scan`, `sign`, `deploy`, or a custom name.
    pub stage: String,
    pub recorded_at: jiff::Timestamp,
    pub materials: Vec<Material>,
    pub pipeline: PipelineContext,
    pub hipaa: Vec<Control>,
    pub chain: ChainLink,
    /// The normalized summary of the evidence (components, tests, coverage,
    /// vulnerabilities, signature, deployment), in one place whatever the predicate
    /// type, so policies and reports read one shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
}

impl RecordInfo {
    #[doc(hidden)]
    pub fn for_tests() -> Self {
        Self {
            stage: "build".into(),
            recorded_at: jiff::Timestamp::UNIX_EPOCH,
            materials: vec![],
            pipeline: PipelineContext::default(),
            hipaa: Control::baseline(),
            chain: ChainLink {
                id: "test".into(),
                sequence: 0,
                previous: None,
            },
            summary: None,
        }
    }
}
