//! The retention audit: every object a query's records hold (envelopes and materials),
//! when its lock ends, and which locks are missing, too short or weak. Nothing is left
//! out silently: an object the store cannot describe is a finding too.

use custody_evidence::Digest;
use custody_store::{LockMode, Retention};
use jiff::Timestamp;
use serde::Serialize;

use crate::verify::{Audit, CheckKind, Finding};

/// One locked (or unlocked) object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetentionRow {
    pub digest: Digest,
    /// `record` or `material <name>`.
    pub kind: String,
    /// The record the object belongs to.
    pub record: Digest,
    pub stage: String,
    pub recorded_at: Timestamp,
    pub mode: Option<LockMode>,
    pub retain_until: Option<Timestamp>,
    pub legal_hold: bool,
}

/// The retention listing of an audit, soonest expiry first (unlocked objects first of all).
pub fn rows(audit: &Audit) -> Vec<RetentionRow> {
    let mut out = Vec::new();
    let row = |digest: Digest, kind: String, r: Option<&Retention>, rec: &crate::RecordEntry| {
        RetentionRow {
            digest,
            kind,
            record: rec.digest,
            stage: rec.stage.clone(),
            recorded_at: rec.recorded_at,
            mode: r.map(|r| r.mode),
            retain_until: r.map(|r| r.retain_until),
            legal_hold: r.is_some_and(|r| r.legal_hold),
        }
    };
    for rec in &audit.records {
        out.push(row(
            rec.digest,
            "record".into(),
            rec.retention.as_ref(),
            rec,
        ));
        for m in &rec.materials {
            out.push(row(
                m.material.digest,
                format!("material {}", m.material.name),
                m.retention.as_ref(),
                rec,
            ));
        }
    }
    out.sort_by(|a, b| {
        (a.retain_until, a.digest, &a.kind).cmp(&(b.retain_until, b.digest, &b.kind))
    });
    out.dedup_by(|a, b| a.digest == b.digest && a.kind == b.kind);
    out
}

/// The audit's findings about retention (and objects that could not be read, whose
/// locks therefore could not be checked).
pub fn findings(audit: &Audit) -> Vec<&Finding> {
    audit
        .findings
        .iter()
        .filter(|f| {
            matches!(
                f.check,
                CheckKind::Retention | CheckKind::Object | CheckKind::Material
            )
        })
        .collect()
}

/// Whether a lock is COMPLIANCE-mode (GOVERNANCE can be bypassed by privileged users).
pub fn is_compliance(r: &RetentionRow) -> bool {
    r.mode == Some(LockMode::Compliance)
}
