//! Queries over the index.

use custody_evidence::{Control, Digest};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::index::IndexKey;

/// What an auditor asks for. Criteria combine with AND; an empty query lists all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Query {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Digest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<jiff::civil::Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

impl Query {
    /// The index keys named by the query; each yields a candidate set to intersect.
    pub fn keys(&self) -> Vec<IndexKey> {
        let mut keys = Vec::new();
        if let Some(s) = self.subject {
            keys.push(IndexKey::Subject(s));
        }
        if let Some(c) = &self.commit {
            keys.push(IndexKey::Commit(c.clone()));
        }
        if let Some(p) = &self.pipeline {
            keys.push(IndexKey::Pipeline(p.clone()));
        }
        if let Some(d) = self.day {
            keys.push(IndexKey::Day(d));
        }
        if let Some(e) = &self.environment {
            keys.push(IndexKey::Environment(e.clone()));
        }
        if let Some(s) = &self.stage {
            keys.push(IndexKey::Stage(s.clone()));
        }
        if let Some(c) = self.control {
            keys.push(IndexKey::Control(c));
        }
        keys
    }

    pub(crate) fn in_time_range(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// A record found by a query: its envelope digest and when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordRef {
    pub recorded_at: Timestamp,
    pub digest: Digest,
}
