//! Issue 14: a bundle proves it is complete. With the log's verifier key, an exported
//! bundle carries the latest checkpoint and the log's entries for its query; a record
//! removed from it (the tail of a chain: the pipeline's last scan), an extra file in
//! `log/`, another log's key or a stale checkpoint is a finding that names it (exit 1).

use std::path::Path;

use serde_json::Value;

use super::{COMMIT, KEY, bundle_files, copy_dir, repack};
use crate::Env;

fn with_log(e: &Env) -> Vec<String> {
    let records = e.pipeline();
    e.ok(&[
        "log",
        "keygen",
        "--origin",
        "custody.test/audit",
        "--out",
        "log.key",
    ]);
    e.ok(&[
        "log",
        "checkpoint",
        "--store",
        "store",
        "--log-signing-key",
        "log.key",
    ]);
    records
}

fn export(e: &Env, store: &str, out: &str) {
    e.ok(&[
        "export",
        "--store",
        store,
        "--commit",
        COMMIT,
        "--key",
        KEY,
        "--log-key",
        "log.key.pub",
        "--require-stages",
        "none",
        "--out",
        out,
    ]);
}

fn verify_bundle(e: &Env, bundle: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["verify-bundle", bundle, "--key", KEY, "--format", "json"];
    args.extend_from_slice(extra);
    let out = e.run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        v,
        format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// Deletes every file of `record` from a local store except its log entry: the
/// envelope, its chain entry and its index pointers.
fn remove_record(store: &Path, record: &str) {
    let hex = record.trim_start_matches("sha256:");
    for f in super::files_under(store) {
        let rel = f
            .strip_prefix(store)
            .unwrap()
            .to_string_lossy()
            .replace('/', "");
        if rel.starts_with("log") {
            continue;
        }
        let names_it =
            rel.contains(hex) || std::fs::read_to_string(&f).is_ok_and(|t| t.trim() == record);
        if names_it {
            std::fs::remove_file(&f).unwrap();
        }
    }
}

#[test]
fn a_bundle_with_the_log_proves_no_record_is_missing() {
    let e = Env::new();
    with_log(&e);
    export(&e, "store", "audit.tar.gz");
    let (code, v, all) = verify_bundle(&e, "audit.tar.gz", &["--log-key", "log.key.pub"]);
    assert_eq!(code, 0, "{all}");
    assert_eq!(v["completeness"]["matching"], 5, "{v}");
    assert_eq!(v["completeness"]["checkpointSize"], 5, "{v}");
    let out = e.ok(&[
        "verify-bundle",
        "audit.tar.gz",
        "--key",
        KEY,
        "--log-key",
        "log.key.pub",
    ]);
    assert!(
        out.contains("complete   log custody.test/audit checkpoint of 5 entries"),
        "{out}"
    );
    let out = e.ok(&["verify-bundle", "audit.tar.gz", "--key", KEY]);
    assert!(out.contains("complete   not checked"), "{out}");

    // another log's key
    e.ok(&[
        "log",
        "keygen",
        "--origin",
        "custody.test/audit",
        "--out",
        "other.key",
    ]);
    let (code, _, all) = verify_bundle(&e, "audit.tar.gz", &["--log-key", "other.key.pub"]);
    assert_eq!(code, 1, "{all}");
    assert!(all.contains("not signed by the log key given"), "{all}");
    // a checkpoint older than the auditor accepts
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, _, all) = verify_bundle(
        &e,
        "audit.tar.gz",
        &["--log-key", "log.key.pub", "--max-checkpoint-age", "0s"],
    );
    assert_eq!(code, 1, "{all}");
    assert!(all.contains("older than the"), "{all}");
    // a file added under log/
    let dir = bundle_files(&e, "audit.tar.gz");
    std::fs::write(dir.join("custody-bundle/log/tile/entries/extra"), b"{}").unwrap();
    repack(&dir, &e.path("extra.tar.gz"));
    let (code, _, all) = verify_bundle(&e, "extra.tar.gz", &["--log-key", "log.key.pub"]);
    assert_eq!(code, 1, "{all}");
    assert!(all.contains("bundle file log/tile/entries/extra"), "{all}");
}

#[test]
fn a_record_removed_before_export_is_named_by_its_log_index() {
    let e = Env::new();
    let records = with_log(&e);
    // the pipeline's last scan, cut from a copy of the store (the tail of its chain,
    // so no gap shows), and the bundle exported from what is left
    let last = records.last().unwrap().clone();
    let hex = last.trim_start_matches("sha256:");
    let index =
        std::fs::read_to_string(e.path(&format!("store/log/records/{}/{hex}", &hex[..2]))).unwrap();
    copy_dir(&e.path("store"), &e.path("cut"));
    remove_record(&e.path("cut"), &last);
    export(&e, "cut", "cut.tar.gz");
    // without the log key the bundle looks whole
    let (code, _, all) = verify_bundle(&e, "cut.tar.gz", &[]);
    assert_eq!(code, 0, "{all}");
    let (code, v, all) = verify_bundle(&e, "cut.tar.gz", &["--log-key", "log.key.pub"]);
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains(&format!("log index {}", index.trim())) && all.contains(&last),
        "{all}"
    );
    assert!(
        all.contains("answers the query but is missing from the bundle"),
        "{all}"
    );
    assert_eq!(v["ok"], false); // a stale checkpoint still names the missing record
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, _, all) = verify_bundle(
        &e,
        "cut.tar.gz",
        &["--log-key", "log.key.pub", "--max-checkpoint-age", "0s"],
    );
    assert_eq!(code, 1, "{all}");
    assert!(all.contains("older than the"), "{all}");
    assert!(
        all.contains(&format!("log index {}", index.trim())),
        "{all}"
    );
}

/// A proof that claims sixteen million entries costs one finding (the first absent
/// tile), not a tile list the size of its claim.
#[test]
fn a_proof_claiming_more_entries_than_it_holds_is_one_finding() {
    let e = Env::new();
    with_log(&e);
    export(&e, "store", "audit.tar.gz");
    let dir = bundle_files(&e, "audit.tar.gz");
    let proof = dir.join("custody-bundle/log/proof.json");
    let mut p: Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    p["proof"]["size"] = Value::from(1u64 << 24);
    std::fs::write(&proof, serde_json::to_vec(&p).unwrap()).unwrap();
    repack(&dir, &e.path("huge.tar.gz"));
    let (code, v, all) = verify_bundle(&e, "huge.tar.gz", &["--log-key", "log.key.pub"]);
    assert_eq!(code, 1, "{all}");
    let tiles: Vec<&Value> = v["consistency"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["message"].as_str().unwrap().starts_with("missing"))
        .collect();
    assert_eq!(tiles.len(), 1, "{all}");
}

fn witness(e: &Env, key: &str) {
    e.ok(&[
        "log",
        "witness",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
        "--witness-signing-key",
        key,
        "--state",
        &format!("{key}.state"),
    ]);
}

/// Issue 14, item 3/4: a bundle's checkpoint carries the witnesses' cosignatures, and
/// the auditor, not the bundle, says which witnesses count and how many are needed.
#[test]
fn the_auditor_requires_a_quorum_of_witnesses() {
    let e = Env::new();
    with_log(&e);
    for w in ["w1", "w2"] {
        e.ok(&[
            "log",
            "witness-keygen",
            "--name",
            &format!("witness.test/{w}"),
            "--out",
            &format!("{w}.key"),
        ]);
    }
    witness(&e, "w1.key");
    export(&e, "store", "audit.tar.gz");
    let log = ["--log-key", "log.key.pub"];
    let (code, v, all) = verify_bundle(
        &e,
        "audit.tar.gz",
        &[&log[..], &["--witness-key", "w1.key.pub"]].concat(),
    );
    assert_eq!(code, 0, "{all}");
    assert_eq!(
        v["completeness"]["witnesses"][0]["witness"], "witness.test/w1",
        "{v}"
    );
    let out = e.ok(&[
        "verify-bundle",
        "audit.tar.gz",
        "--key",
        KEY,
        "--log-key",
        "log.key.pub",
        "--witness-key",
        "w1.key.pub",
    ]);
    assert!(
        out.contains("witness    witness.test/w1 cosigned it at "),
        "{out}"
    );

    // both witnesses required (the default with two keys): w2 never cosigned
    let both = [
        &log[..],
        &["--witness-key", "w1.key.pub", "--witness-key", "w2.key.pub"],
    ]
    .concat();
    let (code, _, all) = verify_bundle(&e, "audit.tar.gz", &both);
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains(
            "carries 1 valid cosignature(s) from the witnesses given (witness.test/w1), 2 required"
        ),
        "{all}"
    );
    let (code, _, all) = verify_bundle(
        &e,
        "audit.tar.gz",
        &[&both[..], &["--min-witnesses", "1"]].concat(),
    );
    assert_eq!(code, 0, "{all}");

    // a key made by someone else under w2's name does not count
    e.ok(&[
        "log",
        "witness-keygen",
        "--name",
        "witness.test/w2",
        "--out",
        "impostor.key",
    ]);
    std::fs::remove_file(e.path("impostor.key.state")).ok();
    witness(&e, "impostor.key");
    export(&e, "store", "audit2.tar.gz");
    let (code, _, all) = verify_bundle(&e, "audit2.tar.gz", &both);
    assert_eq!(code, 1, "{all}");
    // the real w2 cosigns: both count
    witness(&e, "w2.key");
    export(&e, "store", "audit3.tar.gz");
    let (code, v, all) = verify_bundle(&e, "audit3.tar.gz", &both);
    assert_eq!(code, 0, "{all}");
    assert_eq!(
        v["completeness"]["witnesses"].as_array().unwrap().len(),
        2,
        "{v}"
    );

    // witnesses cosign a log checkpoint: without --log-key the flag is a usage error
    let err = e.fails(
        2,
        &[
            "verify-bundle",
            "audit3.tar.gz",
            "--key",
            KEY,
            "--witness-key",
            "w1.key.pub",
        ],
    );
    assert!(err.contains("--witness-key needs --log-key"), "{err}");
    // a log key given where a witness key belongs
    let err = e.fails(
        2,
        &[
            "verify-bundle",
            "audit3.tar.gz",
            "--key",
            KEY,
            "--log-key",
            "log.key.pub",
            "--witness-key",
            "log.key.pub",
        ],
    );
    assert!(err.contains("not a cosignature/v1 key"), "{err}");
}

/// Issue 14, item 5: `custody query --log-key` answers from the log. A record whose
/// index pointers were removed is still found (and named); without the log it is
/// silently missing, which is why auditors pass the key.
#[test]
fn query_with_the_log_finds_a_record_the_index_lost() {
    let e = Env::new();
    let records = with_log(&e);
    let scan = records[4].clone();
    let hex = scan.trim_start_matches("sha256:");
    let index = e.path("store/index");
    let mut removed = 0;
    for f in super::files_under(&index) {
        let rel = f.to_string_lossy().into_owned();
        if rel.contains(hex) || std::fs::read_to_string(&f).is_ok_and(|t| t.trim() == scan) {
            std::fs::remove_file(&f).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0);
    let q = [
        "query", "--store", "store", "--commit", COMMIT, "--format", "json",
    ];
    let rows: Value = serde_json::from_str(&e.ok(&q)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4, "the index alone lost it");

    let out = e.run(&[&q[..], &["--log-key", "log.key.pub"]].concat());
    assert_eq!(out.status.code(), Some(1));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let found = rows.iter().find(|r| r["record"] == scan.as_str()).unwrap();
    assert_eq!(found["logIndex"], 4, "{found}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "record {scan} (log index 4) answers the query but the store's index does not return it"
        )),
        "{err}"
    );
    // a log key that signed nothing here
    e.ok(&[
        "log",
        "keygen",
        "--origin",
        "custody.test/other",
        "--out",
        "other.key",
    ]);
    let err = e.fails(1, &[&q[..], &["--log-key", "other.key.pub"]].concat());
    assert!(err.contains("not signed by the log key given"), "{err}");
}
