//! The S3 store (`s3://BUCKET/PREFIX`): evidence as Object Lock versions in AWS S3,
//! MinIO or Ceph RGW, in the same key layout as the local store (see `layout.rs`).
//!
//! # Write-once and retention
//! Every PUT carries `x-amz-object-lock-mode` (the store's mode, COMPLIANCE unless
//! configured otherwise), `x-amz-object-lock-retain-until-date` (the caller's
//! [`Retention`], rounded up to a whole second), an optional legal hold, and
//! `x-amz-checksum-sha256` + `x-amz-sdk-checksum-algorithm: SHA256`: the digest we
//! computed, so S3 both accepts the lock headers (it refuses them without an integrity
//! header) and rejects bytes that changed between hashing and upload. Before the first
//! write the store reads the bucket's Object Lock configuration and refuses a bucket
//! without it (unless `allow_unlocked_bucket`: then no lock headers are sent).
//!
//! - Content-addressed objects: HEAD first; an existing object is not written again
//!   (its lock is extended when the new retention is longer, never shortened). The
//!   PUT is conditional (`If-None-Match: *`) so racing writers of the same bytes do
//!   not stack versions.
//! - Chain positions: created with a conditional PUT (`If-None-Match: *`), which S3
//!   (since 2024-08), MinIO and Ceph RGW honor; a server answering `NotImplemented` is
//!   remembered and written to unconditionally. Either way the position is then read
//!   back: **the oldest version of the key wins**. This relies on versioning (implied
//!   by Object Lock) and on S3 listing a key's versions newest first. It also covers a
//!   conditional PUT that succeeds because the current version is a delete marker.
//!   A losing record leaves a locked, unreferenced version and gets
//!   [`StoreError::ChainConflict`]; readers never see it.
//!
//! # Reads survive delete markers
//! A `DELETE` without a version id only adds a delete marker. Every read that finds
//! nothing lists the key's versions and reads the newest real one; chain positions
//! always read the oldest. Listings (chains, queries) use `ListObjectVersions`, not
//! `ListObjectsV2`, which would skip keys whose current version is a delete marker: a
//! single unversioned `DELETE` on a pointer would otherwise hide evidence from
//! auditors. A pointer counts when it has at least one real version.
//!
//! # Requests
//! - `query`: one `ListObjectVersions` page (up to 1,000 pointers) per criterion and
//!   per 1,000 pointers under it; without a criterion, one listing of the day index
//!   plus one per day in the time range. Reading a found record is one `GET` (two more,
//!   a `LIST` and a versioned `GET`, when its current version is a delete marker). So
//!   "everything for commit X" with 12 records is 1 LIST + 12 GETs.
//! - `put_object`: 1 `HEAD` (+1 `PUT` when new; +1 `PutObjectRetention` when
//!   extending). `put_record`: 1 `HEAD` per material, 2 to read the previous chain
//!   position (`LIST` + `GET`), `HEAD` + `PUT` of the envelope, 1 conditional `PUT` and
//!   2 requests (`LIST` + `GET`) to claim the chain position, and 1 `PUT` per index key
//!   (typically 8-12). Once per store: `GetObjectLockConfiguration`.
//!
//! # Failures
//! The SDK retries transient failures (HTTP 500/502/503/504, throttling, timeouts,
//! connection errors) in standard mode: [`StoreOptions::max_attempts`] attempts (4)
//! with exponential backoff and jitter from [`StoreOptions::initial_backoff`] (1 s)
//! up to 20 s. Timeouts: connect [`StoreOptions::connect_timeout`] (5 s); small
//! requests [`StoreOptions::attempt_timeout`] (60 s) per attempt and to the first
//! response byte. A material upload's attempt may take that plus one second per MiB
//! (a 1 GiB SBOM on a slow link must not time out, and a server that takes the body
//! and never answers must not hold the step forever); the SDK's stalled-stream
//! protection fails an upload that stops moving for 5 s, and the retry sends the same
//! bytes again.
//!
//! A material under [`StoreOptions::multipart_threshold`] (16 MiB) is read into memory
//! once and sent from there with its SHA-256: the bytes hashed for its key are the
//! bytes sent, whatever the server checks (moto, for one, does not check a PUT's
//! SHA-256). Materials of the threshold or more go up by
//! multipart upload ([`multipart`]): parts in parallel, a CRC32 per part, the whole
//! file's SHA-256 checked before the upload completes, the lock set when the upload is
//! created, no 5 GiB cap. A caller that has hashed the file already passes
//! [`ObjectSource::Measured`] and saves the store's pass over it.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ObjectLockEnabled, ObjectLockLegalHold, ObjectLockLegalHoldStatus,
    ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
};
use base64::Engine as _;
use bytes::Bytes;
use custody_evidence::Digest;
use jiff::Timestamp;
use tokio::sync::OnceCell;

use crate::LogWrite;
use crate::error::StoreError;
use crate::index::index_keys;
use crate::layout;
use crate::query::{Query, RecordRef};
use crate::{EvidenceStore, LockMode, ObjectSource, PutOutcome, Retention, StoreOptions};

mod multipart;

/// The slowest upload an attempt waits for, in bytes per second (its limit grows by
/// one second per this many bytes).
const MIN_UPLOAD_RATE: u64 = 1024 * 1024;
/// Retries of a conditional PUT that S3 answered with 409 (a concurrent conditional
/// write to the same key was in flight).
const CONFLICT_RETRIES: u32 = 5;

/// An evidence store in an S3 bucket with Object Lock.
pub struct S3Store {
    bucket: String,
    /// Empty, or ending in `/`.
    prefix: String,
    options: StoreOptions,
    client: OnceCell<Client>,
    /// Whether the bucket has Object Lock (`false` only when explicitly allowed).
    locked: OnceCell<bool>,
    /// Set when the server answered `NotImplemented` to `If-None-Match: *`.
    no_conditional_put: AtomicBool,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("uri", &self.uri())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The timeouts of an upload of `bytes`: the small requests' attempt limit plus a
/// second per [`MIN_UPLOAD_RATE`] bytes, no read timeout (stalled-stream protection
/// catches a body that stops moving).
fn upload_timeouts(options: &StoreOptions, bytes: u64) -> aws_sdk_s3::config::Builder {
    let attempt = options.attempt_timeout + std::time::Duration::from_secs(bytes / MIN_UPLOAD_RATE);
    aws_sdk_s3::Config::builder().timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(options.connect_timeout)
            .disable_read_timeout()
            .operation_attempt_timeout(attempt)
            .disable_operation_timeout()
            .build(),
    )
}

/// The Object Lock settings of a new object.
struct LockParams {
    mode: ObjectLockMode,
    until: DateTime,
    legal_hold: bool,
}

/// Where an object's bytes come from: memory (a single PUT), or a file too large for
/// that (a multipart upload).
enum Body<'a> {
    Bytes(Bytes),
    File(&'a Path),
}

/// What HEAD says about the version a read would return.
struct Head {
    version_id: Option<String>,
    retention: Option<Retention>,
    legal_hold: bool,
}

impl S3Store {
    /// A store for `s3://BUCKET/PREFIX`. Nothing is contacted until the first
    /// operation.
    pub fn new(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let (bucket, prefix) = parse_url(url)?;
        Ok(Self {
            bucket,
            prefix,
            options,
            client: OnceCell::new(),
            locked: OnceCell::new(),
            no_conditional_put: AtomicBool::new(false),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix inside the bucket: empty or ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full key of a store-relative name.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// The key of an object's bytes.
    pub fn object_key(&self, d: &Digest) -> String {
        self.key(&layout::object_key(d))
    }

    fn target(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn client(&self) -> Result<&Client, StoreError> {
        self.client
            .get_or_try_init(|| build_client(&self.options))
            .await
    }

    /// Checks once per store that the bucket enforces Object Lock.
    async fn ensure_writable(&self) -> Result<bool, StoreError> {
        self.locked
            .get_or_try_init(|| async {
                let client = self.client().await?;
                let res = client
                    .get_object_lock_configuration()
                    .bucket(&self.bucket)
                    .send()
                    .await;
                let enabled = match res {
                    Ok(out) => out
                        .object_lock_configuration()
                        .and_then(|c| c.object_lock_enabled())
                        .is_some_and(|e| *e == ObjectLockEnabled::Enabled),
                    Err(e) if e.code() == Some("ObjectLockConfigurationNotFoundError") => false,
                    Err(e) => {
                        return Err(s3_error(
                            "GetObjectLockConfiguration",
                            &format!("s3://{}", self.bucket),
                            &e,
                        ));
                    }
                };
                if enabled {
                    Ok(true)
                } else if self.options.allow_unlocked_bucket {
                    tracing::warn!(
                        bucket = %self.bucket,
                        "writing evidence to a bucket without Object Lock: retention is not enforced"
                    );
                    Ok(false)
                } else {
                    Err(StoreError::UnlockedBucket {
                        bucket: self.bucket.clone(),
                    })
                }
            })
            .await
            .copied()
    }

    /// The lock every new object gets, `None` in an unlocked bucket (allowed by
    /// [`StoreOptions::allow_unlocked_bucket`]).
    fn lock_params(&self, locked: bool, retention: &Retention) -> Option<LockParams> {
        locked.then(|| LockParams {
            mode: match self.options.lock_mode {
                LockMode::Compliance => ObjectLockMode::Compliance,
                LockMode::Governance => ObjectLockMode::Governance,
            },
            until: to_datetime(retention.retain_until),
            legal_hold: self.options.legal_hold || retention.legal_hold,
        })
    }

    /// Writes `body` (whose SHA-256 is `digest`) to `key`. With `exclusive`, only when
    /// the key has no current version; returns whether this call wrote. The body is in
    /// memory: what is sent is exactly what was hashed (files too large for that go up
    /// by [`S3Store::put_multipart`], which checks what it sends).
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        digest: &Digest,
        retention: &Retention,
        exclusive: bool,
    ) -> Result<bool, StoreError> {
        let locked = self.ensure_writable().await?;
        let client = self.client().await?;
        let checksum = base64::engine::general_purpose::STANDARD.encode(digest.as_bytes());
        let size = body.len() as u64;
        let size_i64 = i64::try_from(size)
            .map_err(|_| StoreError::Invalid(format!("{size} bytes is too large")))?;
        let mut conflicts = 0;
        loop {
            let conditional = exclusive && !self.no_conditional_put.load(Ordering::Relaxed);
            let mut req = client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_length(size_i64)
                .body(ByteStream::from(body.clone()))
                .checksum_algorithm(ChecksumAlgorithm::Sha256)
                .checksum_sha256(&checksum);
            if let Some(l) = self.lock_params(locked, retention) {
                req = req
                    .object_lock_mode(l.mode)
                    .object_lock_retain_until_date(l.until);
                if l.legal_hold {
                    req = req.object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On);
                }
            }
            if conditional {
                req = req.if_none_match("*");
            }
            let res = if size >= MIN_UPLOAD_RATE {
                // A material must not hit the small requests' limit; stalled-stream
                // protection catches a body that stops moving, and the attempt limit
                // grows with the size (a floor of 1 MiB/s), so that a server that takes
                // the whole body and never answers cannot hold the step forever.
                req.customize()
                    .config_override(upload_timeouts(&self.options, size))
                    .send()
                    .await
            } else {
                req.send().await
            };
            match res {
                Ok(_) => return Ok(true),
                Err(e) => match self.classify_put_error(&e, conditional, &mut conflicts) {
                    PutRetry::Taken => return Ok(false),
                    PutRetry::Again => continue,
                    PutRetry::Fail => return Err(s3_error("PutObject", &self.target(key), &e)),
                },
            }
        }
    }

    fn classify_put_error<E: ProvideErrorMetadata>(
        &self,
        e: &SdkError<E, HttpResponse>,
        conditional: bool,
        conflicts: &mut u32,
    ) -> PutRetry {
        if !conditional {
            return PutRetry::Fail;
        }
        match (status(e), e.code()) {
            (Some(412), _) | (_, Some("PreconditionFailed")) => PutRetry::Taken,
            (Some(501), _) | (_, Some("NotImplemented")) => {
                tracing::debug!("the server ignores If-None-Match; falling back to read-back");
                self.no_conditional_put.store(true, Ordering::Relaxed);
                PutRetry::Again
            }
            (Some(409), _) if *conflicts < CONFLICT_RETRIES => {
                *conflicts += 1;
                PutRetry::Again
            }
            _ => PutRetry::Fail,
        }
    }

    /// The real (non-delete-marker) version ids of `key`, newest first.
    async fn versions(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for (k, v) in self.list_versions(key, None).await?.0 {
            if k == key {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Every real version under `prefix` as `(key, version id)` in listing order (keys
    /// ascending, each key's versions newest first), and, with a delimiter, the common
    /// prefixes.
    async fn list_versions(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<(Vec<(String, String)>, Vec<String>), StoreError> {
        let client = self.client().await?;
        let mut versions = Vec::new();
        let mut prefixes = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut version_marker: Option<String> = None;
        loop {
            let out = client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_delimiter(delimiter.map(str::to_owned))
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| s3_error("ListObjectVersions", &self.target(prefix), &e))?;
            for v in out.versions() {
                if let Some(k) = v.key() {
                    versions.push((k.to_owned(), v.version_id().unwrap_or("null").to_owned()));
                }
            }
            prefixes.extend(
                out.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
            if out.is_truncated() != Some(true) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            version_marker = out.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        Ok((versions, prefixes))
    }

    /// HEAD of the version a read returns: the current one, or the newest real version
    /// when the current one is a delete marker. `None`: no real version exists.
    async fn head(&self, key: &str) -> Result<Option<Head>, StoreError> {
        let client = self.client().await?;
        let version = match client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => return Ok(Some(head_of(&out))),
            Err(e) if is_not_found(&e) => match self.versions(key).await?.into_iter().next() {
                Some(v) => v,
                None => return Ok(None),
            },
            Err(e) => return Err(s3_error("HeadObject", &self.target(key), &e)),
        };
        let out = client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .version_id(&version)
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", &self.target(key), &e))?;
        Ok(Some(head_of(&out)))
    }

    /// The bytes of `key` (a given version, or the current one); `None` when missing.
    async fn get(&self, key: &str, version: Option<&str>) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let out = match client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(s3_error("GetObject", &self.target(key), &e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::S3Unreachable {
                operation: "GetObject",
                target: self.target(key),
                message: e.to_string(),
            })?;
        Ok(Some(bytes.to_vec()))
    }

    /// The bytes a read of `key` returns, looking past a delete marker.
    async fn get_current(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(bytes) = self.get(key, None).await? {
            return Ok(Some(bytes));
        }
        match self.versions(key).await?.first() {
            Some(v) => self.get(key, Some(v)).await,
            None => Ok(None),
        }
    }

    /// The record a chain position holds: its oldest version (the first writer wins).
    async fn read_chain_entry(&self, key: &str) -> Result<Option<Digest>, StoreError> {
        let Some(oldest) = self.versions(key).await?.pop() else {
            return Ok(None);
        };
        let Some(bytes) = self.get(key, Some(&oldest)).await? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        Digest::parse(text.trim())
            .map(Some)
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", self.target(key))))
    }

    /// Extends the lock of an existing object when `retention` asks for more.
    async fn extend_lock(
        &self,
        key: &str,
        head: &Head,
        retention: &Retention,
    ) -> Result<(), StoreError> {
        if !self.ensure_writable().await? {
            return Ok(());
        }
        let client = self.client().await?;
        let wanted = to_datetime(retention.retain_until);
        let current_until = head.retention.map(|r| r.retain_until);
        if current_until.is_none_or(|c| c.as_second() < wanted.secs()) {
            let mode = match head.retention.map_or(self.options.lock_mode, |r| r.mode) {
                LockMode::Compliance => ObjectLockRetentionMode::Compliance,
                LockMode::Governance => ObjectLockRetentionMode::Governance,
            };
            client
                .put_object_retention()
                .bucket(&self.bucket)
                .key(key)
                .set_version_id(head.version_id.clone())
                .retention(
                    ObjectLockRetention::builder()
                        .mode(mode)
                        .retain_until_date(wanted)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| s3_error("PutObjectRetention", &self.target(key), &e))?;
        }
        if (self.options.legal_hold || retention.legal_hold) && !head.legal_hold {
            client
                .put_object_legal_hold()
                .bucket(&self.bucket)
                .key(key)
                .set_version_id(head.version_id.clone())
                .legal_hold(
                    ObjectLockLegalHold::builder()
                        .status(ObjectLockLegalHoldStatus::On)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| s3_error("PutObjectLegalHold", &self.target(key), &e))?;
        }
        Ok(())
    }

    async fn put_object_impl(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.ensure_writable().await?;
        let (body, digest, size) = match src {
            ObjectSource::Bytes(b) => (
                Body::Bytes(Bytes::copy_from_slice(b)),
                Digest::of(b),
                b.len() as u64,
            ),
            ObjectSource::File(path) | ObjectSource::Measured { path, .. } => {
                let measured = match src {
                    ObjectSource::Measured { digest, size, .. } => Some((digest, size)),
                    _ => None,
                };
                let size = match measured {
                    Some((_, size)) => size,
                    None => tokio::fs::metadata(path)
                        .await
                        .map_err(|e| StoreError::io(path, e))?
                        .len(),
                };
                if size >= self.options.multipart_threshold {
                    // named by its digest before a byte is sent; the upload checks the
                    // bytes it sends against it
                    match measured {
                        Some((digest, size)) => (Body::File(path), digest, size),
                        None => {
                            let (digest, size) = hash_file(path).await?;
                            (Body::File(path), digest, size)
                        }
                    }
                } else {
                    // read once: the bytes hashed are the bytes sent, whatever the
                    // server checks
                    let (read, digest) = crate::read_checked(path, src.expected()).await?;
                    let size = read.len() as u64;
                    (Body::Bytes(Bytes::from(read)), digest, size)
                }
            }
        };
        let key = self.object_key(&digest);
        let created = match self.head(&key).await? {
            Some(head) => {
                self.extend_lock(&key, &head, retention).await?;
                false
            }
            None => {
                let created = match body {
                    Body::File(path) => {
                        let locked = self.ensure_writable().await?;
                        let lock = self.lock_params(locked, retention);
                        let conditional = !self.no_conditional_put.load(Ordering::Relaxed);
                        let created = self
                            .put_multipart(&key, path, &digest, size, lock.as_ref(), conditional)
                            .await?;
                        // S3 locks the object as CreateMultipartUpload asked; a server
                        // that ignored it (some S3-compatible ones, moto) is caught here
                        if created && let Some(head) = self.head(&key).await? {
                            self.extend_lock(&key, &head, retention).await?;
                        }
                        created
                    }
                    Body::Bytes(bytes) => self.put(&key, bytes, &digest, retention, true).await?,
                };
                if !created && let Some(head) = self.head(&key).await? {
                    // a concurrent writer stored the same bytes: its lock may be shorter
                    self.extend_lock(&key, &head, retention).await?;
                }
                created
            }
        };
        Ok(PutOutcome {
            digest,
            size,
            created,
        })
    }

    async fn put_record_impl(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        let incoming = layout::decode_record(envelope)?;
        let (record, digest) = (&incoming.record, incoming.digest);
        self.ensure_writable().await?;
        for m in &record.materials {
            if self.head(&self.object_key(&m.digest)).await?.is_none() {
                return Err(StoreError::MissingMaterial { digest: m.digest });
            }
        }
        let chain = &record.chain;
        let chain_dir = self.key(&layout::chain_dir(&chain.id));
        let entry_key = |seq: u64| format!("{chain_dir}/{}", layout::chain_entry_name(seq));
        let prev_actual = match chain.sequence.checked_sub(1) {
            Some(prev) => self.read_chain_entry(&entry_key(prev)).await?,
            None => None,
        };
        layout::check_previous(record, prev_actual)?;
        let outcome = self
            .put_object_impl(ObjectSource::Bytes(envelope), retention)
            .await?;

        let key = entry_key(chain.sequence);
        let text = digest.to_string();
        let created = self
            .put(
                &key,
                Bytes::copy_from_slice(text.as_bytes()),
                &Digest::of(text.as_bytes()),
                retention,
                true,
            )
            .await?;
        // whatever the PUT said, the oldest version decides
        incoming.check_position(self.read_chain_entry(&key).await?)?;

        let name = layout::pointer_name(record.recorded_at, &digest);
        let empty = Digest::of(b"");
        for index in index_keys(&incoming.statement, record) {
            let key = self.key(&format!("{}/{name}", layout::index_dir(&index)));
            self.put(&key, Bytes::new(), &empty, retention, true)
                .await?;
        }
        crate::log::sequence(self, &incoming.log_entry, retention, !created).await?;
        Ok(outcome)
    }

    /// A log file's key: `PREFIX/log/NAME`.
    fn log_key(&self, name: &str) -> Result<String, StoreError> {
        crate::log::check_log_name(name)?;
        Ok(self.key(&format!("log/{name}")))
    }

    /// The bytes of a key's oldest real version: what the first writer wrote.
    async fn get_oldest(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.versions(key).await?.pop() {
            Some(v) => self.get(key, Some(&v)).await,
            None => Ok(None),
        }
    }

    async fn put_log_file_impl(&self, name: &str, bytes: &[u8], retention: &Retention) -> LogWrite {
        let key = self.log_key(name)?;
        let digest = Digest::of(bytes);
        self.put(
            &key,
            Bytes::copy_from_slice(bytes),
            &digest,
            retention,
            true,
        )
        .await?;
        // whatever the PUT said (a server without If-None-Match, or a delete marker
        // that let a second write through), the oldest version decides
        match self.get_oldest(&key).await? {
            Some(held) if held == bytes => Ok(None),
            Some(held) => Ok(Some(held)),
            None => Err(StoreError::Invalid(format!(
                "{}: written, yet no version of it is listed",
                self.target(&key)
            ))),
        }
    }

    async fn list_log_dir_impl(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{}/", self.log_key(dir)?);
        let (versions, prefixes) = self.list_versions(&prefix, Some("/")).await?;
        let mut out: Vec<String> = versions
            .into_iter()
            .filter_map(|(k, _)| k.strip_prefix(&prefix).map(str::to_owned))
            .chain(prefixes.into_iter().filter_map(|p| {
                p.strip_prefix(&prefix)
                    .map(|p| p.trim_end_matches('/').to_owned())
            }))
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    async fn chain_head_impl(&self, chain_id: &str) -> Result<Option<(u64, Digest)>, StoreError> {
        let dir = format!("{}/", self.key(&layout::chain_dir(chain_id)));
        let (versions, _) = self.list_versions(&dir, None).await?;
        let best = versions
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(&dir)?.parse::<u64>().ok())
            .max();
        match best {
            Some(seq) => Ok(self
                .read_chain_entry(&format!("{dir}{}", layout::chain_entry_name(seq)))
                .await?
                .map(|d| (seq, d))),
            None => Ok(None),
        }
    }

    /// The records a chain holds, in order.
    pub async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        let dir = format!("{}/", self.key(&layout::chain_dir(chain_id)));
        let (versions, _) = self.list_versions(&dir, None).await?;
        let mut seqs: Vec<u64> = versions
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(&dir)?.parse().ok())
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let key = format!("{dir}{}", layout::chain_entry_name(seq));
            if let Some(d) = self.read_chain_entry(&key).await? {
                out.push((seq, d));
            }
        }
        Ok(out)
    }

    async fn list_pointers(&self, dir: &str) -> Result<Vec<RecordRef>, StoreError> {
        let (versions, _) = self.list_versions(dir, None).await?;
        Ok(versions
            .iter()
            .filter_map(|(k, _)| layout::parse_pointer_name(k.strip_prefix(dir)?))
            .collect())
    }

    async fn query_impl(&self, q: &Query) -> Result<Vec<RecordRef>, StoreError> {
        let keys = q.keys();
        let sets = if keys.is_empty() {
            let days = format!("{}/", self.key(layout::DAY_INDEX));
            let (_, prefixes) = self.list_versions(&days, Some("/")).await?;
            let mut all = Vec::new();
            for p in prefixes {
                let day = p.strip_prefix(&days).unwrap_or(&p).trim_end_matches('/');
                if day
                    .parse::<jiff::civil::Date>()
                    .is_ok_and(|d| layout::day_in_range(q, d))
                {
                    all.extend(self.list_pointers(&p).await?);
                }
            }
            vec![all]
        } else {
            let mut sets = Vec::with_capacity(keys.len());
            for key in &keys {
                let dir = format!("{}/", self.key(&layout::index_dir(key)));
                sets.push(self.list_pointers(&dir).await?);
            }
            sets
        };
        Ok(layout::finish(q, layout::intersect(sets)))
    }

    /// An object's bytes: the current version when it holds them (one GET), else the
    /// oldest version that does. The first valid write wins: a later version with other
    /// bytes (a writer putting junk under the name) does not replace the evidence, and
    /// `retention` names it.
    async fn get_object_impl(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let key = self.object_key(d);
        let bytes = self
            .get_current(&key)
            .await?
            .ok_or(StoreError::NotFound { digest: *d })?;
        let actual = Digest::of(&bytes);
        if actual == *d {
            return Ok(bytes);
        }
        for v in self.versions(&key).await?.into_iter().rev() {
            if let Some(b) = self.get(&key, Some(&v)).await?
                && Digest::of(&b) == *d
            {
                return Ok(b);
            }
        }
        Err(StoreError::Corrupt {
            digest: *d,
            actual,
            path: self.target(&key).into(),
        })
    }

    /// An object's lock: its first version's (the one that holds the evidence). A later
    /// version with other bytes, whatever its lock, is an error naming it: the reported
    /// lock never comes from a replacement.
    async fn retention_impl(&self, d: &Digest) -> Result<Option<Retention>, StoreError> {
        let key = self.object_key(d);
        let mut versions = self.versions(&key).await?;
        let Some(first) = versions.pop() else {
            // like the local store: no object, no lock
            return Ok(None);
        };
        if versions.is_empty() {
            // one version (or an unversioned bucket): what HEAD reports is its lock
            return Ok(self.head(&key).await?.and_then(|h| h.retention));
        }
        for later in &versions {
            match self.get(&key, Some(later)).await? {
                Some(b) if Digest::of(&b) == *d => {}
                Some(_) => {
                    return Err(StoreError::Invalid(format!(
                        "{}: version {later} holds other bytes than the object's first version {first}: a writer stored something else under its name (the first version still holds the evidence)",
                        self.target(&key)
                    )));
                }
                None => {}
            }
        }
        let client = self.client().await?;
        let out = client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .version_id(&first)
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", &self.target(&key), &e))?;
        Ok(head_of(&out).retention)
    }

    async fn delete_object_impl(&self, d: &Digest) -> Result<(), StoreError> {
        let key = self.object_key(d);
        let versions = self.versions(&key).await?;
        if versions.is_empty() {
            return Err(StoreError::NotFound { digest: *d });
        }
        let client = self.client().await?;
        for v in versions {
            let res = client
                .delete_object()
                .bucket(&self.bucket)
                .key(&key)
                .version_id(&v)
                .send()
                .await;
            match res {
                Ok(_) => {}
                Err(e) if status(&e) == Some(403) || e.code() == Some("AccessDenied") => {
                    let head = client
                        .head_object()
                        .bucket(&self.bucket)
                        .key(&key)
                        .version_id(&v)
                        .send()
                        .await
                        .map(|o| head_of(&o))
                        .ok();
                    let until = head
                        .as_ref()
                        .and_then(|h| h.retention.map(|r| r.retain_until));
                    let held = head.as_ref().is_some_and(|h| h.legal_hold);
                    return match until {
                        Some(until) if held || until > Timestamp::now() => {
                            Err(StoreError::RetentionLocked {
                                what: format!("object {d} (version {v})"),
                                until,
                            })
                        }
                        _ => Err(s3_error("DeleteObject", &self.target(&key), &e)),
                    };
                }
                Err(e) => return Err(s3_error("DeleteObject", &self.target(&key), &e)),
            }
        }
        Ok(())
    }
}

enum PutRetry {
    /// The key already has a current version.
    Taken,
    Again,
    Fail,
}

impl EvidenceStore for S3Store {
    fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
    }
    async fn put_object(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.put_object_impl(src, retention).await
    }
    async fn get_object(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        self.get_object_impl(digest).await
    }
    async fn has_object(&self, digest: &Digest) -> Result<bool, StoreError> {
        Ok(self.head(&self.object_key(digest)).await?.is_some())
    }
    async fn retention(&self, digest: &Digest) -> Result<Option<Retention>, StoreError> {
        self.retention_impl(digest).await
    }
    async fn put_record(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        self.put_record_impl(envelope, retention).await
    }
    async fn chain_head(&self, chain_id: &str) -> Result<Option<(u64, Digest)>, StoreError> {
        self.chain_head_impl(chain_id).await
    }
    async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        S3Store::chain(self, chain_id).await
    }
    async fn query(&self, query: &Query) -> Result<Vec<RecordRef>, StoreError> {
        self.query_impl(query).await
    }
    async fn delete_object(&self, digest: &Digest) -> Result<(), StoreError> {
        self.delete_object_impl(digest).await
    }
    async fn put_log_file(&self, name: &str, bytes: &[u8], retention: &Retention) -> LogWrite {
        self.put_log_file_impl(name, bytes, retention).await
    }
    async fn get_log_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_oldest(&self.log_key(name)?).await
    }
    async fn list_log_dir(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        self.list_log_dir_impl(dir).await
    }
}

/// `s3://BUCKET/PREFIX` into the bucket and a normalized prefix (empty or ending in `/`).
fn parse_url(url: &str) -> Result<(String, String), StoreError> {
    let invalid = |reason: &str| StoreError::UnsupportedUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| invalid("an S3 store URL starts with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !bucket_ok {
        return Err(invalid(
            "the bucket name must be 3-63 characters of a-z, 0-9, `.` and `-`: use s3://BUCKET/PREFIX",
        ));
    }
    let mut parts = Vec::new();
    for part in prefix.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(invalid("the prefix may not contain `.` or `..` segments"));
        }
        parts.push(part);
    }
    let prefix = if parts.is_empty() {
        String::new()
    } else {
        format!("{}/", parts.join("/"))
    };
    Ok((bucket.to_owned(), prefix))
}

async fn build_client(o: &StoreOptions) -> Result<Client, StoreError> {
    let http = custody_http::aws::http_client(&o.net)
        .map_err(|e| StoreError::Invalid(format!("{e} (S3)")))?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(o.max_attempts.max(1))
                .with_initial_backoff(o.initial_backoff),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(o.connect_timeout)
                .read_timeout(o.attempt_timeout)
                .operation_attempt_timeout(o.attempt_timeout)
                .build(),
        );
    if let Some(region) = &o.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &o.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(c) = &o.credentials {
        loader = loader.credentials_provider(Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.clone(),
            c.session_token.clone(),
            None,
            "custody-store-options",
        ));
    }
    let shared = loader.load().await;
    let mut conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(o.force_path_style)
        // we send our own checksums (a PUT's SHA-256, a part's CRC32); none on top,
        // no aws-chunked bodies
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if shared.region().is_none() {
        if o.endpoint_url.is_some() {
            conf = conf.region(Region::new("us-east-1"));
        } else {
            return Err(StoreError::Invalid(
                "no AWS region configured for the S3 store: set AWS_REGION or the store's region option"
                    .into(),
            ));
        }
    }
    Ok(Client::from_conf(conf.build()))
}

/// Hashes a file off the async runtime, in constant memory.
async fn hash_file(path: &Path) -> Result<(Digest, u64), StoreError> {
    let owned = path.to_path_buf();
    let joined = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&owned)?;
        custody_evidence::sha256_reader(file).map_err(std::io::Error::other)
    })
    .await
    .map_err(|e| StoreError::io(path, std::io::Error::other(e)))?;
    joined.map_err(|e| StoreError::io(path, e))
}

/// S3 keeps whole seconds; rounding up keeps the lock at least as long as asked.
fn to_datetime(t: Timestamp) -> DateTime {
    let secs = t.as_second() + i64::from(t.subsec_nanosecond() > 0);
    DateTime::from_secs(secs)
}

fn head_of(out: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> Head {
    let mode = out.object_lock_mode().and_then(|m| match m {
        ObjectLockMode::Compliance => Some(LockMode::Compliance),
        ObjectLockMode::Governance => Some(LockMode::Governance),
        _ => None,
    });
    let until = out
        .object_lock_retain_until_date()
        .and_then(|d| Timestamp::new(d.secs(), 0).ok());
    let legal_hold = out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On);
    let retention = match (mode, until) {
        (Some(mode), Some(retain_until)) => Some(Retention {
            mode,
            retain_until,
            legal_hold,
        }),
        _ => None,
    };
    Head {
        version_id: out.version_id().map(str::to_owned),
        retention,
        legal_hold,
    }
}

fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn is_not_found<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    status(e) == Some(404) || matches!(e.code(), Some("NoSuchKey" | "NotFound"))
}

/// A typed error that says what failed and what to check. SDK messages carry no
/// credentials (the signature and keys are never part of them).
fn s3_error<E>(operation: &'static str, target: &str, e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // the connection failed, timed out, or broke before the answer was read
    if matches!(
        e,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
    ) {
        let mut message = causes(e);
        if message.contains("invalid peer certificate") {
            message.push_str(
                ": the endpoint's TLS certificate is not trusted; if a private CA signs it (TLS inspection, an in-house CA), give its certificate with --ca-file or SSL_CERT_FILE",
            );
        }
        return StoreError::S3Unreachable {
            operation,
            target: target.to_owned(),
            message,
        };
    }
    let code = e.code().map(str::to_owned);
    let throttled = matches!(
        code.as_deref(),
        Some(
            "SlowDown"
                | "ServiceUnavailable"
                | "InternalError"
                | "RequestTimeout"
                | "Throttling"
                | "ThrottlingException"
                | "RequestLimitExceeded"
        )
    );
    if throttled || status(e).is_some_and(|s| s == 429 || (500..600).contains(&s)) {
        let message = match (code.as_deref(), status(e)) {
            (Some(code), Some(s)) => format!("HTTP {s} {code}"),
            (Some(code), None) => code.to_owned(),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => causes(e),
        };
        return StoreError::S3Unavailable {
            operation,
            target: target.to_owned(),
            message,
        };
    }
    let hint = match code.as_deref() {
        Some("AccessDenied") => {
            ": check the credentials and that the bucket policy allows this action"
        }
        Some("NoSuchBucket") => {
            ": create the bucket (with Object Lock enabled) or fix the store URL"
        }
        Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken") => {
            ": the credentials were refused; check the AWS credential configuration"
        }
        _ => "",
    };
    let message = match (code, e.message(), status(e)) {
        (Some(code), Some(msg), _) => format!("{code}: {msg}{hint}"),
        (Some(code), None, _) => format!("{code}{hint}"),
        (None, _, Some(status)) => format!("HTTP {status} (after retries)"),
        (None, _, None) => causes(e),
    };
    StoreError::S3 {
        operation,
        target: target.to_owned(),
        message,
    }
}

/// An error and its causes as one line of their messages (`dispatch failure: io error:
/// … : Connection refused (os error 111)`): the SDK's own context printer appends the
/// whole chain again as Rust debug text, which no person should have to read.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        let text = text.lines().next().unwrap_or_default().trim().to_owned();
        if !text.is_empty() && !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15, item 16: an unreachable S3 dumped the SDK's debug chain into the
    /// spool message.
    #[test]
    fn causes_read_as_one_line_of_words() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("dispatch failure")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let text = causes(&Outer(io));
        assert_eq!(text, "dispatch failure: Connection refused (os error 111)");
        assert!(!text.contains('{') && !text.contains("Some("));
    }

    #[test]
    fn urls_parse_into_bucket_and_prefix() {
        for (url, bucket, prefix) in [
            ("s3://evidence", "evidence", ""),
            ("s3://evidence/", "evidence", ""),
            ("s3://evidence/acme/prod/", "evidence", "acme/prod/"),
            ("s3://evidence//acme//prod", "evidence", "acme/prod/"),
        ] {
            let (b, p) = parse_url(url).unwrap();
            assert_eq!((b.as_str(), p.as_str()), (bucket, prefix), "{url}");
        }
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Evidence",
            "s3://evi_dence",
            "s3://evidence/../x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retain_until_rounds_up_to_a_second() {
        let t: Timestamp = "2032-03-14T10:00:00.001Z".parse().unwrap();
        assert_eq!(to_datetime(t).secs(), t.as_second() + 1);
        let whole: Timestamp = "2032-03-14T10:00:00Z".parse().unwrap();
        assert_eq!(to_datetime(whole).secs(), whole.as_second());
    }
}
