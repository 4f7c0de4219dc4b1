//! Issue 14, item 1: an index pointer copied into another key's directory made a record
//! part of an answer its signed statement is not for. Each criterion a query can carry
//! is tried: the record is named, left out of the answer, and the audit fails; a query
//! the statement does satisfy (every criterion at once) is unaffected.

use custody_audit::{AuditOptions, CheckKind, Severity, audit_query};
use custody_evidence::{Control, Digest};
use custody_store::{EvidenceStore, IndexKey, Query, RecordRef};
use jiff::Timestamp;

use crate::{COMMIT, Pipeline};

fn options(p: &Pipeline) -> AuditOptions {
    AuditOptions {
        keys: p.trusted(),
        required_stages: Vec::new(),
        min_retention_years: 6,
        verified_at: Timestamp::now(),
        store_label: None,
        required_services: Vec::new(),
        scope: None,
    }
}

/// Files `r` under `key` with the pointer name `at` (nanoseconds, then the digest), as
/// someone with write access to the store's index could.
fn forge(p: &Pipeline, key: &IndexKey, at: Timestamp, r: &RecordRef) {
    let [kind, value] = key.segments();
    let dir = p.store.root().join("index").join(kind).join(value);
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("{:020}_{}", at.as_nanosecond(), r.digest.hex());
    std::fs::File::create(dir.join(name)).unwrap();
}

async fn check(p: &Pipeline, r: &RecordRef, query: Query, expected: &str) {
    let audit = audit_query(&p.store, &query, &options(p))
        .await
        .unwrap()
        .audit;
    assert!(!audit.ok, "{query:?} passed");
    let digests: Vec<Digest> = audit.records.iter().map(|e| e.digest).collect();
    assert_eq!(audit.totals.matched, 0, "{query:?}: {digests:?}");
    assert!(
        audit.records.iter().all(|e| e.digest != r.digest),
        "{query:?}: the record is still in the answer"
    );
    assert!(
        audit.findings.iter().any(|f| f.severity == Severity::Error
            && f.check == CheckKind::Index
            && f.about == format!("record {}", r.digest)
            && f.message.contains(expected)),
        "{query:?}: no finding saying {expected:?}: {:#?}",
        audit.findings
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_pointer_under_a_key_its_statement_does_not_have_is_named_for_every_criterion() {
    let p = Pipeline::new();
    p.release().await;
    let deploy = p
        .store
        .query(&Query {
            stage: Some("deploy".into()),
            ..Query::default()
        })
        .await
        .unwrap();
    let [r] = deploy.as_slice() else {
        panic!("one deploy record: {deploy:?}")
    };
    let d = r.digest;
    let today = r.recorded_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    let other_subject = Digest::of(b"another image");
    let other_commit = "0000000000000000000000000000000000000000";
    let old_day: jiff::civil::Date = "2001-01-01".parse().unwrap();
    // no record of the release has these values: each answer is the forged pointer alone
    let cases: Vec<(IndexKey, Query, String)> = vec![
        (
            IndexKey::Commit(other_commit.into()),
            Query {
                commit: Some(other_commit.into()),
                ..Query::default()
            },
            format!(
                "index pointer for commit {other_commit} names record {d} whose signed statement is for commit {COMMIT}"
            ),
        ),
        (
            IndexKey::Subject(other_subject),
            Query {
                subject: Some(other_subject),
                ..Query::default()
            },
            format!(
                "index pointer for subject {other_subject} names record {d} whose signed statement is about {}",
                crate::subject().sha256_digest().unwrap()
            ),
        ),
        (
            IndexKey::Pipeline("github:acme/app:1".into()),
            Query {
                pipeline: Some("github:acme/app:1".into()),
                ..Query::default()
            },
            format!(
                "index pointer for pipeline github:acme/app:1 names record {d} whose signed statement is for pipeline github:acme/app:4242"
            ),
        ),
        (
            IndexKey::Day(old_day),
            Query {
                day: Some(old_day),
                ..Query::default()
            },
            format!(
                "index pointer for day 2001-01-01 names record {d} whose signed statement was recorded on {today}"
            ),
        ),
        (
            IndexKey::Environment("staging".into()),
            Query {
                environment: Some("staging".into()),
                ..Query::default()
            },
            format!(
                "index pointer for environment staging names record {d} whose signed statement is for environment production"
            ),
        ),
        (
            IndexKey::Stage("release".into()),
            Query {
                stage: Some("release".into()),
                ..Query::default()
            },
            format!(
                "index pointer for stage release names record {d} whose signed statement is for stage deploy"
            ),
        ),
        (
            IndexKey::Control(Control::ActivityReview),
            Query {
                control: Some(Control::ActivityReview),
                ..Query::default()
            },
            format!(
                "index pointer for control 164.308(a)(1)(ii)(D) names record {d} whose signed statement does not cite it (it cites 164.312(b), 164.312(c)(1), 164.312(c)(2), 164.316(b)(2)(i), 164.308(a)(4))"
            ),
        ),
    ];
    for (key, query, expected) in cases {
        forge(&p, &key, r.recorded_at, r);
        check(&p, r, query, &expected).await;
    }

    // a pointer renamed into a time range its record was not made in
    let at: Timestamp = "2002-02-02T12:00:00Z".parse().unwrap();
    forge(&p, &IndexKey::Day("2002-02-02".parse().unwrap()), at, r);
    let query = Query {
        since: Some("2002-02-02T00:00:00Z".parse().unwrap()),
        until: Some("2002-02-03T00:00:00Z".parse().unwrap()),
        ..Query::default()
    };
    check(
        &p,
        r,
        query,
        &format!(
            "its signed statement says it was recorded at {}, outside the query's time range (since 2002-02-02T00:00:00Z, until 2002-02-03T00:00:00Z)",
            r.recorded_at
        ),
    )
    .await;

    // negative twin: every criterion the statement does satisfy, at once (the commit in
    // capitals, as the store files commits case-insensitively), and the forged pointers
    // elsewhere change nothing
    let query = Query {
        commit: Some(COMMIT.to_ascii_uppercase()),
        subject: crate::subject().sha256_digest(),
        pipeline: Some("github:acme/app:4242".into()),
        day: Some(today),
        environment: Some("production".into()),
        stage: Some("deploy".into()),
        control: Some(Control::AccessManagement),
        since: Some(r.recorded_at),
        until: Some(
            r.recorded_at
                .checked_add(jiff::SignedDuration::from_secs(1))
                .unwrap(),
        ),
    };
    let audit = audit_query(&p.store, &query, &options(&p))
        .await
        .unwrap()
        .audit;
    assert!(audit.ok, "{:#?}", audit.findings);
    assert_eq!(audit.totals.matched, 1);
    let audit = audit_query(&p.store, &crate::commit_query(), &options(&p))
        .await
        .unwrap()
        .audit;
    assert!(audit.ok, "{:#?}", audit.findings);
    assert_eq!(audit.totals.matched, 9);
}
