//! The S3 store against a real S3 server on loopback: moto in server mode (PyPI
//! `moto[server]`, tests/requirements.txt), which enforces Object Lock. `CUSTODY_MOTO`
//! names its `moto_server`; without it these tests say so and return.
//!
//! Network discipline: the server listens on 127.0.0.1 only, and every AWS client here
//! (the store's and the independent checker's) gets static test credentials, region
//! us-east-1 and the loopback endpoint, so the default credential chain (which would
//! probe the metadata address 169.254.169.254) is never consulted. The server process
//! runs with `AWS_EC2_METADATA_DISABLED=true` as well.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::types::ObjectLockMode;
use base64::Engine as _;
use custody_evidence::Digest;
use custody_store::{
    AnyStore, EvidenceStore, LockMode, ObjectSource, Query, Retention, S3Store, StaticCredentials,
    StoreError, StoreOptions, open_store_with,
};
use jiff::Timestamp;

use super::{Rec, envelope};

/// A moto server process; killed when the last test using it lets go.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static SHARED: Mutex<Weak<Moto>> = Mutex::new(Weak::new());

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// The server this test binary shares, started on first use. `None` (with a note)
    /// when `CUSTODY_MOTO` is unset.
    fn shared(test: &str) -> Option<Arc<Moto>> {
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = slot.upgrade() {
            return Some(m);
        }
        let m = Arc::new(Self::start(test)?);
        *slot = Arc::downgrade(&m);
        Some(m)
    }

    /// A server of its own (for a test that kills it).
    fn start(test: &str) -> Option<Moto> {
        let Some(bin) = std::env::var_os("CUSTODY_MOTO") else {
            // straight to stderr, past the test harness's capture, once per binary
            static SAID: AtomicBool = AtomicBool::new(false);
            if !SAID.swap(true, Ordering::Relaxed) {
                let _ = writeln!(
                    std::io::stderr(),
                    "S3 store tests (starting with {test}) not run: set CUSTODY_MOTO to a moto_server (cargo xtask test does)"
                );
            }
            return None;
        };
        Some(Self::start_bin(std::path::Path::new(&bin)))
    }

    /// The moto server `bin`, answering.
    fn start_bin(bin: &std::path::Path) -> Moto {
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("CUSTODY_MOTO names a moto_server that starts");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut first = [0u8; 12];
                if s.read_exact(&mut first).is_ok() && first.starts_with(b"HTTP/1.") {
                    return moto;
                }
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn test_credentials() -> StaticCredentials {
    StaticCredentials {
        access_key_id: "testing".into(),
        secret_access_key: "testing".into(),
        session_token: None,
    }
}

fn options(endpoint: &str) -> StoreOptions {
    StoreOptions {
        endpoint_url: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        force_path_style: true,
        credentials: Some(test_credentials()),
        initial_backoff: Duration::from_millis(20),
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

/// An SDK client of the test's own, to check what the store did independently of it.
fn checker(endpoint: &str) -> Client {
    let c = test_credentials();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            None,
            None,
            "test",
        ))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .build();
    Client::from_conf(conf)
}

static BUCKETS: AtomicUsize = AtomicUsize::new(0);

async fn bucket(client: &Client, lock: bool) -> String {
    let name = format!(
        "custody-{}-{}",
        std::process::id(),
        BUCKETS.fetch_add(1, Ordering::Relaxed)
    );
    client
        .create_bucket()
        .bucket(&name)
        .object_lock_enabled_for_bucket(lock)
        .send()
        .await
        .unwrap();
    name
}

struct Env {
    moto: Arc<Moto>,
    client: Client,
    bucket: String,
    store: S3Store,
}

async fn env(test: &str, lock: bool, tweak: impl FnOnce(&mut StoreOptions)) -> Option<Env> {
    let moto = Moto::shared(test)?;
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, lock).await;
    let mut opts = options(&moto.endpoint);
    tweak(&mut opts);
    let store = S3Store::new(&format!("s3://{bucket}/evidence"), opts).unwrap();
    Some(Env {
        moto,
        client,
        bucket,
        store,
    })
}

fn six_years() -> Retention {
    Retention::hipaa_default().unwrap()
}

fn whole_seconds(t: Timestamp) -> i64 {
    t.as_second() + i64::from(t.subsec_nanosecond() > 0)
}

/// (real versions, delete markers) of a key, as the server reports them.
async fn version_count(client: &Client, bucket: &str, key: &str) -> (usize, usize) {
    let out = client
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    (
        out.versions()
            .iter()
            .filter(|v| v.key() == Some(key))
            .count(),
        out.delete_markers()
            .iter()
            .filter(|v| v.key() == Some(key))
            .count(),
    )
}

#[tokio::test]
async fn s3_objects_land_as_compliance_locked_versions() {
    let Some(e) = env(
        "s3_objects_land_as_compliance_locked_versions",
        true,
        |_| {},
    )
    .await
    else {
        return;
    };
    let r = six_years();
    let put = e
        .store
        .put_object(ObjectSource::Bytes(b"scan report"), &r)
        .await
        .unwrap();
    assert!(put.created);
    let key = e.store.object_key(&put.digest);
    assert!(key.starts_with("evidence/objects/sha256/"), "{key}");

    // read back with the SDK, not through the store
    let head = e
        .client
        .head_object()
        .bucket(&e.bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    // (moto does not implement GetObjectRetention; HEAD carries the same lock)
    assert_eq!(
        head.object_lock_retain_until_date().unwrap().secs(),
        whole_seconds(r.retain_until)
    );
    // the PUT carried our SHA-256 as its integrity header
    let with_checksum = e
        .client
        .head_object()
        .bucket(&e.bucket)
        .key(&key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(
        with_checksum.checksum_sha256(),
        Some(
            base64::engine::general_purpose::STANDARD
                .encode(put.digest.as_bytes())
                .as_str()
        )
    );
    assert!(head.version_id().is_some_and(|v| v != "null"));

    // the store reports the same lock
    let mine = e.store.retention(&put.digest).await.unwrap().unwrap();
    assert_eq!(mine.mode, LockMode::Compliance);
    assert_eq!(mine.retain_until.as_second(), whole_seconds(r.retain_until));

    // storing the same bytes again is a no-op: no second version
    let again = e
        .store
        .put_object(ObjectSource::Bytes(b"scan report"), &r)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(version_count(&e.client, &e.bucket, &key).await, (1, 0));
    assert_eq!(
        e.store.get_object(&put.digest).await.unwrap(),
        b"scan report"
    );

    // a file streams in, its digest computed first
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sbom.json");
    let content: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let file = e
        .store
        .put_object(ObjectSource::File(&path), &r)
        .await
        .unwrap();
    assert_eq!(file.digest, Digest::of(&content));
    assert_eq!(file.size, content.len() as u64);
    assert!(e.store.has_object(&file.digest).await.unwrap());
    assert_eq!(e.store.get_object(&file.digest).await.unwrap(), content);
    let head = e
        .client
        .head_object()
        .bucket(&e.bucket)
        .key(e.store.object_key(&file.digest))
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert!(
        !e.store
            .has_object(&Digest::of(b"never stored"))
            .await
            .unwrap()
    );
    assert_eq!(
        e.store
            .retention(&Digest::of(b"never stored"))
            .await
            .unwrap(),
        None
    );
    drop(e.moto);
}

/// Issue 15, item 2: on a versioned bucket any writer can PUT a new version of an
/// object's key, with other bytes and a shorter lock. The first version holds the
/// evidence and its lock; reads never come from the replacement, and the lock read
/// names it.
#[tokio::test]
async fn s3_a_later_version_replaces_neither_the_bytes_nor_the_lock() {
    let Some(e) = env(
        "s3_a_later_version_replaces_neither_the_bytes_nor_the_lock",
        true,
        |_| {},
    )
    .await
    else {
        return;
    };
    let r = six_years();
    let put = e
        .store
        .put_object(ObjectSource::Bytes(b"the real scan"), &r)
        .await
        .unwrap();
    let key = e.store.object_key(&put.digest);
    // the same bytes again, under a one-day lock: still the first version's lock
    let one_day =
        aws_sdk_s3::primitives::DateTime::from_secs(Timestamp::now().as_second() + 86_400);
    e.client
        .put_object()
        .bucket(&e.bucket)
        .key(&key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"the real scan",
        ))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(one_day)
        .send()
        .await
        .unwrap();
    let lock = e.store.retention(&put.digest).await.unwrap().unwrap();
    assert_eq!(lock.retain_until.as_second(), whole_seconds(r.retain_until));
    // junk bytes in a newer version
    e.client
        .put_object()
        .bucket(&e.bucket)
        .key(&key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"junk"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(one_day)
        .send()
        .await
        .unwrap();
    assert_eq!(
        e.store.get_object(&put.digest).await.unwrap(),
        b"the real scan",
        "the first valid version wins"
    );
    let err = e
        .store
        .retention(&put.digest)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("holds other bytes than the object's first version"),
        "{err}"
    );
    drop(e.moto);
}

#[tokio::test]
async fn s3_locked_versions_cannot_be_deleted() {
    let Some(e) = env("s3_locked_versions_cannot_be_deleted", true, |_| {}).await else {
        return;
    };
    let put = e
        .store
        .put_object(ObjectSource::Bytes(b"locked"), &six_years())
        .await
        .unwrap();
    let err = e.store.delete_object(&put.digest).await.unwrap_err();
    assert!(matches!(err, StoreError::RetentionLocked { .. }), "{err}");
    assert!(err.to_string().contains("retention-locked until"), "{err}");
    // nor directly, by version id
    let key = e.store.object_key(&put.digest);
    let version = e
        .client
        .head_object()
        .bucket(&e.bucket)
        .key(&key)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    assert!(
        e.client
            .delete_object()
            .bucket(&e.bucket)
            .key(&key)
            .version_id(version)
            .send()
            .await
            .is_err()
    );
    assert_eq!(e.store.get_object(&put.digest).await.unwrap(), b"locked");
    assert!(matches!(
        e.store
            .delete_object(&Digest::of(b"absent"))
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

#[tokio::test]
async fn s3_unlocked_bucket_is_refused_unless_allowed() {
    let Some(e) = env(
        "s3_unlocked_bucket_is_refused_unless_allowed",
        false,
        |_| {},
    )
    .await
    else {
        return;
    };
    let err = e
        .store
        .put_object(ObjectSource::Bytes(b"x"), &six_years())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnlockedBucket { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("HIPAA retention"), "{msg}");
    assert!(msg.contains("create the bucket with Object Lock"), "{msg}");
    assert!(
        !e.store.has_object(&Digest::of(b"x")).await.unwrap(),
        "nothing was written"
    );

    // the explicit override writes, without lock headers (S3 would refuse them)
    let allowed = S3Store::new(
        &format!("s3://{}/evidence", e.bucket),
        StoreOptions {
            allow_unlocked_bucket: true,
            ..options(&e.moto.endpoint)
        },
    )
    .unwrap();
    let put = allowed
        .put_object(ObjectSource::Bytes(b"x"), &six_years())
        .await
        .unwrap();
    assert!(put.created);
    assert_eq!(allowed.retention(&put.digest).await.unwrap(), None);
    // and nothing is enforced there: the negative twin of the locked-delete test
    allowed.delete_object(&put.digest).await.unwrap();
    assert!(matches!(
        allowed.get_object(&put.digest).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

#[tokio::test]
async fn s3_delete_markers_do_not_hide_evidence() {
    let Some(e) = env("s3_delete_markers_do_not_hide_evidence", true, |_| {}).await else {
        return;
    };
    let key = super::SigningKey::generate();
    let env0 = envelope(&key, &Rec::default());
    let d0 = e
        .store
        .put_record(&env0, &six_years())
        .await
        .unwrap()
        .digest;
    let commit = Rec::default().commit.to_owned();
    let by_commit = Query {
        commit: Some(commit.clone()),
        ..Default::default()
    };
    assert_eq!(e.store.query(&by_commit).await.unwrap().len(), 1);

    // DELETE without a version id on every key the record touched: envelope, chain
    // position, every pointer
    let all = e
        .client
        .list_objects_v2()
        .bucket(&e.bucket)
        .prefix("evidence/")
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = all
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert!(keys.len() > 5, "{keys:?}");
    for k in &keys {
        e.client
            .delete_object()
            .bucket(&e.bucket)
            .key(k)
            .send()
            .await
            .unwrap();
    }
    let after = e
        .client
        .list_objects_v2()
        .bucket(&e.bucket)
        .prefix("evidence/")
        .send()
        .await
        .unwrap();
    assert!(
        after.contents().is_empty(),
        "a plain listing no longer shows the evidence"
    );
    let env_key = e.store.object_key(&d0);
    assert_eq!(version_count(&e.client, &e.bucket, &env_key).await, (1, 1));

    // the store still reads, queries and extends it
    assert_eq!(e.store.get_object(&d0).await.unwrap(), env0);
    assert!(e.store.has_object(&d0).await.unwrap());
    let found = e.store.query(&by_commit).await.unwrap();
    assert_eq!(found.iter().map(|r| r.digest).collect::<Vec<_>>(), vec![d0]);
    assert_eq!(e.store.query(&Query::default()).await.unwrap().len(), 1);
    assert_eq!(e.store.chain_head("c").await.unwrap(), Some((0, d0)));
    assert!(e.store.retention(&d0).await.unwrap().is_some());

    // a record written over the deleted position does not take it: first version wins
    let fork = envelope(
        &key,
        &Rec {
            stage: "forged",
            ..Default::default()
        },
    );
    let err = e.store.put_record(&fork, &six_years()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ChainConflict { sequence: 0, existing, .. } if existing == d0),
        "{err}"
    );
    assert_eq!(e.store.chain_head("c").await.unwrap(), Some((0, d0)));
    assert_eq!(
        e.store.query(&by_commit).await.unwrap().len(),
        1,
        "the losing record is not indexed"
    );
}

#[tokio::test]
async fn s3_chains_are_idempotent_and_refuse_forks() {
    let Some(e) = env("s3_chains_are_idempotent_and_refuse_forks", true, |_| {}).await else {
        return;
    };
    let key = super::SigningKey::generate();
    let r0 = envelope(&key, &Rec::default());
    let d0 = e.store.put_record(&r0, &six_years()).await.unwrap().digest;
    assert!(
        !e.store.put_record(&r0, &six_years()).await.unwrap().created,
        "storing a record twice is a no-op"
    );
    let r1 = envelope(
        &key,
        &Rec {
            seq: 1,
            prev: Some(d0),
            stage: "test",
            ..Default::default()
        },
    );
    let d1 = e.store.put_record(&r1, &six_years()).await.unwrap().digest;
    assert_eq!(e.store.chain_head("c").await.unwrap(), Some((1, d1)));

    let fork = envelope(
        &key,
        &Rec {
            seq: 1,
            prev: Some(d0),
            stage: "scan",
            ..Default::default()
        },
    );
    let err = e.store.put_record(&fork, &six_years()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ChainConflict { sequence: 1, .. }),
        "{err}"
    );
    let gap = envelope(
        &key,
        &Rec {
            seq: 3,
            prev: Some(d1),
            ..Default::default()
        },
    );
    assert!(matches!(
        e.store.put_record(&gap, &six_years()).await.unwrap_err(),
        StoreError::ChainBroken { .. }
    ));
    let chain_key = format!("evidence/chains/c/{:012}", 1);
    assert_eq!(
        version_count(&e.client, &e.bucket, &chain_key).await,
        (1, 0)
    );
    assert_eq!(e.store.chain("c").await.unwrap(), vec![(0, d0), (1, d1)]);

    // materials first
    let m = custody_evidence::Material {
        name: "bom.json".into(),
        digest: Digest::of(b"bom"),
        size: 3,
        media_type: None,
        format: None,
    };
    let with_material = envelope(
        &key,
        &Rec {
            chain: "m",
            materials: vec![m],
            ..Default::default()
        },
    );
    assert!(matches!(
        e.store
            .put_record(&with_material, &six_years())
            .await
            .unwrap_err(),
        StoreError::MissingMaterial { .. }
    ));
    e.store
        .put_object(ObjectSource::Bytes(b"bom"), &six_years())
        .await
        .unwrap();
    e.store
        .put_record(&with_material, &six_years())
        .await
        .unwrap();
}

#[tokio::test]
async fn s3_queries_by_commit_and_day() {
    let Some(moto) = Moto::shared("s3_queries_by_commit_and_day") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    // through the URL entry point, as the binaries open it
    let store = open_store_with(
        &format!("s3://{bucket}/acme/prod/"),
        &options(&moto.endpoint),
    )
    .unwrap();
    assert!(matches!(store, AnyStore::S3(_)));
    assert_eq!(store.uri(), format!("s3://{bucket}/acme/prod"));
    let key = super::SigningKey::generate();
    let t = |s: &str| s.parse::<Timestamp>().unwrap();
    let c1 = "1111111111111111111111111111111111111111";
    let c2 = "2222222222222222222222222222222222222222";
    let mut digests = Vec::new();
    for (commit, chain, stage, at) in [
        (c1, "a", "build", "2026-03-01T09:00:00Z"),
        (c1, "b", "scan", "2026-03-02T09:00:00Z"),
        (c2, "c", "build", "2026-04-01T09:00:00Z"),
    ] {
        let env = envelope(
            &key,
            &Rec {
                commit,
                chain,
                stage,
                subject: chain.as_bytes(),
                at: t(at),
                ..Default::default()
            },
        );
        digests.push(store.put_record(&env, &six_years()).await.unwrap().digest);
    }
    let [da, db, dc] = digests[..] else {
        unreachable!()
    };
    let ask = async |q: Query| -> Vec<Digest> {
        store
            .query(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.digest)
            .collect()
    };
    assert_eq!(
        ask(Query {
            commit: Some(c1.into()),
            ..Default::default()
        })
        .await,
        vec![da, db]
    );
    assert_eq!(
        ask(Query {
            commit: Some(c1.to_uppercase()),
            stage: Some("scan".into()),
            ..Default::default()
        })
        .await,
        vec![db]
    );
    assert_eq!(
        ask(Query {
            day: Some("2026-04-01".parse().unwrap()),
            ..Default::default()
        })
        .await,
        vec![dc]
    );
    assert_eq!(
        ask(Query {
            subject: Some(Digest::of(b"b")),
            ..Default::default()
        })
        .await,
        vec![db]
    );
    assert_eq!(
        ask(Query {
            since: Some(t("2026-03-02T00:00:00Z")),
            until: Some(t("2026-04-01T00:00:00Z")),
            ..Default::default()
        })
        .await,
        vec![db]
    );
    assert_eq!(ask(Query::default()).await, vec![da, db, dc]);
    assert!(
        ask(Query {
            commit: Some("ffff".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    for d in [da, db, dc] {
        store.get_object(&d).await.unwrap();
    }
    // the key layout matches the local store's, under the prefix
    let listed = client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!("acme/prod/index/commit/{c1}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 2);
}

#[tokio::test]
async fn s3_governance_store_records_governance() {
    let Some(e) = env("s3_governance_store_records_governance", true, |o| {
        o.lock_mode = LockMode::Governance;
    })
    .await
    else {
        return;
    };
    let put = e
        .store
        .put_object(ObjectSource::Bytes(b"governed"), &six_years())
        .await
        .unwrap();
    let head = e
        .client
        .head_object()
        .bucket(&e.bucket)
        .key(e.store.object_key(&put.digest))
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(
        e.store.retention(&put.digest).await.unwrap().unwrap().mode,
        LockMode::Governance
    );
    // the default store, on the same bucket, records COMPLIANCE: the twin
    let compliance = S3Store::new(
        &format!("s3://{}/other", e.bucket),
        options(&e.moto.endpoint),
    )
    .unwrap();
    let put = compliance
        .put_object(ObjectSource::Bytes(b"governed"), &six_years())
        .await
        .unwrap();
    assert_eq!(
        compliance
            .retention(&put.digest)
            .await
            .unwrap()
            .unwrap()
            .mode,
        LockMode::Compliance
    );
}

#[tokio::test]
async fn s3_reads_detect_corrupt_objects() {
    let Some(e) = env("s3_reads_detect_corrupt_objects", true, |_| {}).await else {
        return;
    };
    let put = e
        .store
        .put_object(ObjectSource::Bytes(b"pristine"), &six_years())
        .await
        .unwrap();
    assert!(e.store.get_object(&put.digest).await.is_ok());
    // someone with write access puts a new current version with other bytes
    e.client
        .put_object()
        .bucket(&e.bucket)
        .key(e.store.object_key(&put.digest))
        .body(b"pristinE".to_vec().into())
        .send()
        .await
        .unwrap();
    // the first version still holds the evidence and wins (issue 15, item 2); the
    // replacement is named where the lock is read
    assert_eq!(e.store.get_object(&put.digest).await.unwrap(), b"pristine");
    assert!(e.store.retention(&put.digest).await.is_err());
    // a name whose every version holds other bytes is corrupt
    let never = Digest::of(b"never stored");
    e.client
        .put_object()
        .bucket(&e.bucket)
        .key(e.store.object_key(&never))
        .body(b"something else".to_vec().into())
        .send()
        .await
        .unwrap();
    let err = e.store.get_object(&never).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

/// A loopback HTTP proxy in front of moto that answers the first `failures` requests
/// with 500, then forwards; with `no_conditional`, it plays a server without
/// conditional writes and answers `If-None-Match` with 501 NotImplemented.
struct FlakyProxy {
    port: u16,
    seen: Arc<AtomicUsize>,
}

impl FlakyProxy {
    fn start(upstream: &str, failures: usize) -> Self {
        Self::start_with(upstream, failures, false)
    }

    fn start_with(upstream: &str, failures: usize, no_conditional: bool) -> Self {
        let upstream = upstream.strip_prefix("http://").unwrap().to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, n < failures, no_conditional);
                });
            }
        });
        Self { port, seen }
    }
}

/// One request on one connection (`Connection: close` both ways).
fn serve(conn: TcpStream, upstream: &str, fail: bool, no_conditional: bool) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut conditional = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        conditional |= lower.starts_with("if-none-match:");
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let mut out = conn;
    if fail {
        out.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    if no_conditional && conditional {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>";
        write!(
            out,
            "HTTP/1.1 501 Not Implemented\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&head)?;
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(&body)?;
    std::io::copy(&mut up, &mut out)?;
    Ok(())
}

#[tokio::test]
async fn s3_transient_server_errors_are_retried() {
    let Some(moto) = Moto::shared("s3_transient_server_errors_are_retried") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    let proxy = FlakyProxy::start(&moto.endpoint, 3);
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        options(&format!("http://127.0.0.1:{}", proxy.port)),
    )
    .unwrap();
    let put = store
        .put_object(ObjectSource::Bytes(b"after retries"), &six_years())
        .await
        .unwrap();
    assert!(put.created);
    assert!(
        proxy.seen.load(Ordering::SeqCst) > 3,
        "the three failures were retried"
    );
    assert_eq!(
        store.get_object(&put.digest).await.unwrap(),
        b"after retries"
    );

    // the twin: more failures in a row than attempts end in a clear error
    let proxy = FlakyProxy::start(&moto.endpoint, 1000);
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        StoreOptions {
            max_attempts: 3,
            ..options(&format!("http://127.0.0.1:{}", proxy.port))
        },
    )
    .unwrap();
    let err = store
        .put_object(ObjectSource::Bytes(b"never"), &six_years())
        .await
        .unwrap_err();
    // a server that keeps failing is transient: evidence is spooled, not refused
    assert!(matches!(err, StoreError::S3Unavailable { .. }), "{err}");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(proxy.seen.load(Ordering::SeqCst), 3, "max_attempts holds");
}

#[tokio::test]
async fn s3_forks_are_caught_without_conditional_writes() {
    let Some(moto) = Moto::shared("s3_forks_are_caught_without_conditional_writes") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    let proxy = FlakyProxy::start_with(&moto.endpoint, 0, true);
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        options(&format!("http://127.0.0.1:{}", proxy.port)),
    )
    .unwrap();
    let key = super::SigningKey::generate();
    let r0 = envelope(&key, &Rec::default());
    let d0 = store.put_record(&r0, &six_years()).await.unwrap().digest;
    // the same record again: idempotent, though every PUT now creates a version
    store.put_record(&r0, &six_years()).await.unwrap();
    let fork = envelope(
        &key,
        &Rec {
            stage: "forged",
            ..Default::default()
        },
    );
    let err = store.put_record(&fork, &six_years()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ChainConflict { existing, .. } if existing == d0),
        "{err}"
    );
    // the fork's PUT went through unconditionally: the oldest version still rules
    let chain_key = format!("evidence/chains/c/{:012}", 0);
    let (versions, _) = version_count(&client, &bucket, &chain_key).await;
    assert!(versions >= 2, "the fork left a version: {versions}");
    assert_eq!(store.chain_head("c").await.unwrap(), Some((0, d0)));
    let all = store.query(&Query::default()).await.unwrap();
    assert_eq!(all.iter().map(|r| r.digest).collect::<Vec<_>>(), vec![d0]);
}

#[tokio::test]
async fn s3_killed_server_gives_a_clear_error() {
    let Some(moto) = Moto::start("s3_killed_server_gives_a_clear_error") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        StoreOptions {
            max_attempts: 3,
            ..options(&moto.endpoint)
        },
    )
    .unwrap();
    let put = store
        .put_object(ObjectSource::Bytes(b"before"), &six_years())
        .await
        .unwrap();
    drop(moto);
    let started = Instant::now();
    let err = store.get_object(&put.digest).await.unwrap_err();
    assert!(matches!(err, StoreError::S3Unreachable { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("cannot reach S3"), "{msg}");
    assert!(msg.contains("check the endpoint URL"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded retries"
    );
}

/// The store a writer process of the log's concurrency test opens.
pub(crate) fn open_for_writer(endpoint: &str, bucket: &str) -> AnyStore {
    AnyStore::S3(Box::new(
        S3Store::new(&format!("s3://{bucket}/evidence"), options(endpoint)).unwrap(),
    ))
}

/// Issue 14: sixteen processes append records to one bucket; the log holds each once,
/// with no gap and no index used twice (conditional writes decide every race). 64
/// records in a CI run (the 1,008 take 21 minutes on moto, BENCHMARKS.md);
/// `CUSTODY_LOG_RACE_RECORDS=1000` runs the 1,008.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_sixteen_processes_append_a_thousand_records() {
    let Some(env) = env(
        "s3_sixteen_processes_append_a_thousand_records",
        true,
        |_| {},
    )
    .await
    else {
        return;
    };
    let spec = format!("s3 {} {}", env.moto.endpoint, env.bucket);
    super::log::writers_race_as_processes(&env.store, &spec, 16, super::log::race_each(4)).await;
}

/// Issue 15, fault injection on S3: each kind of request of a record write broken in
/// each way (see `faults.rs`); the evidence ends stored once, never lost, never doubled,
/// and no key of the bucket has a second version.
#[tokio::test]
async fn s3_faults_end_with_the_evidence_stored_once() {
    use super::faults::{Paths, cases, check_tally, run_case};
    use custody_test_support::FaultProxy;

    let Some(moto) = Moto::shared("s3_faults_end_with_the_evidence_stored_once") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let proxy = FaultProxy::start(&moto.endpoint, Vec::new()).unwrap();
    let paths = Paths {
        object: "/objects/",
        retention: None,
        chain: "/chains/",
        index: "/index/",
        claim: "/log/seq/",
        marker: "/log/records/",
        listing: "chains",
    };
    let cases = cases(&paths, Duration::from_secs(4));
    let mut failed = Vec::new();
    for case in cases {
        let name = case.name.clone();
        let bucket = bucket(&client, true).await;
        let url = format!("s3://{bucket}/evidence");
        let direct = S3Store::new(&url, options(&moto.endpoint)).unwrap();
        let proxied = S3Store::new(
            &url,
            StoreOptions {
                attempt_timeout: Duration::from_secs(2),
                ..options(&proxy.url())
            },
        )
        .unwrap();
        let key = super::SigningKey::generate();
        if run_case(case, &proxy, &direct, &proxied, &key).await {
            failed.push(name.clone());
        }
        // no key was written twice: conditional writes turned every retry into a no-op
        let out = client
            .list_object_versions()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
        let mut keys: Vec<&str> = out.versions().iter().filter_map(|v| v.key()).collect();
        let all = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), all, "{name}: a key has a second version");
    }
    check_tally(&failed);
}

/// Issue 15, fault injection: a material upload (from a file, as the steps store them)
/// whose body the server takes but never answers is retried within a limit that grows
/// with the size, instead of holding the step forever; the object is stored once.
#[tokio::test]
async fn s3_a_material_upload_never_answered_is_retried() {
    use custody_test_support::{Fault, FaultProxy, Matcher, Rule};

    let Some(moto) = Moto::shared("s3_a_material_upload_never_answered_is_retried") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        vec![Rule::new(
            Matcher::method("PUT").and_path("/objects/"),
            Fault::Stall(Duration::from_secs(30)),
        )],
    )
    .unwrap();
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        StoreOptions {
            attempt_timeout: Duration::from_secs(2),
            ..options(&proxy.url())
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sbom.json");
    std::fs::write(&file, vec![b'x'; 300_000]).unwrap();
    let started = Instant::now();
    let put = store
        .put_object(ObjectSource::File(&file), &six_years())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the stalled attempt was given up: {:?}",
        started.elapsed()
    );
    assert_eq!(proxy.fired(), vec![1]);
    assert_eq!(store.get_object(&put.digest).await.unwrap().len(), 300_000);
    let (versions, _) = version_count(&client, &bucket, &store.object_key(&put.digest)).await;
    assert_eq!(versions, 1);
}

/// Issue 18: an S3-compatible endpoint (MinIO, Ceph) behind a private CA. The SDK's
/// client gets the same roots as every other client: with the CA, a locked object
/// goes up and comes back; without it, the error names the certificate.
#[tokio::test]
async fn s3_over_https_with_a_private_ca() {
    use custody_http::net::{Net, ProxySettings};
    use custody_test_support::{TestCa, TlsFront};
    let Some(moto) = Moto::shared("s3_over_https_with_a_private_ca") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    let ca = TestCa::new("Object storage CA");
    let backend = moto.endpoint.trim_start_matches("http://").parse().unwrap();
    let front = TlsFront::start(&ca, backend);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_ca(dir.path(), "ca");
    let url = format!("s3://{bucket}/evidence");
    let trusting = StoreOptions {
        net: Net::new(&[ca_file], ProxySettings::default()).unwrap(),
        ..options(&front.url())
    };
    let store = S3Store::new(&url, trusting).unwrap();
    let put = store
        .put_object(ObjectSource::Bytes(b"over https"), &six_years())
        .await
        .unwrap();
    assert!(put.created);
    assert_eq!(store.get_object(&put.digest).await.unwrap(), b"over https");

    let plain = S3Store::new(
        &url,
        StoreOptions {
            max_attempts: 1,
            ..options(&front.url())
        },
    )
    .unwrap();
    let e = plain
        .put_object(ObjectSource::Bytes(b"refused"), &six_years())
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("not trusted") && text.contains("--ca-file"),
        "{text}"
    );
}

/// A file of `len` bytes that no two parts repeat (a part swapped or sent twice shows).
fn varied_file(dir: &std::path::Path, len: usize) -> std::path::PathBuf {
    let mut bytes = Vec::with_capacity(len);
    let mut x: u32 = 0x9e37_79b9;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    let path = dir.join("image.tar");
    std::fs::write(&path, &bytes).unwrap();
    path
}

/// Open multipart uploads under the store's prefix (each would be parts left behind).
async fn open_uploads(client: &Client, bucket: &str) -> usize {
    let out = client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    out.uploads().len()
}

fn multipart_options(endpoint: &str) -> StoreOptions {
    StoreOptions {
        multipart_threshold: 5 << 20,
        part_size: 5 << 20,
        upload_concurrency: 2,
        ..options(endpoint)
    }
}

/// Issue 18: a material over the threshold goes up in parts, each with its CRC32, the
/// object locked from the start; a part the server fails once is sent again; the bytes
/// read back are the file's; nothing is left open.
#[tokio::test]
async fn s3_large_materials_go_up_in_locked_parts() {
    use custody_test_support::{Fault, FaultProxy, Matcher, Rule};

    let Some(moto) = Moto::shared("s3_large_materials_go_up_in_locked_parts") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    // the second part fails once with a 500: the SDK sends that part again (the rule
    // matches only a part that carries its CRC32)
    let proxy = FaultProxy::start(
        &moto.endpoint,
        vec![
            Rule::new(
                Matcher::method("PUT")
                    .and_path("partNumber=2")
                    .and_header("x-amz-checksum-crc32"),
                Fault::Status(500),
            )
            .times(1),
        ],
    )
    .unwrap();
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        multipart_options(&proxy.url()),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let len = (12 << 20) + 123;
    let file = varied_file(dir.path(), len);
    let r = six_years();
    let put = store
        .put_object(ObjectSource::File(&file), &r)
        .await
        .unwrap();
    assert!(put.created);
    assert_eq!(put.digest, Digest::of(&std::fs::read(&file).unwrap()));
    assert_eq!(proxy.fired(), vec![1], "the failed part was sent again");
    let parts: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT" && s.target.contains("partNumber="))
        .map(|s| s.target)
        .collect();
    assert_eq!(parts.len(), 4, "three parts, one sent twice: {parts:?}");
    let back = store.get_object(&put.digest).await.unwrap();
    assert_eq!(back.len(), len);
    assert_eq!(Digest::of(&back), put.digest);
    let key = store.object_key(&put.digest);
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert_eq!(
        head.object_lock_retain_until_date().map(|d| d.secs()),
        Some(whole_seconds(r.retain_until))
    );
    assert_eq!(version_count(&client, &bucket, &key).await, (1, 0));
    assert_eq!(open_uploads(&client, &bucket).await, 0);
    // the same bytes again: nothing new is written
    let again = store
        .put_object(ObjectSource::File(&file), &r)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(version_count(&client, &bucket, &key).await, (1, 0));
}

/// A part the server refuses for good fails the upload with a clear error, stores
/// nothing and leaves no upload open.
#[tokio::test]
async fn s3_a_refused_part_stores_nothing_and_leaves_no_upload() {
    use custody_test_support::{Fault, FaultProxy, Matcher, Rule};

    let Some(moto) = Moto::shared("s3_a_refused_part_stores_nothing_and_leaves_no_upload") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    let proxy = FaultProxy::start(
        &moto.endpoint,
        vec![
            Rule::new(
                Matcher::method("PUT").and_path("partNumber=3"),
                Fault::Status(403),
            )
            .times(usize::MAX),
        ],
    )
    .unwrap();
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        multipart_options(&proxy.url()),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = varied_file(dir.path(), (11 << 20) + 5);
    let digest = Digest::of(&std::fs::read(&file).unwrap());
    let e = store
        .put_object(ObjectSource::File(&file), &six_years())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("UploadPart") && e.contains("part 3"), "{e}");
    let key = store.object_key(&digest);
    assert_eq!(version_count(&client, &bucket, &key).await, (0, 0));
    assert_eq!(
        open_uploads(&client, &bucket).await,
        0,
        "the upload was aborted"
    );
}

/// The tests' server is moto with a listing that skips copying bodies
/// (`tests/moto/moto_server.py`): it must answer exactly as the moto it patches, the
/// venv's own `moto_server`. The same writes on both (versions, a delete marker, keys
/// outside the prefix), then ListObjectVersions whole and page by page, and every body
/// read back after the listings (a listing's copy must not close a stored body).
#[tokio::test]
async fn the_test_server_lists_versions_as_moto_does() {
    let Some(patched) = Moto::shared("the_test_server_lists_versions_as_moto_does") else {
        return;
    };
    let stock = std::env::var_os("CUSTODY_PYTHON")
        .map(|p| std::path::PathBuf::from(p).with_file_name("moto_server"))
        .filter(|p| p.exists());
    let Some(stock) = stock else {
        let _ = writeln!(
            std::io::stderr(),
            "the_test_server_lists_versions_as_moto_does not run: no moto_server next to CUSTODY_PYTHON"
        );
        return;
    };
    let stock = Moto::start_bin(&stock);
    let mut answers = Vec::new();
    for endpoint in [&patched.endpoint, &stock.endpoint] {
        let client = checker(endpoint);
        let bucket = bucket(&client, true).await;
        for (key, body) in [
            ("log/a", &b""[..]),
            ("log/a", b"x"),
            ("other", b"z"),
            ("log/a", b"xx"),
            ("log/b/1", b"hello"),
            ("log/c", b"c"),
        ] {
            client
                .put_object()
                .bucket(&bucket)
                .key(key)
                .body(body.to_vec().into())
                .send()
                .await
                .unwrap();
        }
        client
            .delete_object()
            .bucket(&bucket)
            .key("log/b/1")
            .send()
            .await
            .unwrap();
        let mut seen = Vec::new();
        for (max_keys, delimiter) in [(None, None), (Some(2), None), (None, Some("/"))] {
            let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
            loop {
                let page = client
                    .list_object_versions()
                    .bucket(&bucket)
                    .prefix("log/")
                    .set_max_keys(max_keys)
                    .set_delimiter(delimiter.map(str::to_owned))
                    .set_key_marker(key_marker.clone())
                    .set_version_id_marker(version_marker.clone())
                    .send()
                    .await
                    .unwrap();
                for v in page.versions() {
                    seen.push(format!(
                        "{} {} {} {:?}",
                        v.key().unwrap_or_default(),
                        v.size().unwrap_or_default(),
                        v.e_tag().unwrap_or_default(),
                        v.is_latest()
                    ));
                }
                for d in page.delete_markers() {
                    seen.push(format!(
                        "marker {} {:?}",
                        d.key().unwrap_or_default(),
                        d.is_latest()
                    ));
                }
                for p in page.common_prefixes() {
                    seen.push(format!("prefix {}", p.prefix().unwrap_or_default()));
                }
                if page.is_truncated() != Some(true) {
                    break;
                }
                seen.push("page".into());
                key_marker = page.next_key_marker().map(str::to_owned);
                version_marker = page.next_version_id_marker().map(str::to_owned);
            }
        }
        for key in ["log/a", "other", "log/c"] {
            let body = client
                .get_object()
                .bucket(&bucket)
                .key(key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes();
            seen.push(format!("{key} = {}", String::from_utf8_lossy(&body)));
        }
        answers.push(seen);
    }
    assert!(answers[0].len() > 10, "{:?}", answers[0]);
    assert_eq!(
        answers[0], answers[1],
        "the patched listing answers as moto does"
    );
}

/// A file the caller has hashed (evidence-upload's plan) is named by that digest without
/// a second pass; the bytes sent are still checked against it. A digest that does not
/// match the file (it changed after it was hashed) stores nothing: not under the digest
/// claimed, not under the real one, and no upload is left open, for a single PUT (S3
/// checks the checksum) and for a multipart upload (the store checks before completing).
#[tokio::test]
async fn s3_a_measured_file_is_held_to_its_digest() {
    let Some(moto) = Moto::shared("s3_a_measured_file_is_held_to_its_digest") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        multipart_options(&moto.endpoint),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for len in [4096, (11 << 20) + 5] {
        let file = varied_file(dir.path(), len);
        let real = Digest::of(&std::fs::read(&file).unwrap());
        let claimed = Digest::of(b"what the file held when it was hashed");
        let e = store
            .put_object(
                ObjectSource::Measured {
                    path: &file,
                    digest: claimed,
                    size: len as u64,
                },
                &six_years(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, StoreError::Changed { .. }),
            "{len} bytes: {e:?}"
        );
        let e = e.to_string();
        assert!(e.contains("changed while it was being stored"), "{e}");
        assert!(e.contains("image.tar"), "the message names the file: {e}");
        for d in [claimed, real] {
            let key = store.object_key(&d);
            assert_eq!(version_count(&client, &bucket, &key).await, (0, 0), "{len}");
        }
        assert_eq!(open_uploads(&client, &bucket).await, 0, "{len}");
        // the right digest stores it, named by that digest
        let put = store
            .put_object(
                ObjectSource::Measured {
                    path: &file,
                    digest: real,
                    size: len as u64,
                },
                &six_years(),
            )
            .await
            .unwrap();
        assert!(put.created);
        assert_eq!(put.digest, real);
        assert_eq!(Digest::of(&store.get_object(&real).await.unwrap()), real);
    }
}

/// The object's key is the digest measured before the upload: a file changed while its
/// parts go up (an attacker's swap, or a build still writing it) must not be stored
/// under the old digest. The upload is aborted and nothing is stored.
#[tokio::test]
async fn s3_a_file_changed_during_its_upload_is_not_stored() {
    use custody_test_support::{Fault, FaultProxy, Matcher, Rule};

    let Some(moto) = Moto::shared("s3_a_file_changed_during_its_upload_is_not_stored") else {
        return;
    };
    let client = checker(&moto.endpoint);
    let bucket = bucket(&client, true).await;
    // the first two parts are held a while, so the third is read after the change
    let proxy = FaultProxy::start(
        &moto.endpoint,
        vec![
            Rule::new(
                Matcher::method("PUT").and_path("partNumber=1"),
                Fault::Stall(Duration::from_secs(2)),
            ),
            Rule::new(
                Matcher::method("PUT").and_path("partNumber=2"),
                Fault::Stall(Duration::from_secs(2)),
            ),
        ],
    )
    .unwrap();
    let store = S3Store::new(
        &format!("s3://{bucket}/evidence"),
        multipart_options(&proxy.url()),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = varied_file(dir.path(), (11 << 20) + 5);
    let digest = Digest::of(&std::fs::read(&file).unwrap());
    let swapped = file.clone();
    let swap = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&swapped)
            .unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::End(-5)).unwrap();
        f.write_all(b"EVIL!").unwrap();
    });
    let e = store
        .put_object(ObjectSource::File(&file), &six_years())
        .await
        .unwrap_err()
        .to_string();
    swap.join().unwrap();
    assert!(e.contains("changed while it was being stored"), "{e}");
    assert!(e.contains("image.tar"), "the message names the file: {e}");
    let key = store.object_key(&digest);
    assert_eq!(version_count(&client, &bucket, &key).await, (0, 0));
    assert_eq!(
        open_uploads(&client, &bucket).await,
        0,
        "the upload was aborted"
    );
}
