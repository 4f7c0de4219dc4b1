//! Gathering verified facts for the policy input. Each source is its own module; each
//! turns what it could not establish into an absent fact or a problem string, never a
//! guess, so the policies fail closed on it.

pub mod attestations;
pub mod cosign;
pub mod evidence;
pub mod github;
pub mod gitlab;
pub mod log;
pub mod offline;
pub mod sbom;

use crate::input::{ApprovalsFact, PeopleFact, Person, ProtectionFact};

/// What a platform (or the offline file) told about approvals, authorship and the
/// environment's protection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformFacts {
    pub approvals: Option<ApprovalsFact>,
    pub people: Option<PeopleFact>,
    pub protection: Option<ProtectionFact>,
    /// Facts that could not be had, and why (logged; the policy fails closed on them).
    pub problems: Vec<String>,
}

/// A secret (API token, registry password) that never reaches Debug or Display:
/// Custody's one redacting type.
pub use custody_http::Secret;

/// The HTTP client settings every platform and registry lookup shares.
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub(crate) const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Adds a person to a list once, and only if the platform names them somehow.
pub(crate) fn push_unique(list: &mut Vec<Person>, p: Person) {
    if (p.login.is_some() || p.name.is_some() || p.email.is_some()) && !list.contains(&p) {
        list.push(p);
    }
}
