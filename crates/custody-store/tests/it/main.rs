//! Integration tests of the stores: write-once semantics, retention, chains, queries and
//! concurrent writers on the embedded store; the GitLab store in `gitlab.rs`; the S3
//! store against a real S3 server in `s3.rs`.

// Test helpers outside #[test] functions are not covered by clippy.toml's test
// exemptions; a failing unwrap here is a failing test, which is what we want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(any(feature = "gitlab", feature = "s3"))]
mod faults;
#[cfg(feature = "gitlab")]
mod gitlab;
mod log;
#[cfg(feature = "s3")]
mod s3;

use std::sync::Arc;

use custody_evidence::{
    ChainLink, Control, Digest, KeyIdScheme, Material, PipelineContext, Platform, RecordInfo,
    ResourceDescriptor, SigningKey, Statement, sign_statement,
};
use custody_store::{LocalStore, ObjectSource, Query, Retention, StoreError, encode_component};
use jiff::Timestamp;

struct Fixture {
    _dir: tempfile::TempDir,
    store: LocalStore,
    key: SigningKey,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::create(dir.path().join("store")).unwrap();
    Fixture {
        _dir: dir,
        store,
        key: SigningKey::generate(),
    }
}

fn retention() -> Retention {
    Retention::hipaa_default().unwrap()
}

struct Rec<'a> {
    subject: &'a [u8],
    commit: &'a str,
    pipeline: &'a str,
    stage: &'a str,
    chain: &'a str,
    seq: u64,
    prev: Option<Digest>,
    at: Timestamp,
    materials: Vec<Material>,
}

impl Default for Rec<'_> {
    fn default() -> Self {
        Self {
            subject: b"artifact",
            commit: "0123456789abcdef0123456789abcdef01234567",
            pipeline: "100",
            stage: "build",
            chain: "c",
            seq: 0,
            prev: None,
            at: "2026-03-14T10:00:00Z".parse().unwrap(),
            materials: vec![],
        }
    }
}

fn envelope(key: &SigningKey, r: &Rec<'_>) -> Vec<u8> {
    let d = draft(r);
    let st = Statement::new(d.subject, &d.predicate_type, d.predicate, &d.record).unwrap();
    sign_statement(&st, key, KeyIdScheme::Empty)
        .unwrap()
        .to_vec()
}

/// What `envelope` signs, for `append_record` (which sets the chain link itself).
fn draft(r: &Rec<'_>) -> custody_store::Draft {
    let info = RecordInfo {
        stage: r.stage.into(),
        recorded_at: r.at,
        materials: r.materials.clone(),
        pipeline: PipelineContext {
            platform: Some(Platform::Github),
            repository: Some("acme/app".into()),
            commit: Some(r.commit.into()),
            pipeline_id: Some(r.pipeline.into()),
            environment: Some("production".into()),
            ..Default::default()
        },
        hipaa: Control::baseline(),
        chain: ChainLink {
            id: r.chain.into(),
            sequence: r.seq,
            previous: r.prev,
        },
        summary: None,
    };
    custody_store::Draft {
        subject: vec![ResourceDescriptor::sha256(
            "artifact",
            &Digest::of(r.subject),
        )],
        predicate_type: "https://custody.dev/evidence/v1".into(),
        predicate: serde_json::Map::new(),
        record: info,
    }
}

#[test]
fn objects_round_trip_and_storing_twice_is_a_no_op() {
    let f = fixture();
    let a = f
        .store
        .put_object_blocking(ObjectSource::Bytes(b"hello"), &retention())
        .unwrap();
    assert!(a.created);
    assert_eq!(a.digest, Digest::of(b"hello"));
    let b = f
        .store
        .put_object_blocking(ObjectSource::Bytes(b"hello"), &retention())
        .unwrap();
    assert!(!b.created);
    assert_eq!(f.store.get_object_blocking(&a.digest).unwrap(), b"hello");

    let file = f._dir.path().join("material.bin");
    std::fs::write(&file, vec![7u8; 600_000]).unwrap();
    let c = f
        .store
        .put_object_blocking(ObjectSource::File(&file), &retention())
        .unwrap();
    assert_eq!(c.digest, Digest::of(&vec![7u8; 600_000]));
    assert_eq!(c.size, 600_000);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(f.store.object_path(&c.digest))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o444, "objects are read-only");
    assert!(f.store.stale_temporaries().unwrap().is_empty());
}

/// A file the caller has hashed is stored only if its bytes still hash to that digest:
/// a changed file leaves nothing behind, not even under its new digest.
#[test]
fn a_measured_file_is_held_to_its_digest() {
    let f = fixture();
    let file = f._dir.path().join("scan.json");
    std::fs::write(&file, b"{\"findings\": []}").unwrap();
    let claimed = Digest::of(b"{\"findings\": [\"CRITICAL\"]}");
    let e = f
        .store
        .put_object_blocking(
            ObjectSource::Measured {
                path: &file,
                digest: claimed,
                size: 16,
            },
            &retention(),
        )
        .unwrap_err();
    assert!(matches!(e, StoreError::Changed { .. }), "{e:?}");
    assert!(e.to_string().contains("scan.json"), "{e}");
    for d in [claimed, Digest::of(b"{\"findings\": []}")] {
        assert!(!f.store.object_path(&d).exists(), "nothing stored");
    }
    assert!(f.store.stale_temporaries().unwrap().is_empty());
    let real = Digest::of(b"{\"findings\": []}");
    let ok = f
        .store
        .put_object_blocking(
            ObjectSource::Measured {
                path: &file,
                digest: real,
                size: 16,
            },
            &retention(),
        )
        .unwrap();
    assert_eq!((ok.digest, ok.created), (real, true));
}

#[test]
fn delete_before_retention_is_refused_and_allowed_after() {
    let f = fixture();
    let locked = f
        .store
        .put_object_blocking(ObjectSource::Bytes(b"locked"), &retention())
        .unwrap();
    let err = f.store.delete_object_blocking(&locked.digest).unwrap_err();
    assert!(matches!(err, StoreError::RetentionLocked { .. }), "{err}");
    assert!(err.to_string().contains("retention-locked until"));
    assert!(f.store.get_object_blocking(&locked.digest).is_ok());

    let expired = Retention::years_from("2010-01-01T00:00:00Z".parse().unwrap(), 6).unwrap();
    let old = f
        .store
        .put_object_blocking(ObjectSource::Bytes(b"old"), &expired)
        .unwrap();
    f.store.delete_object_blocking(&old.digest).unwrap();
    assert!(matches!(
        f.store.get_object_blocking(&old.digest),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn retention_extends_and_never_shortens() {
    let f = fixture();
    let r6 = retention();
    let o = f
        .store
        .put_object_blocking(ObjectSource::Bytes(b"x"), &r6)
        .unwrap();
    let r10 = Retention::years_from(Timestamp::now(), 10).unwrap();
    f.store.extend_retention(&o.digest, &r10).unwrap();
    assert_eq!(
        f.store
            .retention_blocking(&o.digest)
            .unwrap()
            .unwrap()
            .retain_until,
        r10.retain_until
    );
    let err = f.store.extend_retention(&o.digest, &r6).unwrap_err();
    assert!(matches!(err, StoreError::RetentionShorten { .. }), "{err}");
    // re-storing with a shorter lock keeps the longer one
    f.store
        .put_object_blocking(ObjectSource::Bytes(b"x"), &r6)
        .unwrap();
    assert_eq!(
        f.store
            .retention_blocking(&o.digest)
            .unwrap()
            .unwrap()
            .retain_until,
        r10.retain_until
    );
}

#[test]
fn corrupt_objects_are_detected_on_read() {
    let f = fixture();
    let o = f
        .store
        .put_object_blocking(ObjectSource::Bytes(b"pristine"), &retention())
        .unwrap();
    let path = f.store.object_path(&o.digest);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, b"pristinE").unwrap();
    let err = f.store.get_object_blocking(&o.digest).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

#[test]
fn chains_refuse_forks_gaps_and_wrong_links() {
    let f = fixture();
    let r0 = envelope(&f.key, &Rec::default());
    let d0 = f
        .store
        .put_record_blocking(&r0, &retention())
        .unwrap()
        .digest;
    // idempotent
    assert!(
        !f.store
            .put_record_blocking(&r0, &retention())
            .unwrap()
            .created
    );
    let r1 = envelope(
        &f.key,
        &Rec {
            seq: 1,
            prev: Some(d0),
            stage: "test",
            ..Default::default()
        },
    );
    let d1 = f
        .store
        .put_record_blocking(&r1, &retention())
        .unwrap()
        .digest;
    assert_eq!(f.store.chain_head_blocking("c").unwrap(), Some((1, d1)));

    // a second record at position 1: a fork
    let fork = envelope(
        &f.key,
        &Rec {
            seq: 1,
            prev: Some(d0),
            stage: "scan",
            ..Default::default()
        },
    );
    let err = f
        .store
        .put_record_blocking(&fork, &retention())
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ChainConflict { sequence: 1, .. }),
        "{err}"
    );

    // a record skipping position 2
    let gap = envelope(
        &f.key,
        &Rec {
            seq: 3,
            prev: Some(d1),
            ..Default::default()
        },
    );
    assert!(matches!(
        f.store.put_record_blocking(&gap, &retention()).unwrap_err(),
        StoreError::ChainBroken { .. }
    ));

    // a record naming the wrong previous
    let wrong = envelope(
        &f.key,
        &Rec {
            seq: 2,
            prev: Some(d0),
            ..Default::default()
        },
    );
    let err = f
        .store
        .put_record_blocking(&wrong, &retention())
        .unwrap_err();
    assert!(matches!(err, StoreError::ChainBroken { .. }), "{err}");

    // a first record that claims a predecessor
    let orphan = envelope(
        &f.key,
        &Rec {
            chain: "other",
            prev: Some(d0),
            ..Default::default()
        },
    );
    assert!(matches!(
        f.store
            .put_record_blocking(&orphan, &retention())
            .unwrap_err(),
        StoreError::ChainBroken { .. }
    ));
    assert_eq!(f.store.chain("c").unwrap(), vec![(0, d0), (1, d1)]);
}

#[test]
fn records_need_their_materials_first() {
    let f = fixture();
    let m = Material {
        name: "bom.json".into(),
        digest: Digest::of(b"bom"),
        size: 3,
        media_type: None,
        format: None,
    };
    let env = envelope(
        &f.key,
        &Rec {
            materials: vec![m],
            ..Default::default()
        },
    );
    let err = f.store.put_record_blocking(&env, &retention()).unwrap_err();
    assert!(matches!(err, StoreError::MissingMaterial { .. }), "{err}");
    f.store
        .put_object_blocking(ObjectSource::Bytes(b"bom"), &retention())
        .unwrap();
    f.store.put_record_blocking(&env, &retention()).unwrap();
}

#[test]
fn queries_by_each_key_combine_and_filter_by_time() {
    let f = fixture();
    let t = |s: &str| s.parse::<Timestamp>().unwrap();
    let c1 = "1111111111111111111111111111111111111111";
    let c2 = "2222222222222222222222222222222222222222";
    let a = envelope(
        &f.key,
        &Rec {
            commit: c1,
            pipeline: "1",
            chain: "a",
            at: t("2026-03-01T09:00:00Z"),
            ..Default::default()
        },
    );
    let b = envelope(
        &f.key,
        &Rec {
            commit: c1,
            pipeline: "1",
            chain: "b",
            stage: "scan",
            subject: b"other",
            at: t("2026-03-02T09:00:00Z"),
            ..Default::default()
        },
    );
    let c = envelope(
        &f.key,
        &Rec {
            commit: c2,
            pipeline: "2",
            chain: "c",
            at: t("2026-04-01T09:00:00Z"),
            ..Default::default()
        },
    );
    let da = f
        .store
        .put_record_blocking(&a, &retention())
        .unwrap()
        .digest;
    let db = f
        .store
        .put_record_blocking(&b, &retention())
        .unwrap()
        .digest;
    let dc = f
        .store
        .put_record_blocking(&c, &retention())
        .unwrap()
        .digest;
    let ask = |q: Query| -> Vec<Digest> {
        f.store
            .query_blocking(&q)
            .unwrap()
            .into_iter()
            .map(|r| r.digest)
            .collect()
    };

    assert_eq!(
        ask(Query {
            commit: Some(c1.into()),
            ..Default::default()
        }),
        vec![da, db]
    );
    assert_eq!(
        ask(Query {
            commit: Some(c1.to_uppercase()),
            ..Default::default()
        }),
        vec![da, db]
    );
    assert_eq!(
        ask(Query {
            subject: Some(Digest::of(b"other")),
            ..Default::default()
        }),
        vec![db]
    );
    assert_eq!(
        ask(Query {
            pipeline: Some("github:acme/app:2".into()),
            ..Default::default()
        }),
        vec![dc]
    );
    assert_eq!(
        ask(Query {
            day: Some("2026-03-02".parse().unwrap()),
            ..Default::default()
        }),
        vec![db]
    );
    assert_eq!(
        ask(Query {
            stage: Some("scan".into()),
            ..Default::default()
        }),
        vec![db]
    );
    assert_eq!(
        ask(Query {
            control: Some(Control::Retention),
            ..Default::default()
        }),
        vec![da, db, dc]
    );
    assert_eq!(
        ask(Query {
            environment: Some("production".into()),
            stage: Some("build".into()),
            ..Default::default()
        }),
        vec![da, dc]
    );
    assert_eq!(
        ask(Query {
            commit: Some(c1.into()),
            stage: Some("build".into()),
            ..Default::default()
        }),
        vec![da]
    );
    assert_eq!(
        ask(Query {
            since: Some(t("2026-03-02T00:00:00Z")),
            until: Some(t("2026-04-01T00:00:00Z")),
            ..Default::default()
        }),
        vec![db]
    );
    assert_eq!(ask(Query::default()), vec![da, db, dc]);
    assert!(
        ask(Query {
            commit: Some("ffff".into()),
            ..Default::default()
        })
        .is_empty()
    );
}

#[test]
fn hostile_keys_stay_inside_the_store() {
    let f = fixture();
    let env = envelope(
        &f.key,
        &Rec {
            commit: "../../../../escape",
            pipeline: "../x",
            chain: "../../chain",
            ..Default::default()
        },
    );
    f.store.put_record_blocking(&env, &retention()).unwrap();
    let parent = f.store.root().parent().unwrap();
    let names: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "nothing written beside the store: {names:?}"
    );
    assert_eq!(encode_component("../../chain"), "%2E.%2F..%2Fchain");
    let found = f
        .store
        .query_blocking(&Query {
            commit: Some("../../../../escape".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1);
}

#[test]
fn concurrent_writers_leave_a_consistent_store() {
    let f = fixture();
    let store = Arc::new(f.store.clone());
    let key = Arc::new(f.key.clone());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let key = Arc::clone(&key);
            std::thread::spawn(move || {
                for j in 0..20u64 {
                    // every thread writes the same object and its own records
                    store
                        .put_object_blocking(ObjectSource::Bytes(b"shared material"), &retention())
                        .unwrap();
                    let chain = format!("job-{i}");
                    let prev = store.chain_head_blocking(&chain).unwrap().map(|(_, d)| d);
                    let subject = format!("subject-{i}-{j}");
                    let env = envelope(
                        &key,
                        &Rec {
                            chain: &chain,
                            seq: j,
                            prev,
                            subject: subject.as_bytes(),
                            ..Default::default()
                        },
                    );
                    store.put_record_blocking(&env, &retention()).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // two writers racing for one chain position: exactly one wins
    let racers: Vec<_> = (0..4)
        .map(|i| {
            let store = Arc::clone(&store);
            let key = Arc::clone(&key);
            std::thread::spawn(move || {
                let subject = format!("racer-{i}");
                let env = envelope(
                    &key,
                    &Rec {
                        chain: "race",
                        subject: subject.as_bytes(),
                        ..Default::default()
                    },
                );
                store.put_record_blocking(&env, &retention())
            })
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::ChainConflict { .. }))
    );

    let all = store.query_blocking(&Query::default()).unwrap();
    assert_eq!(
        all.len(),
        8 * 20 + 1,
        "a losing racer is never indexed: readers see only the winner"
    );
    for r in &all {
        store.get_object_blocking(&r.digest).unwrap();
    }
    for i in 0..8 {
        let chain = store.chain(&format!("job-{i}")).unwrap();
        assert_eq!(chain.len(), 20);
    }
    assert!(store.stale_temporaries().unwrap().is_empty());
}

/// Creators racing on one missing directory all get the one store: none sees the
/// winner's directory between its marker check and its emptiness check and calls it
/// "not a store" (CI caught this with twelve `custody attest` processes).
#[test]
fn racing_creators_all_open_one_store() {
    for round in 0..2000 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let creators: Vec<_> = (0..8)
            .map(|_| {
                let (root, barrier) = (root.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    LocalStore::create(&root).map(|_| ())
                })
            })
            .collect();
        for c in creators {
            c.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|d| d.unwrap().file_name())
            .collect();
        assert_eq!(entries, ["store"], "round {round}: staging left behind");
    }
}

#[test]
fn open_refuses_what_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unrelated.txt"), b"x").unwrap();
    assert!(matches!(
        LocalStore::create(dir.path()).unwrap_err(),
        StoreError::NotAStore { .. }
    ));
    assert!(matches!(
        LocalStore::open(dir.path()).unwrap_err(),
        StoreError::NotAStore { .. }
    ));
    let missing = dir.path().join("missing");
    let err = LocalStore::open(&missing).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn a_spool_pushes_in_chain_order_exactly_once() {
    let f = fixture();
    let spool = LocalStore::create(f._dir.path().join("spool")).unwrap();
    let r0 = envelope(&f.key, &Rec::default());
    let d0 = f
        .store
        .put_record_blocking(&r0, &retention())
        .unwrap()
        .digest;
    // the store became unreachable: the next two records went to the spool, linked
    // after the last record the store is known to have
    let m = Material {
        name: "scan.json".into(),
        digest: Digest::of(b"scan"),
        size: 4,
        media_type: None,
        format: None,
    };
    spool
        .put_object_blocking(ObjectSource::Bytes(b"scan"), &retention())
        .unwrap();
    let r1 = envelope(
        &f.key,
        &Rec {
            seq: 1,
            prev: Some(d0),
            stage: "scan",
            materials: vec![m],
            ..Default::default()
        },
    );
    let d1 = spool.put_record_spooled(&r1, &retention()).unwrap().digest;
    let r2 = envelope(
        &f.key,
        &Rec {
            seq: 2,
            prev: Some(d1),
            stage: "sign",
            ..Default::default()
        },
    );
    let d2 = spool.put_record_spooled(&r2, &retention()).unwrap().digest;
    // a spooled record is not accepted by the store directly out of order
    assert!(matches!(
        f.store.put_record_blocking(&r2, &retention()),
        Err(StoreError::ChainBroken { .. })
    ));

    let rt = tokio_free_block_on(custody_store::push_spool(&spool, &f.store));
    let report = rt.unwrap();
    assert_eq!(report.stored, vec![d1, d2]);
    assert_eq!(f.store.chain("c").unwrap(), vec![(0, d0), (1, d1), (2, d2)]);
    assert_eq!(
        f.store.get_object_blocking(&Digest::of(b"scan")).unwrap(),
        b"scan",
        "materials travel with their records"
    );
    // pushing again stores nothing twice
    let again = tokio_free_block_on(custody_store::push_spool(&spool, &f.store)).unwrap();
    assert!(again.stored.is_empty());
    assert_eq!(again.already, vec![d1, d2]);
}

/// Drives a future that never waits on I/O readiness (the local store is synchronous).
fn tokio_free_block_on<F: Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Issue 15, item 2 (local store): writers storing one object at once with 30 and 10
/// years ended at the shorter lock about half the time (read, merge and rename raced).
/// Under the store's retention lock the longest always wins.
#[test]
fn concurrent_writers_never_shorten_a_retention() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    LocalStore::create(&root).unwrap();
    let now = Timestamp::now();
    let r30 = Retention::years_from(now, 30).unwrap();
    let r10 = Retention::years_from(now, 10).unwrap();
    let r6 = Retention::years_from(now, 6).unwrap();
    for round in 0..40u32 {
        // stored first with six years: every writer below reads that, then extends it
        let bytes = format!("object {round}").into_bytes();
        LocalStore::open(&root)
            .unwrap()
            .put_object_blocking(ObjectSource::Bytes(&bytes), &r6)
            .unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(6));
        let threads: Vec<_> = [r10, r30, r10, r10, r10, r10]
            .into_iter()
            .map(|r| {
                let (root, bytes, barrier) = (root.clone(), bytes.clone(), barrier.clone());
                std::thread::spawn(move || {
                    // each writer its own store handle, as separate jobs would have
                    let store = LocalStore::open(&root).unwrap();
                    barrier.wait();
                    store
                        .put_object_blocking(ObjectSource::Bytes(&bytes), &r)
                        .unwrap()
                        .digest
                })
            })
            .collect();
        let digests: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let store = LocalStore::open(&root).unwrap();
        let kept = store.retention_blocking(&digests[0]).unwrap().unwrap();
        assert_eq!(
            kept.retain_until, r30.retain_until,
            "round {round}: the 30-year lock was shortened"
        );
    }
}

/// Issue 15, item 5: partials of killed writers are removed when a store is opened;
/// a partial whose writer is alive (it holds the partial's lock) never is, however old.
#[test]
fn stale_partials_are_cleaned_and_live_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    drop(LocalStore::create(&root).unwrap());
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let mk = |name: &str| {
        let p = tmp.join(name);
        let f = std::fs::File::create(&p).unwrap();
        std::io::Write::write_all(&mut &f, &[0u8; 4096]).unwrap();
        f.set_modified(old).unwrap();
        (p, f)
    };
    let (dead, dead_file) = mk(".partial-dead");
    drop(dead_file);
    let (live, live_file) = mk(".partial-live");
    live_file.lock().unwrap();
    let (fresh, fresh_file) = mk(".partial-fresh");
    fresh_file
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    drop(fresh_file);
    let (other, other_file) = mk("not-a-partial");
    drop(other_file);

    let store = LocalStore::open(&root).unwrap();
    assert!(!dead.exists(), "a dead writer's partial is removed");
    assert!(live.exists(), "a live writer's partial is kept");
    assert!(fresh.exists(), "a partial younger than a minute is kept");
    assert!(other.exists(), "only partials are touched");
    // the writer dies: its lock goes, and the next opener cleans up
    drop(live_file);
    let removed = store
        .clean_stale_temporaries(std::time::Duration::from_secs(60))
        .unwrap();
    assert_eq!(removed, vec![live.clone()]);
    assert!(!live.exists());
}
