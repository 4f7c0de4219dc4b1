//! The Custody record: what every statement carries besides its standard predicate,
//! as one statement-level extension field, `custodyRecord` (in-toto v1 parsing rules:
//! producers may add extension fields to any object; names avoid `.` and `$`).
//! It says where the raw materials live, in which pipeline the record was made, which
//! HIPAA controls it supports, and which record came before it (the chain).

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::ServiceNameError;
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

/// The longest service name accepted, in characters.
pub const MAX_SERVICE_LEN: usize = 128;

/// Checks a service name before it is recorded or required: not blank, no control
/// characters (they would forge lines in tables and logs), at most [`MAX_SERVICE_LEN`]
/// characters.
pub fn check_service_name(name: &str) -> Result<(), ServiceNameError> {
    if name.trim().is_empty() {
        return Err(ServiceNameError::Empty);
    }
    if name.chars().any(char::is_control) {
        return Err(ServiceNameError::Control);
    }
    let len = name.chars().count();
    if len > MAX_SERVICE_LEN {
        return Err(ServiceNameError::TooLong {
            len,
            max: MAX_SERVICE_LEN,
        });
    }
    Ok(())
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
    /// The service the record belongs to, when one pipeline (GitHub: matrix jobs of one
    /// run) or one child pipeline per service (GitLab) builds several, so an audit can
    /// require every stage of every service. Set by `--service`, never detected; absent
    /// from the JSON when unset, so records made without it keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
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

impl ChainLink {
    /// The first link of chain `id`, as a draft carries it until the store appends the
    /// record where the chain's head really is.
    pub fn first(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            sequence: 0,
            previous: None,
        }
    }
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
            chain: ChainLink::first("test"),
            summary: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> PipelineContext {
        PipelineContext {
            platform: Some(Platform::Github),
            repository: Some("acme/app".into()),
            commit: Some("0123abcd".into()),
            pipeline_id: Some("42".into()),
            job: Some("build".into()),
            ..PipelineContext::default()
        }
    }

    #[test]
    fn an_unset_service_leaves_the_json_as_it_was() {
        // the serialization of a context before `service` existed, byte for byte
        let before = r#"{"platform":"github","server":null,"repository":"acme/app","commit":"0123abcd","ref":null,"refProtected":null,"pipelineId":"42","attempt":null,"job":"build","jobId":null,"actor":null,"runner":null,"environment":null,"url":null,"source":null}"#;
        assert_eq!(serde_json::to_string(&context()).unwrap(), before);
        let back: PipelineContext = serde_json::from_str(before).unwrap();
        assert_eq!(back, context());
        assert_eq!(back.service, None);
    }

    #[test]
    fn a_set_service_is_recorded_and_read_back() {
        let c = PipelineContext {
            service: Some("api".into()),
            ..context()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains(r#""jobId":null,"service":"api","actor""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<PipelineContext>(&json).unwrap(), c);
        // the service is not part of the pipeline or the chain a record belongs to
        assert_eq!(c.pipeline_key(), context().pipeline_key());
        assert_eq!(c.chain_id(), context().chain_id());
    }

    #[test]
    fn service_names_are_checked() {
        for ok in [
            "api",
            "web-frontend",
            "svc/billing",
            "支払い",
            &"a".repeat(128),
        ] {
            assert_eq!(check_service_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_service_name(""), Err(ServiceNameError::Empty));
        assert_eq!(check_service_name("  "), Err(ServiceNameError::Empty));
        assert_eq!(
            check_service_name("api\nweb"),
            Err(ServiceNameError::Control)
        );
        assert_eq!(
            check_service_name("api\u{1b}[31m"),
            Err(ServiceNameError::Control)
        );
        assert_eq!(
            check_service_name(&"a".repeat(129)),
            Err(ServiceNameError::TooLong { len: 129, max: 128 })
        );
        // characters, not bytes: 128 three-byte characters are fine
        assert_eq!(check_service_name(&"支".repeat(128)), Ok(()));
    }
}
