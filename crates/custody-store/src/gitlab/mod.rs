//! The GitLab store (`gitlab://`): evidence kept in a project's generic package registry.
//!
//! # URL
//!
//! ```text
//! gitlab://HOST[:PORT]/GROUP/…/PROJECT/PACKAGE     e.g. gitlab://gitlab.com/acme/app/custody-evidence
//! gitlab://HOST[:PORT]/PROJECT_ID/PACKAGE          e.g. gitlab://gitlab.example.org/1234/custody-evidence
//! gitlab+http://127.0.0.1:PORT/acme/app/evidence   plain HTTP, loopback hosts only (tests)
//! ```
//!
//! The last path segment is the generic package name (`[A-Za-z0-9._-]`); everything
//! between the host and it is the project path, or a numeric project id. The API is
//! `https://HOST[:PORT]/api/v4/`; GitLab under a relative URL root is not supported. The
//! URL never carries credentials: a token comes from [`GitLabOptions`], filled by the
//! caller from `CI_JOB_TOKEN` (sent as `JOB-TOKEN`) or `CUSTODY_GITLAB_TOKEN` (sent as
//! `PRIVATE-TOKEN`; a personal, project or group access token with the `api` scope).
//!
//! # Layout
//!
//! The store is one generic package name; what the local store keeps in directories
//! becomes package *versions*, and the file names stay as they are:
//!
//! ```text
//! version                               file                    content
//! objects-sha256-ab                     abcdef…  (64 hex)       the object's bytes
//! retention-sha256-ab                   abcdef….json            retention marker (JSON)
//! chain-<C(chain id)>                   000000000007_<hex>      the 8th record's digest
//! index-<kind>-<C(value)>               <nanos:020>_<hex>       the record's digest
//! log-<C(dir)>                          <name>_<sha256 hex>     a log file (`log/dir/name`)
//! log-<C(parent)>                       <dir>_dir               (empty) lists `dir`
//! ```
//!
//! The transparency log's write-once files ([`crate::log`]) rely on what the package
//! API does guarantee: file ids grow with every upload, and listing returns them. A log
//! file's name carries the digest of its bytes, so several writers racing for one name
//! (an index claim) each upload their own file, and the *first uploaded* (lowest
//! package-file id) is the name's content for every reader; a download is checked
//! against the digest in its name, so a later upload under the same name and digest
//! with other bytes is an error, never a substitution.
//!
//! `kind` is one of `subject commit pipeline day environment stage control`. GitLab allows
//! `[A-Za-z0-9._-]` in file names and `\A(\.?[\w+-]+\.?)+\z` in versions, so values go
//! through [`encode_component`](crate::index::encode_component) (percent-encoding,
//! injective) and then `C`, which maps its output onto `[A-Za-z0-9_-]` without losing
//! injectivity: `_` → `__`, `.` → `_d`,
//! `%` → `_` (a `%` is always followed by a hex digit or `h`, never by `_` or `d`, so
//! the mapping can be undone). A result longer than 128 characters is replaced by `_H`
//! and the SHA-256 of the encoded value (`%H` never occurs, so no short value maps there).
//!
//! # Write-once, and what GitLab does not give
//!
//! GitLab keeps package files until someone deletes them; there is no object lock. A
//! Maintainer (or the API with such a token) can delete files whatever Custody recorded,
//! so retention here is a recorded promise that Custody clients keep, not an enforcement:
//! restrict who is Maintainer, protect the package name (GitLab's protected packages),
//! and mirror to S3 Object Lock when enforcement is required. `retention()` returns the
//! marker Custody wrote; `delete_object` refuses before it expires, like the local store.
//!
//! Every write checks for the file first and skips it when present. GitLab allows several
//! files with one name in one version (unless the namespace forbids duplicate generic
//! packages), and a download returns the most recent one, so nothing below trusts a
//! download to be the first write: objects are checked against their digest; a chain
//! entry names its record in its file name, and the *first uploaded* file for a position
//! (lowest package-file id) is the chain's record there — a later, different record at
//! that position is refused as a fork ([`StoreError::ChainConflict`]), also when it lost
//! a race after its upload. Each retention marker is a name of its own carrying the
//! SHA-256 of its bytes (`<hex>.<sha256>.json`), and an object's retention is the
//! longest of its markers: anyone who can upload can add a marker, but a shorter one
//! changes nothing, and a name uploaded again with other bytes is an error that names it
//! (the first upload of a name cannot be downloaded once a later one exists). An object
//! uploaded again with junk bytes reads as corrupt for the same reason: detected, not
//! recoverable through the API. Disallowing duplicate generic packages in the group's
//! package settings makes GitLab refuse such uploads outright.
//!
//! # Network
//!
//! Requests go through the `gitlab` crate's endpoints and query helpers over Custody's
//! one GitLab client (`custody_http::gitlab::Client`): connect and request timeouts, transient
//! failures (5xx, 429, timeouts, refused or reset connections) retried with bounded
//! exponential backoff, redirects followed by hand so that the token is sent to the
//! GitLab host only (package downloads may redirect to object storage), and tokens kept
//! in a redacting type that never reaches `Debug`, `Display` or an error. Objects are
//! read into memory to upload and download; very large objects are better kept in S3.
//!
//! # Code map
//!
//! This file is the store (retention, chains, log files, the [`EvidenceStore`] impl);
//! `naming` parses the URL and names versions and files, `client` makes the requests
//! and turns answers into [`GitLabError`], `endpoints` adds what the `gitlab` crate
//! lacks, and `token` holds the secrets and [`GitLabOptions`].

mod client;
mod endpoints;
mod naming;
mod token;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use ::gitlab::api::projects::packages::package_files::DeletePackageFile;
use ::gitlab::api::{self as glapi, AsyncQuery};
use custody_evidence::Digest;
use custody_http::gitlab::{Client as Api, Config as ClientConfig, Redirects};
use jiff::Timestamp;
use url::Url;

use self::endpoints::PackageFileInfo;
use self::naming::{
    DAY_PREFIX, LOG_DIR_SUFFIX, Location, SCHEME, SCHEME_HTTP, chain_file, chain_version,
    index_version, is_retention_marker, log_file, log_version, object_version, parse_chain_file,
    parse_location, retention_marker, retention_version, unsupported,
};
use crate::LogWrite;
use crate::error::StoreError;
use crate::index::index_keys;
use crate::layout::{
    check_previous, day_in_range, decode_record, finish, intersect, merge_retention,
    parse_pointer_name, pointer_name, retention_holds,
};
use crate::query::{Query, RecordRef};
use crate::{EvidenceStore, ObjectSource, PutOutcome, Retention};

pub use self::client::GitLabError;
pub(crate) use self::naming::is_gitlab_url;
pub use self::token::{GitLabOptions, GitLabToken, TokenKind};

/// An evidence store in a GitLab project's generic package registry.
#[derive(Debug, Clone)]
pub struct GitLabStore {
    api: Arc<Api>,
    location: Location,
}

impl GitLabStore {
    /// Parses the URL and prepares the client. No request is made: GitLab creates a
    /// package on its first upload, so opening and creating are the same, and problems
    /// (host, token, project) surface on the first call, with the request named.
    pub fn open(url: &str, options: &GitLabOptions) -> Result<Self, StoreError> {
        let location = parse_location(url)?;
        let scheme = if location.http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}/api/v4/", location.authority))
            .map_err(|e| unsupported(url, e.to_string()))?;
        let api = Api::new(
            base,
            options.token.clone(),
            &options.net,
            ClientConfig {
                timeout: options.timeout,
                connect_timeout: options.connect_timeout,
                attempts: options.attempts,
                initial_backoff: options.initial_backoff,
                max_backoff: options.max_backoff,
                redirects: Redirects::FollowReads,
                https_only: !location.http,
                ..ClientConfig::default()
            },
        )
        .map_err(|e| GitLabError::Setup {
            reason: e.to_string(),
        })?;
        Ok(Self {
            api: Arc::new(api),
            location,
        })
    }

    /// The generic package that holds the store.
    pub fn package_name(&self) -> &str {
        &self.location.package
    }

    fn file_url(&self, version: &str, file: &str) -> PathBuf {
        PathBuf::from(format!("{}/{version}/{file}", self.uri()))
    }

    /// An object's retention: the longest of its markers (retention only grows, so a
    /// marker with an earlier date, whoever uploaded it, shortens nothing). A marker name
    /// uploaded twice with different bytes, or bytes that are not what its name carries,
    /// means the first upload can no longer be read: that is an error naming it, never
    /// a silent substitution.
    async fn read_retention(&self, d: &Digest) -> Result<Option<Retention>, StoreError> {
        let version = retention_version(d);
        // (file, the digest its name carries, if any)
        let files: Vec<(PackageFileInfo, Option<String>)> = self
            .list_files(&version)
            .await?
            .into_iter()
            .filter_map(|(_, f)| is_retention_marker(d, &f.file_name).map(|named| (f, named)))
            .collect();
        let mut merged: Option<Retention> = None;
        let mut seen = std::collections::BTreeSet::new();
        for (f, named) in &files {
            if !seen.insert(f.file_name.as_str()) {
                continue;
            }
            let url = self.file_url(&version, &f.file_name);
            let replaced = || {
                StoreError::Invalid(format!(
                    "{}: retention marker of object {d} was uploaded again with other bytes, and GitLab serves only the newest upload of a name: the first cannot be read (disallow duplicate generic packages in the group's package settings)",
                    url.display()
                ))
            };
            let shas: std::collections::BTreeSet<String> = files
                .iter()
                .map(|(x, _)| x)
                .filter(|x| x.file_name == f.file_name)
                .filter_map(|x| x.file_sha256.as_deref().map(str::to_ascii_lowercase))
                .collect();
            if shas.len() > 1 {
                return Err(replaced());
            }
            let bytes = self
                .get_file(&version, &f.file_name)
                .await?
                .ok_or_else(|| {
                    StoreError::Invalid(format!("{}: listed but not downloadable", url.display()))
                })?;
            let actual = Digest::of(&bytes).hex();
            if named
                .as_deref()
                .is_some_and(|n| !n.eq_ignore_ascii_case(&actual))
                || shas.iter().next().is_some_and(|sha| *sha != actual)
            {
                return Err(replaced());
            }
            let r: Retention = serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", url.display())))?;
            merged = Some(match merged {
                None => r,
                Some(cur) => merge_retention(&cur, &r).unwrap_or(cur),
            });
        }
        Ok(merged)
    }

    /// Records or extends an object's retention; an earlier date than the recorded one
    /// changes nothing. Each extension is one more marker file, so re-storing (`slack`)
    /// extends only by a day or more: a job re-putting an object with "six years from now"
    /// does not add a file per run.
    async fn lock(&self, d: &Digest, retention: &Retention, slack: bool) -> Result<(), StoreError> {
        let next = match self.read_retention(d).await? {
            None => *retention,
            Some(cur) => match merge_retention(&cur, retention) {
                Some(merged)
                    if !slack
                        || merged.legal_hold != cur.legal_hold
                        || merged.retain_until.duration_since(cur.retain_until)
                            >= jiff::SignedDuration::from_hours(24) =>
                {
                    merged
                }
                _ => return Ok(()),
            },
        };
        let bytes = serde_json::to_vec(&next).map_err(|e| StoreError::Invalid(e.to_string()))?;
        // a new date, so a new name: no marker so far holds these bytes
        self.upload(&retention_version(d), &retention_marker(d, &bytes), &bytes)
            .await?;
        Ok(())
    }

    /// Explicitly sets a retention date: extending is allowed, shortening refused.
    pub async fn extend_retention(
        &self,
        d: &Digest,
        retention: &Retention,
    ) -> Result<(), StoreError> {
        if let Some(cur) = self.read_retention(d).await?
            && retention.retain_until < cur.retain_until
        {
            return Err(StoreError::RetentionShorten {
                digest: *d,
                current: cur.retain_until,
                requested: retention.retain_until,
            });
        }
        self.lock(d, retention, false).await
    }

    /// The chain's records by position: for each position the first uploaded entry.
    async fn chain_entries(&self, chain: &str) -> Result<BTreeMap<u64, Digest>, StoreError> {
        let mut out = BTreeMap::new();
        for (_, f) in self.list_files(&chain_version(chain)).await? {
            if let Some((seq, d)) = parse_chain_file(&f.file_name) {
                out.entry(seq).or_insert(d);
            }
        }
        Ok(out)
    }

    /// The records of a chain in order.
    pub async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        Ok(self.chain_entries(chain_id).await?.into_iter().collect())
    }

    async fn list_key(&self, version: &str) -> Result<Vec<RecordRef>, StoreError> {
        Ok(self
            .list_files(version)
            .await?
            .iter()
            .filter_map(|(_, f)| parse_pointer_name(&f.file_name))
            .collect())
    }

    /// The first upload (lowest package-file id) of a log file, checked against the
    /// digest its upload name carries.
    async fn first_log_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        crate::log::check_log_name(name)?;
        let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
        let version = log_version(dir);
        let first = self.list_files(&version).await?.into_iter().find(|(_, f)| {
            f.file_name
                .rsplit_once('_')
                .is_some_and(|(b, h)| b == base && h.len() == 64)
        });
        let Some((_, f)) = first else {
            return Ok(None);
        };
        let want = f.file_name.rsplit_once('_').map_or("", |(_, h)| h);
        let bytes = self
            .get_file(&version, &f.file_name)
            .await?
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "{}: listed but not downloadable",
                    self.file_url(&version, &f.file_name).display()
                ))
            })?;
        if Digest::of(&bytes).hex() != want {
            return Err(StoreError::Invalid(format!(
                "{}: its bytes do not hash to the digest its name carries; a later upload replaced the log file",
                self.file_url(&version, &f.file_name).display()
            )));
        }
        Ok(Some(bytes))
    }

    async fn put_log_file_impl(&self, name: &str, bytes: &[u8]) -> LogWrite {
        crate::log::check_log_name(name)?;
        // every ancestor directory leaves a marker in its parent (idempotent)
        let parts: Vec<&str> = name.split('/').collect();
        for depth in 1..parts.len().saturating_sub(1) {
            let (Some(above), Some(dir)) = (parts.get(..depth), parts.get(depth)) else {
                continue;
            };
            let parent = above.join("/");
            let marker = format!("{dir}{LOG_DIR_SUFFIX}");
            let version = log_version(&parent);
            if !self.has_file(&version, &marker).await? {
                self.upload(&version, &marker, b"").await?;
            }
        }
        let (dir, base) = name.rsplit_once('/').unwrap_or(("", name));
        let version = log_version(dir);
        let file = log_file(base, bytes);
        if !self.has_file(&version, &file).await? {
            self.upload(&version, &file, bytes).await?;
        }
        // the first upload of the name wins, also when another writer raced us
        match self.first_log_file(name).await? {
            Some(held) if held == bytes => Ok(None),
            Some(held) => Ok(Some(held)),
            None => Err(StoreError::Invalid(format!(
                "{}: uploaded, yet not listed",
                self.file_url(&version, &file).display()
            ))),
        }
    }

    async fn list_log_dir_impl(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        crate::log::check_log_name(dir)?;
        let mut out: Vec<String> = self
            .list_files(&log_version(dir))
            .await?
            .into_iter()
            .filter_map(|(_, f)| {
                if let Some(d) = f.file_name.strip_suffix(LOG_DIR_SUFFIX) {
                    return Some(d.to_owned());
                }
                let (base, hex) = f.file_name.rsplit_once('_')?;
                (hex.len() == 64).then(|| base.to_owned())
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    async fn put_bytes(
        &self,
        bytes: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        let digest = Digest::of(bytes);
        let version = object_version(&digest);
        let file = digest.hex();
        let created = if self.has_file(&version, &file).await? {
            false
        } else {
            self.upload(&version, &file, bytes).await?;
            true
        };
        self.lock(&digest, retention, true).await?;
        Ok(PutOutcome {
            digest,
            size: bytes.len() as u64,
            created,
        })
    }
}

impl EvidenceStore for GitLabStore {
    fn uri(&self) -> String {
        let scheme = if self.location.http {
            SCHEME_HTTP
        } else {
            SCHEME
        };
        format!(
            "{scheme}{}/{}/{}",
            self.location.authority, self.location.project, self.location.package
        )
    }

    async fn put_object(
        &self,
        src: ObjectSource<'_>,
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        match src {
            ObjectSource::Bytes(bytes) => self.put_bytes(bytes, retention).await,
            ObjectSource::File(path) | ObjectSource::Measured { path, .. } => {
                let (bytes, _) = crate::read_checked(path, src.expected()).await?;
                self.put_bytes(&bytes, retention).await
            }
        }
    }

    async fn get_object(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let version = object_version(digest);
        let file = digest.hex();
        let Some(bytes) = self.get_file(&version, &file).await? else {
            return Err(StoreError::NotFound { digest: *digest });
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::Corrupt {
                digest: *digest,
                actual,
                path: self.file_url(&version, &file),
            });
        }
        Ok(bytes)
    }

    async fn has_object(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.has_file(&object_version(digest), &digest.hex()).await
    }

    async fn retention(&self, digest: &Digest) -> Result<Option<Retention>, StoreError> {
        self.read_retention(digest).await
    }

    async fn put_record(
        &self,
        envelope: &[u8],
        retention: &Retention,
    ) -> Result<PutOutcome, StoreError> {
        let incoming = decode_record(envelope)?;
        let (record, digest) = (&incoming.record, incoming.digest);
        for m in &record.materials {
            if !self.has_object(&m.digest).await? {
                return Err(StoreError::MissingMaterial { digest: m.digest });
            }
        }
        let chain = &record.chain;
        let entries = self.chain_entries(&chain.id).await?;
        let prev_actual = chain
            .sequence
            .checked_sub(1)
            .and_then(|s| entries.get(&s).copied());
        check_previous(record, prev_actual)?;
        let held = entries.get(&chain.sequence).copied();
        if held.is_some() {
            incoming.check_position(held)?;
        }
        let outcome = self.put_bytes(envelope, retention).await?;
        let fresh = held.is_none();
        if fresh {
            let version = chain_version(&chain.id);
            self.upload(
                &version,
                &chain_file(chain.sequence, &digest),
                digest.to_string().as_bytes(),
            )
            .await?;
            // the first upload for a position wins, also when another writer raced us
            let winner = self
                .chain_entries(&chain.id)
                .await?
                .get(&chain.sequence)
                .copied();
            incoming.check_position(winner)?;
        }
        let name = pointer_name(record.recorded_at, &digest);
        for key in index_keys(&incoming.statement, record) {
            let version = index_version(&key);
            // a fresh chain entry means no pointer of this record exists yet; a re-put
            // (or a retry after a crash) only fills in what is missing
            if fresh || !self.has_file(&version, &name).await? {
                self.upload(&version, &name, digest.to_string().as_bytes())
                    .await?;
            }
        }
        crate::log::sequence(self, &incoming.log_entry, retention, !fresh).await?;
        Ok(outcome)
    }

    async fn chain_head(&self, chain_id: &str) -> Result<Option<(u64, Digest)>, StoreError> {
        Ok(self.chain_entries(chain_id).await?.pop_last())
    }

    async fn chain(&self, chain_id: &str) -> Result<Vec<(u64, Digest)>, StoreError> {
        GitLabStore::chain(self, chain_id).await
    }
    async fn query(&self, query: &Query) -> Result<Vec<RecordRef>, StoreError> {
        let keys = query.keys();
        let result = if keys.is_empty() {
            // no key: walk the days in range, the coarsest index
            let mut all = Vec::new();
            for p in self.packages(None).await? {
                let Some(day) = p
                    .version
                    .as_deref()
                    .and_then(|v| v.strip_prefix(DAY_PREFIX))
                    .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                else {
                    continue;
                };
                if day_in_range(query, day) {
                    all.extend(
                        self.files_of(p.id)
                            .await?
                            .iter()
                            .filter_map(|f| parse_pointer_name(&f.file_name)),
                    );
                }
            }
            all
        } else {
            let mut sets = Vec::with_capacity(keys.len());
            for key in &keys {
                sets.push(self.list_key(&index_version(key)).await?);
            }
            intersect(sets)
        };
        Ok(finish(query, result))
    }

    async fn delete_object(&self, digest: &Digest) -> Result<(), StoreError> {
        if !self.has_object(digest).await? {
            return Err(StoreError::NotFound { digest: *digest });
        }
        if let Some(r) = self.read_retention(digest).await?
            && retention_holds(&r, Timestamp::now())
        {
            return Err(StoreError::RetentionLocked {
                what: format!("object {digest}"),
                until: r.retain_until,
            });
        }
        let targets = [
            (object_version(digest), true),
            (retention_version(digest), false),
        ];
        for (version, object) in targets {
            for (package_id, f) in self.list_files(&version).await? {
                let ours = if object {
                    f.file_name == digest.hex()
                } else {
                    is_retention_marker(digest, &f.file_name).is_some()
                };
                if !ours {
                    continue;
                }
                let ep = DeletePackageFile::builder()
                    .project(self.project())
                    .package_id(package_id)
                    .package_file_id(f.id)
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
                glapi::ignore(&ep)
                    .query_async(&*self.api)
                    .await
                    .map_err(|e| self.error(&ep, e))?;
            }
        }
        Ok(())
    }
    async fn put_log_file(&self, name: &str, bytes: &[u8], _retention: &Retention) -> LogWrite {
        // GitLab has no lock to give a log file; its retention is the store's promise
        self.put_log_file_impl(name, bytes).await
    }

    async fn get_log_file(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.first_log_file(name).await
    }

    async fn list_log_dir(&self, dir: &str) -> Result<Vec<String>, StoreError> {
        self.list_log_dir_impl(dir).await
    }
}
