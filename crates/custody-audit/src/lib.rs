//! Audits over Custody evidence: what turns an auditor's request into a query.
//!
//! - [`verify`]: the records a query names, checked with everything they depend on
//!   (signatures, materials, chains, required stages, retention), as an [`Audit`] of
//!   findings that say what is wrong and where.
//! - [`bundle`]: the self-contained `.tar.gz` an auditor takes away and verifies offline.
//! - [`report`]: the report for people, in HTML and Markdown, per deployment and per
//!   HIPAA control.
//! - [`retention`]: what expires when, and which locks are missing or too short.

pub mod bundle;
pub mod completeness;
pub mod report;
pub mod retention;
pub mod verify;

pub use bundle::{
    AppliedChecks, AuditorChecks, BundleCheck, BundleError, ExportRequest, Exported, KeySource,
    Manifest, Origin, export, verify_bundle,
};
pub use verify::{
    AUDIT_SCHEMA, Audit, AuditOptions, CheckKind, Collected, Finding, RecordEntry, ServiceEntry,
    Severity, audit_query, audit_refs,
};
