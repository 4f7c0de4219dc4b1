//! `--approvals FILE`: approvals, authorship and environment protection given as JSON,
//! for demos and tests without a platform. Every fact from it is marked
//! `verified: false` with `source: file:<path>`, and the built-in policies deny on such
//! facts unless the data allows it (`approvals.allow_unverified: true`).
//!
//! ```json
//! {
//!   "approvals": [{"login": "alice", "state": "approved", "at": "2026-03-01T10:00:00Z"}],
//!   "people": {"prAuthors": [{"login": "dev"}], "commitAuthors": [{"login": "dev"}],
//!              "committers": [{"login": "dev"}], "triggeringActors": [{"login": "bot"}]},
//!   "environmentProtection": {"requiredReviewers": true, "reviewers": ["user:alice"],
//!                             "canAdminsBypass": false}
//! }
//! ```

use std::path::Path;

use serde::Deserialize;

use super::PlatformFacts;
use crate::error::PolicyError;
use crate::input::{Approval, ApprovalsFact, PeopleFact, Person, ProtectionFact, Provenance};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct File {
    #[serde(default)]
    approvals: Option<Vec<Approval>>,
    #[serde(default)]
    people: Option<People>,
    #[serde(default)]
    environment_protection: Option<Protection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct People {
    #[serde(default)]
    pr_authors: Vec<Person>,
    #[serde(default)]
    commit_authors: Vec<Person>,
    #[serde(default)]
    committers: Vec<Person>,
    #[serde(default)]
    triggering_actors: Vec<Person>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Protection {
    required_reviewers: bool,
    #[serde(default)]
    reviewers: Vec<String>,
    #[serde(default)]
    prevent_self_review: Option<bool>,
    #[serde(default)]
    can_admins_bypass: Option<bool>,
}

/// Reads the file; facts it leaves out stay absent.
pub fn read(path: &Path) -> Result<PlatformFacts, PolicyError> {
    let bytes = std::fs::read(path).map_err(|e| PolicyError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let file: File = serde_json::from_slice(&bytes).map_err(|e| PolicyError::Read {
        path: path.to_path_buf(),
        message: format!("not an approvals file ({e}); see README, policy-check"),
    })?;
    let provenance = || Provenance {
        source: format!("file:{}", path.display()),
        verified: false,
    };
    Ok(PlatformFacts {
        approvals: file.approvals.map(|approvals| ApprovalsFact {
            provenance: provenance(),
            approvals,
        }),
        people: file.people.map(|p| PeopleFact {
            provenance: provenance(),
            pr_authors: p.pr_authors,
            commit_authors: p.commit_authors,
            committers: p.committers,
            triggering_actors: p.triggering_actors,
        }),
        protection: file.environment_protection.map(|p| ProtectionFact {
            provenance: provenance(),
            required_reviewers: p.required_reviewers,
            reviewers: p.reviewers,
            prevent_self_review: p.prevent_self_review,
            can_admins_bypass: p.can_admins_bypass,
        }),
        problems: Vec::new(),
    })
}
