//! `evidence-upload`: each stage's output becomes signed, retention-locked evidence.
//!
//! The flow, in the order that keeps evidence safe:
//! 1. every input is confined to the workspace, detected, parsed and summarized: a
//!    bad file stops the step before anything is stored;
//! 2. materials (the raw files, byte for byte) are stored by digest, then each record
//!    is linked to its job's chain, signed and stored;
//! 3. when the store cannot be reached, what is left is written, signed and linked,
//!    to a local spool and the step fails saying how to resend (`custody push`).

pub mod attach;
pub mod predicate;
pub mod report;
pub mod stage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use custody_evidence::{
    ChainLink, Digest, KeyIdScheme, Material, PipelineContext, PublicKey, RecordInfo,
    ResourceDescriptor, Signer, Statement, sign_statement,
};
use custody_formats::{FormatError, Kind, Summary};
use custody_platform::files::{self, FileError};
use custody_platform::keyfiles::KeyFileError;
use custody_store::{
    AnyStore, Draft, EvidenceStore, LocalStore, ObjectSource, Retention, StoreError,
    append_or_doubt,
};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

pub use report::report;
pub use stage::Stage;

/// Everything a run needs, resolved and validated at the edge.
#[derive(Debug, Clone)]
pub struct Config {
    pub stage: Stage,
    pub subject: String,
    pub files: Vec<PathBuf>,
    pub workspace: PathBuf,
    /// The store's URL, for messages (the store itself is opened by the caller's
    /// opener, given to [`run`]).
    pub store: String,
    pub spool: PathBuf,
    pub keyid_scheme: KeyIdScheme,
    pub retention: Retention,
    pub context: PipelineContext,
    /// `sign`: the id of the key that signed the artifact (e.g. a KMS key or cosign key).
    pub signing_key_id: Option<String>,
    /// Files larger than this are refused rather than parsed (they would be held in memory).
    pub max_parse_bytes: u64,
    /// JSON SBOMs up to this size are inlined as the standard predicate.
    pub inline_bytes: u64,
    /// The secrets and PHI scan of every material and statement before anything is
    /// stored; `None` scans nothing (the configuration's policy for the stage is `off`).
    pub scan: Option<Arc<custody_scan::Scanner>>,
}

/// Why a run failed. Each names the file or the store and what to do.
#[derive(Debug, Error)]
pub enum UploadError {
    #[error("{file}: {message}")]
    Input { file: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Key(#[from] KeyFileError),
    #[error("{}", refused(.0))]
    Refused(Vec<custody_scan::Finding>),
    #[error("the store refused the evidence: {0}")]
    Store(StoreError),
    #[error(
        "the store is unreachable ({reason}); {count} record(s) are kept in the spool {spool}: resend them with `custody push --spool {spool} --store {store}` or rerun this job"
    )]
    Spooled {
        reason: String,
        count: usize,
        spool: String,
        store: String,
    },
}

impl UploadError {
    /// The file an error is about, for CI annotations.
    pub fn file(&self) -> Option<String> {
        match self {
            Self::Input { file, .. } => Some(file.clone()),
            Self::Refused(f) => f.first().map(|f| f.file.clone()),
            Self::File(
                FileError::Io { path, .. }
                | FileError::OutsideWorkspace { path, .. }
                | FileError::NotAFile { path },
            ) => Some(path.display().to_string()),
            _ => None,
        }
    }

    /// Documented exit codes: 2 bad input, 3 spooled, 4 refused by the store.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Spooled { .. } => 3,
            Self::Store(_) => 4,
            _ => 2,
        }
    }
}

fn refused(findings: &[custody_scan::Finding]) -> String {
    let mut text = format!(
        "refused: {} finding(s) of secrets or PHI, which must never become write-once evidence; nothing was stored:",
        findings.len()
    );
    for f in findings {
        text.push_str(&format!("\n  {f}"));
    }
    text.push_str("\nremove them from the files, or allow synthetic test data in the scan configuration (`--scan-config`, by path, rule and value digest)");
    text
}

/// One stored record, as reported to the user and the CI platform.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRecord {
    pub record: Digest,
    /// The signed envelope as stored (for `--sigstore-bundles`), not reported.
    #[serde(skip)]
    pub envelope: Vec<u8>,
    pub predicate_type: String,
    pub chain: ChainLink,
    pub material: Option<Material>,
    pub summary: Option<Value>,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub store: String,
    pub stage: String,
    pub subject: ResourceDescriptor,
    pub records: Vec<StoredRecord>,
}

/// A parsed or raw input, ready to become a record.
struct Input {
    /// The file, opened once inside the workspace: stored from this descriptor.
    source: Arc<files::ConfinedFile>,
    material: Material,
    summary: Option<Summary>,
    inline: Option<Value>,
}

fn input_err(file: &Path, message: impl Into<String>) -> UploadError {
    UploadError::Input {
        file: file.display().to_string(),
        message: message.into(),
    }
}

fn read_input(cfg: &Config, path: &Path, kinds: Option<&[Kind]>) -> Result<Input, UploadError> {
    let source = Arc::new(files::open_confined(&cfg.workspace, path)?);
    let name = files::display_name(&cfg.workspace, &source.real);
    let size = source.size;
    if size == 0 {
        return Err(input_err(
            path,
            "the file is empty; a stage's evidence cannot be empty",
        ));
    }
    let Some(kinds) = kinds else {
        // raw material: streamed, never held in memory
        if size >= LARGE {
            progress(&format!("hashing {name} ({} MiB)", size >> 20));
        }
        let (digest, size) = custody_evidence::sha256_reader(&source.file)
            .map_err(|e| input_err(path, e.to_string()))?;
        return Ok(Input {
            source,
            material: Material {
                name,
                digest,
                size,
                media_type: None,
                format: None,
            },
            summary: None,
            inline: None,
        });
    };
    if size > cfg.max_parse_bytes {
        return Err(input_err(
            path,
            format!(
                "{} bytes is more than the {}-byte parse limit; raise --max-parse-size if this report is expected to be that large",
                size, cfg.max_parse_bytes
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    std::io::Read::read_to_end(&mut &source.file, &mut bytes)
        .map_err(|e| input_err(path, e.to_string()))?;
    let summary = custody_formats::summarize(&name, &bytes)?;
    let kind = summary.format().kind();
    if !kinds.contains(&kind) {
        return Err(input_err(
            path,
            format!(
                "this {} file is {}, which stage `{}` does not take: it takes {}; upload it with the stage it belongs to",
                summary.format(),
                kind.noun(),
                cfg.stage,
                kinds
                    .iter()
                    .map(|k| k.expected())
                    .collect::<Vec<_>>()
                    .join(", or ")
            ),
        ));
    }
    let inline = match summary {
        Summary::Sbom(_)
            if bytes.len() as u64 <= cfg.inline_bytes && bytes.first() != Some(&b'<') =>
        {
            // inline only what the statement can carry: JSON readers stop at 128
            // levels, and the statement nests the document a level deeper; a deeper
            // SBOM is referenced by digest, like a large one
            serde_json::from_slice::<Value>(&bytes)
                .ok()
                .filter(|v| json_depth(v) <= MAX_INLINE_DEPTH)
        }
        _ => None,
    };
    let format = summary.format();
    Ok(Input {
        source,
        material: Material {
            name,
            digest: Digest::of(&bytes),
            size,
            media_type: Some(predicate::media_type(format).to_owned()),
            format: Some(format!("{format:?}")),
        },
        summary: Some(summary),
        inline,
    })
}

/// The deepest document the statement inlines (serde_json and most JSON readers stop
/// at 128 levels; the statement adds its own).
const MAX_INLINE_DEPTH: usize = 100;

/// How deep a JSON value nests arrays and objects (a scalar is 0).
fn json_depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// A record to store: its draft and the files it names.
struct Planned {
    draft: Draft,
    inputs: Vec<Arc<files::ConfinedFile>>,
    materials: Vec<Material>,
}

fn plan(cfg: &Config, subject: &ResourceDescriptor) -> Result<Vec<Planned>, UploadError> {
    let kinds = cfg.stage.kinds();
    if kinds.is_some() && cfg.files.is_empty() {
        return Err(UploadError::Usage(format!(
            "stage `{}` needs at least one evidence file",
            cfg.stage
        )));
    }
    let mut inputs = Vec::with_capacity(cfg.files.len());
    for f in &cfg.files {
        inputs.push(read_input(cfg, f, kinds)?);
    }
    let record = |summary: Option<Value>, materials: Vec<Material>| RecordInfo {
        stage: cfg.stage.name().to_owned(),
        recorded_at: jiff::Timestamp::now(),
        materials,
        pipeline: cfg.context.clone(),
        hipaa: cfg.stage.controls(),
        chain: ChainLink::first(""),
        summary,
    };
    let draft = |predicate_type: &str, predicate, summary, materials: Vec<Material>| Draft {
        subject: vec![subject.clone()],
        predicate_type: predicate_type.to_owned(),
        predicate,
        record: record(summary, materials),
    };
    let mut planned = Vec::new();
    match &cfg.stage {
        Stage::Sign => {
            if cfg.signing_key_id.is_none() && inputs.is_empty() {
                return Err(UploadError::Usage(
                    "stage `sign` needs the signature file or --signing-key-id".into(),
                ));
            }
            let sig = inputs.first().map(|i| i.material.clone());
            let pred = predicate::signature(subject, cfg.signing_key_id.as_deref(), sig.as_ref());
            let summary = serde_json::json!({ "signed": subject.digest, "keyId": cfg.signing_key_id, "environment": cfg.context.environment });
            let materials: Vec<Material> = inputs.iter().map(|i| i.material.clone()).collect();
            planned.push(Planned {
                draft: draft(predicate::SIGNATURE, pred, Some(summary), materials.clone()),
                inputs: inputs.iter().map(|i| Arc::clone(&i.source)).collect(),
                materials,
            });
        }
        Stage::Deploy => {
            let Some(env) = cfg.context.environment.as_deref() else {
                return Err(UploadError::Usage(
                    "stage `deploy` needs --environment".into(),
                ));
            };
            let materials: Vec<Material> = inputs.iter().map(|i| i.material.clone()).collect();
            let pred = predicate::deployment(subject, env, &materials);
            let summary = serde_json::json!({ "environment": env, "artifact": subject.digest });
            planned.push(Planned {
                draft: draft(
                    predicate::DEPLOYMENT,
                    pred,
                    Some(summary),
                    materials.clone(),
                ),
                inputs: inputs.iter().map(|i| Arc::clone(&i.source)).collect(),
                materials,
            });
        }
        _ => {
            for input in &inputs {
                let Some(summary) = &input.summary else {
                    continue;
                };
                let (ptype, pred) = predicate::for_summary(
                    summary,
                    &input.material,
                    input.inline.clone(),
                    &cfg.context,
                );
                let summary_json = serde_json::to_value(summary).ok();
                planned.push(Planned {
                    draft: draft(&ptype, pred, summary_json, vec![input.material.clone()]),
                    inputs: vec![Arc::clone(&input.source)],
                    materials: vec![input.material.clone()],
                });
            }
            if cfg.stage == Stage::Build {
                let sboms: Vec<Material> = inputs.iter().map(|i| i.material.clone()).collect();
                let pred = predicate::provenance(&cfg.context, &sboms);
                planned.push(Planned {
                    draft: draft(predicate::SLSA_PROVENANCE, pred, None, Vec::new()),
                    inputs: Vec::new(),
                    materials: Vec::new(),
                });
            }
        }
    }
    Ok(planned)
}

/// Scans every material (once) and every statement before anything is stored: any
/// finding refuses the whole stage.
fn scan(scanner: &custody_scan::Scanner, planned: &[Planned]) -> Result<(), UploadError> {
    let mut findings = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for p in planned {
        for (source, m) in p.inputs.iter().zip(&p.materials) {
            if !seen.insert(m.name.clone()) {
                continue;
            }
            let path = source.reopen_path();
            let file = std::fs::File::open(&path)
                .map_err(|e| input_err(&source.real, format!("reading it to scan it: {e}")))?;
            let reader = std::io::BufReader::with_capacity(256 << 10, file);
            findings.extend(
                scanner
                    .scan_reader(&m.name, reader)
                    .map_err(|e| input_err(&source.real, e.to_string()))?,
            );
        }
        // the statement's own strings: the predicate and the record's summary and
        // context (a test name or a CI variable can carry them too)
        // pretty: one field a line, so a word in one field is not context for another
        let mut text = serde_json::to_string_pretty(&p.draft.predicate).unwrap_or_default();
        text.push('\n');
        text.push_str(&serde_json::to_string_pretty(&p.draft.record).unwrap_or_default());
        for f in scanner.scan_text("statement", &text) {
            if !findings.contains(&f) {
                findings.push(f);
            }
        }
    }
    if findings.is_empty() {
        Ok(())
    } else {
        Err(UploadError::Refused(findings))
    }
}

/// Materials from this size on get progress lines on stderr: they take long enough
/// for a person watching a CI log to wonder.
const LARGE: u64 = 64 << 20;

/// A progress line on stderr (stdout carries data).
fn progress(line: &str) {
    custody_platform::console::err_line(&format!("evidence-upload: {line}"));
}

/// Runs the step. `open` opens (or creates) the store once every input has been
/// checked, so a bad file leaves no trace; a transient failure to open it spools.
pub async fn run(
    cfg: &Config,
    key: &dyn Signer,
    open: impl FnOnce() -> Result<AnyStore, StoreError>,
) -> Result<Outcome, UploadError> {
    let subject = files::resolve_subject(&cfg.subject, Some(&cfg.workspace))?;
    let planned = plan(cfg, &subject)?;
    if let Some(scanner) = &cfg.scan {
        scan(scanner, &planned)?;
    }
    let chain_id = cfg.context.chain_id();
    let mut stored = Vec::with_capacity(planned.len());

    let store = match open() {
        Ok(s) => s,
        Err(e) if e.is_transient() => return spool(cfg, key, &chain_id, planned, &e, None),
        Err(e) => return Err(UploadError::Store(e)),
    };
    // reachable before anything is stored: an unreachable store spools everything
    match store.chain_head(&chain_id).await {
        Ok(_) => {}
        Err(e) if e.is_transient() => return spool(cfg, key, &chain_id, planned, &e, None),
        Err(e) => return Err(UploadError::Store(e)),
    }
    let mut rest = planned.into_iter();
    while let Some(p) = rest.next() {
        match store_one(&store, cfg, key, &chain_id, &p).await {
            Ok(rec) => stored.push(rec),
            Err(Failed { error, in_doubt }) if error.is_transient() => {
                let remaining: Vec<Planned> = std::iter::once(p).chain(rest).collect();
                return spool(cfg, key, &chain_id, remaining, &error, in_doubt);
            }
            Err(f) => return Err(named_input(&p, f.error)),
        }
    }
    Ok(Outcome {
        store: store.uri(),
        stage: cfg.stage.name().to_owned(),
        subject,
        records: stored,
    })
}

/// A record that could not be stored, and its signed envelope when the store may hold
/// it anyway (the write failed on the way: see [`custody_store::AppendFailure`]).
struct Failed {
    error: StoreError,
    in_doubt: Option<Vec<u8>>,
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Self {
        Self {
            error,
            in_doubt: None,
        }
    }
}

/// A store error about reading an input (through its descriptor) names the input.
fn named_input(p: &Planned, error: StoreError) -> UploadError {
    let (path, what) = match &error {
        StoreError::Io { path, source } => (
            path,
            format!("reading it while it was being stored: {source}"),
        ),
        StoreError::Changed { path, expected } => (
            path,
            format!(
                "it changed while it was being stored (it hashed to {expected} when it was read); nothing was stored: run the step again"
            ),
        ),
        _ => return UploadError::Store(error),
    };
    match p.inputs.iter().find(|i| i.reopen_path() == *path) {
        Some(input) => input_err(&input.real, what),
        None => UploadError::Store(error),
    }
}

async fn store_one(
    store: &AnyStore,
    cfg: &Config,
    key: &dyn Signer,
    chain_id: &str,
    p: &Planned,
) -> Result<StoredRecord, Failed> {
    for (source, m) in p.inputs.iter().zip(&p.materials) {
        let path = &source.reopen_path();
        let started = std::time::Instant::now();
        if m.size >= LARGE {
            progress(&format!("storing {} ({} MiB)", m.name, m.size >> 20));
        }
        // the digest taken while planning names the object: S3 does not hash the file
        // again before sending it, and every backend checks the bytes against it
        let source = ObjectSource::Measured {
            path,
            digest: m.digest,
            size: m.size,
        };
        let out = store.put_object(source, &cfg.retention).await?;
        if m.size >= LARGE {
            let secs = started.elapsed().as_secs_f64().max(0.001);
            progress(&format!(
                "stored {} ({} MiB in {secs:.1} s, {:.0} MiB/s)",
                m.name,
                m.size >> 20,
                (m.size >> 20) as f64 / secs
            ));
        }
        if out.digest != m.digest {
            return Err(StoreError::Invalid(format!(
                "{} changed while it was being stored ({} was parsed, {} was stored); rerun the step",
                m.name, m.digest, out.digest
            ))
            .into());
        }
    }
    let appended = append_or_doubt(
        store,
        key,
        cfg.keyid_scheme,
        chain_id,
        p.draft.clone(),
        &cfg.retention,
    )
    .await
    .map_err(|f| Failed {
        error: f.error,
        in_doubt: f.in_doubt,
    })?;
    Ok(StoredRecord {
        record: appended.outcome.digest,
        envelope: appended.envelope,
        predicate_type: p.draft.predicate_type.clone(),
        chain: appended.link,
        material: p.materials.first().cloned(),
        summary: p.draft.record.summary.clone(),
    })
}

/// The spool chain of `chain_id` in `spool`: the one a previous step of this job started
/// there, or a new one named with a nonce (a pushed spool is removed, and a later spool
/// of the same job must not reuse positions the store already holds).
fn spool_chain(spool: &LocalStore, chain_id: &str) -> Result<String, StoreError> {
    let prefix = format!("{chain_id}~spool-");
    for digest in spool.chained_records()? {
        let bytes = spool.get_object_blocking(&digest)?;
        let Ok(env) = custody_evidence::Envelope::from_slice(&bytes) else {
            continue;
        };
        let Ok(payload) = env.payload_bytes() else {
            continue;
        };
        let Ok(st) = Statement::from_slice(&payload) else {
            continue;
        };
        if let Some(record) = st.record()
            && record.chain.id.starts_with(&prefix)
        {
            return Ok(record.chain.id.clone());
        }
    }
    Ok(format!("{prefix}{}", nonce(chain_id)))
}

/// 16 hex digits that make a spool chain's name new: from the clock, the process and
/// the job chain (uniqueness, not secrecy).
fn nonce(chain_id: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{chain_id} {nanos} {}", std::process::id());
    let hex = Digest::of(seed.as_bytes()).hex();
    hex.get(..16).unwrap_or(&hex).to_owned()
}

/// Writes what could not be stored to the spool, signed, on a chain of the spool's own.
///
/// The job's chain in the store cannot be extended from here: its head is unknown when
/// the store is unreachable (runner-guard may already hold position 0), and it may move
/// on before the spool is pushed. So spooled records form their own chain,
/// `<job chain>~spool-<nonce>`, starting at 0 and continued by later steps of the job
/// that spool into the same directory; pushing them can never collide with what the
/// job's chain holds, and a push repeated after an interruption stores nothing twice.
///
/// The first record may be in doubt (`in_doubt`: its signed envelope, whose write
/// failed on the way, so the store may hold it). Then that envelope is kept as it is,
/// with a stand-in signed on a chain of its own (`<job chain>~doubt-<nonce>`), noted
/// with [`LocalStore::note_in_doubt`]: the push writes the envelope again and uses the
/// stand-in only if its position was taken, so the evidence is stored exactly once.
fn spool(
    cfg: &Config,
    key: &dyn Signer,
    chain_id: &str,
    planned: Vec<Planned>,
    cause: &StoreError,
    mut in_doubt: Option<Vec<u8>>,
) -> Result<Outcome, UploadError> {
    let spool = LocalStore::create(&cfg.spool).map_err(UploadError::Store)?;
    let chain = spool_chain(&spool, chain_id).map_err(UploadError::Store)?;
    let job_chain = chain_id;
    let chain_id = chain.as_str();
    let mut head = spool
        .chain_head_blocking(chain_id)
        .map_err(UploadError::Store)?;
    let count = planned.len();
    for p in planned {
        for source in &p.inputs {
            spool
                .put_object_blocking(ObjectSource::File(&source.reopen_path()), &cfg.retention)
                .map_err(UploadError::Store)?;
        }
        let mut draft = p.draft;
        let original = in_doubt.take();
        draft.record.chain = match &original {
            Some(_) => ChainLink::first(format!("{job_chain}~doubt-{}", nonce(job_chain))),
            None => ChainLink {
                id: chain_id.to_owned(),
                sequence: head.map_or(0, |(s, _)| s + 1),
                previous: head.map(|(_, d)| d),
            },
        };
        let st = Statement::new(
            draft.subject,
            draft.predicate_type,
            draft.predicate,
            &draft.record,
        )
        .map_err(|e| UploadError::Usage(e.to_string()))?;
        let env = sign_statement(&st, key, cfg.keyid_scheme)
            .map_err(|e| UploadError::Usage(e.to_string()))?;
        let out = spool
            .put_record_spooled(&env.to_vec(), &cfg.retention)
            .map_err(UploadError::Store)?;
        if let Some(original) = original {
            let kept = spool
                .put_object_blocking(ObjectSource::Bytes(&original), &cfg.retention)
                .map_err(UploadError::Store)?;
            spool
                .note_in_doubt(&out.digest, &kept.digest)
                .map_err(UploadError::Store)?;
            continue;
        }
        head = Some((draft.record.chain.sequence, out.digest));
    }
    Err(UploadError::Spooled {
        reason: cause.to_string(),
        count,
        spool: cfg.spool.display().to_string(),
        store: cfg.store.clone(),
    })
}

/// Writes each stored record as a Sigstore bundle v0.3 (the same DSSE envelope, with a
/// public-key hint) to `DIR/<record hex>.sigstore.json`, each file written whole: a
/// temporary file in `dir`, renamed into place. The paths written.
pub fn write_bundles(
    dir: &Path,
    outcome: &Outcome,
    key: &PublicKey,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::with_capacity(outcome.records.len());
    for r in &outcome.records {
        let env = custody_evidence::Envelope::from_slice(&r.envelope)
            .map_err(|e| format!("record {}: {e}", r.record))?;
        let path = dir.join(format!("{}.sigstore.json", r.record.hex()));
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, &custody_evidence::sigstore::bundle_v03(&env, key))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        tmp.persist(&path)
            .map_err(|e| format!("{}: {}", path.display(), e.error))?;
        written.push(path);
    }
    Ok(written)
}
