//! Audit bundles: a query's evidence in one `.tar.gz` an auditor verifies offline.
//!
//! ```text
//! custody-bundle/BUNDLE.json         manifest: source, query, the records asked for, file digests
//! custody-bundle/store/              an embedded store holding the records, their materials,
//!                                    their locks as read back from the source, and the chains
//!                                    and pipelines they belong to (copied as found, gaps included)
//! custody-bundle/keys/*.pub          the public keys the export trusted
//! custody-bundle/envelopes/*.json    each record's DSSE envelope, for third-party verifiers
//! custody-bundle/verification.json   the verification of the bundle's own store
//! custody-bundle/report.html, .md    the auditor's report
//! custody-bundle/VERIFY.md           how to check it all independently
//! ```
//!
//! Everything outside `store/` and `keys/` is derived from them, deterministically:
//! `verify-bundle` derives it again and compares bytes, so a changed byte anywhere is
//! found — in evidence by its digest or signature, in a derived file by the difference.
//! Trust comes from keys the auditor holds; the bundled keys only say which were used.
//!
//! Every file must be accounted for: `BUNDLE.json`, the derived files, the keys it
//! lists, and in `store/` exactly the files an export of the evidence writes (found by
//! copying the evidence again, into a scratch store, the way `export` does: envelopes,
//! materials, locks, chain entries, index pointers, the store's marker). Any other file
//! (a key, an envelope, a page, a pointer or an object added after export) is a finding
//! that names it.
//!
//! The checks are the auditor's: the stages and the retention minimum in `BUNDLE.json`
//! are what the exporter chose, and apply only unless [`AuditorChecks`] replaces them.
//! The derived files are still compared with the manifest's values, which made them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use custody_evidence::{Digest, KeyIdScheme, PublicKey, TrustedKeys};
use custody_store::{Durability, EvidenceStore, LocalStore, RecordRef, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::report;
use crate::verify::{Audit, AuditOptions, CheckKind, Collected, Finding, Severity, audit_refs};

pub const BUNDLE_FORMAT: &str = "custody-bundle";
pub const BUNDLE_VERSION: u32 = 1;
const TOP: &str = "custody-bundle";
const MANIFEST: &str = "BUNDLE.json";
/// Derived files, regenerated and compared by `verify-bundle`.
const DERIVED: [&str; 4] = ["verification.json", "report.html", "report.md", "VERIFY.md"];
/// A manifest larger than this is not one of ours.
const MAX_MANIFEST: u64 = 64 << 20;

/// How far a bundle may expand: the larger of a floor and a ratio of its compressed
/// size. Evidence is mostly JSON and XML, which gzip shrinks ten to thirty times; a
/// decompression bomb expands a thousand times and more.
const MAX_EXPANSION_FLOOR: u64 = 256 << 20;
const MAX_EXPANSION_RATIO: u64 = 200;
/// The most entries a bundle may hold.
const MAX_ENTRIES: u64 = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{bundle}: {message}")]
    Format { bundle: PathBuf, message: String },
    #[error("{bundle}: refusing entry `{entry}`: {reason}")]
    Unsafe {
        bundle: PathBuf,
        entry: String,
        reason: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A check the auditor asked for that cannot be applied.
    #[error("{0}")]
    Invalid(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `BUNDLE.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub created_at: Timestamp,
    /// The store the evidence was exported from.
    pub source: String,
    /// The query, as the user wrote it.
    pub query: String,
    pub required_stages: Vec<String>,
    pub min_retention_years: i16,
    /// The records the query named (the bundle holds what they depend on too).
    pub records: Vec<RecordRef>,
    /// Key files, relative to the bundle's top directory.
    pub keys: Vec<String>,
    /// Digests of every other file outside `store/`.
    pub files: BTreeMap<String, Digest>,
}

/// What an export is asked to produce.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub query: String,
    /// The query itself, whose completeness the bundle's log range shows.
    pub filter: custody_store::Query,
    /// The log's verifier keys: with any, the bundle carries the latest checkpoint they
    /// accept and the log range that proves it complete (`log/`).
    pub log_keys: Vec<custody_store::log::LogVerifier>,
    pub required_stages: Vec<String>,
    pub min_retention_years: i16,
    pub created_at: Timestamp,
}

/// An export's outcome: the verification of the source and of the bundle written.
#[derive(Debug)]
pub struct Exported {
    pub source: Audit,
    pub bundle: Audit,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Writes the bundle for `refs` to `out` (atomically: a complete file or none).
pub async fn export<S: EvidenceStore>(
    store: &S,
    refs: &[RecordRef],
    trusted: &TrustedKeys,
    req: &ExportRequest,
    out: &Path,
) -> Result<Exported, BundleError> {
    let source_uri = store.uri();
    let source = audit_refs(
        store,
        refs,
        &AuditOptions {
            keys: trusted.clone(),
            required_stages: req.required_stages.clone(),
            min_retention_years: req.min_retention_years,
            verified_at: req.created_at,
            store_label: None,
            required_services: Vec::new(),
            scope: None,
        },
    )
    .await?;

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io(&parent))?;
    let staging = tempfile::Builder::new()
        .prefix(".custody-export-")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;
    let root = staging.path().join(TOP);
    let bundle_store = LocalStore::create(root.join("store"))?.with_durability(Durability::None);
    copy_evidence(store, &source, &bundle_store).await?;

    if !req.log_keys.is_empty() {
        for (name, bytes) in
            crate::completeness::export_files(store, &req.log_keys, &req.filter, refs).await?
        {
            write_file(&root.join(name), &bytes)?;
        }
    }
    let keys = write_keys(&root, trusted)?;
    let bundle_keys = read_bundle_keys(&root, &keys)?;
    let manifest_base = Manifest {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        created_at: req.created_at,
        source: source_uri,
        query: req.query.clone(),
        required_stages: req.required_stages.clone(),
        min_retention_years: req.min_retention_years,
        records: refs.to_vec(),
        keys,
        files: BTreeMap::new(),
    };
    let derived = derive(&bundle_store, &manifest_base, &bundle_keys).await?;
    let mut files = BTreeMap::new();
    for (name, bytes) in &derived.files {
        write_file(&root.join(name), bytes)?;
        files.insert(name.clone(), Digest::of(bytes));
    }
    for k in &manifest_base.keys {
        let bytes = fs::read(root.join(k)).map_err(io(&root.join(k)))?;
        files.insert(k.clone(), Digest::of(&bytes));
    }
    let manifest = Manifest {
        files,
        ..manifest_base
    };
    write_file(&root.join(MANIFEST), &to_json(&manifest)?)?;

    let tmp = tempfile::Builder::new()
        .prefix(".custody-bundle-")
        .tempfile_in(&parent)
        .map_err(io(&parent))?;
    write_tar_gz(staging.path(), tmp.as_file(), req.created_at)?;
    tmp.as_file().sync_all().map_err(io(tmp.path()))?;
    let bytes = tmp.as_file().metadata().map_err(io(tmp.path()))?.len();
    tmp.persist(out).map_err(|e| BundleError::Io {
        path: out.to_path_buf(),
        source: e.error,
    })?;
    Ok(Exported {
        source: source.audit,
        bundle: derived.collected.audit,
        path: out.to_path_buf(),
        bytes,
    })
}

/// Copies the records, their materials and locks, and their chains' entries as found.
/// `verify-bundle` runs it again to know which store files a bundle may hold.
async fn copy_evidence<S: EvidenceStore>(
    store: &S,
    source: &Collected,
    to: &LocalStore,
) -> Result<(), BundleError> {
    let entries: BTreeMap<Digest, &crate::verify::RecordEntry> =
        source.audit.records.iter().map(|r| (r.digest, r)).collect();
    for (d, bytes) in source.envelopes() {
        match entries.get(d) {
            // locks as the audit read them back
            Some(entry) => {
                for m in entry.materials.iter().filter(|m| m.present) {
                    let b = store.get_object(&m.material.digest).await?;
                    to.import_object(&b, m.retention.as_ref())?;
                }
                to.import_record(bytes, entry.retention.as_ref())?;
            }
            // not a Custody record: its lock was never read
            None => {
                let retention = store.retention(d).await?;
                to.import_object(bytes, retention.as_ref())?;
            }
        }
    }
    for (id, list) in &source.chains {
        for (seq, d) in list {
            to.import_chain_entry(id, *seq, d)?;
        }
    }
    Ok(())
}

fn sanitize(label: &str) -> String {
    let name = Path::new(label)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').to_owned();
    if clean.is_empty() {
        "key".into()
    } else {
        clean
    }
}

fn write_keys(root: &Path, trusted: &TrustedKeys) -> Result<Vec<String>, BundleError> {
    let mut names = Vec::new();
    let mut taken = BTreeSet::new();
    let mut keys: Vec<&PublicKey> = trusted.keys().iter().collect();
    keys.sort_by_key(|k| k.keyid(KeyIdScheme::Sslib));
    for k in keys {
        let base = sanitize(&k.label);
        let base = base.strip_suffix(".pub").unwrap_or(&base).to_owned();
        let mut name = format!("keys/{base}.pub");
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = format!("keys/{base}-{n}.pub");
            n += 1;
        }
        write_file(&root.join(&name), k.pem().as_bytes())?;
        names.push(name);
    }
    Ok(names)
}

/// The bundle's own keys, labelled by their path in the bundle.
fn read_bundle_keys(root: &Path, names: &[String]) -> Result<TrustedKeys, BundleError> {
    let mut keys = TrustedKeys::default();
    for name in names {
        let path = root.join(name);
        let pem = fs::read_to_string(&path).map_err(io(&path))?;
        let key = PublicKey::from_pem(&pem, name.clone()).map_err(|e| BundleError::Format {
            bundle: path.clone(),
            message: format!("not a public key: {e}"),
        })?;
        keys.push(key);
    }
    Ok(keys)
}

struct Derived {
    collected: Collected,
    files: Vec<(String, Vec<u8>)>,
}

/// Verifies the bundle's store with the bundle's keys and renders every derived file.
async fn derive(
    store: &LocalStore,
    manifest: &Manifest,
    keys: &TrustedKeys,
) -> Result<Derived, BundleError> {
    let collected = audit_refs(
        store,
        &manifest.records,
        &AuditOptions {
            keys: keys.clone(),
            required_stages: manifest.required_stages.clone(),
            min_retention_years: manifest.min_retention_years,
            verified_at: manifest.created_at,
            store_label: Some(manifest.source.clone()),
            required_services: Vec::new(),
            scope: None,
        },
    )
    .await?;
    let audit = &collected.audit;
    let mut files = Vec::new();
    for e in &audit.records {
        if let Ok(bytes) = store.get_object(&e.digest).await {
            files.push((format!("envelopes/{}.json", e.digest.hex()), bytes));
        }
    }
    let meta = report::Meta {
        query: &manifest.query,
        source: &manifest.source,
        created_at: manifest.created_at,
        keys: &manifest.keys,
    };
    files.push(("verification.json".into(), to_json(audit)?));
    files.push((
        "report.html".into(),
        report::html(audit, &meta).into_bytes(),
    ));
    files.push((
        "report.md".into(),
        report::markdown(audit, &meta).into_bytes(),
    ));
    files.push((
        "VERIFY.md".into(),
        report::verify_guide(audit, &meta).into_bytes(),
    ));
    Ok(Derived { collected, files })
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, BundleError> {
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| BundleError::Format {
        bundle: PathBuf::new(),
        message: e.to_string(),
    })?;
    b.push(b'\n');
    Ok(b)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).map_err(io(p))?;
    }
    let mut f = File::create_new(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))
}

/// A deterministic archive: sorted paths, fixed owner, modes and time.
fn write_tar_gz(base: &Path, out: &File, time: Timestamp) -> Result<(), BundleError> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mtime = u64::try_from(time.as_second()).unwrap_or(0);
    let mut paths = Vec::new();
    collect_paths(base, &base.join(TOP), &mut paths)?;
    paths.sort();
    for rel in paths {
        let full = base.join(&rel);
        let meta = fs::symlink_metadata(&full).map_err(io(&full))?;
        let mut header = tar::Header::new_ustar();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &rel, std::io::empty())
                .map_err(io(&full))?;
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(meta.len());
            let f = File::open(&full).map_err(io(&full))?;
            tar.append_data(&mut header, &rel, f).map_err(io(&full))?;
        }
    }
    let gz = tar.into_inner().map_err(io(base))?;
    gz.finish().map_err(io(base))?;
    Ok(())
}

fn collect_paths(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), BundleError> {
    let rel = dir.strip_prefix(base).unwrap_or(dir).to_path_buf();
    // files being written are never part of a store
    if rel.ends_with("store/tmp") {
        return Ok(());
    }
    out.push(rel);
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(io(&path))?;
        if ft.is_dir() {
            collect_paths(base, &path, out)?;
        } else if ft.is_file() {
            out.push(path.strip_prefix(base).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// How to trust a bundle's signatures.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Keys the auditor holds (the only independent choice).
    Given(TrustedKeys),
    /// The keys inside the bundle: it then proves integrity, not origin.
    Bundled,
}

/// The checks an auditor holds a bundle to, replacing the ones its maker chose
/// (`None`: the bundle's own value applies).
#[derive(Debug, Clone, Default)]
pub struct AuditorChecks {
    /// Stages every pipeline must have recorded (empty: none required).
    pub required_stages: Option<Vec<String>>,
    /// The shortest lock accepted, in years after each record (0 to 100).
    pub min_retention_years: Option<i16>,
    /// The log's verifier keys: with any, the bundle must prove itself complete.
    pub log_keys: Vec<custody_store::log::LogVerifier>,
    /// The oldest checkpoint accepted (with `log_keys`).
    pub max_checkpoint_age: Option<jiff::SignedDuration>,
    /// Witnesses whose cosignatures count (with `log_keys`).
    pub witness_keys: Vec<custody_store::witness::WitnessVerifier>,
    /// Valid cosignatures from `witness_keys` the checkpoint must carry.
    pub min_witnesses: usize,
}

/// Who chose a check's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The auditor, by a flag of `verify-bundle`.
    Auditor,
    /// The bundle's maker, in `BUNDLE.json`.
    Bundle,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auditor => "auditor",
            Self::Bundle => "bundle",
        })
    }
}

/// The checks a bundle's evidence was held to, and who chose each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedChecks {
    pub required_stages: Vec<String>,
    pub required_stages_from: Origin,
    pub min_retention_years: i16,
    pub min_retention_years_from: Origin,
}

impl AppliedChecks {
    fn resolve(manifest: &Manifest, auditor: &AuditorChecks) -> Self {
        let (required_stages, required_stages_from) = match &auditor.required_stages {
            Some(s) => (s.clone(), Origin::Auditor),
            None => (manifest.required_stages.clone(), Origin::Bundle),
        };
        let (min_retention_years, min_retention_years_from) = match auditor.min_retention_years {
            Some(y) => (y, Origin::Auditor),
            None => (manifest.min_retention_years, Origin::Bundle),
        };
        Self {
            required_stages,
            required_stages_from,
            min_retention_years,
            min_retention_years_from,
        }
    }
}

/// The outcome of an offline check.
#[derive(Debug)]
pub struct BundleCheck {
    pub manifest: Manifest,
    /// The checks applied to the evidence, and who chose them.
    pub checks: AppliedChecks,
    /// The evidence verified with the keys chosen by [`KeySource`] and the checks above.
    pub audit: Audit,
    /// Files, derived or not, and manifest entries that disagree with the evidence.
    pub consistency: Vec<Finding>,
    /// What the log proved (with the auditor's log keys); its findings are in
    /// `consistency`.
    pub completeness: Option<crate::completeness::Completeness>,
}

impl BundleCheck {
    pub fn ok(&self) -> bool {
        self.audit.ok && self.consistency.is_empty()
    }
}

/// Verifies a bundle with no access to the store it came from, held to the auditor's
/// checks where given and to the bundle's own otherwise.
pub async fn verify_bundle(
    bundle: &Path,
    keys: &KeySource,
    auditor: &AuditorChecks,
) -> Result<BundleCheck, BundleError> {
    if let Some(years) = auditor.min_retention_years
        && !(0..=custody_store::MAX_RETENTION_YEARS).contains(&years)
    {
        return Err(BundleError::Invalid(format!(
            "a minimum retention of {years} years: choose 0 to {}",
            custody_store::MAX_RETENTION_YEARS
        )));
    }
    let dir = tempfile::Builder::new()
        .prefix(".custody-verify-")
        .tempdir()
        .map_err(io(Path::new("temporary directory")))?;
    extract(bundle, dir.path())?;
    let root = dir.path().join(TOP);
    let manifest_path = root.join(MANIFEST);
    let format_err = |message: String| BundleError::Format {
        bundle: bundle.to_path_buf(),
        message,
    };
    let size = fs::metadata(&manifest_path)
        .map_err(|_| format_err(format!("no {TOP}/{MANIFEST}: not a Custody audit bundle")))?
        .len();
    if size > MAX_MANIFEST {
        return Err(format_err(format!(
            "{MANIFEST} is {size} bytes: not a Custody manifest"
        )));
    }
    let manifest_bytes = fs::read(&manifest_path).map_err(io(&manifest_path))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format_err(format!("{MANIFEST}: {e}")))?;
    if !(0..=custody_store::MAX_RETENTION_YEARS).contains(&manifest.min_retention_years) {
        return Err(format_err(format!(
            "{MANIFEST}: minRetentionYears {} is out of range (0 to {})",
            manifest.min_retention_years,
            custody_store::MAX_RETENTION_YEARS
        )));
    }
    if manifest.format != BUNDLE_FORMAT || manifest.version != BUNDLE_VERSION {
        return Err(format_err(format!(
            "{MANIFEST}: format {} version {} (this custody reads {BUNDLE_FORMAT} version {BUNDLE_VERSION})",
            manifest.format, manifest.version
        )));
    }
    for k in &manifest.keys {
        if !k.starts_with("keys/") || k.contains("..") || k.contains('\\') {
            return Err(format_err(format!(
                "{MANIFEST}: key path {k} is outside keys/"
            )));
        }
    }
    let store = LocalStore::open(root.join("store")).map_err(|e| {
        format_err(format!(
            "{TOP}/store is not a readable Custody store ({})",
            match e {
                StoreError::NotAStore { .. } | StoreError::Missing { .. } => {
                    "its CUSTODY-STORE marker is missing or altered".to_owned()
                }
                other => other.to_string(),
            }
        ))
    })?;
    let mut consistency = Vec::new();
    let bundle_keys = match read_bundle_keys(&root, &manifest.keys) {
        Ok(k) => k,
        Err(e) => {
            consistency.push(mismatch("keys", e.to_string()));
            TrustedKeys::default()
        }
    };
    let derived = derive(&store, &manifest, &bundle_keys).await?;
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for (name, bytes) in &derived.files {
        expected.insert(name.clone());
        let path = root.join(name);
        match fs::read(&path) {
            Ok(found) if found == *bytes => {}
            Ok(_) => consistency.push(mismatch(
                name,
                "differs from what the evidence yields: it was changed after export".into(),
            )),
            Err(_) => consistency.push(mismatch(name, "missing from the bundle".into())),
        }
    }
    for (name, digest) in &manifest.files {
        let derivable = DERIVED.contains(&name.as_str()) || name.starts_with("envelopes/");
        if derivable && !expected.contains(name) {
            consistency.push(mismatch(
                name,
                "listed in BUNDLE.json but not derivable from the evidence".into(),
            ));
            continue;
        }
        if name.contains("..") || name.starts_with('/') {
            consistency.push(mismatch(name, "a path outside the bundle".into()));
            continue;
        }
        // BUNDLE.json is not signed: a file it lists is accounted for only if an export
        // lists it, as a derived file or a key
        if !derivable && !manifest.keys.contains(name) {
            consistency.push(mismatch(
                name,
                "listed in BUNDLE.json, which lists only derived files and keys: not accounted for by BUNDLE.json or the evidence".into(),
            ));
            continue;
        }
        match fs::read(root.join(name)) {
            Ok(b) if Digest::of(&b) == *digest => {}
            Ok(_) => consistency.push(mismatch(
                name,
                "differs from its digest in BUNDLE.json".into(),
            )),
            // derived files were reported missing above
            Err(_) if derivable => {}
            Err(_) => consistency.push(mismatch(name, "missing from the bundle".into())),
        }
    }
    for name in expected
        .iter()
        .chain(&manifest.keys)
        .filter(|n| !manifest.files.contains_key(*n))
    {
        consistency.push(mismatch(name, "not listed in BUNDLE.json".into()));
    }
    consistency.extend(
        unaccounted(
            &root,
            &manifest,
            &derived,
            &store,
            &dir.path().join("rebuilt"),
        )
        .await?,
    );

    let mut completeness = None;
    if !auditor.log_keys.is_empty() {
        let (c, findings) =
            crate::completeness::check(&root, &store, &manifest.records, auditor, Timestamp::now())
                .await?;
        completeness = c;
        consistency.extend(findings);
    }
    let checks = AppliedChecks::resolve(&manifest, auditor);
    let own_checks = checks.required_stages == manifest.required_stages
        && checks.min_retention_years == manifest.min_retention_years;
    let audit = match keys {
        // the derived verification is this very audit
        KeySource::Bundled if own_checks => derived.collected.audit,
        _ => {
            let keys = match keys {
                KeySource::Bundled => bundle_keys,
                KeySource::Given(k) => k.clone(),
            };
            audit_refs(
                &store,
                &manifest.records,
                &AuditOptions {
                    keys,
                    required_stages: checks.required_stages.clone(),
                    min_retention_years: checks.min_retention_years,
                    verified_at: manifest.created_at,
                    store_label: Some(manifest.source.clone()),
                    required_services: Vec::new(),
                    scope: None,
                },
            )
            .await?
            .audit
        }
    };
    consistency.sort();
    consistency.dedup();
    Ok(BundleCheck {
        manifest,
        checks,
        audit,
        consistency,
        completeness,
    })
}

/// Every file of the unpacked bundle (`root`) that nothing accounts for: not
/// `BUNDLE.json`, not a derived file, not a file it lists, and not one of the store
/// files an export of the evidence writes. Those are found by copying the evidence
/// again into a scratch store at `scratch`, exactly as [`export`] fills `store/`, so
/// the set follows the store's layout instead of restating it.
async fn unaccounted(
    root: &Path,
    manifest: &Manifest,
    derived: &Derived,
    store: &LocalStore,
    scratch: &Path,
) -> Result<Vec<Finding>, BundleError> {
    let mut out = Vec::new();
    let mut accounted: BTreeSet<String> = BTreeSet::new();
    accounted.insert(MANIFEST.to_owned());
    accounted.extend(derived.files.iter().map(|(n, _)| n.clone()));
    accounted.extend(manifest.keys.iter().cloned());
    accounted.extend(manifest.files.keys().cloned());
    accounted.extend(crate::completeness::accounted(root));
    let rebuilt = LocalStore::create(scratch)?.with_durability(Durability::None);
    match copy_evidence(store, &derived.collected, &rebuilt).await {
        Ok(()) => {
            let mut files = Vec::new();
            collect_files(scratch, scratch, &mut files)?;
            // files being written are never part of a store, nor of an export
            accounted.extend(
                files
                    .into_iter()
                    .filter(|f| !f.starts_with("tmp/"))
                    .map(|f| format!("store/{f}")),
            );
        }
        Err(BundleError::Store(StoreError::Invalid(msg))) => {
            out.push(mismatch(
                "store",
                format!("its evidence cannot be copied again ({msg}), so its files cannot be accounted for"),
            ));
            return Ok(out);
        }
        Err(e) => return Err(e),
    }
    // Files of a record or material that cannot be read are not copied again; the
    // audit already reports it, by digest, and its files are not reported twice.
    let mut unreadable: Vec<String> = Vec::new();
    for (d, l) in &derived.collected.loaded {
        if l.envelope.is_none() {
            unreadable.push(d.hex());
        }
        if let Some(e) = &l.entry {
            unreadable.extend(
                e.materials
                    .iter()
                    .filter(|m| !m.present)
                    .map(|m| m.material.digest.hex()),
            );
        }
    }
    let mut found = Vec::new();
    collect_files(root, root, &mut found)?;
    for name in found {
        if accounted.contains(&name) {
            continue;
        }
        let flat = name.replace('/', "");
        if name.starts_with("store/") && unreadable.iter().any(|hex| flat.contains(hex.as_str())) {
            continue;
        }
        out.push(mismatch(
            &name,
            "not accounted for by BUNDLE.json or the evidence: an export of this evidence does not write it".into(),
        ));
    }
    Ok(out)
}

/// The regular files below `dir`, as `/`-separated paths relative to `base`.
fn collect_files(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), BundleError> {
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let ft = entry.file_type().map_err(io(&path))?;
        if ft.is_dir() {
            collect_files(base, &path, out)?;
        } else {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

fn mismatch(file: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Error,
        check: CheckKind::Bundle,
        about: format!("bundle file {file}"),
        message,
    }
}

/// Unpacks regular files and directories under `custody-bundle/`, refusing anything
/// else: absolute paths, `..`, links, devices, duplicates.
/// Reads every header once, writing nothing: the entries and the bytes they declare
/// must stay within the limits before a single file is written.
fn check_limits(bundle: &Path) -> Result<(), BundleError> {
    let file = File::open(bundle).map_err(io(bundle))?;
    let compressed = file.metadata().map_err(io(bundle))?.len();
    let max_bytes = MAX_EXPANSION_FLOOR.max(compressed.saturating_mul(MAX_EXPANSION_RATIO));
    let too_big = |what: String| BundleError::Format {
        bundle: bundle.to_path_buf(),
        message: format!(
            "{what}: refused before anything was written (a decompression bomb, or not a Custody bundle)"
        ),
    };
    let read_err = |e: std::io::Error| BundleError::Format {
        bundle: bundle.to_path_buf(),
        message: format!("not a readable .tar.gz ({e})"),
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let (mut entries, mut bytes) = (0u64, 0u64);
    for entry in archive.entries().map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        entries = entries.saturating_add(1);
        if entries > MAX_ENTRIES {
            return Err(too_big(format!("more than {MAX_ENTRIES} entries")));
        }
        bytes = bytes.saturating_add(entry.header().size().map_err(read_err)?);
        if bytes > max_bytes {
            return Err(too_big(format!(
                "its entries declare more than {max_bytes} bytes ({compressed} compressed; at most {MAX_EXPANSION_RATIO} times that, or {MAX_EXPANSION_FLOOR})"
            )));
        }
    }
    Ok(())
}

fn extract(bundle: &Path, into: &Path) -> Result<(), BundleError> {
    check_limits(bundle)?;
    let file = File::open(bundle).map_err(io(bundle))?;
    let gz = flate2::read::GzDecoder::new(file);
    let mut archive = tar::Archive::new(gz);
    let unsafe_entry = |entry: String, reason: &str| BundleError::Unsafe {
        bundle: bundle.to_path_buf(),
        entry,
        reason: reason.into(),
    };
    let read_err = |e: std::io::Error| BundleError::Format {
        bundle: bundle.to_path_buf(),
        message: format!("not a readable .tar.gz ({e})"),
    };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let shown = raw.display().to_string();
        let mut clean = PathBuf::new();
        for c in raw.components() {
            match c {
                Component::Normal(p) => clean.push(p),
                Component::CurDir => {}
                _ => return Err(unsafe_entry(shown, "absolute or parent path")),
            }
        }
        if clean.components().next() != Some(Component::Normal(TOP.as_ref())) {
            return Err(unsafe_entry(shown, "outside custody-bundle/"));
        }
        let dest = into.join(&clean);
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(io(&dest))?;
            }
            tar::EntryType::Regular => {
                if let Some(p) = dest.parent() {
                    fs::create_dir_all(p).map_err(io(p))?;
                }
                let mut out = match File::create_new(&dest) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(unsafe_entry(shown, "appears twice"));
                    }
                    Err(e) => return Err(io(&dest)(e)),
                };
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = entry.read(&mut buf).map_err(read_err)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(buf.get(..n).unwrap_or_default())
                        .map_err(io(&dest))?;
                }
            }
            _ => return Err(unsafe_entry(shown, "not a regular file or directory")),
        }
    }
    Ok(())
}
