//! The transparency log under every store: what makes a *set* of records provably
//! complete.
//!
//! Every record a store accepts gets a log index. The log is an RFC 6962 / 9162 Merkle
//! tree over *log entries* (one per record: its digest and every value a query selects
//! on), published in the C2SP tlog-tiles layout and committed to by checkpoints in the
//! C2SP tlog-checkpoint / signed-note format, signed by a log key (Ed25519, separate from
//! the pipeline keys). The tree arithmetic, tiles and notes come from `tlog_tiles` and
//! `signed_note`, Rust ports of Go's `golang.org/x/mod/sumdb/tlog` and `sumdb/note`.
//!
//! # Layout (below `log/` in every backend)
//!
//! ```text
//! seq/<index / 1000 :09>/<index :012>   the entry at that index (first write wins)
//! records/<hex[..2]>/<hex>              the index of a record (first write wins)
//! tile/<L>/<N>[.p/<W>]                  hash tiles (height 8), C2SP tlog-tiles
//! tile/entries/<N>[.p/<W>]              entry bundles (uint16 length-prefixed entries)
//! checkpoints/<size :020>               signed checkpoints, one per size
//! ```
//!
//! Every name is written once; a name that already holds different bytes is never
//! overwritten (the backends' `put_log_file`).
//!
//! # Sequencing
//!
//! A record is stored (envelope, chain position, index pointers) and then sequenced by
//! the same writer: it finds the first free index and claims it with a write-once put;
//! losing a race means another record took that index, so it tries the next. An index
//! is only ever claimed when the one before it is taken, so the claimed indexes have no
//! gap. Before it is sequenced a record is *pending*: stored, indexed and verifiable,
//! but not yet part of what a checkpoint proves. A writer killed between storing and
//! sequencing leaves a pending record; `custody log verify` names it and `custody log
//! sequence` sequences it.
//!
//! # Checkpoints
//!
//! `custody log checkpoint` (run by the governance parent, which holds the log key)
//! reads the entries after the last checkpoint, writes the tiles that cover them and
//! signs a checkpoint of the new size. The previous checkpoint's tiles are read through
//! `TileHashReader`, which authenticates them against that checkpoint's root, so a
//! tampered tile cannot be built upon.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use custody_evidence::{Digest, RecordInfo, Statement};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use signed_note::{Note, Signer as _, StandardSigner, StandardVerifier, Verifier, VerifierList};
use tlog_tiles::{
    Checkpoint, EMPTY_HASH, HASH_SIZE, Hash, HashReader, Tile, TileHashReader, TileReader,
    record_hash, stored_hash_index, stored_hashes_for_record_hash, tree_hash,
};

use crate::error::StoreError;
use crate::query::Query;
use crate::{EvidenceStore, Retention};

/// Tile height: 256 hashes (or entries) per full tile, as C2SP tlog-tiles fixes it.
pub const TILE_HEIGHT: u8 = 8;
const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Entries per `seq/` directory.
const SHARD: u64 = 1000;
/// An entry bundle stores each entry's length in 16 bits.
pub const MAX_ENTRY: usize = u16::MAX as usize;
/// Claims tried in a row before the end of the log is looked up again.
const RELOOK_AFTER: u32 = 8;
/// Claims tried before a writer gives up (hundreds of writers racing for one index).
const MAX_CLAIMS: u32 = 10_000;
/// The checkpoint extension line that says when it was signed.
const TIME_EXTENSION: &str = "time ";
/// The largest log this build reads (far beyond any pipeline's evidence).
pub const MAX_LOG_SIZE: u64 = 1 << 40;

/// One log entry: which record, and every value a query selects on, taken from the
/// record's signed statement. Serialized as compact JSON, fields in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogEntry {
    /// The DSSE envelope's digest.
    pub record: Digest,
    pub recorded_at: Timestamp,
    /// When the record was sequenced: never before it was recorded, and never before
    /// the entry ahead of it, so the log is in time order (what lets a bundle prove
    /// that no entry before its range answers a query that starts later).
    pub sequenced_at: Timestamp,
    pub stage: String,
    pub chain: String,
    pub sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// HIPAA citations (`164.312(b)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    pub subjects: Vec<Digest>,
}

impl LogEntry {
    /// The entry of a record, from its signed statement.
    pub fn of_record(statement: &Statement, record: &RecordInfo, digest: Digest) -> Self {
        let mut subjects = statement.subject_digests();
        subjects.sort();
        subjects.dedup();
        Self {
            record: digest,
            recorded_at: record.recorded_at,
            sequenced_at: record.recorded_at,
            stage: record.stage.clone(),
            chain: record.chain.id.clone(),
            sequence: record.chain.sequence,
            commit: record.pipeline.commit.clone(),
            pipeline: record.pipeline.pipeline_key(),
            environment: record.pipeline.environment.clone(),
            service: record.pipeline.service.clone(),
            controls: record
                .hipaa
                .iter()
                .map(|c| c.citation().to_owned())
                .collect(),
            subjects,
        }
    }

    /// The bytes that are hashed into the tree.
    pub fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let bytes = serde_json::to_vec(self).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if bytes.len() > MAX_ENTRY {
            return Err(StoreError::Invalid(format!(
                "the record's log entry would be {} bytes (at most {MAX_ENTRY}): it names too many subjects ({}) or too long a value",
                bytes.len(),
                self.subjects.len()
            )));
        }
        Ok(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a Custody log entry: {e}"))
    }

    /// Whether the record this entry describes answers `q`: the same criteria as the
    /// store's index, read from the entry instead of pointers.
    pub fn matches(&self, q: &Query) -> bool {
        let utc_day = self.recorded_at.to_zoned(jiff::tz::TimeZone::UTC).date();
        q.commit.as_ref().is_none_or(|c| {
            self.commit
                .as_ref()
                .is_some_and(|e| e.eq_ignore_ascii_case(c))
        }) && q.subject.is_none_or(|s| self.subjects.contains(&s))
            && q.pipeline
                .as_ref()
                .is_none_or(|p| self.pipeline.as_ref() == Some(p))
            && q.day.is_none_or(|d| d == utc_day)
            && q.environment
                .as_ref()
                .is_none_or(|e| self.environment.as_ref() == Some(e))
            && q.stage.as_ref().is_none_or(|s| &self.stage == s)
            && q.control
                .is_none_or(|c| self.controls.iter().any(|x| x == c.citation()))
            && q.in_time_range(self.recorded_at)
    }
}

/// The name of the claim for `index`.
pub(crate) fn claim_name(index: u64) -> String {
    format!("seq/{:09}/{index:012}", index / SHARD)
}

fn marker_name(record: &Digest) -> String {
    let hex = record.hex();
    format!("records/{}/{hex}", &hex[..2])
}

fn checkpoint_name(size: u64) -> String {
    format!("checkpoints/{size:020}")
}

/// The C2SP tlog-tiles path of a hash tile (`level` Some) or entry bundle (None).
pub fn tile_path(level: Option<u8>, n: u64, width: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    let level = level.map_or_else(|| "entries".to_owned(), |l| l.to_string());
    let partial = if width == TILE_WIDTH {
        String::new()
    } else {
        format!(".p/{width}")
    };
    format!("tile/{level}/{}{partial}", groups.join("/"))
}

/// Checks that a log file name is ours to write: `/`-separated components of
/// `[A-Za-z0-9._-]`, none of them `.` or `..`.
pub(crate) fn check_log_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "`{name}` is not a log file name"
        )))
    }
}

/// Runs a future that never waits: the local store's futures complete on first poll,
/// so its synchronous API can share the async log code.
pub(crate) fn ready<F: Future>(f: F) -> Result<F::Output, StoreError> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(StoreError::Invalid(
            "a local log operation waited for I/O it never starts".into(),
        )),
    }
}

fn parse_index(name: &str, bytes: &[u8]) -> Result<u64, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| StoreError::Invalid(format!("log file {name} does not hold an index")))
}

/// Where a record sits in the log, if it was sequenced.
pub async fn log_index<S: EvidenceStore + ?Sized>(
    store: &S,
    record: &Digest,
) -> Result<Option<u64>, StoreError> {
    let name = marker_name(record);
    match store.get_log_file(&name).await? {
        Some(b) => parse_index(&name, &b).map(Some),
        None => Ok(None),
    }
}

/// The number of claimed entries: the first free index.
pub async fn log_end<S: EvidenceStore + ?Sized>(store: &S) -> Result<u64, StoreError> {
    let mut shards: Vec<u64> = store
        .list_log_dir("seq")
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    shards.sort_unstable();
    // a directory made by a writer that has not written its claim yet is empty
    for shard in shards.into_iter().rev() {
        let last = store
            .list_log_dir(&format!("seq/{shard:09}"))
            .await?
            .iter()
            .filter_map(|s| s.parse::<u64>().ok())
            .max();
        if let Some(last) = last {
            return Ok(last + 1);
        }
    }
    Ok(0)
}

/// How far back from the end of the log a record written again looks for a claim of
/// its own whose index marker was never written.
const RECLAIM_WINDOW: u64 = 256;

/// Gives a stored record its log index, once: a record already sequenced keeps its
/// index. Called by every backend after it stored the record; `again` when the
/// record's chain entry was there before this put (a retry, a push, a repair): then a
/// writer before us may have claimed an index and stopped (killed, or its answers
/// lost) before writing the index marker, and that claim is found and adopted rather
/// than the record being logged twice.
pub(crate) async fn sequence<S: EvidenceStore + ?Sized>(
    store: &S,
    entry: &LogEntry,
    retention: &Retention,
    again: bool,
) -> Result<u64, StoreError> {
    if let Some(index) = log_index(store, &entry.record).await? {
        return Ok(index);
    }
    let mut index = log_end(store).await?;
    if again {
        for i in (index.saturating_sub(RECLAIM_WINDOW)..index).rev() {
            let Some(b) = store.get_log_file(&claim_name(i)).await? else {
                continue;
            };
            if LogEntry::from_bytes(&b).is_ok_and(|e| e.record == entry.record) {
                return mark(store, &entry.record, i, retention).await;
            }
        }
    }
    let mut lost = 0;
    for _ in 0..MAX_CLAIMS {
        let mut entry = entry.clone();
        entry.sequenced_at = Timestamp::now().max(entry.recorded_at);
        if let Some(prev) = index.checked_sub(1)
            && let Some(b) = store.get_log_file(&claim_name(prev)).await?
            && let Ok(p) = LogEntry::from_bytes(&b)
        {
            entry.sequenced_at = entry.sequenced_at.max(p.sequenced_at);
        }
        let bytes = entry.to_bytes()?;
        match store
            .put_log_file(&claim_name(index), &bytes, retention)
            .await?
        {
            None => {
                crate::crash_point("log-claim");
                return mark(store, &entry.record, index, retention).await;
            }
            Some(_) => {
                lost += 1;
                index = if lost % RELOOK_AFTER == 0 {
                    log_end(store).await?.max(index + 1)
                } else {
                    index + 1
                };
            }
        }
    }
    Err(StoreError::Invalid(format!(
        "could not claim a log index for {} after {MAX_CLAIMS} tries",
        entry.record
    )))
}

/// Writes a record's index marker; returns the index readers use. First write wins
/// here too: a concurrent re-put of the same record may have marked it first.
async fn mark<S: EvidenceStore + ?Sized>(
    store: &S,
    record: &Digest,
    index: u64,
    retention: &Retention,
) -> Result<u64, StoreError> {
    let marker = marker_name(record);
    match store
        .put_log_file(&marker, index.to_string().as_bytes(), retention)
        .await?
    {
        None => Ok(index),
        Some(other) => parse_index(&marker, &other),
    }
}

/// The entries at `[from, to)`, read from their claims.
pub async fn read_entries<S: EvidenceStore + ?Sized>(
    store: &S,
    from: u64,
    to: u64,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut out = Vec::with_capacity(usize::try_from(to.saturating_sub(from)).unwrap_or(0));
    for i in from..to {
        match store.get_log_file(&claim_name(i)).await? {
            Some(b) => out.push(b),
            None => {
                return Err(StoreError::Invalid(format!(
                    "log index {i} has no entry, though a later index does"
                )));
            }
        }
    }
    Ok(out)
}

/// The log's signing key: a signed-note Ed25519 private key
/// (`PRIVATE+KEY+<origin>+<id>+<base64>`). Its name is the log's origin.
pub struct LogSigner {
    signer: StandardSigner,
    verifier: LogVerifier,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LogSigner").field(&self.verifier).finish()
    }
}

impl LogSigner {
    pub fn parse(text: &str) -> Result<Self, String> {
        use base64::Engine as _;
        let bad = || "not a log signing key: make one with `custody log keygen`".to_owned();
        let text = text.trim();
        let signer = StandardSigner::new(text).map_err(|_| bad())?;
        // the key is `0x01 || seed`; signed_note keeps the public half private
        // PRIVATE+KEY+<name>+<hash>+<base64>: the base64 may hold `+` itself
        let key = text
            .splitn(5, '+')
            .nth(4)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or_else(bad)?;
        let seed: [u8; 32] = match key.split_first() {
            Some((1, seed)) => seed.try_into().map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let verifier = LogVerifier::parse(&signed_note::new_ed25519_verifier_key(
            signer.name(),
            &public,
        ))
        .map_err(|_| bad())?;
        Ok(Self { signer, verifier })
    }

    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The verifier key that checks this key's checkpoints.
    pub fn verifier(&self) -> &LogVerifier {
        &self.verifier
    }
}

/// A log verifier key (`<origin>+<id>+<base64>`), as `custody log keygen` prints it
/// and Go's `note.NewVerifier` reads it.
#[derive(Clone)]
pub struct LogVerifier {
    text: String,
    parsed: std::sync::Arc<StandardVerifier>,
}

impl std::fmt::Debug for LogVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl LogVerifier {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_owned();
        let parsed = StandardVerifier::new(&text)
            .map_err(|e| format!("not a log verifier key ({e}): expected ORIGIN+ID+KEY"))?;
        Ok(Self {
            text,
            parsed: std::sync::Arc::new(parsed),
        })
    }

    pub fn origin(&self) -> &str {
        self.text.split('+').next().unwrap_or_default()
    }

    pub(crate) fn boxed(&self) -> Box<dyn Verifier> {
        Box::new(SharedVerifier(std::sync::Arc::clone(&self.parsed)))
    }
}

/// A parsed verifier shared by every list that checks a note with it.
struct SharedVerifier(std::sync::Arc<StandardVerifier>);

impl Verifier for SharedVerifier {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn key_id(&self) -> u32 {
        self.0.key_id()
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.0.verify(msg, sig)
    }
}

impl std::fmt::Display for LogVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A new log key pair for `origin`: (signing key text, verifier key).
pub fn generate_log_key(origin: &str) -> Result<(String, LogVerifier), String> {
    if !signed_note::is_key_name_valid(origin) {
        return Err(format!(
            "`{origin}` cannot name a log: use a non-empty name without spaces or `+` (for example example.org/custody-log)"
        ));
    }
    let (skey, vkey) = signed_note::generate_key(&mut rand_core::OsRng, origin);
    Ok((skey, LogVerifier::parse(&vkey)?))
}

/// A checkpoint whose signature was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// When it was signed (its `time <unix seconds>` extension line), if it says.
    pub time: Option<Timestamp>,
    /// The signed note, as stored.
    pub note: Vec<u8>,
}

impl SignedCheckpoint {
    /// Opens a checkpoint note signed by one of `verifiers`.
    pub fn open(note: &[u8], verifiers: &[LogVerifier]) -> Result<Self, String> {
        let parsed = Note::from_bytes(note).map_err(|e| format!("not a signed note: {e}"))?;
        let list = VerifierList::new(verifiers.iter().map(LogVerifier::boxed).collect());
        parsed.verify(&list).map_err(|e| match e {
            signed_note::NoteError::UnverifiedNote => {
                "not signed by the log key given (a checkpoint from another log, or signed by the wrong key)".to_owned()
            }
            other => format!("its signature does not verify: {other}"),
        })?;
        let cp = Checkpoint::from_bytes(parsed.text())
            .map_err(|e| format!("not a tlog checkpoint: {e}"))?;
        if !verifiers.iter().any(|v| v.origin() == cp.origin()) {
            return Err(format!(
                "its origin `{}` is not the log key's name",
                cp.origin()
            ));
        }
        if cp.size() > MAX_LOG_SIZE {
            return Err(format!("its size {} is beyond any log", cp.size()));
        }
        let time = cp
            .extension()
            .lines()
            .find_map(|l| l.strip_prefix(TIME_EXTENSION))
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| Timestamp::from_second(t).ok());
        Ok(Self {
            origin: cp.origin().to_owned(),
            size: cp.size(),
            root: *cp.hash(),
            time,
            note: note.to_vec(),
        })
    }

    pub fn root_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.root.0)
    }
}

fn sign_checkpoint(signer: &LogSigner, size: u64, root: Hash) -> Result<Vec<u8>, StoreError> {
    let time = format!("{TIME_EXTENSION}{}\n", Timestamp::now().as_second());
    let cp = Checkpoint::new(signer.origin(), size, root, &time)
        .map_err(|e| StoreError::Invalid(format!("checkpoint: {e}")))?;
    let mut note = Note::new(&cp.to_bytes(), &[])
        .map_err(|e| StoreError::Invalid(format!("checkpoint note: {e}")))?;
    note.add_sigs(&[&signer.signer])
        .map_err(|e| StoreError::Invalid(format!("signing the checkpoint: {e}")))?;
    Ok(note.to_bytes())
}

#[cfg(test)]
pub(crate) fn sign_checkpoint_for_test(signer: &LogSigner, size: u64, root: Hash) -> Vec<u8> {
    sign_checkpoint(signer, size, root).unwrap_or_default()
}

/// Proves through the store's tiles that `new` extends `old` (append-only): the tiles,
/// authenticated against `new`'s root, give `old`'s root at `old`'s size. What a
/// witness checks before it cosigns.
pub async fn check_consistent<S: EvidenceStore + ?Sized>(
    store: &S,
    old: &SignedCheckpoint,
    new: &SignedCheckpoint,
) -> Result<(), StoreError> {
    let fork = |got: &Hash| {
        StoreError::LogInconsistent(format!(
            "log fork: the checkpoint of size {} seen before commits to root {}, but the log's checkpoint of size {} gives {} for those entries",
            old.size,
            old.root_base64(),
            new.size,
            base64_of(got)
        ))
    };
    if new.size < old.size {
        return Err(StoreError::LogInconsistent(format!(
            "the log's latest checkpoint (size {}) is smaller than the checkpoint of size {} seen before: the log was rolled back",
            new.size, old.size
        )));
    }
    if old.size == 0 {
        return Ok(());
    }
    if old.size == new.size {
        return if old.root == new.root {
            Ok(())
        } else {
            Err(fork(&new.root))
        };
    }
    let cache = TileCache::default();
    match cache
        .run(store, |tiles| {
            tree_hash(old.size, &TileHashReader::new(new.size, new.root, tiles))
        })
        .await
    {
        Ok(root) if root == old.root => Ok(()),
        Ok(root) => Err(fork(&root)),
        Err(StoreError::Invalid(e)) => Err(StoreError::LogInconsistent(format!(
            "the log's tiles do not prove that its checkpoint of size {} extends the one of size {}: {e}",
            new.size, old.size
        ))),
        Err(e) => Err(e),
    }
}

/// Whether `record` is in the log under `cp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inclusion {
    /// Proven: the entry at this index names the record, and its leaf hash is
    /// authenticated against the checkpoint's root through the log's tiles.
    Included(u64),
    /// Not sequenced, or sequenced at or after the checkpoint's size.
    NotYet,
    /// The store says it is included, but the proof fails: why.
    Disproven(String),
}

/// Proves that `record` is included in the log under `cp` (one index lookup, one
/// entry read, and the tiles from its leaf to the root).
pub async fn prove_included<S: EvidenceStore + ?Sized>(
    store: &S,
    cp: &SignedCheckpoint,
    record: &Digest,
) -> Result<Inclusion, StoreError> {
    let Some(i) = log_index(store, record).await? else {
        return Ok(Inclusion::NotYet);
    };
    if i >= cp.size {
        return Ok(Inclusion::NotYet);
    }
    let Some(entry) = store.get_log_file(&claim_name(i)).await? else {
        return Ok(Inclusion::Disproven(format!(
            "its index marker names log index {i}, which holds no entry"
        )));
    };
    match LogEntry::from_bytes(&entry) {
        Ok(e) if e.record == *record => {}
        Ok(e) => {
            return Ok(Inclusion::Disproven(format!(
                "its index marker names log index {i}, whose entry is record {}",
                e.record
            )));
        }
        Err(err) => {
            return Ok(Inclusion::Disproven(format!("log index {i}: {err}")));
        }
    }
    let cache = TileCache::default();
    let leaf = cache
        .run(store, |tiles| {
            TileHashReader::new(cp.size, cp.root, tiles).read_hashes(&[stored_hash_index(0, i)])
        })
        .await;
    Ok(match leaf {
        Ok(h) if h.first() == Some(&record_hash(&entry)) => Inclusion::Included(i),
        Ok(_) => Inclusion::Disproven(format!(
            "the entry at log index {i} is not the one the checkpoint of size {} commits to",
            cp.size
        )),
        Err(StoreError::Invalid(e)) => Inclusion::Disproven(format!(
            "the log's tiles do not authenticate index {i} against the checkpoint of size {}: {e}",
            cp.size
        )),
        Err(e) => return Err(e),
    })
}

/// Every stored checkpoint's size, ascending.
pub async fn checkpoint_sizes<S: EvidenceStore + ?Sized>(
    store: &S,
) -> Result<Vec<u64>, StoreError> {
    let mut sizes: Vec<u64> = store
        .list_log_dir("checkpoints")
        .await?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    sizes.sort_unstable();
    Ok(sizes)
}

/// The stored checkpoint of `size`, unverified.
pub async fn checkpoint_note<S: EvidenceStore + ?Sized>(
    store: &S,
    size: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    store.get_log_file(&checkpoint_name(size)).await
}

/// The largest stored checkpoint that the verifiers accept.
pub async fn latest_checkpoint<S: EvidenceStore + ?Sized>(
    store: &S,
    verifiers: &[LogVerifier],
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let Some(&size) = checkpoint_sizes(store).await?.last() else {
        return Ok(None);
    };
    let note = checkpoint_note(store, size)
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("checkpoint {size} vanished")))?;
    SignedCheckpoint::open(&note, verifiers)
        .map(Some)
        .map_err(|e| StoreError::Invalid(format!("log checkpoint of size {size}: {e}")))
}

/// Tiles read so far, by (level, index), at the widest width read. Tiles that a
/// computation asked for and did not find are noted, fetched, and the computation run
/// again: the tree code is synchronous, the stores are not.
#[derive(Debug, Default)]
pub struct TileCache {
    data: RefCell<HashMap<(u8, u64), Vec<u8>>>,
    missing: RefCell<Vec<Tile>>,
}

impl TileReader for TileCache {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        let data = self.data.borrow();
        let mut out = Vec::with_capacity(tiles.len());
        let mut missing = Vec::new();
        for t in tiles {
            let need = t.width() as usize * HASH_SIZE;
            match data.get(&(t.level(), t.level_index())) {
                Some(d) if d.len() >= need => out.push(d.get(..need).unwrap_or(d).to_vec()),
                _ => missing.push(*t),
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            self.missing.borrow_mut().extend(missing);
            Err(tlog_tiles::Error::InvalidTile)
        }
    }

    fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
}

impl TileCache {
    /// Adds a hash tile's bytes (from a bundle or a store).
    pub fn insert(&self, level: u8, n: u64, bytes: Vec<u8>) {
        let mut data = self.data.borrow_mut();
        let slot = data.entry((level, n)).or_default();
        if bytes.len() > slot.len() {
            *slot = bytes;
        }
    }

    fn take_missing(&self) -> Vec<Tile> {
        std::mem::take(&mut *self.missing.borrow_mut())
    }

    /// Runs `f` until it no longer needs a tile the cache lacks, fetching what it asks
    /// for from `store`.
    async fn run<S, T>(
        &self,
        store: &S,
        f: impl Fn(&Self) -> Result<T, tlog_tiles::Error>,
    ) -> Result<T, StoreError>
    where
        S: EvidenceStore + ?Sized,
    {
        loop {
            match f(self) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let missing = self.take_missing();
                    if missing.is_empty() {
                        return Err(StoreError::Invalid(format!("log tiles: {e}")));
                    }
                    for t in missing {
                        let bytes = fetch_tile(store, t.level(), t.level_index(), t.width())
                            .await?
                            .ok_or_else(|| {
                                StoreError::Invalid(format!(
                                    "log tile {} is missing from the store",
                                    tile_path(
                                        Some(t.level()),
                                        t.level_index(),
                                        u64::from(t.width())
                                    )
                                ))
                            })?;
                        self.insert(t.level(), t.level_index(), bytes);
                    }
                }
            }
        }
    }
}

/// A stored tile at least `width` wide: the full tile, the partial tile of that
/// width, or a wider partial one.
async fn fetch_tile<S: EvidenceStore + ?Sized>(
    store: &S,
    level: u8,
    n: u64,
    width: u32,
) -> Result<Option<Vec<u8>>, StoreError> {
    let width = u64::from(width);
    let want = usize::try_from(width).unwrap_or(usize::MAX) * HASH_SIZE;
    if let Some(b) = store
        .get_log_file(&tile_path(Some(level), n, TILE_WIDTH))
        .await?
        && b.len() == TILE_WIDTH as usize * HASH_SIZE
    {
        return Ok(Some(b));
    }
    if width < TILE_WIDTH {
        if let Some(b) = store
            .get_log_file(&tile_path(Some(level), n, width))
            .await?
            && b.len() == want
        {
            return Ok(Some(b));
        }
        let dir = format!("{}.p", tile_path(Some(level), n, TILE_WIDTH));
        let mut wider: Vec<u64> = store
            .list_log_dir(&dir)
            .await?
            .iter()
            .filter_map(|w| w.parse().ok())
            .filter(|&w| w > width && w < TILE_WIDTH)
            .collect();
        wider.sort_unstable();
        if let Some(&w) = wider.first()
            && let Some(b) = store.get_log_file(&tile_path(Some(level), n, w)).await?
            && b.len() == usize::try_from(w).unwrap_or(usize::MAX) * HASH_SIZE
        {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Stored hashes of a tree being extended: new ones in memory, older ones through a
/// `TileHashReader` that authenticates them against the previous checkpoint.
struct Extending<'a> {
    new: &'a BTreeMap<u64, Hash>,
    old: Option<TileHashReader<'a>>,
}

impl HashReader for Extending<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let old: Vec<u64> = indexes
            .iter()
            .copied()
            .filter(|i| !self.new.contains_key(i))
            .collect();
        let mut found: HashMap<u64, Hash> = HashMap::new();
        if !old.is_empty() {
            let reader = self
                .old
                .as_ref()
                .ok_or(tlog_tiles::Error::IndexesNotInTree)?;
            for (i, h) in old.iter().zip(reader.read_hashes(&old)?) {
                found.insert(*i, h);
            }
        }
        indexes
            .iter()
            .map(|i| {
                self.new
                    .get(i)
                    .or_else(|| found.get(i))
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Encodes entries as an entry bundle.
pub fn entry_bundle<B: AsRef<[u8]>>(entries: &[B]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let e = e.as_ref();
        // entries are checked against MAX_ENTRY when made
        out.extend_from_slice(&u16::try_from(e.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// Splits an entry bundle into its entries.
pub fn parse_entry_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let [a, b, tail @ ..] = rest else {
            return Err("an entry bundle ends inside a length prefix".into());
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        let Some((entry, after)) = tail.split_at_checked(len) else {
            return Err("an entry bundle ends inside an entry".into());
        };
        out.push(entry);
        rest = after;
    }
    Ok(out)
}

/// What a checkpoint run did.
#[derive(Debug, Clone)]
pub struct CheckpointOutcome {
    pub checkpoint: SignedCheckpoint,
    /// The size of the previous checkpoint (0 when this is the first).
    pub previous: u64,
    pub tiles_written: usize,
}

/// Extends the log's tiles to every claimed entry and signs a checkpoint of the new
/// size. The previous checkpoint must verify with `signer`'s key; its tiles are read
/// through a reader that authenticates them against its root.
pub async fn checkpoint<S: EvidenceStore + ?Sized>(
    store: &S,
    signer: &LogSigner,
    retention: &Retention,
) -> Result<CheckpointOutcome, StoreError> {
    let own = signer.verifier().clone();
    let previous = latest_checkpoint(store, std::slice::from_ref(&own)).await?;
    let (m, root_m) = previous
        .as_ref()
        .map_or((0, EMPTY_HASH), |c| (c.size, c.root));
    let n = log_end(store).await?;
    if n < m {
        return Err(StoreError::LogInconsistent(format!(
            "the latest checkpoint covers {m} entries but the log holds {n}: entries were removed"
        )));
    }
    if n == m
        && let Some(cp) = previous
    {
        return Ok(CheckpointOutcome {
            checkpoint: cp,
            previous: m,
            tiles_written: 0,
        });
    }
    let new_entries = read_entries(store, m, n).await?;
    let cache = TileCache::default();
    let (hashes, root) = cache
        .run(store, |tiles| {
            let mut new = BTreeMap::new();
            for (k, e) in new_entries.iter().enumerate() {
                let i = m + k as u64;
                let r = Extending {
                    new: &new,
                    old: (m > 0).then(|| TileHashReader::new(m, root_m, tiles)),
                };
                let hs = stored_hashes_for_record_hash(i, record_hash(e), &r)?;
                let base = stored_hash_index(0, i);
                for (j, h) in hs.into_iter().enumerate() {
                    new.insert(base + j as u64, h);
                }
            }
            let r = Extending {
                new: &new,
                old: (m > 0).then(|| TileHashReader::new(m, root_m, tiles)),
            };
            let root = tree_hash(n, &r)?;
            Ok((new, root))
        })
        .await?;

    // the tiles that cover [m, n): each one's hashes, older ones read back as above
    let mut written = 0;
    for t in Tile::new_tiles(TILE_HEIGHT, m, n) {
        let (l, idx, w) = (t.level(), t.level_index(), u64::from(t.width()));
        let level = l * TILE_HEIGHT;
        let wanted: Vec<u64> = (0..w)
            .map(|k| stored_hash_index(level, idx * TILE_WIDTH + k))
            .collect();
        let data = cache
            .run(store, |tiles| {
                let r = Extending {
                    new: &hashes,
                    old: (m > 0).then(|| TileHashReader::new(m, root_m, tiles)),
                };
                r.read_hashes(&wanted)
            })
            .await?;
        let bytes: Vec<u8> = data.iter().flat_map(|h| h.0).collect();
        write_once(store, &tile_path(Some(l), idx, w), &bytes, retention).await?;
        written += 1;
        if l == 0 {
            let first = idx * TILE_WIDTH;
            let mut entries: Vec<Vec<u8>> = if first < m {
                read_entries(store, first, m).await?
            } else {
                Vec::new()
            };
            let from = first.max(m);
            let to = first + w;
            let range =
                usize::try_from(from - m).unwrap_or(0)..usize::try_from(to - m).unwrap_or(0);
            entries.extend(new_entries.get(range).unwrap_or_default().iter().cloned());
            write_once(
                store,
                &tile_path(None, idx, w),
                &entry_bundle(&entries),
                retention,
            )
            .await?;
            written += 1;
        }
    }
    let note = sign_checkpoint(signer, n, root)?;
    let name = checkpoint_name(n);
    if let Some(existing) = store.put_log_file(&name, &note, retention).await? {
        let other = SignedCheckpoint::open(&existing, std::slice::from_ref(&own))
            .map_err(|e| StoreError::Invalid(format!("log checkpoint of size {n}: {e}")))?;
        if other.root != root {
            return Err(StoreError::LogInconsistent(format!(
                "log fork: a checkpoint of size {n} already commits to root {}, but the entries give {}",
                other.root_base64(),
                base64_of(&root)
            )));
        }
    }
    let checkpoint = SignedCheckpoint::open(&note, std::slice::from_ref(&own))
        .map_err(|e| StoreError::Invalid(format!("the checkpoint just signed: {e}")))?;
    Ok(CheckpointOutcome {
        checkpoint,
        previous: m,
        tiles_written: written,
    })
}

fn base64_of(h: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h.0)
}

/// Writes a tile (or another derived file) that must hold exactly these bytes.
async fn write_once<S: EvidenceStore + ?Sized>(
    store: &S,
    name: &str,
    bytes: &[u8],
    retention: &Retention,
) -> Result<(), StoreError> {
    match store.put_log_file(name, bytes, retention).await? {
        None => Ok(()),
        Some(_) => Err(StoreError::LogInconsistent(format!(
            "log file {name} already holds different bytes: the log was altered"
        ))),
    }
}

/// What `custody log verify` finds.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogAudit {
    /// Claimed entries.
    pub size: u64,
    /// Verified checkpoints: (size, root in base64).
    pub checkpoints: Vec<(u64, String)>,
    /// Entries after the latest checkpoint (sequenced, not yet committed to).
    pub uncheckpointed: u64,
    /// Problems, each naming what it is about.
    pub findings: Vec<LogFinding>,
    /// Records sequenced more than once (after a crash and a retry): not a gap.
    pub duplicates: Vec<(Digest, Vec<u64>)>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LogFinding {
    pub about: String,
    pub message: String,
}

impl LogAudit {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    fn finding(&mut self, about: impl Into<String>, message: impl Into<String>) {
        self.findings.push(LogFinding {
            about: about.into(),
            message: message.into(),
        });
    }
}

/// Verifies the whole log: every entry is well formed and names a stored record; the
/// tree recomputed from the entries gives every checkpoint's root (so the log only
/// grew, and no two histories exist); every checkpoint is signed by a verifier;
/// the stored tiles hold what the entries give; and every record in the store is in
/// the log. Cost: one read per entry and per record; an auditor's full check.
pub async fn verify_log<S: EvidenceStore + ?Sized>(
    store: &S,
    verifiers: &[LogVerifier],
    known: &[Vec<u8>],
) -> Result<LogAudit, StoreError> {
    let mut audit = LogAudit::default();
    let n = log_end(store).await?;
    audit.size = n;
    let entries = read_entries(store, 0, n).await?;
    let mut hashes = MemoryHashes::default();
    let mut by_record: BTreeMap<Digest, Vec<u64>> = BTreeMap::new();
    let mut last_time = None;
    for (i, e) in entries.iter().enumerate() {
        let i = i as u64;
        hashes
            .append(i, record_hash(e))
            .map_err(|e| StoreError::Invalid(format!("log tree: {e}")))?;
        match LogEntry::from_bytes(e) {
            Ok(entry) => {
                if let Err(m) = check_order(&entry, last_time) {
                    audit.finding(format!("log index {i}"), m);
                }
                last_time = Some(entry.sequenced_at);
                by_record.entry(entry.record).or_default().push(i);
                if !store.has_object(&entry.record).await? {
                    audit.finding(
                        format!("log index {i}"),
                        format!(
                            "names record {} ({} stage, recorded {}), which the store no longer holds: evidence was removed",
                            entry.record, entry.stage, entry.recorded_at
                        ),
                    );
                }
            }
            Err(err) => audit.finding(format!("log index {i}"), err),
        }
    }
    for (d, idx) in &by_record {
        if idx.len() > 1 {
            audit.duplicates.push((*d, idx.clone()));
        }
        match log_index(store, d).await? {
            Some(x) if idx.contains(&x) => {}
            Some(x) => audit.finding(
                format!("record {d}"),
                format!(
                    "its index marker names log index {x}, but the entry there is another record's"
                ),
            ),
            None => {}
        }
    }
    // checkpoints: signed, within the log, and committing to the entries' tree
    let mut latest = 0;
    for size in checkpoint_sizes(store).await? {
        let about = format!("checkpoint of size {size}");
        let Some(note) = checkpoint_note(store, size).await? else {
            continue;
        };
        let cp = match SignedCheckpoint::open(&note, verifiers) {
            Ok(cp) => cp,
            Err(e) => {
                audit.finding(about, e);
                continue;
            }
        };
        if cp.size != size {
            audit.finding(
                about,
                format!("is stored under size {size} but says {}", cp.size),
            );
            continue;
        }
        if size > n {
            audit.finding(
                about,
                format!("commits to {size} entries but the log holds {n}: entries {n}..{size} were removed"),
            );
            continue;
        }
        let root = hashes
            .root(size)
            .map_err(|e| StoreError::Invalid(format!("log tree: {e}")))?;
        if root != cp.root {
            audit.finding(
                about,
                format!(
                    "commits to root {} but the log's first {size} entries give {}: the log was rewritten (a fork)",
                    cp.root_base64(),
                    base64_of(&root)
                ),
            );
            continue;
        }
        audit.checkpoints.push((size, cp.root_base64()));
        latest = latest.max(size);
    }
    // checkpoints the auditor kept from earlier: the log must extend each of them
    for note in known {
        match SignedCheckpoint::open(note, verifiers) {
            Ok(cp) if cp.size > n => audit.finding(
                format!("kept checkpoint of size {}", cp.size),
                format!("the log holds only {n} entries now: it shrank"),
            ),
            Ok(cp) => {
                let root = hashes
                    .root(cp.size)
                    .map_err(|e| StoreError::Invalid(format!("log tree: {e}")))?;
                if root != cp.root {
                    audit.finding(
                        format!("kept checkpoint of size {}", cp.size),
                        "the log no longer extends it: its first entries changed (a fork)",
                    );
                }
            }
            Err(e) => audit.finding("kept checkpoint", e),
        }
    }
    audit.uncheckpointed = n - latest;
    // tiles must hold what the entries give
    for t in Tile::new_tiles(TILE_HEIGHT, 0, latest) {
        let (l, idx, w) = (t.level(), t.level_index(), u64::from(t.width()));
        let path = tile_path(Some(l), idx, w);
        let want: Vec<u8> = (0..w)
            .flat_map(|k| {
                hashes
                    .get(stored_hash_index(l * TILE_HEIGHT, idx * TILE_WIDTH + k))
                    .0
            })
            .collect();
        match fetch_tile(store, l, idx, t.width()).await? {
            Some(b) if b.get(..want.len()) == Some(&want[..]) => {}
            Some(_) => audit.finding(
                format!("log tile {path}"),
                "differs from the hashes of the entries",
            ),
            None => audit.finding(format!("log tile {path}"), "is missing"),
        }
        if l == 0 {
            let path = tile_path(None, idx, w);
            let first = usize::try_from(idx * TILE_WIDTH).unwrap_or(usize::MAX);
            let want = entry_bundle(
                entries
                    .get(first..first.saturating_add(usize::try_from(w).unwrap_or(0)))
                    .unwrap_or_default(),
            );
            let found = match store.get_log_file(&path).await? {
                Some(b) => Some(b),
                None => store
                    .get_log_file(&tile_path(None, idx, TILE_WIDTH))
                    .await?
                    .map(|b| b.get(..want.len()).unwrap_or(&b).to_vec()),
            };
            match found {
                Some(b) if b == want => {}
                Some(_) => audit.finding(
                    format!("log entry bundle {path}"),
                    "differs from the entries",
                ),
                None => audit.finding(format!("log entry bundle {path}"), "is missing"),
            }
        }
    }
    // every record in the store is in the log
    let logged: BTreeSet<Digest> = by_record.keys().copied().collect();
    for r in store.query(&Query::default()).await? {
        if !logged.contains(&r.digest) {
            audit.finding(
                format!("record {}", r.digest),
                format!(
                    "recorded {} but not in the log (its writer stopped before sequencing it): run `custody log sequence`",
                    r.recorded_at
                ),
            );
        }
    }
    Ok(audit)
}

/// Every stored hash of a tree, in memory: for verifying a whole log.
#[derive(Debug, Default)]
pub struct MemoryHashes {
    hashes: Vec<Hash>,
}

impl HashReader for MemoryHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i).copied())
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl MemoryHashes {
    /// Appends leaf `i` (which must be the next one).
    pub fn append(&mut self, i: u64, leaf: Hash) -> Result<(), tlog_tiles::Error> {
        let new = stored_hashes_for_record_hash(i, leaf, self)?;
        self.hashes.extend(new);
        Ok(())
    }

    pub fn root(&self, size: u64) -> Result<Hash, tlog_tiles::Error> {
        tree_hash(size, self)
    }

    fn get(&self, index: u64) -> Hash {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.hashes.get(i).copied())
            .unwrap_or(EMPTY_HASH)
    }
}

/// Sequences every stored record that is not in the log (left pending by a writer that
/// stopped between storing and sequencing). Returns them with their new indexes.
pub async fn sequence_pending<S: EvidenceStore + ?Sized>(
    store: &S,
    retention: &Retention,
) -> Result<Vec<(Digest, u64)>, StoreError> {
    let mut done = Vec::new();
    for r in store.query(&Query::default()).await? {
        if log_index(store, &r.digest).await?.is_some() {
            continue;
        }
        let bytes = store.get_object(&r.digest).await?;
        let decoded = crate::layout::decode_record(&bytes)?;
        let index = sequence(store, &decoded.log_entry, retention, true).await?;
        done.push((r.digest, index));
    }
    Ok(done)
}

/// The log's time order: an entry is sequenced no earlier than it was recorded and no
/// earlier than the entry before it.
fn check_order(entry: &LogEntry, previous: Option<Timestamp>) -> Result<(), String> {
    if entry.sequenced_at < entry.recorded_at {
        return Err(format!(
            "record {} says it was sequenced at {}, before it was recorded ({}): the entry is forged",
            entry.record, entry.sequenced_at, entry.recorded_at
        ));
    }
    if let Some(p) = previous
        && entry.sequenced_at < p
    {
        return Err(format!(
            "record {} was sequenced at {}, before the entry ahead of it ({p}): the log is out of order",
            entry.record, entry.sequenced_at
        ));
    }
    Ok(())
}

/// What proves that a run of entries, `[from, size)`, is exactly what the log holds
/// there under a checkpoint of `size`: the hashes of the complete subtrees left of
/// `from` (at most one per bit of `from`). With them and the entries, the checkpoint's
/// root is recomputed; no entry can be left out, added or changed without changing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RangeProof {
    pub size: u64,
    pub from: u64,
    /// The subtree hashes left of `from`, largest subtree first, base64.
    pub frontier: Vec<String>,
}

/// The stored-hash indexes of the complete subtrees that make up `[0, from)`, largest
/// first.
fn frontier_indexes(from: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for level in (0..64u8).rev() {
        if from & (1 << level) != 0 {
            out.push(stored_hash_index(level, start >> level));
            start += 1 << level;
        }
    }
    out
}

/// The entries `[from, size)` of a checkpoint and their proof. `from` is rounded down
/// to a tile, so the entries are whole C2SP entry bundles (the last one partial).
pub async fn prove_range<S: EvidenceStore + ?Sized>(
    store: &S,
    checkpoint: &SignedCheckpoint,
    from: u64,
) -> Result<(RangeProof, Vec<Vec<u8>>), StoreError> {
    let size = checkpoint.size;
    let from = (from.min(size) / TILE_WIDTH) * TILE_WIDTH;
    let wanted = frontier_indexes(from);
    let frontier = if wanted.is_empty() {
        Vec::new()
    } else {
        let cache = TileCache::default();
        cache
            .run(store, |tiles| {
                TileHashReader::new(size, checkpoint.root, tiles).read_hashes(&wanted)
            })
            .await?
    };
    let entries = read_entries(store, from, size).await?;
    Ok((
        RangeProof {
            size,
            from,
            frontier: frontier.iter().map(base64_of).collect(),
        },
        entries,
    ))
}

/// Hashes by stored-hash index, filled as a range is replayed.
#[derive(Debug, Default)]
struct MapHashes(HashMap<u64, Hash>);

impl HashReader for MapHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|i| {
                self.0
                    .get(i)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Checks that `entries` are the log's entries `[proof.from, proof.size)` under
/// `checkpoint`, by recomputing its root from them and the frontier.
pub fn verify_range<B: AsRef<[u8]>>(
    checkpoint: &SignedCheckpoint,
    proof: &RangeProof,
    entries: &[B],
) -> Result<(), String> {
    use base64::Engine as _;
    if proof.size != checkpoint.size {
        return Err(format!(
            "the proof is for a log of {} entries, the checkpoint for {}",
            proof.size, checkpoint.size
        ));
    }
    if proof.from > proof.size || entries.len() as u64 != proof.size - proof.from {
        return Err(format!(
            "the proof covers entries {}..{} but the bundle holds {}",
            proof.from,
            proof.size,
            entries.len()
        ));
    }
    let wanted = frontier_indexes(proof.from);
    if wanted.len() != proof.frontier.len() {
        return Err(format!(
            "the proof has {} frontier hashes, entry {} needs {}",
            proof.frontier.len(),
            proof.from,
            wanted.len()
        ));
    }
    let mut hashes = MapHashes::default();
    for (idx, b64) in wanted.iter().zip(&proof.frontier) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| <[u8; HASH_SIZE]>::try_from(b).ok())
            .ok_or_else(|| format!("frontier hash `{b64}` is not a base64 SHA-256"))?;
        hashes.0.insert(*idx, Hash(bytes));
    }
    let tree = |e: tlog_tiles::Error| format!("the entries do not form the checkpoint's tree: {e}");
    for (k, e) in entries.iter().enumerate() {
        let i = proof.from + k as u64;
        let hs =
            stored_hashes_for_record_hash(i, record_hash(e.as_ref()), &hashes).map_err(tree)?;
        let base = stored_hash_index(0, i);
        for (j, h) in hs.into_iter().enumerate() {
            hashes.0.insert(base + j as u64, h);
        }
    }
    let root = if proof.size == 0 {
        EMPTY_HASH
    } else {
        tree_hash(proof.size, &hashes).map_err(tree)?
    };
    if root != checkpoint.root {
        return Err(format!(
            "entries {}..{} with the frontier give root {}, the checkpoint says {}: an entry was removed, added or changed",
            proof.from,
            proof.size,
            base64_of(&root),
            checkpoint.root_base64()
        ));
    }
    Ok(())
}

/// The first index `< size` whose entry was sequenced at or after `since` (`size` when
/// none): a binary search over the log's time order.
pub async fn first_index_since<S: EvidenceStore + ?Sized>(
    store: &S,
    size: u64,
    since: Timestamp,
) -> Result<u64, StoreError> {
    let (mut lo, mut hi) = (0u64, size);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let bytes = store
            .get_log_file(&claim_name(mid))
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("log index {mid} has no entry")))?;
        let entry = LogEntry::from_bytes(&bytes)
            .map_err(|e| StoreError::Invalid(format!("log index {mid}: {e}")))?;
        if entry.sequenced_at < since {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// Where a bundle's entries start for a query: the tile holding the last entry
/// sequenced before the query's `since` (so the bundle shows that entry, and by the
/// log's time order nothing earlier can answer), or 0 when the query has no start.
pub async fn range_start<S: EvidenceStore + ?Sized>(
    store: &S,
    size: u64,
    query: &Query,
) -> Result<u64, StoreError> {
    let Some(since) = query.since else {
        return Ok(0);
    };
    let first = first_index_since(store, size, since).await?;
    Ok((first.saturating_sub(1) / TILE_WIDTH) * TILE_WIDTH)
}

/// The C2SP entry-bundle paths that hold the entries `[from, size)` (`from`
/// tile-aligned), one per tile, computed without touching the entries.
pub fn entry_bundle_paths(from: u64, size: u64) -> impl Iterator<Item = String> {
    let first = from / TILE_WIDTH;
    let end = size.div_ceil(TILE_WIDTH);
    (first..end).map(move |idx| {
        let width = (size - idx * TILE_WIDTH).min(TILE_WIDTH);
        tile_path(None, idx, width)
    })
}

/// Splits the entries `[from, from + entries.len())` (from tile-aligned) into their
/// C2SP entry bundles: `(path, bytes)`.
pub fn entry_bundles<B: AsRef<[u8]>>(from: u64, entries: &[B]) -> Vec<(String, Vec<u8>)> {
    entry_bundle_paths(from, from + entries.len() as u64)
        .zip(entries.chunks(usize::try_from(TILE_WIDTH).unwrap_or(256)))
        .map(|(path, chunk)| (path, entry_bundle(chunk)))
        .collect()
}
