//! Verifying the evidence a query names, the way an auditor needs it checked: each
//! record's bytes, signature and materials; the chain of every job it belongs to, whole
//! and unbroken; the stages each pipeline (or each named service) must have; the
//! retention lock as the store reports it. Every problem becomes a [`Finding`] that
//! names what and where; the run stops early only when the store itself cannot be read.
//!
//! The index is not trusted: a record an index pointer brings into an answer is part of
//! it only when its statement has the key the pointer is filed under (the same keys the
//! store derives when it files a record), so a pointer copied into another commit's or
//! pipeline's directory is a finding, and its record counts for nothing there.
//!
//! The result depends only on the store's contents, the options and `verified_at`, never
//! on the clock, so an exported bundle re-verified offline yields the same document.

use std::collections::{BTreeMap, BTreeSet};

use custody_evidence::{
    ChainLink, Control, Digest, Envelope, KeyIdScheme, Material, PipelineContext,
    ResourceDescriptor, Statement, TrustedKeys, verify_envelope,
};
use custody_store::{
    EvidenceStore, IndexKey, LockMode, Query, RecordRef, Retention, StoreError, index_keys,
};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The schema of [`Audit`] documents.
pub const AUDIT_SCHEMA: &str = "https://custody.dev/audit/verification/v1";

/// Records of these predicate types keep their predicate in the audit document: they are
/// small and the report reads them (decisions, runner verdicts, deployments, signatures).
pub const KEPT_PREDICATES: [&str; 4] = [
    "https://custody.dev/policy/decision/v1",
    "https://custody.dev/runner-guard/report/v1",
    "https://custody.dev/deployment/v1",
    "https://custody.dev/signature/v1",
];

/// A lock may end up to a day before `recorded_at + years`: the lock is computed when
/// the upload starts, the record's time a moment later.
const RETENTION_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// What an audit checks beyond signatures and digests.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub keys: TrustedKeys,
    /// Stages every pipeline in the answer must have recorded, e.g. build, test, scan.
    pub required_stages: Vec<String>,
    /// Services that must each have recorded every required stage. When not empty, the
    /// stages are checked per service instead of per pipeline: a GitLab parent pipeline
    /// builds nothing itself, its services' child pipelines do.
    pub required_services: Vec<String>,
    /// What selected the records, as findings name it (`commit 3f2a…`); default `the query`.
    pub scope: Option<String>,
    /// The shortest lock accepted, in years after the record was made.
    pub min_retention_years: i16,
    /// Stamped on the document; nothing is judged by it.
    pub verified_at: Timestamp,
    /// How to name the store in the document (default: its URI). A bundle names the
    /// store it was exported from, not the directory it was unpacked into.
    pub store_label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// The kind of check a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The record's envelope is missing or its bytes changed.
    Object,
    /// Not a readable in-toto envelope with a Custody record.
    Record,
    /// No signature verifies under a trusted key.
    Signature,
    /// A material is missing, changed or of another size.
    Material,
    /// A chain has a gap, a fork, a substitution or a broken link.
    Chain,
    /// A pipeline, or a required service, lacks a required stage.
    Stages,
    /// The lock is missing, too short or weak.
    Retention,
    /// An index entry disagrees with the record it points at.
    Index,
    /// A bundle's file disagrees with the evidence it holds.
    Bundle,
    /// The store's transparency log disagrees with the answer: a record outside the
    /// log, or a logged record that answers the query and is missing from it.
    Log,
}

/// One problem, with what it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub severity: Severity,
    pub check: CheckKind,
    /// `record sha256:…`, `chain …`, `pipeline …`, `service …`, `material … of record …`.
    pub about: String,
    pub message: String,
}

/// The signer of a verified record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    pub label: String,
    /// securesystemslib keyid of the trusted key that verified the signature.
    pub keyid: String,
}

/// A material as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaterialEntry {
    #[serde(flatten)]
    pub material: Material,
    pub present: bool,
    pub retention: Option<Retention>,
}

/// A record as verified. Fields come from the statement even when its signature fails,
/// so the report can say which record it was; `verified` says whether to believe them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordEntry {
    pub digest: Digest,
    /// Named by the query itself (the others were reached through chains and pipelines).
    pub matched: bool,
    pub verified: bool,
    pub signer: Option<Signer>,
    pub recorded_at: Timestamp,
    pub stage: String,
    pub predicate_type: String,
    pub subject: Vec<ResourceDescriptor>,
    pub pipeline: PipelineContext,
    pub chain: ChainLink,
    pub hipaa: Vec<Control>,
    pub materials: Vec<MaterialEntry>,
    pub retention: Option<Retention>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<serde_json::Value>,
}

impl RecordEntry {
    pub fn pipeline_key(&self) -> Option<String> {
        self.pipeline.pipeline_key()
    }
}

/// A chain as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainEntry {
    pub id: String,
    pub length: u64,
    pub head: Option<Digest>,
    pub intact: bool,
}

/// A pipeline's stages against the required ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineEntry {
    pub key: String,
    pub repository: Option<String>,
    pub commit: Option<String>,
    pub stages: Vec<String>,
    /// Empty when the stages were required per service instead.
    pub missing: Vec<String>,
}

/// A required service's stages against the required ones: what its verified records
/// (those whose context names it) cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntry {
    pub name: String,
    pub stages: Vec<String>,
    pub missing: Vec<String>,
}

/// Counts for the verdict line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub records: usize,
    pub matched: usize,
    pub verified: usize,
    pub materials: usize,
    pub chains: usize,
    pub pipelines: usize,
    pub errors: usize,
    pub warnings: usize,
}

/// The verification document: `verification.json` in a bundle, `--format json` of
/// `custody verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    pub schema: String,
    pub store: String,
    pub verified_at: Timestamp,
    pub required_stages: Vec<String>,
    /// The services the stages were required of; absent when they were required per
    /// pipeline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_services: Vec<String>,
    pub min_retention_years: i16,
    pub trusted_keys: Vec<Signer>,
    pub ok: bool,
    pub totals: Totals,
    pub findings: Vec<Finding>,
    pub records: Vec<RecordEntry>,
    pub chains: Vec<ChainEntry>,
    pub pipelines: Vec<PipelineEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceEntry>,
}

/// A record loaded from the store: its bytes when they could be read intact.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub envelope: Option<Vec<u8>>,
    pub entry: Option<RecordEntry>,
    /// The keys the store files the record under, derived from its statement.
    pub index: Vec<IndexKey>,
}

/// The audit and the raw bytes behind it (for export).
#[derive(Debug)]
pub struct Collected {
    pub audit: Audit,
    pub(crate) loaded: BTreeMap<Digest, Loaded>,
    /// Each chain's entries as the store lists them.
    pub(crate) chains: BTreeMap<String, Vec<(u64, Digest)>>,
}

impl Collected {
    /// The envelope bytes of every record that could be read intact.
    pub fn envelopes(&self) -> impl Iterator<Item = (&Digest, &[u8])> {
        self.loaded
            .iter()
            .filter_map(|(d, l)| l.envelope.as_deref().map(|b| (d, b)))
    }
}

/// Verifies the records a query names and everything they depend on.
pub async fn audit_query<S: EvidenceStore>(
    store: &S,
    query: &Query,
    opts: &AuditOptions,
) -> Result<Collected, StoreError> {
    let refs = store.query(query).await?;
    audit(store, &refs, Some(query), opts).await
}

/// Verifies the given records and everything they depend on: the other records of their
/// pipelines and chains are read too, so completeness can be judged.
pub async fn audit_refs<S: EvidenceStore>(
    store: &S,
    refs: &[RecordRef],
    opts: &AuditOptions,
) -> Result<Collected, StoreError> {
    audit(store, refs, None, opts).await
}

/// The audit of `refs`, which `query` answered when given: each is checked against it.
async fn audit<S: EvidenceStore>(
    store: &S,
    refs: &[RecordRef],
    query: Option<&Query>,
    opts: &AuditOptions,
) -> Result<Collected, StoreError> {
    let mut a = Auditor {
        store,
        opts,
        loaded: BTreeMap::new(),
        findings: Vec::new(),
        seen_pipelines: BTreeSet::new(),
        chains: BTreeMap::new(),
    };
    let mut queue: Vec<Digest> = Vec::new();
    let mut matched: BTreeSet<Digest> = BTreeSet::new();
    for r in refs {
        match a.admit(r, query).await? {
            Admitted::New => {
                matched.insert(r.digest);
                queue.push(r.digest);
            }
            Admitted::Known => {
                matched.insert(r.digest);
            }
            Admitted::Refused => {}
        }
    }
    // Reach the rest of each pipeline and chain, until nothing new turns up.
    while let Some(d) = queue.pop() {
        let Some(entry) = a.loaded.get(&d).and_then(|l| l.entry.clone()) else {
            continue;
        };
        let mut next = Vec::new();
        if let Some(key) = entry.pipeline_key()
            && a.seen_pipelines.insert(key.clone())
        {
            let q = Query {
                pipeline: Some(key),
                ..Query::default()
            };
            for r in store.query(&q).await? {
                if a.admit(&r, Some(&q)).await? == Admitted::New {
                    queue.push(r.digest);
                }
            }
        }
        if !a.chains.contains_key(&entry.chain.id) {
            let listed = a.read_chain(&entry.chain.id).await?;
            next.extend(listed.iter().map(|(_, d)| *d));
            a.chains.insert(entry.chain.id.clone(), listed);
        }
        for n in next {
            if !a.loaded.contains_key(&n) {
                a.load(n).await?;
                queue.push(n);
            }
        }
    }
    for (d, l) in &mut a.loaded {
        if let Some(e) = &mut l.entry {
            e.matched = matched.contains(d);
        }
    }
    let chains = a.check_chains();
    let pipelines = a.check_pipelines();
    let services = a.check_services();
    Ok(a.finish(chains, pipelines, services))
}

/// What became of a record an index pointer named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admitted {
    /// Read now, and part of the answer.
    New,
    /// Already read, and part of the answer.
    Known,
    /// Its statement does not satisfy the query: reported, and not part of the answer.
    Refused,
}

struct Auditor<'a, S> {
    store: &'a S,
    opts: &'a AuditOptions,
    loaded: BTreeMap<Digest, Loaded>,
    findings: Vec<Finding>,
    seen_pipelines: BTreeSet<String>,
    chains: BTreeMap<String, Vec<(u64, Digest)>>,
}

impl<S: EvidenceStore> Auditor<'_, S> {
    fn finding(&mut self, severity: Severity, check: CheckKind, about: String, message: String) {
        self.findings.push(Finding {
            severity,
            check,
            about,
            message,
        });
    }

    fn error(&mut self, check: CheckKind, about: String, message: impl Into<String>) {
        self.finding(Severity::Error, check, about, message.into());
    }

    /// Reads and checks one record; problems become findings, an unreadable store an error.
    async fn load(&mut self, d: Digest) -> Result<(), StoreError> {
        let about = format!("record {d}");
        let bytes = match self.store.get_object(&d).await {
            Ok(b) => b,
            Err(e) => {
                let message = match e {
                    StoreError::NotFound { .. } => {
                        "the envelope is missing from the store (deleted, or never written)".into()
                    }
                    StoreError::Corrupt { actual, .. } => format!(
                        "the envelope's bytes changed after it was stored (they hash to {actual})"
                    ),
                    e => return Err(e),
                };
                self.error(CheckKind::Object, about, message);
                self.loaded.insert(
                    d,
                    Loaded {
                        envelope: None,
                        entry: None,
                        index: Vec::new(),
                    },
                );
                return Ok(());
            }
        };
        let (entry, index) = match self.decode(d, &bytes).await? {
            Some((entry, index)) => (Some(entry), index),
            None => (None, Vec::new()),
        };
        self.loaded.insert(
            d,
            Loaded {
                envelope: Some(bytes),
                entry,
                index,
            },
        );
        Ok(())
    }

    /// The record as verified, and the index keys its statement gives it.
    async fn decode(
        &mut self,
        d: Digest,
        bytes: &[u8],
    ) -> Result<Option<(RecordEntry, Vec<IndexKey>)>, StoreError> {
        let about = format!("record {d}");
        let env = match Envelope::from_slice(bytes) {
            Ok(e) => e,
            Err(e) => {
                self.error(
                    CheckKind::Record,
                    about,
                    format!("not a DSSE envelope: {e}"),
                );
                return Ok(None);
            }
        };
        let (statement, signer) = match verify_envelope(&env, &self.opts.keys) {
            Ok(v) => (
                v.statement,
                Some(Signer {
                    label: v.signer.label.clone(),
                    keyid: v.signer.keyid(KeyIdScheme::Sslib),
                }),
            ),
            Err(e) => {
                self.error(CheckKind::Signature, about.clone(), e.to_string());
                // Read it unverified, only to say which record it claims to be.
                match env.payload_bytes().and_then(|p| Statement::from_slice(&p)) {
                    Ok(s) => (s, None),
                    Err(e) => {
                        self.error(
                            CheckKind::Record,
                            about,
                            format!("unreadable statement: {e}"),
                        );
                        return Ok(None);
                    }
                }
            }
        };
        let Some(rec) = statement.record().cloned() else {
            self.error(
                CheckKind::Record,
                about,
                "the statement has no custodyRecord extension (not Custody evidence)",
            );
            return Ok(None);
        };
        let index = index_keys(&statement, &rec);
        let retention = self.read_retention(&about, &d).await?;
        if let Some(r) = &retention {
            self.check_retention(&about, rec.recorded_at, r.as_ref());
        }
        let retention = retention.flatten();
        let mut materials = Vec::with_capacity(rec.materials.len());
        for m in &rec.materials {
            let m_about = format!("material {} ({}) of record {d}", m.name, m.digest);
            let present = match self.store.check_object(&m.digest).await {
                Ok(size) if size == m.size => true,
                Ok(size) => {
                    self.error(
                        CheckKind::Material,
                        m_about.clone(),
                        format!("{size} bytes stored, the record says {}", m.size),
                    );
                    false
                }
                Err(StoreError::NotFound { .. }) => {
                    self.error(
                        CheckKind::Material,
                        m_about.clone(),
                        "missing from the store",
                    );
                    false
                }
                Err(StoreError::Corrupt { actual, .. }) => {
                    self.error(
                        CheckKind::Material,
                        m_about.clone(),
                        format!("its bytes changed after it was stored (they hash to {actual})"),
                    );
                    false
                }
                Err(e) => return Err(e),
            };
            let m_retention = if present {
                let r = self.read_retention(&m_about, &m.digest).await?;
                if let Some(r) = &r {
                    self.check_retention(&m_about, rec.recorded_at, r.as_ref());
                }
                r.flatten()
            } else {
                None
            };
            materials.push(MaterialEntry {
                material: m.clone(),
                present,
                retention: m_retention,
            });
        }
        let predicate = KEPT_PREDICATES
            .contains(&statement.predicate_type.as_str())
            .then(|| statement.predicate.clone());
        let entry = RecordEntry {
            digest: d,
            matched: false,
            verified: signer.is_some(),
            signer,
            recorded_at: rec.recorded_at,
            stage: rec.stage,
            predicate_type: statement.predicate_type,
            subject: statement.subject,
            pipeline: rec.pipeline,
            chain: rec.chain,
            hipaa: rec.hipaa,
            materials,
            retention,
            summary: rec.summary.map(trim_summary),
            predicate,
        };
        Ok(Some((entry, index)))
    }

    /// The lock as the store reports it (`Some(None)`: no lock). An unreadable lock is
    /// a finding, reported here, not an error: `None`.
    async fn read_retention(
        &mut self,
        about: &str,
        d: &Digest,
    ) -> Result<Option<Option<Retention>>, StoreError> {
        match self.store.retention(d).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::Invalid(msg)) => {
                self.error(
                    CheckKind::Retention,
                    about.to_owned(),
                    format!("the lock cannot be read ({msg}): nothing shows it is locked"),
                );
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn check_retention(&mut self, about: &str, recorded_at: Timestamp, r: Option<&Retention>) {
        let years = self.opts.min_retention_years;
        let Some(r) = r else {
            self.error(
                CheckKind::Retention,
                about.to_owned(),
                "no retention lock: nothing stops its deletion",
            );
            return;
        };
        let required = jiff::Span::new()
            .try_years(years)
            .ok()
            .and_then(|span| {
                recorded_at
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .checked_add(span)
                    .ok()
            })
            .map(|z| z.timestamp())
            .and_then(|t| t.checked_sub(RETENTION_SLACK).ok());
        if let Some(required) = required
            && r.retain_until < required
        {
            self.error(
                CheckKind::Retention,
                about.to_owned(),
                format!(
                    "locked until {}, shorter than the {years} years required (until at least {})",
                    r.retain_until,
                    required.strftime("%Y-%m-%d")
                ),
            );
        }
        if r.mode == LockMode::Governance {
            // HIPAA retention needs a lock nobody can lift: a bypassable one is a finding
            self.error(
                CheckKind::Retention,
                about.to_owned(),
                "GOVERNANCE mode: a privileged user can shorten or remove the lock; store it in COMPLIANCE mode, which nobody can bypass",
            );
        }
    }

    fn check_index_time(&mut self, r: &RecordRef) {
        let recorded = self
            .loaded
            .get(&r.digest)
            .and_then(|l| l.entry.as_ref())
            .map(|e| e.recorded_at);
        if let Some(t) = recorded
            && t != r.recorded_at
        {
            self.error(
                CheckKind::Index,
                format!("record {}", r.digest),
                format!(
                    "the index files it at {} but the record says {t}",
                    r.recorded_at
                ),
            );
        }
    }

    /// Reads a record an index pointer named in answer to `query` (`None`: named by
    /// digest) and holds the pointer against the record's statement. A record whose
    /// statement does not satisfy the query is a finding and is left out: read only
    /// because of the pointer, it is dropped (with what its reading found, which belongs
    /// to its own audit), so it counts towards no stage, service or pipeline.
    async fn admit(
        &mut self,
        r: &RecordRef,
        query: Option<&Query>,
    ) -> Result<Admitted, StoreError> {
        let fresh = !self.loaded.contains_key(&r.digest);
        let before = self.findings.len();
        if fresh {
            self.load(r.digest).await?;
        }
        let misses = query.map(|q| self.query_misses(r, q)).unwrap_or_default();
        if misses.is_empty() {
            self.check_index_time(r);
            return Ok(if fresh {
                Admitted::New
            } else {
                Admitted::Known
            });
        }
        if fresh {
            self.findings.truncate(before);
            self.loaded.remove(&r.digest);
        }
        for m in misses {
            self.error(CheckKind::Index, format!("record {}", r.digest), m);
        }
        Ok(Admitted::Refused)
    }

    /// Each criterion of `query` the record's statement does not satisfy, said in
    /// words. Empty when it satisfies all, or when the record cannot be read (its own
    /// finding says why).
    fn query_misses(&self, r: &RecordRef, query: &Query) -> Vec<String> {
        let Some((entry, index)) = self
            .loaded
            .get(&r.digest)
            .and_then(|l| l.entry.as_ref().map(|e| (e, &l.index)))
        else {
            return Vec::new();
        };
        let d = r.digest;
        let whose = if entry.verified {
            "whose signed statement"
        } else {
            "whose statement (its signature does not verify)"
        };
        let mut out = Vec::new();
        for key in query.keys() {
            // the store's own derivation decides: the directory the key names
            if index.iter().any(|k| k.segments() == key.segments()) {
                continue;
            }
            out.push(format!(
                "index pointer for {} names record {d} {whose} {}: it is left out of the answer",
                describe_key(&key),
                statement_says(&key, entry, index)
            ));
        }
        let t = entry.recorded_at;
        if !(query.since.is_none_or(|s| t >= s) && query.until.is_none_or(|u| t < u)) {
            let range: Vec<String> = [("since", query.since), ("until", query.until)]
                .into_iter()
                .filter_map(|(w, b)| b.map(|b| format!("{w} {b}")))
                .collect();
            let whose = whose.trim_start_matches("whose ");
            out.push(format!(
                "an index pointer puts record {d} in the answer, but its {whose} says it was recorded at {t}, outside the query's time range ({}): it is left out of the answer",
                range.join(", ")
            ));
        }
        out
    }

    async fn read_chain(&mut self, id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        match self.store.chain(id).await {
            Ok(entries) => Ok(entries),
            // A chain entry that is not a digest: someone edited it.
            Err(StoreError::Invalid(msg)) => {
                self.error(
                    CheckKind::Chain,
                    format!("chain {id}"),
                    format!("unreadable chain entry: {msg}"),
                );
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    fn check_chains(&mut self) -> Vec<ChainEntry> {
        let chains = self.chains.clone();
        let mut out = Vec::with_capacity(chains.len());
        for (id, entries) in &chains {
            let about = format!("chain {id}");
            let before = self.findings.len();
            let by_seq: BTreeMap<u64, Digest> = entries.iter().copied().collect();
            let length = by_seq.keys().next_back().map_or(0, |s| s + 1);
            for seq in 0..length {
                let Some(d) = by_seq.get(&seq) else {
                    self.error(
                        CheckKind::Chain,
                        about.clone(),
                        format!("no entry #{seq}: a record was removed from the chain"),
                    );
                    continue;
                };
                let Some(entry) = self.loaded.get(d).and_then(|l| l.entry.clone()) else {
                    // the record's own finding says why it could not be read
                    self.error(
                        CheckKind::Chain,
                        about.clone(),
                        format!("entry #{seq} names {d}, which cannot be read"),
                    );
                    continue;
                };
                if entry.chain.id != *id || entry.chain.sequence != seq {
                    self.error(
                        CheckKind::Chain,
                        about.clone(),
                        format!(
                            "entry #{seq} names {d}, which says it is #{} of chain {}",
                            entry.chain.sequence, entry.chain.id
                        ),
                    );
                }
                let expected = seq.checked_sub(1).and_then(|p| by_seq.get(&p)).copied();
                if seq > 0 && expected.is_some() && entry.chain.previous != expected {
                    self.error(
                        CheckKind::Chain,
                        about.clone(),
                        format!(
                            "#{seq} ({d}) links to {}, but #{} is {}",
                            entry
                                .chain
                                .previous
                                .map_or_else(|| "nothing".to_owned(), |p| p.to_string()),
                            seq - 1,
                            expected.map_or_else(String::new, |p| p.to_string())
                        ),
                    );
                }
                if seq == 0 && entry.chain.previous.is_some() {
                    self.error(
                        CheckKind::Chain,
                        about.clone(),
                        format!("#0 ({d}) links to a predecessor: the chain's start was removed"),
                    );
                }
            }
            // Records that claim a place in this chain the chain does not give them.
            let claimants: Vec<(Digest, u64)> = self
                .loaded
                .iter()
                .filter_map(|(d, l)| l.entry.as_ref().map(|e| (d, e)))
                .filter(|(_, e)| e.chain.id == *id)
                .map(|(d, e)| (*d, e.chain.sequence))
                .collect();
            for (d, seq) in claimants {
                if by_seq.get(&seq) != Some(&d) {
                    self.error(
                        CheckKind::Chain,
                        about.clone(),
                        format!(
                            "{d} says it is #{seq}, but the chain's #{seq} is {}: the record is not part of the chain",
                            by_seq
                                .get(&seq)
                                .map_or_else(|| "missing".to_owned(), |x| x.to_string())
                        ),
                    );
                }
            }
            out.push(ChainEntry {
                id: id.clone(),
                length,
                head: by_seq.values().next_back().copied(),
                intact: self.findings.len() == before,
            });
        }
        out
    }

    fn check_pipelines(&mut self) -> Vec<PipelineEntry> {
        #[derive(Default)]
        struct Acc {
            repository: Option<String>,
            commit: Option<String>,
            stages: BTreeSet<String>,
        }
        let mut by_key: BTreeMap<String, Acc> = BTreeMap::new();
        let mut unkeyed = Vec::new();
        for (d, l) in &self.loaded {
            let Some(e) = &l.entry else { continue };
            match e.pipeline_key() {
                Some(k) => {
                    let slot = by_key.entry(k).or_default();
                    if slot.repository.is_none() {
                        slot.repository.clone_from(&e.pipeline.repository);
                    }
                    if slot.commit.is_none() {
                        slot.commit.clone_from(&e.pipeline.commit);
                    }
                    // only verified records count towards completeness
                    if e.verified {
                        slot.stages.insert(e.stage.clone());
                    }
                }
                None => unkeyed.push(*d),
            }
        }
        // Required per service, stages are not judged per pipeline: a GitLab parent
        // pipeline has no build stage of its own.
        let per_pipeline = self.opts.required_services.is_empty();
        if per_pipeline {
            for d in unkeyed {
                self.finding(
                    Severity::Warning,
                    CheckKind::Stages,
                    format!("record {d}"),
                    "no pipeline context (platform, repository, run): its pipeline's stages cannot be checked".into(),
                );
            }
        }
        let mut out = Vec::with_capacity(by_key.len());
        for (
            key,
            Acc {
                repository,
                commit,
                stages,
            },
        ) in by_key
        {
            let missing: Vec<String> = self
                .opts
                .required_stages
                .iter()
                .filter(|s| per_pipeline && !stages.contains(*s))
                .cloned()
                .collect();
            for m in &missing {
                self.error(
                    CheckKind::Stages,
                    format!("pipeline {key}"),
                    format!(
                        "no verified `{m}` record (required stages: {})",
                        self.opts.required_stages.join(", ")
                    ),
                );
            }
            out.push(PipelineEntry {
                key,
                repository,
                commit,
                stages: stages.into_iter().collect(),
                missing,
            });
        }
        out
    }

    /// Each required service's stages, from the verified records that name it, wherever
    /// they were made (GitHub: jobs of one run; GitLab: a child pipeline per service).
    fn check_services(&mut self) -> Vec<ServiceEntry> {
        let mut names: Vec<String> = Vec::new();
        for n in &self.opts.required_services {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let scope = self.opts.scope.as_deref().unwrap_or("the query").to_owned();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            // only verified records count: a service named by a forged record is unproven
            let stages: BTreeSet<String> = self
                .loaded
                .values()
                .filter_map(|l| l.entry.as_ref())
                .filter(|e| e.verified && e.pipeline.service.as_deref() == Some(name.as_str()))
                .map(|e| e.stage.clone())
                .collect();
            let missing: Vec<String> = self
                .opts
                .required_stages
                .iter()
                .filter(|s| !stages.contains(*s))
                .cloned()
                .collect();
            for m in &missing {
                self.error(
                    CheckKind::Stages,
                    format!("service {name}"),
                    format!(
                        "no verified `{m}` record for {scope} (required stages: {})",
                        self.opts.required_stages.join(", ")
                    ),
                );
            }
            out.push(ServiceEntry {
                name,
                stages: stages.into_iter().collect(),
                missing,
            });
        }
        out
    }

    fn finish(
        mut self,
        chains: Vec<ChainEntry>,
        pipelines: Vec<PipelineEntry>,
        services: Vec<ServiceEntry>,
    ) -> Collected {
        self.findings.sort();
        self.findings.dedup();
        let mut records: Vec<RecordEntry> = self
            .loaded
            .values()
            .filter_map(|l| l.entry.clone())
            .collect();
        records.sort_by_key(|r| (r.recorded_at, r.digest));
        let errors = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let totals = Totals {
            records: self.loaded.len(),
            matched: records.iter().filter(|r| r.matched).count(),
            verified: records.iter().filter(|r| r.verified).count(),
            materials: records.iter().map(|r| r.materials.len()).sum(),
            chains: chains.len(),
            pipelines: pipelines.len(),
            errors,
            warnings: self.findings.len() - errors,
        };
        let mut trusted_keys: Vec<Signer> = self
            .opts
            .keys
            .keys()
            .iter()
            .map(|k| Signer {
                label: k.label.clone(),
                keyid: k.keyid(KeyIdScheme::Sslib),
            })
            .collect();
        trusted_keys.sort_by(|a, b| a.keyid.cmp(&b.keyid));
        let audit = Audit {
            schema: AUDIT_SCHEMA.to_owned(),
            store: self
                .opts
                .store_label
                .clone()
                .unwrap_or_else(|| self.store.uri()),
            verified_at: self.opts.verified_at,
            required_stages: self.opts.required_stages.clone(),
            required_services: services.iter().map(|s| s.name.clone()).collect(),
            min_retention_years: self.opts.min_retention_years,
            trusted_keys,
            ok: errors == 0 && totals.records > 0,
            totals,
            findings: self.findings,
            records,
            chains,
            pipelines,
            services,
        };
        Collected {
            audit,
            loaded: self.loaded,
            chains: self.chains,
        }
    }
}

/// An index key as a finding names it: `commit 3f2a…`, `control 164.312(b)`.
fn describe_key(key: &IndexKey) -> String {
    match key {
        IndexKey::Subject(d) => format!("subject {d}"),
        IndexKey::Commit(c) => format!("commit {c}"),
        IndexKey::Pipeline(p) => format!("pipeline {p}"),
        IndexKey::Day(day) => format!("day {day}"),
        IndexKey::Environment(e) => format!("environment {e}"),
        IndexKey::Stage(s) => format!("stage {s}"),
        IndexKey::Control(c) => format!("control {}", c.citation()),
    }
}

/// What a statement says where a query asked for `key`: `is for commit 3f2a…`.
fn statement_says(key: &IndexKey, entry: &RecordEntry, index: &[IndexKey]) -> String {
    let or_none = |v: Option<&str>, what: &str| match v {
        Some(v) => format!("is for {what} {v}"),
        None => format!("names no {what}"),
    };
    match key {
        IndexKey::Subject(_) => {
            let subjects: Vec<String> = index
                .iter()
                .filter_map(|k| match k {
                    IndexKey::Subject(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect();
            if subjects.is_empty() {
                "has no subject with a sha256 digest".into()
            } else {
                format!("is about {}", subjects.join(", "))
            }
        }
        IndexKey::Commit(_) => or_none(entry.pipeline.commit.as_deref(), "commit"),
        IndexKey::Pipeline(_) => or_none(entry.pipeline_key().as_deref(), "pipeline"),
        IndexKey::Day(_) => format!(
            "was recorded on {}",
            entry.recorded_at.to_zoned(jiff::tz::TimeZone::UTC).date()
        ),
        IndexKey::Environment(_) => or_none(entry.pipeline.environment.as_deref(), "environment"),
        IndexKey::Stage(_) => format!("is for stage {}", entry.stage),
        IndexKey::Control(_) => {
            let cited: Vec<&str> = entry.hipaa.iter().map(|c| c.citation()).collect();
            if cited.is_empty() {
                "does not cite it (it cites no control)".into()
            } else {
                format!("does not cite it (it cites {})", cited.join(", "))
            }
        }
    }
}

/// How many critical and high findings of a scan the document keeps.
const KEPT_FINDINGS: usize = 50;

/// Keeps a scan summary's counts and its worst findings only: a scan can list tens of
/// thousands, which belong in the material, not in the verification document.
fn trim_summary(mut v: serde_json::Value) -> serde_json::Value {
    if v.get("kind").and_then(|k| k.as_str()) == Some("scan")
        && let Some(obj) = v.as_object_mut()
        && let Some(serde_json::Value::Array(all)) = obj.remove("findings")
    {
        let total = all.len();
        let worst: Vec<serde_json::Value> = all
            .into_iter()
            .filter(|f| {
                matches!(
                    f.get("severity").and_then(|s| s.as_str()),
                    Some("critical" | "high")
                )
            })
            .take(KEPT_FINDINGS)
            .collect();
        obj.insert("findingsOmitted".into(), (total - worst.len()).into());
        obj.insert("findings".into(), serde_json::Value::Array(worst));
    }
    v
}
