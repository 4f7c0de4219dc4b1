//! Evidence stores: content-addressed, write-once objects with a retention date, and
//! pointer entries that turn an auditor's question into a prefix listing.
//!
//! Every backend implements [`EvidenceStore`]. The embedded [`LocalStore`] (`file://`)
//! is the default; [`S3Store`] (`s3://`, feature `s3`) keeps evidence in S3 with Object
//! Lock; [`GitLabStore`] (`gitlab://`, feature `gitlab`) in a GitLab project's generic
//! package registry. Both features are on by default.

mod append;
mod error;
#[cfg(feature = "gitlab")]
mod gitlab;
mod index;
mod layout;
mod local;
pub mod log;
mod options;
mod push;
mod query;
#[cfg(feature = "s3")]
mod s3;
pub mod witness;

/// Aborts the process here when `CUSTODY_CRASH_AT` names `point` (feature
/// `crash-points`, test builds only): the crash-point suite kills a writer at each step
/// of a record write and checks that the store verifies and the next write succeeds.
#[inline]
pub(crate) fn crash_point(point: &str) {
    #[cfg(feature = "crash-points")]
    if std::env::var("CUSTODY_CRASH_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
    #[cfg(not(feature = "crash-points"))]
    let _ = point;
}

#[cfg(feature = "gitlab")]
use crate::gitlab::is_gitlab_url;
#[cfg(feature = "gitlab")]
pub use crate::gitlab::{GitLabError, GitLabOptions, GitLabStore, GitLabToken, TokenKind};
pub use append::{AppendFailure, Appended, Draft, append_or_doubt, append_record};
pub use error::StoreError;
pub use index::{IndexKey, encode_component, index_keys};
pub use local::{Durability, LocalStore};
pub use options::{StaticCredentials, StoreOptions};
pub use push::{PushReport, push_spool};
pub use query::{Query, RecordRef};
#[cfg(feature = "s3")]
pub use s3::S3Store;

use custody_evidence::Digest;
use jiff::Timestamp;
use std::path::Path;

/// HIPAA documentation retention: six years (45 CFR §164.316(b)(2)(i)).
pub const DEFAULT_RETENTION_YEARS: i16 = 6;

/// The longest retention accepted, in years: far beyond any records schedule, and far
/// inside the calendar arithmetic's range (years past 9999 cannot be represented).
pub const MAX_RETENTION_YEARS: i16 = 100;

/// Object Lock mode. The local store records it; S3 enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    Compliance,
    Governance,
}

/// How long, and how strictly, an object is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    pub mode: LockMode,
    pub retain_until: Timestamp,
    #[serde(default)]
    pub legal_hold: bool,
}

impl Retention {
    /// COMPLIANCE mode until `years` after `now`, in UTC calendar years.
    pub fn years_from(now: Timestamp, years: i16) -> Result<Self, StoreError> {
        if !(1..=MAX_RETENTION_YEARS).contains(&years) {
            return Err(StoreError::Invalid(format!(
                "retention of {years} years: choose 1 to {MAX_RETENTION_YEARS} years"
            )));
        }
        let span = jiff::Span::new()
            .try_years(years)
            .map_err(|e| StoreError::Invalid(format!("retention of {years} years: {e}")))?;
        let until = now
            .to_zoned(jiff::tz::TimeZone::UTC)
            .checked_add(span)
            .map_err(|e| StoreError::Invalid(format!("retention of {years} years: {e}")))?
            .timestamp();
        Ok(Self {
            mode: LockMode::Compliance,
            retain_until: until,
            legal_hold: false,
        })
    }

    /// The HIPAA default: six years from now.
    pub fn hipaa_default() -> Result<Self, StoreError> {
        Self::years_from(Timestamp::now(), DEFAULT_RETENTION_YEARS)
    }
}

/// Where an object's bytes come from. Files are streamed: hashed and copied in one
/// pass, in constant memory.
#[derive(Debug, Clone, Copy)]
pub enum ObjectSource<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
    /// A file the caller has already hashed (evidence-upload hashes every input while
    /// planning, for its statement): `size` bytes with SHA-256 `digest`. The digest
    /// names the object before a byte is sent, so S3 saves a pass over the file; every
    /// backend still checks the bytes it stores against it, and stores nothing when
    /// they differ ([`StoreError::Changed`]).
    Measured {
        path: &'a Path,
        digest: Digest,
        size: u64,
    },
}

impl ObjectSource<'_> {
    /// The digest the caller measured, for a [`ObjectSource::Measured`] file.
    pub fn expected(&self) -> Option<Digest> {
        match self {
            ObjectSource::Measured { digest, .. } => Some(*digest),
            ObjectSource::Bytes(_) | ObjectSource::File(_) => None,
        }
    }
}

/// [`StoreError::Changed`] when the bytes read from `path` hash to `actual` but the
/// caller measured `expected`.
fn check_unchanged(
    path: &Path,
    expected: Option<Digest>,
    actual: &Digest,
) -> Result<(), StoreError> {
    match expected {
        Some(expected) if expected != *actual => Err(StoreError::Changed {
            path: path.to_owned(),
            expected,
        }),
        _ => Ok(()),
    }
}

/// Reads a file to send whole and checks it against the digest the caller measured:
/// the bytes hashed are the bytes sent, whatever the server checks.
#[cfg(any(feature = "gitlab", feature = "s3"))]
async fn read_checked(
    path: &Path,
    expected: Option<Digest>,
) -> Result<(Vec<u8>, Digest), StoreError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| StoreError::io(path, e))?;
    let digest = Digest::of(&bytes);
    check_unchanged(path, expected, &digest)?;
    Ok((bytes, digest))
}

/// The outcome of a write: the address and whether this call created it (`false`
/// means the same bytes were already stored, which is not an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    pub digest: Digest,
    pub size: u64,
    pub created: bool,
}

/// What a write-once log file write found: `None` when the name now holds the bytes
/// given, otherwise the bytes it held already.
pub type LogWrite = Result<Option<Vec<u8>>, StoreError>;

/// The operations every evidence backend provides.
#[allow(async_fn_in_trait)]
pub trait EvidenceStore {
    /// The store's URI, e.g. `file:///var/custody`.
    fn uri(&self) -> String;
    /// Stores bytes under their SHA-256, write-once, with a retention lock.
    async fn put_object(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError>;
    /// Reads an object and checks its digest.
    async fn get_object(&self, digest: &Digest) -> Result<Vec<u8>, StoreError>;
    async fn has_object(&self, digest: &Digest) -> Result<bool, StoreError>;
    /// Checks an object's bytes against its digest and returns its size: `NotFound` when
    /// it is missing, `Corrupt` when its bytes changed. Backends that can stream do it
    /// in constant memory.
    async fn check_object(&self, digest: &Digest) -> Result<u64, StoreError> {
        Ok(self.get_object(digest).await?.len() as u64)
    }
    /// The retention lock as the store reports it.
    async fn retention(&self, digest: &Digest) -> Result<Option<Retention>, StoreError>;
    /// Stores a signed record (a DSSE envelope) and its index entries. The materials it
    /// names must already be stored; its chain link must extend the chain's head.
    async fn put_record(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError>;
    /// The last record of a chain: its sequence number and digest.
    async fn chain_head(&self, chain_id: &str) -> Result<Option<(u64, Digest)>, StoreError>;
    /// Every entry of a chain, in sequence order, as the store's chain entries name them
    /// (gaps are left for the caller to find: an auditor wants to see them).
    async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError>;
    /// Records matching a query; the cost grows with the answer, not the store.
    async fn query(&self, query: &Query) -> Result<Vec<RecordRef>, StoreError>;
    /// Deletes an object; refused while its retention lock holds.
    async fn delete_object(&self, digest: &Digest) -> Result<(), StoreError>;
    /// Writes a file of the transparency log (`log/NAME`: an entry claim, a tile, a
    /// checkpoint, a record's index), write-once: the first write of a name wins, also
    /// among racing writers. `None` when the name now holds `bytes`; otherwise the
    /// bytes it held already.
    async fn put_log_file(&self, name: &str, bytes: &[u8], retention: &Retention) -> LogWrite;
    /// A log file's bytes (its first write); `None` when it does not exist.
    async fn get_log_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The names directly under a log directory (files and directories), unordered.
    async fn list_log_dir(&self, dir: &str) -> Result<Vec<String>, StoreError>;
}

/// Any backend, chosen by URL.
#[derive(Debug)]
pub enum AnyStore {
    Local(LocalStore),
    /// Boxed: its client state is large beside a path.
    #[cfg(feature = "s3")]
    S3(Box<S3Store>),
    #[cfg(feature = "gitlab")]
    GitLab(GitLabStore),
}

/// Opens an existing store a URL names: `file://PATH`, a bare path,
/// `s3://BUCKET/PREFIX` with default [`StoreOptions`], or `gitlab://HOST/PROJECT/PACKAGE`
/// without credentials (see [`open_gitlab_store`]).
pub fn open_store(url: &str) -> Result<AnyStore, StoreError> {
    open_store_with(url, &StoreOptions::default())
}

/// Opens an existing store with options for the backends that use them (S3). An S3
/// store connects lazily: the first operation resolves credentials, and the first
/// write checks that the bucket has Object Lock.
pub fn open_store_with(url: &str, options: &StoreOptions) -> Result<AnyStore, StoreError> {
    by_url(url, options, |p| LocalStore::open(p))
}

/// Opens the store a URL names for writing, creating a local store when missing.
/// Buckets are never created here: Object Lock is chosen when a bucket is created,
/// and that is the operator's decision.
pub fn create_store(url: &str) -> Result<AnyStore, StoreError> {
    create_store_with(url, &StoreOptions::default())
}

/// [`create_store`] with options for the backends that use them (S3).
pub fn create_store_with(url: &str, options: &StoreOptions) -> Result<AnyStore, StoreError> {
    by_url(url, options, |p| LocalStore::create(p))
}

/// The backend a URL names; `local` decides whether a local store must exist already.
fn by_url(
    url: &str,
    options: &StoreOptions,
    local: fn(&str) -> Result<LocalStore, StoreError>,
) -> Result<AnyStore, StoreError> {
    #[cfg(not(feature = "s3"))]
    let _ = options;
    #[cfg(feature = "gitlab")]
    if is_gitlab_url(url) {
        return open_gitlab_store(url, &GitLabOptions::default());
    }
    match backend(url)? {
        Backend::Local(path) => local(path).map(AnyStore::Local),
        #[cfg(feature = "s3")]
        Backend::S3 => S3Store::new(url, options.clone()).map(|s| AnyStore::S3(Box::new(s))),
    }
}

/// Opens a `gitlab://` store (the generic package registry of a GitLab project) with the
/// token and client settings the caller resolved. GitLab creates packages on first
/// upload, so opening also serves for creating.
#[cfg(feature = "gitlab")]
pub fn open_gitlab_store(url: &str, options: &GitLabOptions) -> Result<AnyStore, StoreError> {
    GitLabStore::open(url, options).map(AnyStore::GitLab)
}

enum Backend<'a> {
    Local(&'a str),
    #[cfg(feature = "s3")]
    S3,
}

fn backend(url: &str) -> Result<Backend<'_>, StoreError> {
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(Backend::Local(path));
    }
    #[cfg(feature = "s3")]
    if url.starts_with("s3://") {
        return Ok(Backend::S3);
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreError::UnsupportedUrl {
            url: url.to_owned(),
            reason: format!(
                "the `{scheme}` backend is not part of this build; use file://PATH{}{}",
                if cfg!(feature = "s3") {
                    ", s3://BUCKET/PREFIX"
                } else {
                    ""
                },
                if cfg!(feature = "gitlab") {
                    ", gitlab://HOST/PROJECT/PACKAGE"
                } else {
                    ""
                }
            ),
        });
    }
    Ok(Backend::Local(url))
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Local($s) => $e,
            #[cfg(feature = "s3")]
            AnyStore::S3(boxed) => {
                let $s: &S3Store = boxed;
                $e
            }
            #[cfg(feature = "gitlab")]
            AnyStore::GitLab($s) => $e,
        }
    };
}

impl EvidenceStore for AnyStore {
    fn uri(&self) -> String {
        dispatch!(self, s => s.uri())
    }
    async fn put_object(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        dispatch!(self, s => EvidenceStore::put_object(s, src, retention).await)
    }
    async fn get_object(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        dispatch!(self, s => EvidenceStore::get_object(s, digest).await)
    }
    async fn has_object(&self, digest: &Digest) -> Result<bool, StoreError> {
        dispatch!(self, s => EvidenceStore::has_object(s, digest).await)
    }
    async fn check_object(&self, digest: &Digest) -> Result<u64, StoreError> {
        dispatch!(self, s => EvidenceStore::check_object(s, digest).await)
    }
    async fn retention(&self, digest: &Digest) -> Result<Option<Retention>, StoreError> {
        dispatch!(self, s => EvidenceStore::retention(s, digest).await)
    }
    async fn put_record(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        dispatch!(self, s => EvidenceStore::put_record(s, envelope, retention).await)
    }
    async fn chain_head(&self, chain_id: &str) -> Result<Option<(u64, Digest)>, StoreError> {
        dispatch!(self, s => EvidenceStore::chain_head(s, chain_id).await)
    }
    async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        dispatch!(self, s => EvidenceStore::chain(s, chain_id).await)
    }
    async fn query(&self, query: &Query) -> Result<Vec<RecordRef>, StoreError> {
        dispatch!(self, s => EvidenceStore::query(s, query).await)
    }
    async fn delete_object(&self, digest: &Digest) -> Result<(), StoreError> {
        dispatch!(self, s => EvidenceStore::delete_object(s, digest).await)
    }
    async fn put_log_file(&self, name: &str, bytes: &[u8], retention: &Retention) -> LogWrite {
        dispatch!(self, s => EvidenceStore::put_log_file(s, name, bytes, retention).await)
    }
    async fn get_log_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        dispatch!(self, s => EvidenceStore::get_log_file(s, name).await)
    }
    async fn list_log_dir(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        dispatch!(self, s => EvidenceStore::list_log_dir(s, dir).await)
    }
}
