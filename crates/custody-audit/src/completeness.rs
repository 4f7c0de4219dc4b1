//! What makes a bundle *complete* (issue 14): the log's entries for the query's range,
//! under a checkpoint signed by the log key.
//!
//! ```text
//! custody-bundle/log/checkpoint            the signed checkpoint (C2SP tlog-checkpoint)
//! custody-bundle/log/proof.json            the range [from, size), the frontier hashes
//!                                          left of it, and the query (structured)
//! custody-bundle/log/tile/entries/…        the entries of the range as C2SP entry bundles
//! ```
//!
//! `verify-bundle --log-key` recomputes the checkpoint's root from the frontier and the
//! entries, so the range is exactly the log's; then every entry that answers the query
//! must be a record the bundle holds and lists, and every record it lists must be an
//! entry. A range that starts after 0 must start with an entry sequenced before the
//! query's `since`: by the log's time order, nothing earlier can answer it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use custody_evidence::Digest;
use custody_store::log::{
    self, LogEntry, LogVerifier, RangeProof, SignedCheckpoint, entry_bundle_paths, entry_bundles,
    parse_entry_bundle, verify_range,
};
use custody_store::witness::{self, Cosignature};
use custody_store::{EvidenceStore, LocalStore, Query, RecordRef};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::bundle::BundleError;
use crate::verify::{CheckKind, Finding, Severity};

pub(crate) const CHECKPOINT: &str = "log/checkpoint";
pub(crate) const PROOF: &str = "log/proof.json";

/// `log/proof.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProofFile {
    pub proof: RangeProof,
    /// The query the bundle answers, whose completeness the range shows.
    pub query: Query,
}

/// What `verify-bundle` proved about completeness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Completeness {
    pub origin: String,
    pub checkpoint_size: u64,
    pub root: String,
    pub checkpoint_time: Option<Timestamp>,
    /// The log range read: `[from, checkpointSize)`.
    pub from: u64,
    pub query: Query,
    /// Entries in the range that answer the query (all of them in the bundle when ok).
    pub matching: usize,
    /// Valid cosignatures on the checkpoint from the witnesses the auditor named.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<Cosignature>,
}

/// The log files an export writes for `refs`: the latest checkpoint the keys accept
/// and the range that answers `query`. `(relative path, bytes)`.
pub(crate) async fn export_files<S: EvidenceStore>(
    store: &S,
    keys: &[LogVerifier],
    query: &Query,
    refs: &[RecordRef],
) -> Result<Vec<(String, Vec<u8>)>, BundleError> {
    let cp = log::latest_checkpoint(store, keys).await?.ok_or_else(|| {
        BundleError::Invalid(format!(
            "the log of {} has no checkpoint yet: run `custody log checkpoint` before exporting",
            store.uri()
        ))
    })?;
    let from = log::range_start(store, cp.size, query).await?;
    let (proof, entries) = log::prove_range(store, &cp, from).await?;
    let logged: BTreeSet<Digest> = entries
        .iter()
        .filter_map(|e| LogEntry::from_bytes(e).ok())
        .map(|e| e.record)
        .collect();
    if let Some(r) = refs.iter().find(|r| !logged.contains(&r.digest)) {
        return Err(BundleError::Invalid(format!(
            "record {} is not in the log up to its latest checkpoint ({} entries): run `custody log checkpoint` before exporting",
            r.digest, cp.size
        )));
    }
    let proof_file = ProofFile {
        proof: proof.clone(),
        query: query.clone(),
    };
    let mut out = vec![
        (
            CHECKPOINT.to_owned(),
            witness::cosigned_note(store, &cp).await?,
        ),
        (
            PROOF.to_owned(),
            serde_json::to_vec_pretty(&proof_file)
                .map_err(|e| BundleError::Invalid(e.to_string()))?,
        ),
    ];
    out.extend(
        entry_bundles(proof.from, &entries)
            .into_iter()
            .map(|(p, b)| (format!("log/{p}"), b)),
    );
    Ok(out)
}

/// The files below `log/` a bundle's proof accounts for (whatever they hold).
pub(crate) fn accounted(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(bytes) = fs::read(root.join(PROOF)) else {
        return out;
    };
    out.insert(PROOF.to_owned());
    out.insert(CHECKPOINT.to_owned());
    if let Ok(p) = serde_json::from_slice::<ProofFile>(&bytes)
        && p.proof.from <= p.proof.size
        && p.proof.size - p.proof.from <= 1 << 24
    {
        out.extend(
            entry_bundle_paths(p.proof.from, p.proof.size).map(|path| format!("log/{path}")),
        );
    }
    out
}

fn finding(about: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        check: CheckKind::Bundle,
        about: about.to_owned(),
        message,
    }
}

/// Checks a bundle's completeness proof with the auditor's log keys. Findings name
/// the log index or record at fault.
pub(crate) async fn check(
    root: &Path,
    store: &LocalStore,
    listed: &[RecordRef],
    auditor: &crate::AuditorChecks,
    now: Timestamp,
) -> Result<(Option<Completeness>, Vec<Finding>), BundleError> {
    let keys = &auditor.log_keys;
    let max_age = auditor.max_checkpoint_age;
    let mut findings = Vec::new();
    let about = "completeness";
    let Ok(proof_bytes) = fs::read(root.join(PROOF)) else {
        findings.push(finding(
            about,
            format!("the bundle has no {PROOF}: nothing shows that no record is missing (export it with --log-key)"),
        ));
        return Ok((None, findings));
    };
    let pf: ProofFile = match serde_json::from_slice(&proof_bytes) {
        Ok(p) => p,
        Err(e) => {
            findings.push(finding(about, format!("{PROOF}: {e}")));
            return Ok((None, findings));
        }
    };
    let note = fs::read(root.join(CHECKPOINT)).unwrap_or_default();
    let cp = match SignedCheckpoint::open(&note, keys) {
        Ok(cp) => cp,
        Err(e) => {
            findings.push(finding(&format!("bundle file {CHECKPOINT}"), e));
            return Ok((None, findings));
        }
    };
    if let (Some(max), Some(t)) = (max_age, cp.time)
        && now.duration_since(t) > max
    {
        findings.push(finding(
            &format!("bundle file {CHECKPOINT}"),
            format!("signed {t}, older than the {max:#} allowed: records after it are not covered"),
        ));
    } else if max_age.is_some() && cp.time.is_none() {
        findings.push(finding(
            &format!("bundle file {CHECKPOINT}"),
            "does not say when it was signed, so its age cannot be checked".into(),
        ));
    }
    let witnesses = check_witnesses(&note, auditor, now, &mut findings);
    let proof = &pf.proof;
    // the entries, tile by tile
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let count = proof.size.saturating_sub(proof.from);
    if proof.from > proof.size || count > 1 << 24 {
        findings.push(finding(
            about,
            format!(
                "{PROOF}: range {}..{} is not a log range",
                proof.from, proof.size
            ),
        ));
        return Ok((None, findings));
    }
    // the first unreadable tile ends the check: a proof naming millions of absent
    // tiles costs one finding, not one per tile
    for path in entry_bundle_paths(proof.from, proof.size) {
        let name = format!("log/{path}");
        let problem = match fs::read(root.join(&name)) {
            Ok(b) => match parse_entry_bundle(&b) {
                Ok(list) => {
                    entries.extend(list.into_iter().map(<[u8]>::to_vec));
                    continue;
                }
                Err(e) => e,
            },
            Err(_) => "missing: the log's entries there cannot be shown".into(),
        };
        findings.push(finding(&format!("bundle file {name}"), problem));
        return Ok((None, findings));
    }
    if let Err(e) = verify_range(&cp, proof, &entries) {
        findings.push(finding(about, e));
        return Ok((None, findings));
    }
    let parsed: Vec<(u64, Result<LogEntry, String>)> = entries
        .iter()
        .enumerate()
        .map(|(k, e)| (proof.from + k as u64, LogEntry::from_bytes(e)))
        .collect();
    if proof.from > 0 {
        match (pf.query.since, parsed.first()) {
            (Some(since), Some((i, Ok(e)))) if e.sequenced_at < since => {
                let _ = i;
            }
            (Some(_), Some((i, _))) => findings.push(finding(
                about,
                format!("the range starts at log index {i}, which was not sequenced before the query's start: earlier entries may answer it"),
            )),
            _ => findings.push(finding(
                about,
                format!("the range starts at log index {} but the query has no start time: entries before it may answer it", proof.from),
            )),
        }
    }
    let listed_set: BTreeSet<Digest> = listed.iter().map(|r| r.digest).collect();
    let mut logged = BTreeSet::new();
    let mut matching = 0;
    for (i, e) in &parsed {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                findings.push(finding(&format!("log index {i}"), err.clone()));
                continue;
            }
        };
        logged.insert(e.record);
        if !e.matches(&pf.query) {
            continue;
        }
        matching += 1;
        let held = store.has_object(&e.record).await?;
        if !held || !listed_set.contains(&e.record) {
            findings.push(finding(
                &format!("log index {i}"),
                format!(
                    "record {} ({} stage, recorded {}, commit {}) answers the query but is missing from the bundle: evidence was removed",
                    e.record,
                    e.stage,
                    e.recorded_at,
                    e.commit.as_deref().unwrap_or("-")
                ),
            ));
        }
    }
    for r in listed {
        if !logged.contains(&r.digest) {
            findings.push(finding(
                &format!("record {}", r.digest),
                format!(
                    "listed in BUNDLE.json but not in the log up to the checkpoint ({} entries)",
                    cp.size
                ),
            ));
        }
    }
    Ok((
        Some(Completeness {
            origin: cp.origin.clone(),
            checkpoint_size: cp.size,
            root: cp.root_base64(),
            checkpoint_time: cp.time,
            from: proof.from,
            query: pf.query.clone(),
            matching,
            witnesses,
        }),
        findings,
    ))
}

/// The checkpoint's valid cosignatures from the auditor's witnesses; fewer than
/// required, or one that names a witness and fails, is a finding.
fn check_witnesses(
    note: &[u8],
    auditor: &crate::AuditorChecks,
    now: Timestamp,
    findings: &mut Vec<Finding>,
) -> Vec<Cosignature> {
    if auditor.witness_keys.is_empty() && auditor.min_witnesses == 0 {
        return Vec::new();
    }
    let about = format!("bundle file {CHECKPOINT}");
    let now = u64::try_from(now.as_second()).unwrap_or(0);
    let c = match witness::check_cosignatures(note, &auditor.log_keys, &auditor.witness_keys, now) {
        Ok(c) => c,
        Err(e) => {
            findings.push(finding(&about, e));
            return Vec::new();
        }
    };
    for m in &c.invalid {
        findings.push(finding(&about, m.clone()));
    }
    if c.valid.len() < auditor.min_witnesses {
        let have: Vec<&str> = c.valid.iter().map(|w| w.witness.as_str()).collect();
        findings.push(finding(
            &about,
            format!(
                "carries {} valid cosignature(s) from the witnesses given{}, {} required: no quorum of witnesses vouches that this is the one history of the log",
                c.valid.len(),
                if have.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", have.join(", "))
                },
                auditor.min_witnesses
            ),
        ));
    }
    c.valid
}

/// What the log proved about a live store's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogCoverage {
    pub origin: String,
    pub checkpoint_size: u64,
    pub root: String,
    /// Entries read: `[from, logSize)`, past the checkpoint too.
    pub from: u64,
    pub log_size: u64,
    pub matching: usize,
}

fn log_finding(about: String, message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        check: CheckKind::Log,
        about,
        message,
    }
}

/// The log's own answer to a query.
#[derive(Debug, Clone)]
pub struct LogAnswer {
    pub coverage: LogCoverage,
    /// Entries that answer the query, with their log indexes, in log order.
    pub entries: Vec<(u64, LogEntry)>,
    /// Entries that are not Custody log entries, or a range that does not verify.
    pub findings: Vec<Finding>,
}

/// Reads the log from the query's start (proven against `cp`) to the log's end
/// (sequenced after the checkpoint too) and keeps the entries that answer `query`.
pub async fn answer_from_log<S: EvidenceStore>(
    store: &S,
    cp: &SignedCheckpoint,
    query: &Query,
) -> Result<LogAnswer, BundleError> {
    let mut findings = Vec::new();
    let from = log::range_start(store, cp.size, query).await?;
    let (proof, mut entries) = log::prove_range(store, cp, from).await?;
    if let Err(e) = verify_range(cp, &proof, &entries) {
        findings.push(log_finding("log".into(), e));
    }
    let end = log::log_end(store).await?;
    entries.extend(log::read_entries(store, cp.size, end).await?);
    let mut matching = Vec::new();
    for (k, e) in entries.iter().enumerate() {
        let i = from + k as u64;
        let Ok(e) = LogEntry::from_bytes(e) else {
            findings.push(log_finding(
                format!("log index {i}"),
                "is not a Custody log entry".into(),
            ));
            continue;
        };
        if e.matches(query) {
            matching.push((i, e));
        }
    }
    Ok(LogAnswer {
        coverage: LogCoverage {
            origin: cp.origin.clone(),
            checkpoint_size: cp.size,
            root: cp.root_base64(),
            from,
            log_size: end,
            matching: matching.len(),
        },
        entries: matching,
        findings,
    })
}

/// `custody verify --log-key`: the log as the truth for completeness. Every matched
/// record must be in the log; every entry in the query's range (from the log's
/// latest checkpoint, proven against it, to the log's end) that answers the query
/// must be a matched record. Findings are added to `audit` (and its totals).
pub async fn check_store<S: EvidenceStore>(
    store: &S,
    audit: &mut crate::verify::Audit,
    query: &Query,
    keys: &[LogVerifier],
) -> Result<Option<LogCoverage>, BundleError> {
    let mut findings = Vec::new();
    let matched: BTreeSet<Digest> = audit
        .records
        .iter()
        .filter(|r| r.matched)
        .map(|r| r.digest)
        .collect();
    for d in &matched {
        if log::log_index(store, d).await?.is_none() {
            findings.push(log_finding(
                format!("record {d}"),
                "is not in the store's transparency log: its writer stopped before sequencing it (run `custody log sequence`), or it was put in the store around Custody".into(),
            ));
        }
    }
    let coverage = match log::latest_checkpoint(store, keys).await {
        Ok(Some(cp)) => {
            let answer = answer_from_log(store, &cp, query).await?;
            findings.extend(answer.findings);
            for (i, e) in &answer.entries {
                if !matched.contains(&e.record) {
                    findings.push(log_finding(
                        format!("log index {i}"),
                        format!(
                            "record {} ({} stage, recorded {}) answers the query but is not in the answer: its index pointers or the record itself were removed",
                            e.record, e.stage, e.recorded_at
                        ),
                    ));
                }
            }
            Some(answer.coverage)
        }
        Ok(None) => {
            findings.push(log_finding(
                "log".into(),
                "the store's log has no checkpoint signed by the log key: run `custody log checkpoint`".into(),
            ));
            None
        }
        Err(e) => {
            findings.push(log_finding("log".into(), e.to_string()));
            None
        }
    };
    if !findings.is_empty() {
        audit.totals.errors += findings.len();
        audit.ok = false;
        audit.findings.extend(findings);
        audit.findings.sort();
        audit.findings.dedup();
    }
    Ok(coverage)
}
