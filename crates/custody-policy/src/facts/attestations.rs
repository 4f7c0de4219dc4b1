//! GitHub artifact attestations for the digest, as evidence: read from GitHub's
//! attestations API (`GET /repos/{owner}/{repo}/attestations/sha256:{hex}`, shape:
//! `{"attestations": [{"bundle": {…}, "repository_id": N}]}`), each Sigstore bundle
//! verified keyless and offline against the pinned trusted root (custody-evidence's
//! `keyless`), its statement required to name the digest. Who signed is the policy's
//! to judge: the fact carries each verified bundle's issuer and identity, and
//! `github-attestation.rego` matches them against `attestations` in the policy data.

use std::sync::Arc;

use custody_evidence::Digest;
use custody_evidence::keyless::{Identity, TrustedRoot, verify_keyless};
use serde::Deserialize;

use super::github::{GitHubConfig, client};
use crate::input::{AttestationFact, AttestationsFact};

/// Where to read attestations and what to trust.
#[derive(Debug, Clone)]
pub struct AttestationsConfig {
    /// The API root, token, repository and network policy (`run_id`, `commit` and
    /// `environment` are not used).
    pub github: GitHubConfig,
    pub root: Arc<TrustedRoot>,
}

#[derive(Debug, Deserialize)]
struct Listing {
    #[serde(default)]
    attestations: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    bundle: Option<serde_json::Value>,
}

/// Reads and verifies the attestations for `digest`. What cannot be had or does not
/// verify becomes a problem, never a fact.
pub async fn check(cfg: &AttestationsConfig, digest: &Digest) -> AttestationsFact {
    let repo = &cfg.github.repository;
    let mut fact = AttestationsFact {
        repository: repo.clone(),
        verified: Vec::new(),
        problems: Vec::new(),
    };
    let octo = match client(&cfg.github) {
        Ok(o) => o,
        Err(e) => {
            fact.problems.push(e.to_string());
            return fact;
        }
    };
    let route = format!("/repos/{repo}/attestations/{digest}");
    let listing: Listing = match octo.get(&route, Some(&[("per_page", "100")][..])).await {
        Ok(l) => l,
        Err(e) => {
            fact.problems
                .push(super::github::api_error(&route, &e).to_string());
            return fact;
        }
    };
    if listing.attestations.is_empty() {
        fact.problems
            .push(format!("GitHub has no attestation of {digest} in {repo}"));
    }
    for (i, entry) in listing.attestations.iter().enumerate() {
        let Some(bundle) = &entry.bundle else {
            fact.problems.push(format!(
                "attestation {i}: the bundle is not inline (only a bundle_url)"
            ));
            continue;
        };
        let bytes = serde_json::to_vec(bundle).unwrap_or_default();
        match verify_keyless(&bytes, &cfg.root, &Identity::default()) {
            Ok(v) => {
                let Some(st) = v.statement else {
                    fact.problems.push(format!(
                        "attestation {i}: a message signature, not a statement"
                    ));
                    continue;
                };
                if let Err(e) = st.require_subject(digest) {
                    fact.problems.push(format!("attestation {i}: {e}"));
                    continue;
                }
                fact.verified.push(AttestationFact {
                    predicate_type: st.predicate_type.clone(),
                    issuer: v.issuer,
                    identity: v.san,
                    time: v.time.to_string(),
                    log_index: v.log_index,
                });
            }
            Err(e) => fact.problems.push(format!("attestation {i}: {e}")),
        }
    }
    fact
}
