//! Issue 15, fault injection: a record write through a loopback fault proxy
//! (`custody_test_support::FaultProxy`) that breaks one kind of request at a time: a reset
//! halfway through an upload, a 500 or 503, a response that never comes, and a write
//! the server performed but whose answer was lost. The same scenario runs on S3 (moto,
//! in `s3.rs`) and on GitLab (the stand-in, in `gitlab.rs`).
//!
//! Each case ends one of two ways. Either the write succeeds through the client's own
//! retries, or every request from some step on fails (`down from …`: to the store, a
//! writer killed at that step, so these are also the crash points of S3 and GitLab).
//! Then the job's next record is appended directly, and the in-doubt envelope is
//! written again (what `custody push` does). Either way, read without the proxy: every
//! chained record is stored once, found once by a query, in the log once (no duplicate
//! index), its bytes intact, and the log verifies.

use std::time::Duration;

use custody_evidence::{Digest, KeyIdScheme, Material, SigningKey};
use custody_store::log::{LogVerifier, verify_log};
use custody_store::{EvidenceStore, ObjectSource, Query, Retention, StoreError, append_record};
use custody_test_support::{Fault, FaultProxy, Matcher, Rule};

use super::{Rec, draft, envelope};

/// A named fault case: the rules in force for the write.
pub(crate) struct Case {
    pub name: String,
    pub rules: Vec<Rule>,
}

impl Case {
    pub fn new(name: impl Into<String>, rules: Vec<Rule>) -> Self {
        Self {
            name: name.into(),
            rules,
        }
    }
}

/// Breaks every request whose path contains `part`, `skip` of them first let through:
/// the client's retries run out, and the write fails.
pub(crate) fn down_from(part: &str, method: &str, skip: usize, fault: Fault) -> Rule {
    Rule::new(Matcher::method(method).and_path(part), fault)
        .skip(skip)
        .times(usize::MAX)
}

/// Where a backend puts each kind of file: a part of the request path that picks its
/// uploads, and of the listing requests.
pub(crate) struct Paths {
    /// Materials and envelopes (the material is the first upload, the envelope the second).
    pub object: &'static str,
    /// Retention markers, where the backend keeps them apart from the object.
    pub retention: Option<&'static str>,
    pub chain: &'static str,
    pub index: &'static str,
    pub claim: &'static str,
    pub marker: &'static str,
    /// The reads of a chain's entries.
    pub listing: &'static str,
}

/// Every case, for a backend's paths: each kind of request broken in each way, and the
/// `down from …` cases, where every request from one step on fails.
pub(crate) fn cases(p: &Paths, stall: Duration) -> Vec<Case> {
    let put = |part: &str, skip: usize, fault: Fault| {
        Rule::new(Matcher::method("PUT").and_path(part), fault).skip(skip)
    };
    let stall = Fault::Stall(stall);
    let mut cases = vec![
        Case::new(
            "material reset mid-upload",
            vec![put(p.object, 0, Fault::ResetMidUpload)],
        ),
        Case::new(
            "material 503 twice",
            vec![put(p.object, 0, Fault::Status(503)).times(2)],
        ),
        Case::new(
            "material written, answer lost",
            vec![put(p.object, 0, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "envelope written, answer lost",
            vec![put(p.object, 1, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "chain entry reset mid-upload",
            vec![put(p.chain, 0, Fault::ResetMidUpload)],
        ),
        Case::new("chain entry 500", vec![put(p.chain, 0, Fault::Status(500))]),
        Case::new("chain entry stalls", vec![put(p.chain, 0, stall)]),
        Case::new(
            "chain entry written, answer lost",
            vec![put(p.chain, 0, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "chain entry written, answered 503",
            vec![put(p.chain, 0, Fault::AcceptThenStatus(503))],
        ),
        Case::new(
            "pointer written, answer lost",
            vec![put(p.index, 1, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "log claim written, answer lost",
            vec![put(p.claim, 0, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "log marker written, answer lost",
            vec![put(p.marker, 0, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "chain reads 503, then stall",
            vec![
                Rule::new(
                    Matcher::method("GET").and_path(p.listing),
                    Fault::Status(503),
                ),
                Rule::new(Matcher::method("GET").and_path(p.listing), stall),
            ],
        ),
        Case::new(
            "down from the material",
            vec![down_from(p.object, "PUT", 0, Fault::ResetMidUpload)],
        ),
        Case::new(
            "down after the envelope",
            vec![down_from(p.chain, "PUT", 0, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "down among the pointers",
            vec![down_from(p.index, "PUT", 2, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "down at the log claim",
            vec![down_from(p.claim, "PUT", 0, Fault::AcceptThenDrop)],
        ),
        Case::new(
            "down at the log marker",
            vec![down_from(p.marker, "PUT", 0, Fault::AcceptThenDrop)],
        ),
    ];
    if let Some(r) = p.retention {
        cases.push(Case::new(
            "retention marker written, answer lost",
            vec![put(r, 0, Fault::AcceptThenDrop)],
        ));
    }
    cases
}

/// Checks the tally of a backend's run: only the `down` cases fail first; every other
/// fault is absorbed by the client's retries.
pub(crate) fn check_tally(failed: &[String]) {
    assert!(failed.iter().all(|n| n.starts_with("down ")), "{failed:?}");
    assert_eq!(failed.len(), 5, "{failed:?}");
}

/// One fault case: `r0` is written directly, then a material and `r1` (linked after
/// `r0`) through `proxied` under the case's rules; on failure, the same material and
/// envelope are written again through the healthy proxy. Then everything is checked
/// through `direct`. Returns whether the first attempt failed (for the caller's tally).
pub(crate) async fn run_case<S: EvidenceStore>(
    case: Case,
    proxy: &FaultProxy,
    direct: &S,
    proxied: &S,
    key: &SigningKey,
) -> bool {
    let name = &case.name;
    let retention = Retention::hipaa_default().unwrap();
    let r0 = envelope(key, &Rec::default());
    let d0 = direct.put_record(&r0, &retention).await.unwrap().digest;
    let material = format!("material of case {name}").into_bytes();
    let m = Material {
        name: "scan.json".into(),
        digest: Digest::of(&material),
        size: material.len() as u64,
        media_type: None,
        format: None,
    };
    let r1 = envelope(
        key,
        &Rec {
            seq: 1,
            prev: Some(d0),
            stage: "scan",
            materials: vec![m],
            ..Default::default()
        },
    );
    let d1 = Digest::of(&r1);

    proxy.set_rules(case.rules);
    let first = async {
        proxied
            .put_object(ObjectSource::Bytes(&material), &retention)
            .await?;
        proxied.put_record(&r1, &retention).await
    }
    .await;
    let fired: usize = proxy.fired().iter().sum();
    assert!(fired > 0, "{name}: the fault never fired");
    proxy.set_rules(Vec::new());
    let failed = first.is_err();
    let mut next_digest = None;
    if let Err(e) = first {
        // The writer is gone (to the store, a writer whose requests stop at a step is a
        // writer killed there). The job's next step appends after whatever it left,
        // repairing a head that was linked but not finished...
        let text = e.to_string();
        assert!(!text.is_empty(), "{name}");
        let next = append_record(
            direct,
            key,
            KeyIdScheme::Empty,
            "c",
            draft(&Rec {
                stage: "deploy",
                ..Default::default()
            }),
            &retention,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: the next write after `{text}`: {e}"));
        // ...and the record whose outcome was in doubt is written again, as a push does:
        // stored once, or refused because its position went to the next record (the
        // push then stores the spool's stand-in)
        proxied
            .put_object(ObjectSource::Bytes(&material), &retention)
            .await
            .unwrap_or_else(|e| panic!("{name}: material again: {e}"));
        match proxied.put_record(&r1, &retention).await {
            Ok(_) => {}
            Err(StoreError::ChainConflict { existing, .. }) => {
                assert_eq!(existing, next.outcome.digest, "{name}");
            }
            Err(e) => panic!("{name}: record again after `{text}`: {e}"),
        }
        next_digest = Some(next.outcome.digest);
    }

    // every chained record stored once, found once, logged once, intact; nothing else
    let chain: Vec<Digest> = direct
        .chain("c")
        .await
        .unwrap()
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert_eq!(chain.first(), Some(&d0), "{name}");
    if let Some(next) = next_digest {
        // the dead writer's record was linked (and then finished) or never was
        assert!(
            chain == [d0, d1, next] || chain == [d0, next],
            "{name}: {chain:?}"
        );
    } else {
        assert_eq!(chain, vec![d0, d1], "{name}: the chain");
    }
    let mut found: Vec<Digest> = direct
        .query(&Query::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.digest)
        .collect();
    found.sort();
    let mut want = chain.clone();
    want.sort();
    assert_eq!(found, want, "{name}: the query answer");
    if chain.contains(&d1) {
        assert_eq!(direct.get_object(&d1).await.unwrap(), r1, "{name}");
    }
    assert_eq!(
        direct.get_object(&Digest::of(&material)).await.unwrap(),
        material
    );
    let audit = verify_log(direct, &[] as &[LogVerifier], &[])
        .await
        .unwrap();
    assert!(audit.duplicates.is_empty(), "{name}: {audit:?}");
    assert!(audit.ok(), "{name}: {:?}", audit.findings);
    assert_eq!(
        audit.size,
        chain.len() as u64,
        "{name}: log entries {audit:?}"
    );
    for d in &chain {
        assert!(
            custody_store::log::log_index(direct, d)
                .await
                .unwrap()
                .is_some(),
            "{name}: {d} has no log index"
        );
    }
    failed
}
