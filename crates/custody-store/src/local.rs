//! The embedded store (`file://PATH`): a directory of write-once files.
//!
//! ```text
//! CUSTODY-STORE                          marker: format and version
//! objects/sha256/ab/cdef…                content-addressed bytes (envelopes, materials), mode 0444
//! retention/sha256/ab/cdef….json         retain-until per object; extended, never shortened
//! chains/<chain>/<000000000007>          the digest of the chain's 8th record, created exclusively
//! index/<kind>/<key>/<nanos>_<digest>    empty pointer files: subject, commit, pipeline, day, …
//! in-doubt/<digest>                      spools only: the record a spooled one stands in for
//! tmp/                                   files being written; never read
//! ```
//!
//! Every file is written to `tmp/`, fsynced, made read-only and moved into place with
//! a no-clobber rename, so a reader sees a complete file or none; a second writer of
//! the same bytes finds the name taken and does nothing. Honest limits: the owner of
//! the directory (and root) can still delete files. Use it for laptops, demos, tests,
//! or on a WORM filesystem; use S3 Object Lock for enforcement.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use custody_evidence::Digest;
use custody_evidence::digest::Hasher;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::LogWrite;
use crate::error::StoreError;
use crate::index::{IndexKey, encode_component, index_keys};
use crate::layout::{
    chain_entry_name, check_previous, day_in_range, decode_record, finish, merge_retention,
    parse_pointer_name, pointer_name, retention_holds,
};
use crate::log;
use crate::query::{Query, RecordRef};
use crate::{EvidenceStore, ObjectSource, PutOutcome, Retention};

const MARKER: &str = "CUSTODY-STORE";
const FORMAT: &str = "custody-store";
const VERSION: u32 = 1;
const COPY_BUF: usize = 256 * 1024;

/// Whether writes are fsynced. `Fsync` is the default and the only safe choice for
/// evidence; `None` exists for generating large benchmark stores quickly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Fsync,
    None,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    format: String,
    version: u32,
}

/// How a record is written: a put checks everything, a spool holds records whose
/// predecessors are elsewhere, an import copies a record as found (no link, no checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Put,
    Spool,
    Import,
}

/// The embedded local store.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    durability: Durability,
}

impl LocalStore {
    /// Opens an existing store; fails when the directory is missing or not a store.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = path.as_ref().to_path_buf();
        let marker_path = root.join(MARKER);
        let text = match fs::read_to_string(&marker_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if root.is_dir() {
                    return Err(StoreError::NotAStore { path: root });
                }
                if !root.exists() {
                    return Err(StoreError::Missing { path: root });
                }
                return Err(StoreError::io(&root, e));
            }
            Err(e) => return Err(StoreError::io(&marker_path, e)),
        };
        let marker: Marker = serde_json::from_str(&text)
            .map_err(|_| StoreError::NotAStore { path: root.clone() })?;
        if marker.format != FORMAT {
            return Err(StoreError::NotAStore { path: root });
        }
        if marker.version > VERSION {
            return Err(StoreError::Version {
                path: root,
                found: marker.version,
                supported: VERSION,
            });
        }
        let store = Self {
            root,
            durability: Durability::Fsync,
        };
        // best effort: a store this process cannot clean (read-only) still reads
        let _ = store.clean_stale_temporaries(STALE_AFTER);
        Ok(store)
    }

    /// Opens a store, creating it when the directory is missing or empty. The new
    /// store is prepared in a sibling directory and renamed into place, so concurrent
    /// creators agree on one store and nobody sees a directory without its marker.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let root = path.as_ref().to_path_buf();
        if root.join(MARKER).exists() {
            return Self::open(root);
        }
        // Not empty: another creator may have renamed its store into place since
        // the marker was looked for, so open decides (it refuses a directory
        // without a marker).
        if let Ok(mut rd) = fs::read_dir(&root)
            && rd.next().is_some()
        {
            return Self::open(root);
        }
        let parent = match root.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(|e| StoreError::io(&parent, e))?;
        let staging = tempfile::Builder::new()
            .prefix(".custody-init-")
            .tempdir_in(&parent)
            .map_err(|e| StoreError::io(&parent, e))?;
        let marker = serde_json::to_vec_pretty(&Marker {
            format: FORMAT.into(),
            version: VERSION,
        })
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let marker_path = staging.path().join(MARKER);
        let mut f = File::create(&marker_path).map_err(|e| StoreError::io(&marker_path, e))?;
        f.write_all(&marker)
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::io(&marker_path, e))?;
        // rename(2) replaces an empty directory atomically and fails on a non-empty
        // one: then another creator won, and its store is opened below.
        if fs::rename(staging.path(), &root).is_ok() {
            let _ = staging.keep();
            File::open(&parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| StoreError::io(&parent, e))?;
        }
        Self::open(root)
    }

    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where an object's bytes live.
    pub fn object_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        let (a, b) = hex.split_at(2);
        self.root.join("objects/sha256").join(a).join(b)
    }

    fn retention_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        let (a, b) = hex.split_at(2);
        self.root
            .join("retention/sha256")
            .join(a)
            .join(format!("{b}.json"))
    }

    fn chain_dir(&self, chain: &str) -> PathBuf {
        self.root.join("chains").join(encode_component(chain))
    }

    fn index_dir(&self, key: &IndexKey) -> PathBuf {
        let [kind, value] = key.segments();
        self.root.join("index").join(kind).join(value)
    }

    /// `log/NAME`: files of the transparency log, written once like chain entries.
    fn log_path(&self, name: &str) -> Result<PathBuf, StoreError> {
        log::check_log_name(name)?;
        Ok(self.root.join("log").join(name))
    }

    fn tmp_file(&self) -> Result<NamedTempFile, StoreError> {
        let dir = self.root.join("tmp");
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(PARTIAL_PREFIX)
            .tempfile_in(&dir)
            .map_err(|e| StoreError::io(&dir, e))?;
        // held while this writer lives: a cleaner never takes a partial being written
        tmp.as_file()
            .lock()
            .map_err(|e| StoreError::io(tmp.path(), e))?;
        Ok(tmp)
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), StoreError> {
        if self.durability == Durability::Fsync {
            File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::io(dir, e))?;
        }
        Ok(())
    }

    /// Moves a finished temporary file into place without clobbering. Returns whether
    /// this call created `dest` (`false`: the name was already taken).
    fn persist(&self, tmp: NamedTempFile, dest: &Path) -> Result<bool, StoreError> {
        let parent = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        let file = tmp.as_file();
        if self.durability == Durability::Fsync {
            file.sync_all().map_err(|e| StoreError::io(tmp.path(), e))?;
        }
        file.set_permissions(fs::Permissions::from_mode(0o444))
            .map_err(|e| StoreError::io(tmp.path(), e))?;
        match tmp.persist_noclobber(dest) {
            Ok(_) => {
                self.sync_dir(parent)?;
                Ok(true)
            }
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(StoreError::io(dest, e.error)),
        }
    }

    /// Writes small bytes to a new file; `Ok(false)` when it already exists.
    fn write_new(&self, dest: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
        let mut tmp = self.tmp_file()?;
        tmp.write_all(bytes)
            .map_err(|e| StoreError::io(tmp.path(), e))?;
        self.persist(tmp, dest)
    }

    fn put_object_sync(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        let outcome = match src {
            ObjectSource::Bytes(bytes) => {
                let digest = Digest::of(bytes);
                let dest = self.object_path(&digest);
                let created = if dest.exists() {
                    false
                } else {
                    self.write_new(&dest, bytes)?
                };
                PutOutcome {
                    digest,
                    size: bytes.len() as u64,
                    created,
                }
            }
            ObjectSource::File(path) | ObjectSource::Measured { path, .. } => {
                self.copy_in(path, src.expected())?
            }
        };
        self.lock(&outcome.digest, retention)?;
        crate::crash_point("object");
        Ok(outcome)
    }

    /// Streams a file into the store, hashing while copying: one pass, constant memory.
    /// Copies the file in, hashing it on the way; with `expected`, stores nothing unless
    /// the bytes copied hash to it.
    fn copy_in(&self, path: &Path, expected: Option<Digest>) -> Result<PutOutcome, StoreError> {
        let mut src = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let mut tmp = self.tmp_file()?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0u8; COPY_BUF];
        let mut size = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io(path, e)),
            };
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            tmp.write_all(chunk)
                .map_err(|e| StoreError::io(tmp.path(), e))?;
            size += n as u64;
        }
        let digest = hasher.finish();
        crate::check_unchanged(path, expected, &digest)?;
        let dest = self.object_path(&digest);
        let created = if dest.exists() {
            false
        } else {
            self.persist(tmp, &dest)?
        };
        Ok(PutOutcome {
            digest,
            size,
            created,
        })
    }

    fn read_retention(&self, d: &Digest) -> Result<Option<Retention>, StoreError> {
        let path = self.retention_path(d);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Holds the store's retention lock (an advisory exclusive lock on
    /// `tmp/.retention.lock`) while `f` reads, merges and writes a retention: without
    /// it two writers read the same old date and the later rename wins, shorter or not.
    fn with_retention_lock<T>(
        &self,
        f: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let dir = self.root.join("tmp");
        fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let path = dir.join(RETENTION_LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        file.lock().map_err(|e| StoreError::io(&path, e))?;
        let out = f();
        // released on close too; an explicit unlock keeps the window short
        let _ = file.unlock();
        out
    }

    /// Sets or extends an object's retention. A later date replaces an earlier one; an
    /// earlier date than the current one is ignored when re-storing the same bytes.
    fn lock(&self, d: &Digest, retention: &Retention) -> Result<(), StoreError> {
        self.with_retention_lock(|| self.lock_held(d, retention))
    }

    /// `lock`, with the retention lock held.
    fn lock_held(&self, d: &Digest, retention: &Retention) -> Result<(), StoreError> {
        let path = self.retention_path(d);
        let bytes =
            serde_json::to_vec(retention).map_err(|e| StoreError::Invalid(e.to_string()))?;
        match self.read_retention(d)? {
            None => {
                if !self.write_new(&path, &bytes)? {
                    // a writer without the lock (an older custody) was first: merge
                    return self.lock_held(d, retention);
                }
            }
            Some(cur) => {
                let Some(merged) = merge_retention(&cur, retention) else {
                    return Ok(());
                };
                let bytes =
                    serde_json::to_vec(&merged).map_err(|e| StoreError::Invalid(e.to_string()))?;
                let mut tmp = self.tmp_file()?;
                tmp.write_all(&bytes)
                    .map_err(|e| StoreError::io(tmp.path(), e))?;
                if self.durability == Durability::Fsync {
                    tmp.as_file()
                        .sync_all()
                        .map_err(|e| StoreError::io(tmp.path(), e))?;
                }
                tmp.persist(&path)
                    .map_err(|e| StoreError::io(&path, e.error))?;
            }
        }
        Ok(())
    }

    /// Explicitly sets a retention date: extending is allowed, shortening refused.
    pub fn extend_retention(&self, d: &Digest, retention: &Retention) -> Result<(), StoreError> {
        self.with_retention_lock(|| self.extend_retention_held(d, retention))
    }

    fn extend_retention_held(&self, d: &Digest, retention: &Retention) -> Result<(), StoreError> {
        if let Some(cur) = self.read_retention(d)?
            && retention.retain_until < cur.retain_until
        {
            return Err(StoreError::RetentionShorten {
                digest: *d,
                current: cur.retain_until,
                requested: retention.retain_until,
            });
        }
        self.lock_held(d, retention)
    }

    /// Hashes an object's file in constant memory and compares it with its name.
    fn check_object_sync(&self, d: &Digest) -> Result<u64, StoreError> {
        let path = self.object_path(d);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { digest: *d });
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let (actual, size) = custody_evidence::sha256_reader(file)
            .map_err(|e| StoreError::io(&path, std::io::Error::other(e.to_string())))?;
        if actual != *d {
            return Err(StoreError::Corrupt {
                digest: *d,
                actual,
                path,
            });
        }
        Ok(size)
    }

    fn get_object_sync(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.object_path(d);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { digest: *d });
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(StoreError::Corrupt {
                digest: *d,
                actual,
                path,
            });
        }
        Ok(bytes)
    }

    fn read_chain_entry(&self, dir: &Path, seq: u64) -> Result<Option<Digest>, StoreError> {
        let path = dir.join(chain_entry_name(seq));
        match fs::read_to_string(&path) {
            Ok(s) => Digest::parse(s.trim())
                .map(Some)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    fn put_record_sync(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.put_record_inner(envelope, Some(retention), Mode::Put)
    }

    /// Stores a record in a spool: like a put, except that the chain's earlier
    /// records may live in the store the spool will be pushed to, so the predecessor
    /// is not required here (the target store checks it on push).
    pub fn put_record_spooled(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.put_record_inner(envelope, Some(retention), Mode::Spool)
    }

    /// Notes, in a spool, that the spooled record `fallback` stands in for `original`:
    /// a record (its envelope kept in the spool as an object) that was being written
    /// to the store when the store failed, so it may be stored there already. A push
    /// writes `original` again and pushes `fallback` only when `original`'s chain
    /// position went to another record: the evidence is stored once either way.
    pub fn note_in_doubt(&self, fallback: &Digest, original: &Digest) -> Result<(), StoreError> {
        let path = self.root.join("in-doubt").join(fallback.hex());
        self.write_new(&path, original.to_string().as_bytes())?;
        Ok(())
    }

    /// The in-doubt record `fallback` stands in for (see [`Self::note_in_doubt`]).
    pub fn in_doubt(&self, fallback: &Digest) -> Result<Option<Digest>, StoreError> {
        let path = self.root.join("in-doubt").join(fallback.hex());
        match fs::read_to_string(&path) {
            Ok(text) => Digest::parse(text.trim())
                .map(Some)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Every record named by a chain entry, chain by chain in sequence order: what a
    /// spool holds, in the order it must be pushed.
    pub fn chained_records(&self) -> Result<Vec<Digest>, StoreError> {
        let chains = self.root.join("chains");
        let mut names = list_dir(&chains)?;
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let dir = chains.join(&name);
            let mut seqs: Vec<u64> = list_dir(&dir)?
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect();
            seqs.sort_unstable();
            for seq in seqs {
                if let Some(d) = self.read_chain_entry(&dir, seq)? {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Copies an object as another store holds it, with the lock read back from there
    /// (`None`: it had none, and the copy has none either). For audit bundles, which
    /// must show the evidence as found, gaps included.
    pub fn import_object(
        &self,
        bytes: &[u8],
        retention: Option<&Retention>,
    ) -> Result<PutOutcome, StoreError> {
        let digest = Digest::of(bytes);
        let dest = self.object_path(&digest);
        let created = !dest.exists() && self.write_new(&dest, bytes)?;
        if let Some(r) = retention {
            self.lock(&digest, r)?;
        }
        Ok(PutOutcome {
            digest,
            size: bytes.len() as u64,
            created,
        })
    }

    /// Copies a record as another store holds it: stored and indexed like a put, but
    /// not linked: chains are copied entry by entry ([`Self::import_chain_entry`]), as
    /// the other store's entries name them, so a broken chain is copied broken for the
    /// verifier to report. Its materials need not be present either.
    pub fn import_record(
        &self,
        envelope: &[u8],
        retention: Option<&Retention>,
    ) -> Result<PutOutcome, StoreError> {
        self.put_record_inner(envelope, retention, Mode::Import)
    }

    /// Copies one chain entry as another store holds it.
    pub fn import_chain_entry(
        &self,
        chain_id: &str,
        sequence: u64,
        digest: &Digest,
    ) -> Result<(), StoreError> {
        let entry = self.chain_dir(chain_id).join(chain_entry_name(sequence));
        self.write_new(&entry, digest.to_string().as_bytes())?;
        Ok(())
    }

    fn put_record_inner(
        &self,
        envelope: &[u8],
        retention: Option<&Retention>,
        mode: Mode,
    ) -> Result<PutOutcome, StoreError> {
        let incoming = decode_record(envelope)?;
        let (record, digest) = (&incoming.record, incoming.digest);
        if mode != Mode::Import {
            for m in &record.materials {
                if !self.object_path(&m.digest).exists() {
                    return Err(StoreError::MissingMaterial { digest: m.digest });
                }
            }
        }
        let chain = &record.chain;
        let chain_dir = self.chain_dir(&chain.id);
        let prev_actual = match chain.sequence.checked_sub(1) {
            Some(prev_seq) => self.read_chain_entry(&chain_dir, prev_seq)?,
            None => None,
        };
        if mode == Mode::Put {
            check_previous(record, prev_actual)?;
        }
        let outcome = match retention {
            Some(r) => self.put_object_sync(ObjectSource::Bytes(envelope), r)?,
            None => self.import_object(envelope, None)?,
        };
        crate::crash_point("envelope");
        let entry = chain_dir.join(chain_entry_name(chain.sequence));
        let mut again = false;
        if mode != Mode::Import && !self.write_new(&entry, digest.to_string().as_bytes())? {
            again = true;
            incoming.check_position(self.read_chain_entry(&chain_dir, chain.sequence)?)?;
        }
        crate::crash_point("chain-entry");
        let name = pointer_name(record.recorded_at, &digest);
        for key in index_keys(&incoming.statement, record) {
            let dir = self.index_dir(&key);
            fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
            let path = dir.join(&name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => {
                    f.set_permissions(fs::Permissions::from_mode(0o444))
                        .map_err(|e| StoreError::io(&path, e))?;
                    self.sync_dir(&dir)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(StoreError::io(&path, e)),
            }
            crate::crash_point("pointer");
        }
        // a spool's records are sequenced by the store they are pushed to, an imported
        // record (in a bundle) keeps the index its source log gave it
        if mode == Mode::Put
            && let Some(r) = retention
        {
            log::ready(log::sequence(self, &incoming.log_entry, r, again))??;
        }
        Ok(outcome)
    }

    fn chain_head_sync(&self, chain_id: &str) -> Result<Option<(u64, Digest)>, StoreError> {
        let dir = self.chain_dir(chain_id);
        let mut best: Option<u64> = None;
        for name in list_dir(&dir)? {
            if let Ok(seq) = name.parse::<u64>() {
                best = Some(best.map_or(seq, |b| b.max(seq)));
            }
        }
        match best {
            Some(seq) => Ok(self.read_chain_entry(&dir, seq)?.map(|d| (seq, d))),
            None => Ok(None),
        }
    }

    /// The records of a chain in order, as the chain entries name them.
    pub fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        let dir = self.chain_dir(chain_id);
        let mut seqs: Vec<u64> = list_dir(&dir)?
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        seqs.sort_unstable();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            if let Some(d) = self.read_chain_entry(&dir, seq)? {
                out.push((seq, d));
            }
        }
        Ok(out)
    }

    fn list_key(&self, key: &IndexKey) -> Result<Vec<RecordRef>, StoreError> {
        let dir = self.index_dir(key);
        Ok(list_dir(&dir)?
            .iter()
            .filter_map(|n| parse_pointer_name(n))
            .collect())
    }

    /// Lists one index (the primary: the most selective criterion the query has, or
    /// the days in its time range) and checks every other criterion by the existence
    /// of the candidate's pointer under that key: one stat each. The cost follows the
    /// primary answer, never the size of the store.
    fn query_sync(&self, q: &Query) -> Result<Vec<RecordRef>, StoreError> {
        let keys = q.keys();
        let selective = |k: &IndexKey| {
            matches!(
                k,
                IndexKey::Subject(_)
                    | IndexKey::Commit(_)
                    | IndexKey::Pipeline(_)
                    | IndexKey::Day(_)
            )
        };
        let (mut candidates, rest): (Vec<RecordRef>, Vec<&IndexKey>) =
            match keys.iter().enumerate().find(|(_, k)| selective(k)) {
                Some((i, primary)) => (
                    self.list_key(primary)?,
                    keys.iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, k)| k)
                        .collect(),
                ),
                None if keys.is_empty() || q.since.is_some() || q.until.is_some() => {
                    (self.list_days(q)?, keys.iter().collect())
                }
                None => match keys.split_first() {
                    Some((first, others)) => (self.list_key(first)?, others.iter().collect()),
                    None => (Vec::new(), Vec::new()),
                },
            };
        candidates.retain(|r| q.in_time_range(r.recorded_at));
        let dirs: Vec<PathBuf> = rest.iter().map(|k| self.index_dir(k)).collect();
        candidates.retain(|r| {
            let name = pointer_name(r.recorded_at, &r.digest);
            dirs.iter().all(|d| d.join(&name).exists())
        });
        Ok(finish(q, candidates))
    }

    /// Pointers of every day the query's time range touches (all days without one).
    fn list_days(&self, q: &Query) -> Result<Vec<RecordRef>, StoreError> {
        let mut all = Vec::new();
        for day in list_dir(&self.root.join("index/day"))? {
            let Ok(date) = day.parse::<jiff::civil::Date>() else {
                continue;
            };
            if day_in_range(q, date) {
                all.extend(self.list_key(&IndexKey::Day(date))?);
            }
        }
        Ok(all)
    }

    fn delete_object_sync(&self, d: &Digest) -> Result<(), StoreError> {
        let path = self.object_path(d);
        if !path.exists() {
            return Err(StoreError::NotFound { digest: *d });
        }
        if let Some(r) = self.read_retention(d)?
            && retention_holds(&r, Timestamp::now())
        {
            return Err(StoreError::RetentionLocked {
                what: format!("object {d}"),
                until: r.retain_until,
            });
        }
        fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
        let rp = self.retention_path(d);
        match fs::remove_file(&rp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(&rp, e)),
        }
    }

    /// Removes partial files that writers killed mid-write left in `tmp/` (never
    /// visible to readers, but a killed 4 GB copy leaves gigabytes). A partial is stale
    /// when it is older than `min_age` and no process holds its lock: every writer locks
    /// its partial from creation to rename, and the kernel drops the lock of a killed
    /// one. Runs when a store is opened; returns what it removed.
    pub fn clean_stale_temporaries(
        &self,
        min_age: std::time::Duration,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.root.join("tmp");
        let mut removed = Vec::new();
        for name in list_dir(&dir)? {
            if !name.starts_with(PARTIAL_PREFIX) {
                continue;
            }
            let path = dir.join(&name);
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let old = file
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= min_age);
            // the lock tells a live writer from a dead one; the age covers the instant
            // between a partial's creation and its writer taking the lock
            if old && file.try_lock().is_ok() {
                match fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(&path, e)),
                }
            }
        }
        Ok(removed)
    }

    /// Files left in `tmp/` by writers that died mid-write. They are never visible to
    /// readers; this lists them for cleanup.
    pub fn stale_temporaries(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.root.join("tmp");
        Ok(list_dir(&dir)?
            .into_iter()
            .filter(|n| n != RETENTION_LOCK)
            .map(|n| dir.join(n))
            .collect())
    }
}

/// What every partial file in `tmp/` is named after.
const PARTIAL_PREFIX: &str = ".partial-";
/// How old an unlocked partial must be before a store's opener removes it.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The lock file, in `tmp/`, that serializes retention updates (never a temporary).
const RETENTION_LOCK: &str = ".retention.lock";

fn list_dir(dir: &Path) -> Result<Vec<String>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

impl EvidenceStore for LocalStore {
    fn uri(&self) -> String {
        format!("file://{}", self.root.display())
    }
    async fn put_object(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.put_object_sync(src, retention)
    }
    async fn get_object(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        self.get_object_sync(digest)
    }
    async fn has_object(&self, digest: &Digest) -> Result<bool, StoreError> {
        Ok(self.object_path(digest).exists())
    }
    async fn check_object(&self, digest: &Digest) -> Result<u64, StoreError> {
        self.check_object_sync(digest)
    }
    async fn retention(&self, digest: &Digest) -> Result<Option<Retention>, StoreError> {
        self.read_retention(digest)
    }
    async fn put_record(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.put_record_sync(envelope, retention)
    }
    async fn chain_head(&self, chain_id: &str) -> Result<Option<(u64, Digest)>, StoreError> {
        self.chain_head_sync(chain_id)
    }
    async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        LocalStore::chain(self, chain_id)
    }
    async fn query(&self, query: &Query) -> Result<Vec<RecordRef>, StoreError> {
        self.query_sync(query)
    }
    async fn delete_object(&self, digest: &Digest) -> Result<(), StoreError> {
        self.delete_object_sync(digest)
    }
    async fn put_log_file(&self, name: &str, bytes: &[u8], _retention: &Retention) -> LogWrite {
        let path = self.log_path(name)?;
        if self.write_new(&path, bytes)? {
            return Ok(None);
        }
        let existing = fs::read(&path).map_err(|e| StoreError::io(&path, e))?;
        Ok((existing != bytes).then_some(existing))
    }
    async fn get_log_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.log_path(name)?;
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }
    async fn list_log_dir(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        list_dir(&self.log_path(dir)?)
    }
}

/// Synchronous access for tests, benchmarks and tools that have no runtime.
impl LocalStore {
    pub fn put_object_blocking(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.put_object_sync(src, retention)
    }
    pub fn put_record_blocking(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.put_record_sync(envelope, retention)
    }
    pub fn get_object_blocking(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        self.get_object_sync(d)
    }
    pub fn query_blocking(&self, q: &Query) -> Result<Vec<RecordRef>, StoreError> {
        self.query_sync(q)
    }
    pub fn chain_head_blocking(&self, chain: &str) -> Result<Option<(u64, Digest)>, StoreError> {
        self.chain_head_sync(chain)
    }
    pub fn delete_object_blocking(&self, d: &Digest) -> Result<(), StoreError> {
        self.delete_object_sync(d)
    }
    pub fn retention_blocking(&self, d: &Digest) -> Result<Option<Retention>, StoreError> {
        self.read_retention(d)
    }
}
