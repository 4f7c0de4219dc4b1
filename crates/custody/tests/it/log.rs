//! `custody log` (issue 14): keygen, checkpoint, verify and sequence from the command
//! line, with the attacks an auditor's `log verify` must name (exit 1).

use super::Env;

fn logged_env(records: usize) -> Env {
    let e = Env::new();
    let out = e.ok(&[
        "log",
        "keygen",
        "--origin",
        "custody.test/evidence",
        "--out",
        "log.key",
    ]);
    assert!(out.starts_with("custody.test/evidence+"), "{out}");
    for i in 0..records {
        if i % 2 == 0 {
            e.attest(super::SBOM, "build");
        } else {
            e.attest(super::SCAN, "scan");
        }
    }
    e
}

#[test]
fn log_keygen_checkpoint_and_verify_round_trip() {
    let e = logged_env(3);
    // the private key is the owner's alone and never overwritten
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(e.path("log.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    e.fails(2, &["log", "keygen", "--origin", "x", "--out", "log.key"]);

    let out = e.ok(&[
        "log",
        "checkpoint",
        "--store",
        "store",
        "--log-signing-key",
        "log.key",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["size"], 3);
    assert_eq!(v["origin"], "custody.test/evidence");
    std::fs::write(e.path("kept-checkpoint"), v["checkpoint"].as_str().unwrap()).unwrap();
    let secret = std::fs::read_to_string(e.path("log.key")).unwrap();
    assert!(
        !out.contains(secret.trim()),
        "the signing key never reaches stdout"
    );

    e.attest(super::SBOM, "test");
    e.ok(&[
        "log",
        "checkpoint",
        "--store",
        "store",
        "--log-signing-key",
        "log.key",
    ]);
    let out = e.ok(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
        "--checkpoint",
        "kept-checkpoint",
    ]);
    assert!(
        out.contains("4 entries, 2 checkpoint(s), 0 after the latest"),
        "{out}"
    );

    // the log's verifier key of another log: every checkpoint is a finding
    e.ok(&[
        "log",
        "keygen",
        "--origin",
        "custody.test/evidence",
        "--out",
        "other.key",
    ]);
    let out = e.run(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "other.key.pub",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("not signed by the log key given"), "{text}");
    // a signing key where a verifier key belongs, and the reverse: usage errors
    e.fails(
        2,
        &["log", "verify", "--store", "store", "--log-key", "log.key"],
    );
    let err = e.fails(
        2,
        &[
            "log",
            "checkpoint",
            "--store",
            "store",
            "--log-signing-key",
            "log.key.pub",
        ],
    );
    assert!(err.contains("log.key.pub: not a log signing key"), "{err}");
}

#[test]
fn log_verify_names_a_removed_record_and_a_truncated_tail() {
    let e = logged_env(4);
    e.ok(&[
        "log",
        "checkpoint",
        "--store",
        "store",
        "--log-signing-key",
        "log.key",
    ]);
    // the last claim removed from the log (its record stays): the tail is gone
    let claim = e.path("store/log/seq/000000000/000000000003");
    std::fs::remove_file(&claim).unwrap();
    let out = e.run(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("commits to 4 entries but the log holds 3"),
        "{text}"
    );
    assert!(text.contains("not in the log"), "{text}");
    // a checkpoint over the shrunken log is refused as a fork, exit 1
    let err = e.fails(
        1,
        &[
            "log",
            "checkpoint",
            "--store",
            "store",
            "--log-signing-key",
            "log.key",
        ],
    );
    assert!(err.contains("entries were removed"), "{err}");
}

#[test]
fn log_sequence_repairs_what_a_killed_writer_left() {
    let e = logged_env(2);
    // a writer killed between storing and sequencing: the record has no log entry
    let marker_dir = e.path("store/log/records");
    let claim = e.path("store/log/seq/000000000/000000000001");
    let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(&claim).unwrap()).unwrap();
    let record = entry["record"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    std::fs::remove_file(&claim).unwrap();
    std::fs::remove_file(marker_dir.join(&record[..2]).join(&record)).unwrap();
    let out = e.run(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("run `custody log sequence`"));
    let out = e.ok(&["log", "sequence", "--store", "store"]);
    assert!(out.contains(&record), "{out}");
    e.ok(&[
        "log",
        "checkpoint",
        "--store",
        "store",
        "--log-signing-key",
        "log.key",
    ]);
    e.ok(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
    ]);
}

#[test]
fn every_changed_byte_in_the_log_is_found() {
    let e = logged_env(3);
    e.ok(&[
        "log",
        "checkpoint",
        "--store",
        "store",
        "--log-signing-key",
        "log.key",
    ]);
    let store = e.path("store");
    let mut checked = 0;
    for file in crate::audit::files_under(&store.join("log")) {
        let rel = file.strip_prefix(&store).unwrap().to_path_buf();
        let copy = e.path(&format!("t{checked}"));
        crate::audit::copy_dir(&store, &copy);
        crate::audit::change_one_byte(&copy.join(&rel));
        let out = e.run(&[
            "log",
            "verify",
            "--store",
            copy.to_str().unwrap(),
            "--log-key",
            "log.key.pub",
        ]);
        assert_ne!(
            out.status.code(),
            Some(0),
            "changed {rel:?} went unnoticed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        checked += 1;
    }
    // 3 claims, 3 index markers, a hash tile, an entry bundle and the checkpoint
    assert_eq!(checked, 9);
}

/// `custody verify --log-key`: the log decides completeness. A pipeline whose index
/// pointers were all removed no longer answers "nothing found" (exit 4): the log names
/// each of its records (exit 1).
#[test]
fn verify_with_the_log_names_records_the_index_lost() {
    let e = logged_env(2);
    e.ok(&[
        "log",
        "checkpoint",
        "--store",
        "store",
        "--log-signing-key",
        "log.key",
    ]);
    let verify = |e: &Env| {
        e.run(&[
            "verify",
            "--store",
            "store",
            "--commit",
            "0123abcd",
            "--key",
            "signer.key.pub",
            "--require-stages",
            "none",
            "--log-key",
            "log.key.pub",
        ])
    };
    let out = verify(&e);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 answer the query"));
    // every pointer of the commit removed: the index finds nothing
    std::fs::remove_dir_all(e.path("store/index/commit")).unwrap();
    e.fails(
        4,
        &[
            "verify",
            "--store",
            "store",
            "--commit",
            "0123abcd",
            "--key",
            "signer.key.pub",
        ],
    );
    let out = verify(&e);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("log index 0") && text.contains("log index 1"),
        "{text}"
    );
    assert!(
        text.contains("answers the query but is not in the answer"),
        "{text}"
    );
}

fn checkpoint(e: &Env, store: &str) {
    e.ok(&[
        "log",
        "checkpoint",
        "--store",
        store,
        "--log-signing-key",
        "log.key",
    ]);
}

fn witness(e: &Env, store: &str, key: &str, state: &str) -> std::process::Output {
    e.run(&[
        "log",
        "witness",
        "--store",
        store,
        "--log-key",
        "log.key.pub",
        "--witness-signing-key",
        key,
        "--state",
        state,
    ])
}

/// Runs `attest` (which writes to `store`) against another store directory.
fn attest_into(e: &Env, store: &str, file: &str, stage: &str) {
    std::fs::rename(e.path("store"), e.path("store.away")).unwrap();
    std::fs::rename(e.path(store), e.path("store")).unwrap();
    e.attest(file, stage);
    std::fs::rename(e.path("store"), e.path(store)).unwrap();
    std::fs::rename(e.path("store.away"), e.path("store")).unwrap();
}

#[test]
fn a_witness_cosigns_what_extends_its_state_and_refuses_a_fork_or_a_rollback() {
    let e = logged_env(3);
    let vkey = e.ok(&[
        "log",
        "witness-keygen",
        "--name",
        "witness.test/w1",
        "--out",
        "w1.key",
    ]);
    assert!(vkey.starts_with("witness.test/w1+"), "{vkey}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(e.path("w1.key")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // a witness key is not a log key, nor the other way round
    e.fails(
        2,
        &[
            "log",
            "verify",
            "--store",
            "store",
            "--log-key",
            "w1.key.pub",
        ],
    );
    checkpoint(&e, "store");
    crate::audit::copy_dir(&e.path("store"), &e.path("old"));
    crate::audit::copy_dir(&e.path("store"), &e.path("fork"));

    // first sight: nothing to compare with; cosigned and remembered
    let out = witness(&e, "store", "w1.key", "w1.state");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(note.contains("\n— custody.test/evidence "), "{note}");
    assert!(note.contains("\n— witness.test/w1 "), "{note}");
    let state = std::fs::read_to_string(e.path("w1.state")).unwrap();
    assert!(state.starts_with("custody.test/evidence\n3\n"), "{state}");
    // the cosignature is in the store, write-once, beside the checkpoint
    let stored: Vec<_> = std::fs::read_dir(e.path("store/log/cosignatures/00000000000000000003"))
        .unwrap()
        .collect();
    assert_eq!(stored.len(), 1);
    // a rerun at the same size changes nothing
    assert!(witness(&e, "store", "w1.key", "w1.state").status.success());

    // the log grows: the tiles prove the new checkpoint extends the old one
    e.attest(super::SBOM, "test");
    checkpoint(&e, "store");
    let out = witness(&e, "store", "w1.key", "w1.state");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cosigned the checkpoint of 4 entries"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // the operator shows the witness a second history, signed with the same log key
    attest_into(&e, "fork", super::SCAN, "deploy");
    attest_into(&e, "fork", super::SCAN, "deploy");
    checkpoint(&e, "fork");
    let out = witness(&e, "fork", "w1.key", "w1.state");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refuses to cosign") && err.contains("log fork"),
        "{err}"
    );
    assert!(
        !e.path("fork/log/cosignatures/00000000000000000005")
            .exists(),
        "nothing cosigned"
    );

    // or an older state of the log
    let out = witness(&e, "old", "w1.key", "w1.state");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rolled back"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the state still holds what the witness saw last
    let state = std::fs::read_to_string(e.path("w1.state")).unwrap();
    assert!(state.starts_with("custody.test/evidence\n4\n"), "{state}");

    // log verify counts cosignatures on the latest checkpoint
    e.ok(&[
        "log",
        "witness-keygen",
        "--name",
        "witness.test/w2",
        "--out",
        "w2.key",
    ]);
    let out = e.ok(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
        "--witness-key",
        "w1.key.pub",
    ]);
    assert!(
        out.contains("witness     witness.test/w1 cosigned the latest"),
        "{out}"
    );
    let out = e.run(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
        "--witness-key",
        "w1.key.pub",
        "--witness-key",
        "w2.key.pub",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("carries 1 valid cosignature(s) from the witnesses given, 2 required"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    e.ok(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
        "--witness-key",
        "w1.key.pub",
        "--witness-key",
        "w2.key.pub",
        "--min-witnesses",
        "1",
    ]);
    // a witness signing key never reaches the output
    let secret = std::fs::read_to_string(e.path("w1.key")).unwrap();
    let out = witness(&e, "store", "w1.key", "w1.state");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(secret.trim()));
}

#[test]
fn a_replayed_cosignature_does_not_count() {
    let e = logged_env(2);
    e.ok(&[
        "log",
        "witness-keygen",
        "--name",
        "witness.test/w1",
        "--out",
        "w1.key",
    ]);
    checkpoint(&e, "store");
    assert!(witness(&e, "store", "w1.key", "w1.state").status.success());
    // a newer checkpoint the witness never saw; the operator copies the old
    // cosignature beside it
    e.attest(super::SBOM, "test");
    checkpoint(&e, "store");
    let old = e.path("store/log/cosignatures/00000000000000000002");
    let new = e.path("store/log/cosignatures/00000000000000000003");
    crate::audit::copy_dir(&old, &new);
    let out = e.run(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
        "--witness-key",
        "w1.key.pub",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the cosignature of witness witness.test/w1 does not verify"),
        "{stdout}"
    );
    assert!(
        stdout.contains("carries 0 valid cosignature(s)"),
        "{stdout}"
    );
    // the witness's own slot is write-once: it refuses rather than sign beside a forgery
    let out = witness(&e, "store", "w1.key", "w1.state");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not verify with this witness's key"),
        "{err}"
    );
}

/// Issue 15, item 5: a writer killed after its record's chain entry and before its
/// index pointers and log index leaves a record no query finds. The next record on the
/// same chain repairs it: pointers written, record sequenced, nothing lost.
#[test]
fn the_next_writer_on_a_chain_repairs_a_record_whose_writer_was_killed() {
    let e = logged_env(1);
    let record = e.attest(super::SCAN, "scan");
    let hex = record.trim_start_matches("sha256:").to_owned();
    // undo what comes after the chain entry: index pointers, log marker, log claim
    let store = e.path("store");
    let mut undone = 0;
    for f in crate::audit::files_under(&store.join("index")) {
        if f.file_name().unwrap().to_string_lossy().contains(&hex) {
            std::fs::remove_file(&f).unwrap();
            undone += 1;
        }
    }
    assert!(undone > 0);
    std::fs::remove_file(store.join("log/records").join(&hex[..2]).join(&hex)).unwrap();
    std::fs::remove_file(store.join("log/seq/000000000/000000000001")).unwrap();
    let q = [
        "query", "--store", "store", "--commit", "0123abcd", "--format", "json",
    ];
    let rows: serde_json::Value = serde_json::from_str(&e.ok(&q)).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        1,
        "the killed record is lost to queries"
    );

    // the next record on the chain
    e.attest(super::SBOM, "test");
    let rows: serde_json::Value = serde_json::from_str(&e.ok(&q)).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().any(|r| r["record"] == record.as_str()));
    checkpoint(&e, "store");
    let out = e.ok(&[
        "log",
        "verify",
        "--store",
        "store",
        "--log-key",
        "log.key.pub",
    ]);
    assert!(
        out.contains("3 entries, 1 checkpoint(s), 0 after the latest"),
        "{out}"
    );
    assert!(!out.contains("FINDING"), "{out}");
}
