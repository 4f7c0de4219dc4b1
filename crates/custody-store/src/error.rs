//! Store errors. Each names the object or path and what to do next.

use std::path::PathBuf;

use custody_evidence::Digest;
use jiff::Timestamp;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a Custody store (no CUSTODY-STORE marker); point --store at a store directory or an empty one"
    )]
    NotAStore { path: PathBuf },
    #[error(
        "no store at {path}: nothing has been recorded there yet (check --store or CUSTODY_STORE)"
    )]
    Missing { path: PathBuf },
    #[error(
        "store format version {found} at {path} is newer than this build understands ({supported}); upgrade custody"
    )]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("unsupported store URL `{url}`: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    #[cfg(feature = "gitlab")]
    #[error(transparent)]
    GitLab(crate::gitlab::GitLabError),
    #[error("{what} is retention-locked until {until}; deleting or shortening it is refused")]
    RetentionLocked { what: String, until: Timestamp },
    #[error(
        "retention of {digest} can only be extended: it is locked until {current}, later than the requested {requested}"
    )]
    RetentionShorten {
        digest: Digest,
        current: Timestamp,
        requested: Timestamp,
    },
    #[error("{path} already holds different content; write-once entries are never overwritten")]
    Overwrite { path: PathBuf },
    #[error(
        "chain `{chain}` already has record {existing} at position {sequence}; this record ({new}) forks it: re-read the chain head and sign again"
    )]
    ChainConflict {
        chain: String,
        sequence: u64,
        existing: Digest,
        new: Digest,
    },
    #[error(
        "chain `{chain}`: record at position {sequence} names previous {claimed}, but the chain holds {actual}"
    )]
    ChainBroken {
        chain: String,
        sequence: u64,
        claimed: String,
        actual: String,
    },
    #[error(
        "material {digest} is not in the store; store materials before the record that names them"
    )]
    MissingMaterial { digest: Digest },
    #[error("object {digest} is not in the store")]
    NotFound { digest: Digest },
    #[error("object {digest} is corrupt: its bytes hash to {actual} ({path})")]
    Corrupt {
        digest: Digest,
        actual: Digest,
        path: PathBuf,
    },
    /// A file's bytes no longer hash to the digest measured before it was stored (it
    /// was written to meanwhile); nothing was stored.
    #[error(
        "{path} changed while it was being stored (it hashed to {expected} when it was read before); nothing was stored: run the step again"
    )]
    Changed { path: PathBuf, expected: Digest },
    #[error("invalid record: {0}")]
    Invalid(String),
    /// The transparency log contradicts itself or a checkpoint: a fork, a removed
    /// entry, an altered tile.
    #[error("the transparency log is inconsistent: {0}")]
    LogInconsistent(String),
    #[error("the store at {store} is unavailable: {detail}")]
    Unavailable { store: String, detail: String },
    #[error(
        "bucket `{bucket}` has no Object Lock configuration, so S3 cannot enforce HIPAA retention (45 CFR 164.316(b)(2)(i)) and anyone with delete rights could erase evidence: create the bucket with Object Lock enabled (`aws s3api create-bucket --object-lock-enabled-for-bucket`, or `mc mb --with-lock` on MinIO), or allow an unlocked bucket explicitly for demos and tests"
    )]
    UnlockedBucket { bucket: String },
    #[error("s3 {operation} of {target} failed: {message}")]
    S3 {
        operation: &'static str,
        target: String,
        message: String,
    },
    #[error(
        "cannot reach S3 for {operation} of {target} ({message}); check the endpoint URL, the network and proxy settings"
    )]
    S3Unreachable {
        operation: &'static str,
        target: String,
        message: String,
    },
    /// S3 answered, but kept failing (5xx, throttling) through every retry.
    #[error(
        "s3 kept failing for {operation} of {target} ({message}) through every retry; try again later"
    )]
    S3Unavailable {
        operation: &'static str,
        target: String,
        message: String,
    },
}

impl StoreError {
    /// Errors worth retrying later: the store could not be reached or answered with a
    /// transient failure. Evidence is spooled locally for these, never for refusals.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            #[cfg(feature = "s3")]
            Self::S3Unreachable { .. } | Self::S3Unavailable { .. } => true,
            #[cfg(feature = "gitlab")]
            Self::GitLab(
                crate::gitlab::GitLabError::Unreachable { .. }
                | crate::gitlab::GitLabError::Unavailable { .. },
            ) => true,
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::ResourceBusy
            ),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
