//! Large materials go up as an S3 multipart upload: no 5 GiB cap of a single PUT, parts
//! sent in parallel, each with its own CRC32 (S3 refuses a part whose bytes do not
//! match it; the checksum `aws s3 cp` sends by default), the object created with its
//! Object Lock already set (CreateMultipartUpload carries the mode, the retain-until
//! date and the legal hold, so no moment exists when the object is unlocked).
//!
//! The file is read once, in order, on a blocking thread: each part is hashed into the
//! whole-file SHA-256 and its CRC32 taken as it is read, then sent while the next parts
//! are read. The object's key is the SHA-256 measured before the upload (by the caller,
//! or by the store), so the upload is completed only when the bytes sent hash to it: a
//! file changed in the meantime aborts the upload and stores nothing. The SHA-256 is
//! what makes the object evidence; a per-part SHA-256 as well would only hash every
//! byte a second time on a step's one runtime thread, and make the server do the same.
//! Any failure aborts the upload, so no parts are left behind (billed, and invisible to
//! readers either way: an incomplete upload is never an object).

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use custody_evidence::Digest;
use custody_evidence::digest::Hasher;
use tokio::task::JoinSet;

use super::{LockParams, PutRetry, S3Store, s3_error, upload_timeouts};
use crate::StoreOptions;
use crate::error::StoreError;

/// S3's limit on the number of parts of one upload.
const MAX_PARTS: u64 = 10_000;
/// S3's smallest part (all but the last).
pub(crate) const MIN_PART: u64 = 5 * 1024 * 1024;

/// How a file is cut: `size` bytes in parts of `part` bytes (the last one shorter).
pub(crate) fn part_size(size: u64, wanted: u64) -> u64 {
    let wanted = wanted.max(MIN_PART);
    // more than 10,000 parts of the wanted size: grow the parts (whole MiB)
    let needed = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    wanted.max(needed)
}

/// What a part upload needs, cloned into each task.
#[derive(Clone)]
struct Upload {
    client: Client,
    bucket: String,
    key: String,
    id: String,
    options: Arc<StoreOptions>,
}

impl S3Store {
    /// Stores the file at `path` (`size` bytes hashing to `digest`) under `key` by
    /// multipart upload; with `conditional`, only when the key has no current version.
    /// Returns whether this call wrote.
    pub(super) async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        digest: &Digest,
        size: u64,
        lock: Option<&LockParams>,
        conditional: bool,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let mut create = client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32);
        if let Some(l) = lock {
            create = create
                .object_lock_mode(l.mode.clone())
                .object_lock_retain_until_date(l.until);
            if l.legal_hold {
                create = create.object_lock_legal_hold_status(
                    aws_sdk_s3::types::ObjectLockLegalHoldStatus::On,
                );
            }
        }
        let created = create
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", &self.target(key), &e))?;
        let id = created
            .upload_id()
            .ok_or_else(|| StoreError::Invalid(format!("{}: no upload id", self.target(key))))?
            .to_owned();
        let upload = Upload {
            client: client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            id,
            options: Arc::new(self.options.clone()),
        };
        let result = match self.send_parts(&upload, path, digest, size).await {
            Ok(parts) => self.complete(&upload, parts, conditional).await,
            Err(e) => Err(e),
        };
        if !matches!(result, Ok(true)) {
            // best effort: the upload is invisible either way, and S3 lifecycle rules
            // can abort what a killed writer leaves
            let _ = client
                .abort_multipart_upload()
                .bucket(&upload.bucket)
                .key(&upload.key)
                .upload_id(&upload.id)
                .send()
                .await;
        }
        result
    }

    /// Reads the file once, in order, and sends its parts, at most
    /// `options.upload_concurrency` at a time; checks the bytes read against `digest`.
    async fn send_parts(
        &self,
        upload: &Upload,
        path: &Path,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<CompletedPart>, StoreError> {
        let part = part_size(size, self.options.part_size);
        let concurrency = self.options.upload_concurrency.max(1);
        let mut reader = Some((
            std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?,
            Hasher::new(),
        ));
        let mut tasks: JoinSet<Result<CompletedPart, StoreError>> = JoinSet::new();
        let mut parts = Vec::new();
        let (mut offset, mut number) = (0u64, 1i32);
        while offset < size {
            // a slot first, then the read: at most `concurrency` parts in memory
            while tasks.len() >= concurrency {
                parts.push(joined(tasks.join_next().await)?);
            }
            let len = part.min(size - offset);
            let Some((f, hasher)) = reader.take() else {
                break;
            };
            let (f, hasher, bytes, crc) = tokio::task::spawn_blocking(move || {
                let (mut f, mut hasher) = (f, hasher);
                let mut buf = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX)];
                f.read_exact(&mut buf)?;
                hasher.update(&buf);
                let crc = crc32fast::hash(&buf);
                Ok::<_, std::io::Error>((f, hasher, buf, crc))
            })
            .await
            .map_err(|e| StoreError::io(path, std::io::Error::other(e)))?
            .map_err(|e| StoreError::io(path, e))?;
            reader = Some((f, hasher));
            tasks.spawn(upload.clone().part(number, bytes, crc));
            offset += len;
            number += 1;
        }
        while let Some(done) = tasks.join_next().await {
            parts.push(joined(Some(done))?);
        }
        if reader.map(|(_, h)| h.finish()) != Some(*digest) {
            return Err(StoreError::Changed {
                path: path.to_owned(),
                expected: *digest,
            });
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }

    /// Completes the upload: the object appears whole, locked, or not at all.
    async fn complete(
        &self,
        upload: &Upload,
        parts: Vec<CompletedPart>,
        conditional: bool,
    ) -> Result<bool, StoreError> {
        let mut conflicts = 0;
        let mut conditional = conditional;
        loop {
            let mut req = upload
                .client
                .complete_multipart_upload()
                .bucket(&upload.bucket)
                .key(&upload.key)
                .upload_id(&upload.id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts.clone()))
                        .build(),
                );
            if conditional {
                req = req.if_none_match("*");
            }
            match req.send().await {
                Ok(_) => return Ok(true),
                Err(e) => match self.classify_put_error(&e, conditional, &mut conflicts) {
                    PutRetry::Taken => return Ok(false),
                    PutRetry::Again => {
                        conditional = !self
                            .no_conditional_put
                            .load(std::sync::atomic::Ordering::Relaxed);
                    }
                    PutRetry::Fail => {
                        return Err(s3_error(
                            "CompleteMultipartUpload",
                            &self.target(&upload.key),
                            &e,
                        ));
                    }
                },
            }
        }
    }
}

fn joined(
    done: Option<Result<Result<CompletedPart, StoreError>, tokio::task::JoinError>>,
) -> Result<CompletedPart, StoreError> {
    match done {
        Some(Ok(part)) => part,
        Some(Err(e)) => Err(StoreError::Invalid(format!("a part upload stopped: {e}"))),
        None => Err(StoreError::Invalid("no part upload to wait for".into())),
    }
}

impl Upload {
    /// Sends part `number` with its CRC32; the SDK retries it (the bytes are held).
    async fn part(
        self,
        number: i32,
        bytes: Vec<u8>,
        crc: u32,
    ) -> Result<CompletedPart, StoreError> {
        let checksum = base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
        let len = bytes.len() as u64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .part_number(number)
            .content_length(i64::try_from(len).unwrap_or(i64::MAX))
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .checksum_crc32(&checksum)
            .body(ByteStream::from(bytes))
            .customize()
            .config_override(upload_timeouts(&self.options, len))
            .send()
            .await
            .map_err(|e| {
                s3_error(
                    "UploadPart",
                    &format!("s3://{}/{} part {number}", self.bucket, self.key),
                    &e,
                )
            })?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .checksum_crc32(checksum)
            .build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_s3_limits() {
        const MIB: u64 = 1 << 20;
        assert_eq!(part_size(100 * MIB, 16 * MIB), 16 * MIB);
        assert_eq!(part_size(100 * MIB, MIB), MIN_PART, "at least 5 MiB");
        // 1 TiB in 16 MiB parts would be 65,536 parts: the parts grow
        let tib = 1 << 40;
        let p = part_size(tib, 16 * MIB);
        assert!(tib.div_ceil(p) <= MAX_PARTS, "{p}");
        assert_eq!(p % MIB, 0);
    }
}
