//! Options a store URL cannot carry well: where an S3-compatible endpoint is, how
//! objects are locked, and how hard to try. Plain data, resolved at the edge (flags,
//! environment) by the binaries; the local store ignores them.

use std::fmt;
use std::time::Duration;

use crate::{DEFAULT_RETENTION_YEARS, LockMode, Retention, StoreError};

/// How an S3 store connects and locks. `Default` is the production choice: the
/// default AWS credential chain, COMPLIANCE locks for six years, a bucket without
/// Object Lock refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// An S3-compatible endpoint (MinIO, Ceph RGW, a test server), e.g.
    /// `https://minio.internal:9000`. `None`: AWS, resolved from the region.
    pub endpoint_url: Option<String>,
    /// `None`: from the environment or profile (`AWS_REGION`), or `us-east-1` when an
    /// endpoint is given.
    pub region: Option<String>,
    /// Address buckets as `endpoint/bucket/key` rather than `bucket.endpoint/key`;
    /// MinIO and Ceph usually need it.
    pub force_path_style: bool,
    /// The lock mode of every object the store writes. COMPLIANCE: nobody, not even
    /// the account root, can shorten or remove the lock. GOVERNANCE: principals with
    /// `s3:BypassGovernanceRetention` can.
    pub lock_mode: LockMode,
    /// Years of retention [`StoreOptions::retention`] proposes (HIPAA: 6).
    pub retention_years: i16,
    /// Put a legal hold on every object written (on top of the retention date).
    pub legal_hold: bool,
    /// Write into a bucket without Object Lock. Nothing is then enforced: for demos
    /// and tests only.
    pub allow_unlocked_bucket: bool,
    /// Explicit keys (MinIO/Ceph service accounts, tests). `None`: the default AWS
    /// chain (environment, web identity/OIDC, profiles, ECS, IMDS).
    pub credentials: Option<StaticCredentials>,
    /// Attempts per request, including the first (standard retry mode).
    pub max_attempts: u32,
    /// The first retry waits up to this long (with jitter); later ones back off
    /// exponentially, up to 20 s.
    pub initial_backoff: Duration,
    /// Limit on opening a connection.
    pub connect_timeout: Duration,
    /// Limit on one attempt of a small request (everything but a material upload,
    /// whose limit grows with its size).
    pub attempt_timeout: Duration,
    /// Materials of this many bytes or more go up by multipart upload (S3).
    pub multipart_threshold: u64,
    /// The part size of a multipart upload (at least 5 MiB; larger when 10,000 parts
    /// would not hold the file).
    pub part_size: u64,
    /// Parts of one upload in flight at once (each held in memory: this times
    /// `part_size`).
    pub upload_concurrency: usize,
    /// Trusted roots and proxy (the S3 client gets the same as every other client).
    #[cfg(feature = "s3")]
    pub net: custody_http::net::Net,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: None,
            force_path_style: false,
            lock_mode: LockMode::Compliance,
            retention_years: DEFAULT_RETENTION_YEARS,
            legal_hold: false,
            allow_unlocked_bucket: false,
            credentials: None,
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(60),
            multipart_threshold: 16 << 20,
            part_size: 8 << 20,
            upload_concurrency: 8,
            #[cfg(feature = "s3")]
            net: custody_http::net::Net::default(),
        }
    }
}

impl StoreOptions {
    /// The retention these options ask for, counted from now.
    pub fn retention(&self) -> Result<Retention, StoreError> {
        let mut r = Retention::years_from(jiff::Timestamp::now(), self.retention_years)?;
        r.mode = self.lock_mode;
        r.legal_hold = self.legal_hold;
        Ok(r)
    }
}

/// An access key pair. The secret and the session token never appear in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug() {
        let o = StoreOptions {
            credentials: Some(StaticCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI-secret".into(),
                session_token: Some("session-token-value".into()),
            }),
            ..Default::default()
        };
        let shown = format!("{o:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("wJalrXUtnFEMI-secret"), "{shown}");
        assert!(!shown.contains("session-token-value"), "{shown}");
    }

    #[test]
    fn retention_follows_the_options() {
        let o = StoreOptions {
            lock_mode: LockMode::Governance,
            legal_hold: true,
            ..Default::default()
        };
        let r = o.retention().unwrap();
        assert_eq!(r.mode, LockMode::Governance);
        assert!(r.legal_hold);
        assert!(r.retain_until > jiff::Timestamp::now());
    }
}
