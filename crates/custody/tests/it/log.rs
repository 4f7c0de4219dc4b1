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
