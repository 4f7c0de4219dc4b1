//! in-toto Statement v1: the signed payload of every Custody record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::VerifyError;
use crate::record::RecordInfo;

/// `_type` of in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `_type` of the older v0.1 statements still produced by cosign and Trivy; read, never written.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";

/// An in-toto ResourceDescriptor as used in `subject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ResourceDescriptor {
    /// A subject named `name` with one SHA-256 digest.
    pub fn sha256(name: impl Into<String>, digest: &Digest) -> Self {
        let mut map = BTreeMap::new();
        map.insert("sha256".to_owned(), digest.hex());
        Self {
            name: name.into(),
            digest: map,
            uri: None,
            annotations: None,
        }
    }

    /// The SHA-256 digest, when present and well formed.
    pub fn sha256_digest(&self) -> Option<Digest> {
        self.digest
            .get("sha256")
            .and_then(|h| Digest::parse(h).ok())
    }
}

/// An in-toto Statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: serde_json::Value,
    /// The Custody record: an extension field of the statement (in-toto v1 parsing
    /// rules allow extension fields on any object), so standard predicates such as a
    /// CycloneDX BOM stay exactly as their specification defines them.
    #[serde(
        rename = "custodyRecord",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub record: Option<RecordInfo>,
}

impl Statement {
    /// A v1 statement carrying a Custody record.
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: impl Into<String>,
        predicate: serde_json::Map<String, serde_json::Value>,
        record: &RecordInfo,
    ) -> Result<Self, crate::EvidenceError> {
        Ok(Self {
            type_: STATEMENT_V1.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate: serde_json::Value::Object(predicate),
            record: Some(record.clone()),
        })
    }

    /// Parses and checks the statement type.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, VerifyError> {
        let st: Statement =
            serde_json::from_slice(bytes).map_err(|e| VerifyError::Statement(e.to_string()))?;
        if st.type_ != STATEMENT_V1 && st.type_ != STATEMENT_V01 {
            return Err(VerifyError::StatementType(st.type_));
        }
        Ok(st)
    }

    /// The Custody record, when the statement carries one.
    pub fn record(&self) -> Option<&RecordInfo> {
        self.record.as_ref()
    }

    /// SHA-256 digests of all subjects.
    pub fn subject_digests(&self) -> Vec<Digest> {
        self.subject
            .iter()
            .filter_map(ResourceDescriptor::sha256_digest)
            .collect()
    }

    /// Refuses the statement unless one of its subjects has the expected digest.
    /// This is what stops an envelope signed for one artifact being presented as
    /// evidence for another.
    pub fn require_subject(&self, expected: &Digest) -> Result<(), VerifyError> {
        let found = self.subject_digests();
        if found.contains(expected) {
            return Ok(());
        }
        let found = if found.is_empty() {
            "(none with a sha256 digest)".to_owned()
        } else {
            found
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(VerifyError::SubjectMismatch {
            expected: expected.to_string(),
            found,
        })
    }
}
