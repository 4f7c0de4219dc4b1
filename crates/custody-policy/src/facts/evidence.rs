//! Evidence facts from the store: every record about the artifact (by subject digest)
//! and about its commit, verified against the trusted keys; materials re-read and
//! checked against their digests; SBOMs re-summarized and compared with their
//! records. What verifies becomes a fact; what does not goes to `rejected` with the
//! reason.

use std::collections::BTreeSet;

use custody_evidence::{Digest, Envelope, RecordInfo, Statement, TrustedKeys, verify_envelope};
use custody_formats::Summary;
use custody_store::{EvidenceStore, Query, StoreError};
use jiff::Timestamp;
use serde_json::Value;

use crate::error::PolicyError;
use crate::input::{
    CoverageFact, Finding, MisconfigurationsFact, PolicyInput, Rejected, RunnerGuardFact, SbomFact,
    ScanFact, SecretsFact, SignatureFact, TestCounts, TestFact,
};

/// predicateType of runner-guard records (HELPERS.md contract).
pub const RUNNER_GUARD_PREDICATE: &str = "https://custody.dev/runner-guard/report/v1";

/// What to look for.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The manifest digest being deployed.
    pub digest: Digest,
    /// The commit the artifact was built from, when known.
    pub commit: Option<String>,
    /// `platform:repository:run` of this pipeline, when known: runner-guard records
    /// must come from it.
    pub pipeline: Option<String>,
    /// Gate time, for scan ages.
    pub now: Timestamp,
}

/// Reads and verifies the evidence for `scope` into the evidence facts of `facts`
/// (verified records, signatures, SBOMs, scans, tests, coverage, runner-guard records
/// and rejections). Store failures other than a corrupt object are errors; anything
/// wrong with a record itself is a rejection.
pub async fn gather<S: EvidenceStore>(
    store: &S,
    trusted: &TrustedKeys,
    scope: &Scope,
    facts: &mut PolicyInput,
) -> Result<(), PolicyError> {
    let mut refs = BTreeSet::new();
    for r in store
        .query(&Query {
            subject: Some(scope.digest),
            ..Query::default()
        })
        .await?
    {
        refs.insert(r.digest);
    }
    if let Some(commit) = &scope.commit {
        for r in store
            .query(&Query {
                commit: Some(commit.clone()),
                ..Query::default()
            })
            .await?
        {
            refs.insert(r.digest);
        }
    }
    for digest in refs {
        let bytes = match store.get_object(&digest).await {
            Ok(b) => b,
            Err(StoreError::Corrupt { actual, .. }) => {
                facts.rejected.push(Rejected {
                    record: digest.to_string(),
                    stage: "unknown".into(),
                    reason: format!("the stored envelope was altered (its bytes hash to {actual})"),
                });
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match verify(&bytes, trusted) {
            Ok((statement, signer)) => {
                facts.verified_records += 1;
                classify(store, scope, &digest, statement, signer, facts).await?;
            }
            Err((stage, reason)) => facts.rejected.push(Rejected {
                record: digest.to_string(),
                stage,
                reason,
            }),
        }
    }
    Ok(())
}

/// Verifies an envelope; on failure returns the stage it claims (unverified) and why.
fn verify(bytes: &[u8], trusted: &TrustedKeys) -> Result<(Statement, String), (String, String)> {
    let env = Envelope::from_slice(bytes)
        .map_err(|e| ("unknown".to_owned(), format!("not a DSSE envelope: {e}")))?;
    let claimed = env
        .payload_bytes()
        .ok()
        .and_then(|p| Statement::from_slice(&p).ok())
        .and_then(|s| s.record().map(|r| r.stage.clone()))
        .unwrap_or_else(|| "unknown".into());
    let verified = verify_envelope(&env, trusted).map_err(|e| (claimed, e.to_string()))?;
    Ok((verified.statement, verified.signer.label))
}

fn subject_digests(st: &Statement) -> Vec<String> {
    st.subject_digests()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Re-reads every material of a record; the first one missing or altered, if any.
async fn material_problem<S: EvidenceStore>(store: &S, rec: &RecordInfo) -> Option<String> {
    for m in &rec.materials {
        match store.get_object(&m.digest).await {
            Ok(_) => {}
            Err(StoreError::Corrupt { actual, .. }) => {
                return Some(format!(
                    "material {} was altered: the record names {}, the stored bytes hash to {actual}",
                    m.name, m.digest
                ));
            }
            Err(e) => return Some(format!("material {} ({}): {e}", m.name, m.digest)),
        }
    }
    None
}

async fn classify<S: EvidenceStore>(
    store: &S,
    scope: &Scope,
    record: &Digest,
    st: Statement,
    signer: String,
    facts: &mut PolicyInput,
) -> Result<(), PolicyError> {
    let Some(rec) = st.record().cloned() else {
        return Ok(());
    };
    let about_artifact = st.subject_digests().contains(&scope.digest);
    let same_commit = scope.commit.is_some() && rec.pipeline.commit == scope.commit;
    let record_id = record.to_string();
    let reject = |facts: &mut PolicyInput, reason: String| {
        facts.rejected.push(Rejected {
            record: record_id.clone(),
            stage: rec.stage.clone(),
            reason,
        });
    };
    if rec.stage == "runner-guard" || st.predicate_type == RUNNER_GUARD_PREDICATE {
        let this_pipeline = match (&scope.pipeline, rec.pipeline.pipeline_key()) {
            (Some(want), Some(have)) => *want == have,
            (Some(_), None) => false,
            (None, _) => true,
        };
        if !(same_commit || about_artifact) || !this_pipeline {
            return Ok(());
        }
        let text = |k: &str| {
            st.predicate
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        facts.runner_guard.push(RunnerGuardFact {
            record: record_id.clone(),
            tier: text("tier"),
            environment: text("environment"),
            outcome: text("outcome").unwrap_or_else(|| "unknown".into()),
            job: rec.pipeline.job.clone(),
        });
        return Ok(());
    }
    if rec.stage == "sign" {
        if !about_artifact {
            return Ok(());
        }
        if let Some(p) = material_problem(store, &rec).await {
            reject(facts, p);
            return Ok(());
        }
        facts.signatures.push(SignatureFact {
            record: record_id.clone(),
            signer,
            key_id: st
                .predicate
                .get("keyId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            subject_digests: subject_digests(&st),
            recorded_at: rec.recorded_at.to_string(),
        });
        return Ok(());
    }
    let Some(summary) = rec
        .summary
        .clone()
        .and_then(|v| serde_json::from_value::<Summary>(v).ok())
    else {
        return Ok(());
    };
    // SBOMs and scans are about the artifact; tests and coverage may be about its commit.
    let in_scope = match summary {
        Summary::Sbom(_) | Summary::Scan(_) => about_artifact,
        Summary::Tests(_) | Summary::Coverage(_) => about_artifact || same_commit,
    };
    if !in_scope {
        return Ok(());
    }
    // An SBOM's file is read and compared with its summary below; the others must be intact.
    if !matches!(summary, Summary::Sbom(_))
        && let Some(p) = material_problem(store, &rec).await
    {
        reject(facts, p);
        return Ok(());
    }
    match summary {
        Summary::Sbom(s) => {
            let (verified, problem, components) = check_sbom(store, &rec).await;
            facts.sboms.push(SbomFact {
                record: record_id.clone(),
                subject_digests: subject_digests(&st),
                material_verified: verified,
                material_problem: problem,
                describes: s.subject_digest.clone(),
                oci_digests: s.oci_digests.clone(),
                component_count: s.component_count,
                licenses: s.licenses.clone(),
                components,
            });
        }
        Summary::Scan(s) => {
            let at = s.scanned_at.as_ref().and_then(|t| t.utc);
            let secrets = s.secrets.as_ref().map(|x| SecretsFact {
                total: x.total,
                counts: x.counts,
                found: x
                    .findings
                    .iter()
                    .map(|f| {
                        let place = match (&f.target, f.line) {
                            (Some(t), Some(l)) => format!(" in {t}:{l}"),
                            (Some(t), None) => format!(" in {t}"),
                            _ => String::new(),
                        };
                        format!("{}{place}", f.rule)
                    })
                    .collect(),
            });
            let misconfigurations = s.misconfigurations.as_ref().map(|m| MisconfigurationsFact {
                failures: m.failures,
                counts: m.counts,
                ids: m.findings.iter().map(|f| f.id.clone()).collect(),
            });
            facts.scans.push(ScanFact {
                record: record_id.clone(),
                subject_digests: subject_digests(&st),
                scanner: s.scanner.name.clone(),
                manifest_digests: s.manifest_digests.clone(),
                image_id: s.image_id.clone(),
                scanned_at: at.map(|t| t.to_string()),
                age_seconds: at.map(|t| scope.now.as_second() - t.as_second()),
                environment: rec.pipeline.environment.clone(),
                counts: s.counts,
                findings: s
                    .findings
                    .iter()
                    .map(|f| Finding {
                        id: f.id.clone(),
                        severity: severity(f.severity),
                        package: f.package.clone(),
                        version: f.version.clone(),
                        aliases: f.aliases.clone(),
                    })
                    .collect(),
                secrets,
                misconfigurations,
            });
        }
        Summary::Tests(t) => {
            facts.tests.push(TestFact {
                record: record_id.clone(),
                counts: TestCounts {
                    total: t.total,
                    passed: t.passed,
                    failed: t.failed,
                    errored: t.errored,
                    skipped: t.skipped,
                },
            });
        }
        Summary::Coverage(c) => {
            facts.coverage.push(CoverageFact {
                record: record_id.clone(),
                line_rate: c.line_rate,
                lines_valid: c.lines_valid,
                lines_covered: c.lines_covered,
            });
        }
    }
    Ok(())
}

fn severity(s: custody_formats::Severity) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// An SBOM is authentic when its file is in the store with the recorded digest and,
/// summarized again, says what the record's summary says.
async fn check_sbom<S: EvidenceStore>(
    store: &S,
    rec: &RecordInfo,
) -> (bool, Option<String>, Vec<crate::input::Component>) {
    let Some(m) = rec.materials.first() else {
        return (
            false,
            Some("the record names no SBOM file".into()),
            Vec::new(),
        );
    };
    let bytes = match store.get_object(&m.digest).await {
        Ok(b) => b,
        Err(StoreError::Corrupt { actual, .. }) => {
            return (
                false,
                Some(format!(
                    "the SBOM file {} was altered: the record names {}, the stored bytes hash to {actual}",
                    m.name, m.digest
                )),
                Vec::new(),
            );
        }
        Err(e) => {
            return (
                false,
                Some(format!("the SBOM file {} ({}): {e}", m.name, m.digest)),
                Vec::new(),
            );
        }
    };
    let again = custody_formats::summarize(&m.name, &bytes)
        .ok()
        .and_then(|s| serde_json::to_value(s).ok());
    if again.is_none() || again != rec.summary {
        return (
            false,
            Some(format!(
                "the SBOM file {} does not say what its record's summary says",
                m.name
            )),
            Vec::new(),
        );
    }
    (true, None, super::sbom::components(&bytes))
}
