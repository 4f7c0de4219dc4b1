//! The `custody` binary end to end: keys, attest, query, verify, the exit codes, a
//! writer killed mid-write, concurrent writer processes, and interop with Python
//! securesystemslib (opt-in: set CUSTODY_PYTHON to a Python with securesystemslib;
//! `cargo xtask test` does).

// Test helpers outside #[test] functions are not covered by clippy.toml's test
// exemptions; a failing unwrap here is a failing test, which is what we want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod audit;
mod crash;
mod kms;
mod log;
mod pkcs11;
mod runners;
mod tsa;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const SBOM: &str = "sbom-cyclonedx/syft-1.5.0-alpine.cdx.json";
const SCAN: &str = "scan-trivy/trivy-alpine-310.json";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn image() -> String {
    format!("ghcr.io/acme/app@sha256:{}", "a".repeat(64))
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let e = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        e.ok(&["keygen", "--out", "signer.key"]);
        e
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_custody"));
        c.args(args)
            .current_dir(self.dir.path())
            .env_remove("CUSTODY_STORE")
            .env_remove("CUSTODY_SIGNING_KEY")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env("NO_COLOR", "1");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    /// Runs and expects `code`; returns stderr.
    fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        stderr
    }
    fn attest(&self, file: &str, stage: &str) -> String {
        let f = fixtures().join(file);
        let out = self.ok(&[
            "attest",
            f.to_str().unwrap(),
            "--subject",
            &image(),
            "--key",
            "signer.key",
            "--store",
            "store",
            "--stage",
            stage,
            "--commit",
            "0123abcd",
            "--pipeline",
            "9",
            "--format",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["record"].as_str().unwrap().to_owned()
    }
    fn object(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.path("store/objects/sha256")
            .join(&hex[..2])
            .join(&hex[2..])
    }
}

#[test]
fn keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites() {
    let e = Env::new();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(e.path("signer.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let pem = std::fs::read_to_string(e.path("signer.key.pub")).unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let before = std::fs::read(e.path("signer.key")).unwrap();
    let err = e.fails(2, &["keygen", "--out", "signer.key"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(e.path("signer.key")).unwrap(), before);
}

#[test]
fn attest_query_verify_round_trip() {
    let e = Env::new();
    let build = e.attest(SBOM, "build");
    let scan = e.attest(SCAN, "scan");
    let rows: serde_json::Value = serde_json::from_str(&e.ok(&[
        "query", "--store", "store", "--commit", "0123abcd", "--format", "json",
    ]))
    .unwrap();
    let records: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"].as_str().unwrap())
        .collect();
    assert_eq!(records, vec![build.as_str(), scan.as_str()]);
    assert_eq!(
        rows[1]["chain"]["previous"],
        serde_json::Value::String(build.clone())
    );
    assert_eq!(rows[1]["chain"]["sequence"], 1);
    let subject = format!("sha256:{}", "a".repeat(64));
    let by_subject = e.ok(&["query", "--store", "store", "--subject", &subject]);
    assert!(
        by_subject.contains("scan") && by_subject.contains("build"),
        "{by_subject}"
    );
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let by_day = e.ok(&[
        "query", "--store", "store", "--day", &today, "--stage", "scan", "--format", "json",
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&by_day)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let by_pipeline = e.ok(&["query", "--store", "store", "--pipeline", "local:-:9"]);
    assert_eq!(by_pipeline.lines().count(), 3, "{by_pipeline}");

    let out = e.ok(&[
        "verify",
        "--record",
        &scan,
        "--store",
        "store",
        "--key",
        "signer.key.pub",
        "--subject",
        &subject,
    ]);
    assert!(out.contains("verified"), "{out}");
    // the material is stored byte for byte
    let material = std::fs::read(fixtures().join(SCAN)).unwrap();
    let digest = format!("sha256:{}", custody_digest(&material));
    assert_eq!(std::fs::read(e.object(&digest)).unwrap(), material);
    // a key directory works as the trusted set
    std::fs::create_dir(e.path("keys")).unwrap();
    std::fs::copy(e.path("signer.key.pub"), e.path("keys/ci.pem")).unwrap();
    e.ok(&[
        "verify",
        e.object(&build).to_str().unwrap(),
        "--key",
        "keys",
    ]);
}

/// SHA-256 hex computed independently of the program, by the system's sha256sum.
fn custody_digest(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Writes a modified copy of a stored envelope and returns its path.
fn tampered(e: &Env, record: &str, name: &str, f: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(e.object(record)).unwrap()).unwrap();
    f(&mut v);
    let p = e.path(name);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

#[test]
fn tampered_wrong_key_and_replayed_envelopes_are_rejected_and_a_missing_keyid_is_not() {
    let e = Env::new();
    let rec = e.attest(SBOM, "build");
    let pristine = e.object(&rec);
    e.ok(&[
        "verify",
        pristine.to_str().unwrap(),
        "--key",
        "signer.key.pub",
    ]);

    let flip_payload = tampered(&e, &rec, "payload.json", |v| {
        let mut body = STANDARD.decode(v["payload"].as_str().unwrap()).unwrap();
        let i = body.len() / 2;
        body[i] ^= 0x01;
        v["payload"] = STANDARD.encode(&body).into();
    });
    let flip_sig = tampered(&e, &rec, "sig.json", |v| {
        let mut sig = STANDARD
            .decode(v["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let i = sig.len() - 2;
        sig[i] ^= 0x01;
        v["signatures"][0]["sig"] = STANDARD.encode(&sig).into();
    });
    let flip_type = tampered(&e, &rec, "type.json", |v| {
        v["payloadType"] = "application/vnd.in-toto+jsoN".into()
    });
    let no_keyid = tampered(&e, &rec, "keyid.json", |v| {
        v["signatures"][0].as_object_mut().unwrap().remove("keyid");
    });
    // DSSE makes `keyid` optional (cosign and GitHub attestations omit it): accepted
    e.ok(&[
        "verify",
        no_keyid.to_str().unwrap(),
        "--key",
        "signer.key.pub",
    ]);
    for (file, needle) in [
        (&flip_payload, "untrusted key"),
        (&flip_sig, "untrusted key"),
        (&flip_type, "payloadType"),
    ] {
        let err = e.fails(
            1,
            &["verify", file.to_str().unwrap(), "--key", "signer.key.pub"],
        );
        assert!(err.contains(needle), "{}: {err}", file.display());
        assert!(
            err.contains(file.file_name().unwrap().to_str().unwrap()),
            "names the file: {err}"
        );
    }

    e.ok(&["keygen", "--out", "other.key"]);
    let err = e.fails(
        1,
        &[
            "verify",
            pristine.to_str().unwrap(),
            "--key",
            "other.key.pub",
        ],
    );
    assert!(err.contains("untrusted key"), "{err}");

    let other = format!("sha256:{}", "b".repeat(64));
    let err = e.fails(
        1,
        &[
            "verify",
            pristine.to_str().unwrap(),
            "--key",
            "signer.key.pub",
            "--subject",
            &other,
        ],
    );
    assert!(err.contains("replayed"), "{err}");

    // a flipped byte in the stored file itself is caught by its content address
    let obj = e.object(&rec);
    let mut perms = std::fs::metadata(&obj).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&obj, perms).unwrap();
    let mut bytes = std::fs::read(&obj).unwrap();
    bytes[20] ^= 0x01;
    std::fs::write(&obj, &bytes).unwrap();
    let err = e.fails(
        1,
        &[
            "verify",
            "--record",
            &rec,
            "--store",
            "store",
            "--key",
            "signer.key.pub",
        ],
    );
    assert!(err.contains("corrupt"), "{err}");
}

/// An answer that could not be written (`custody query > answer.json` on a full disk)
/// ends with exit 2 and says so, never with success and a truncated file.
#[test]
fn an_answer_lost_on_its_way_out_is_an_error() {
    let e = Env::new();
    e.attest(SBOM, "build");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = e
        .cmd(&["query", "--store", "store", "--commit", "0123abcd"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("custody: error: writing standard output failed: No space left on device"),
        "{err}"
    );
    // the same query to a file that can hold it succeeds
    assert!(
        e.ok(&["query", "--store", "store", "--commit", "0123abcd"])
            .contains("build")
    );
}

#[test]
fn bad_queries_get_clear_errors_and_documented_codes() {
    let e = Env::new();
    e.attest(SBOM, "build");
    let err = e.fails(4, &["query", "--store", "store", "--commit", "feedface"]);
    assert!(err.contains("no records"), "{err}");
    let err = e.fails(2, &["query", "--store", "store", "--subject", "sha256:xyz"]);
    assert!(err.contains("invalid digest"), "{err}");
    let err = e.fails(2, &["query", "--store", "store", "--day", "2026-13-01"]);
    assert!(err.contains("--day"), "{err}");
    let err = e.fails(2, &["query", "--store", "store", "--control", "164.999"]);
    assert!(err.contains("unknown HIPAA control"), "{err}");
    let err = e.fails(3, &["query", "--store", "missing-store"]);
    assert!(err.contains("missing-store"), "{err}");
    std::fs::create_dir(e.path("not-a-store")).unwrap();
    std::fs::write(e.path("not-a-store/file"), "x").unwrap();
    let err = e.fails(3, &["query", "--store", "not-a-store"]);
    assert!(err.contains("not a Custody store"), "{err}");
    let err = e.fails(
        2,
        &[
            "attest",
            "nope.json",
            "--subject",
            &image(),
            "--key",
            "signer.key",
            "--store",
            "store",
        ],
    );
    assert!(err.contains("nope.json"), "{err}");
}

#[test]
fn a_writer_killed_mid_write_leaves_no_visible_record() {
    let e = Env::new();
    // 1 GiB of zeros, sparse: costs no disk but takes the writer a while to copy
    let big = e.path("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    e.ok(&[
        "attest",
        fixtures().join(SBOM).to_str().unwrap(),
        "--subject",
        &image(),
        "--key",
        "signer.key",
        "--store",
        "store",
    ]);
    let mut child = e
        .cmd(&[
            "attest",
            big.to_str().unwrap(),
            "--subject",
            &image(),
            "--key",
            "signer.key",
            "--store",
            "store",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // wait until the writer has a partial file in tmp/, then kill it
    let tmp = e.path("store/tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        // a partial, not the retention lock the first record left
        let partial = std::fs::read_dir(&tmp)
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|f| f.file_name().to_string_lossy().starts_with(".partial-"))
            })
            .unwrap_or(false);
        if partial || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the writer was killed before finishing");
    let partials: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|f| f.file_name().to_string_lossy().starts_with(".partial-"))
        .collect();
    assert!(!partials.is_empty(), "the kill landed mid-write");

    // readers see exactly the one complete record, and every object hashes to its name
    let rows: serde_json::Value =
        serde_json::from_str(&e.ok(&["query", "--store", "store", "--format", "json"])).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    for shard in std::fs::read_dir(e.path("store/objects/sha256")).unwrap() {
        for obj in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let obj = obj.unwrap().path();
            let name = format!(
                "{}{}",
                obj.parent().unwrap().file_name().unwrap().to_str().unwrap(),
                obj.file_name().unwrap().to_str().unwrap()
            );
            assert_eq!(custody_digest(&std::fs::read(&obj).unwrap()), name);
        }
    }
    // and the next write succeeds
    e.attest(SCAN, "scan");
    let rows: serde_json::Value =
        serde_json::from_str(&e.ok(&["query", "--store", "store", "--format", "json"])).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);

    // issue 15, item 5: the dead writer's partial is removed once it is stale (a
    // minute old and unlocked) by the next process that opens the store
    let partials: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".partial-")
        })
        .collect();
    assert!(
        !partials.is_empty(),
        "a fresh partial is left alone: {:?}",
        std::fs::read_dir(&tmp)
            .unwrap()
            .map(|d| d.unwrap().path())
            .collect::<Vec<_>>()
    );
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(600);
    for p in &partials {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    e.ok(&["query", "--store", "store", "--format", "json"]);
    for p in &partials {
        assert!(!p.exists(), "{} was not cleaned", p.display());
    }
}

#[test]
fn concurrent_writer_processes_keep_one_unbroken_chain() {
    let e = Env::new();
    let files = ["a", "b", "c", "d", "e", "f"];
    for f in files {
        std::fs::write(e.path(f), format!("material {f}")).unwrap();
    }
    std::fs::write(e.path("same"), "the same material").unwrap();
    let children: Vec<_> = files
        .iter()
        .flat_map(|f| [*f, "same"])
        .map(|f| {
            e.cmd(&[
                "attest",
                f,
                "--subject",
                &image(),
                "--key",
                "signer.key",
                "--store",
                "store",
                "--pipeline",
                "77",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rows: serde_json::Value = serde_json::from_str(&e.ok(&[
        "query",
        "--store",
        "store",
        "--pipeline",
        "local:-:77",
        "--format",
        "json",
    ]))
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 12);
    let mut links: Vec<(u64, Option<String>, String)> = rows
        .iter()
        .map(|r| {
            (
                r["chain"]["sequence"].as_u64().unwrap(),
                r["chain"]["previous"].as_str().map(str::to_owned),
                r["record"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    links.sort();
    for (i, w) in links.windows(2).enumerate() {
        assert_eq!(w[0].0, i as u64);
        assert_eq!(
            w[1].1.as_deref(),
            Some(w[0].2.as_str()),
            "each record names its predecessor"
        );
    }
    assert_eq!(links[0].1, None);
}

fn python() -> Option<String> {
    match std::env::var("CUSTODY_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!(
                "CUSTODY_PYTHON is not set: securesystemslib interop not run (cargo xtask test sets it)"
            );
            None
        }
    }
}

fn sslib(py: &str, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/sslib.py");
    Command::new(py).arg(script).args(args).output().unwrap()
}

#[test]
fn interop_custody_envelopes_verify_with_securesystemslib() {
    let Some(py) = python() else { return };
    let e = Env::new();
    let rec = e.attest(SBOM, "build");
    let env = e.object(&rec);
    let env = env.to_str().unwrap();
    // default keyid (empty): securesystemslib verifies with a key given that keyid
    let pubkey = e.path("signer.key.pub");
    let out = sslib(&py, &["verify", env, pubkey.to_str().unwrap(), ""]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // keyid scheme sslib: securesystemslib's own default key id matches
    let f = fixtures().join(SCAN);
    let json = e.ok(&[
        "attest",
        f.to_str().unwrap(),
        "--subject",
        &image(),
        "--key",
        "signer.key",
        "--store",
        "store",
        "--keyid-scheme",
        "sslib",
        "--format",
        "json",
    ]);
    let rec2 = serde_json::from_str::<serde_json::Value>(&json).unwrap()["record"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = sslib(
        &py,
        &[
            "verify",
            e.object(&rec2).to_str().unwrap(),
            pubkey.to_str().unwrap(),
            "--default-keyid",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // negative twin: another key is rejected by securesystemslib too
    e.ok(&["keygen", "--out", "other.key"]);
    let out = sslib(
        &py,
        &[
            "verify",
            e.object(&rec2).to_str().unwrap(),
            e.path("other.key.pub").to_str().unwrap(),
            "--default-keyid",
        ],
    );
    assert!(
        !out.status.success(),
        "securesystemslib must reject the wrong key"
    );

    // every keyid convention, computed independently in Python, equals ours
    let ours: serde_json::Value =
        serde_json::from_str(&e.ok(&["keygen", "--out", "third.key", "--format", "json"])).unwrap();
    let out = sslib(&py, &["keyids", e.path("third.key.pub").to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ours["keyids"], theirs);
}

#[test]
fn interop_securesystemslib_envelopes_verify_with_custody() {
    let Some(py) = python() else { return };
    let e = Env::new();
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": "a".repeat(64)}}],
        "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
        "predicate": {"result": "PASSED", "passedTests": ["t1"]},
    });
    std::fs::write(
        e.path("statement.json"),
        serde_json::to_vec(&statement).unwrap(),
    )
    .unwrap();
    let out = sslib(
        &py,
        &[
            "sign",
            e.path("signer.key").to_str().unwrap(),
            e.path("statement.json").to_str().unwrap(),
            e.path("sslib.json").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let subject = format!("sha256:{}", "a".repeat(64));
    let got = e.ok(&[
        "verify",
        "sslib.json",
        "--key",
        "signer.key.pub",
        "--subject",
        &subject,
    ]);
    assert!(got.contains("verified"), "{got}");
    // negative twins: wrong key, and the same envelope replayed for another subject
    e.ok(&["keygen", "--out", "other.key"]);
    e.fails(1, &["verify", "sslib.json", "--key", "other.key.pub"]);
    e.fails(
        1,
        &[
            "verify",
            "sslib.json",
            "--key",
            "signer.key.pub",
            "--subject",
            &format!("sha256:{}", "c".repeat(64)),
        ],
    );
}

#[test]
fn policy_test_runs_the_builtin_rego_tests_and_fails_on_a_failing_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["policy", "test"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("PASS  data.custody_test.scan.test_stale_scan_fails"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.trim_end().ends_with(", 0 failed"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme_test.rego"),
        "package acme_test\n\nimport rego.v1\n\ntest_allows_nothing if data.custody.decision.result.decision == \"allow\" with input as {\"gate\": \"pre-deploy\"}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["policy", "test", "--run", "acme_test"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  data.acme_test.test_allows_nothing"),
        "{stdout}"
    );
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

/// Issue 15, item 15: `custody policy test DIR` failed for any user rule, the README's
/// own example included, because a built-in test counts the built-in rules (19) and a
/// user rule that denies the built-in fixture failed tests the user cannot fix. With a
/// DIR, the user's tests run against the built-in rules plus theirs, alone.
#[test]
fn policy_test_of_a_user_dir_runs_the_users_tests_alone() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let rule = readme
        .split("```rego\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .expect("README's policy example");
    assert!(
        rule.contains("package custody.rules.acme_registry"),
        "{rule}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("acme-registry.rego"), rule).unwrap();
    std::fs::write(
        dir.path().join("acme_registry_test.rego"),
        r#"package acme_registry_test

import rego.v1

test_an_image_elsewhere_is_denied if {
	some msg in data.custody.rules.acme_registry.deny with input as {"artifact": {"name": "docker.io/library/app"}}
	contains(msg, "is not under ghcr.io/acme/")
}

test_our_image_passes if {
	count(data.custody.rules.acme_registry.deny) == 0 with input as {"artifact": {"name": "ghcr.io/acme/app"}}
}
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["policy", "test"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
    assert!(
        !stdout.contains("custody_test"),
        "built-in tests ran: {stdout}"
    );
}

/// Issue 15, item 9: a Sigstore bundle handed to `custody verify` read "missing field
/// payload" with exit 1. It is named as a bundle, with what to do, as a usage error.
#[test]
fn a_sigstore_bundle_is_named_not_misread() {
    let e = Env::new();
    let bundle = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/attestation-dsse/sigstore-rs-bundle-v0.3.sigstore.json"
    );
    e.ok(&["keygen", "--out", "k.key"]);
    let err = e.fails(2, &["verify", bundle, "--key", "k.key.pub"]);
    assert!(err.contains("Sigstore bundle"), "{err}");
    assert!(err.contains("application/vnd.dev.sigstore.bundle"), "{err}");
    assert!(err.contains("keyless"), "{err}");
    assert!(!err.contains("missing field"), "{err}");
}

/// Issue 15, item 7: values from records (a commit, as any writer may set it) reach
/// the tables `custody` prints, and must not become workflow commands in a CI log.
#[test]
fn record_values_cannot_write_workflow_commands() {
    let e = Env::new();
    let evil = "c\n::warning::x";
    e.ok(&[
        "attest",
        fixtures().join(SBOM).to_str().unwrap(),
        "--subject",
        &image(),
        "--key",
        "signer.key",
        "--store",
        "store",
        "--commit",
        evil,
    ]);
    for args in [
        &["query", "--store", "store"][..],
        &["query", "--store", "store", "--commit", evil],
        &[
            "verify",
            "--store",
            "store",
            "--commit",
            evil,
            "--key",
            "signer.key.pub",
        ],
        &[
            "verify-bundle",
            "x\n::error title=X::pwned.tar.gz",
            "--bundle-keys",
        ],
    ] {
        let out = e.run(args);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if args[0] != "verify" {
            assert!(
                all.contains(":\u{200B}:"),
                "{args:?} printed the value: {all}"
            );
        }
        for l in all.lines() {
            assert!(!l.trim_start().starts_with("::"), "{args:?}: {l:?}");
        }
    }
}

/// A trusted-keys file bounds when a key counts: a record made before the key's
/// revocation verifies, a key revoked before the record was made fails it with 1,
/// naming the key, the revocation and the record's time; in `verify` and in
/// `verify-bundle`, where the auditor's own file is the trust.
#[test]
fn a_revoked_key_fails_records_made_after_its_revocation() {
    let e = Env::new();
    let rec = e.attest(SBOM, "build");
    let pem = std::fs::read_to_string(e.path("signer.key.pub")).unwrap();
    let trusted = |revoked: &str| {
        let inline = pem.trim_end().replace('\n', "\n      ");
        format!(
            "keys:\n  - name: ci-2025\n    revokedAt: {revoked}\n    reason: exposed in a job log\n    publicKey: |\n      {inline}\n"
        )
    };
    std::fs::write(e.path("later.yaml"), trusted("2099-01-01T00:00:00Z")).unwrap();
    std::fs::write(e.path("earlier.yaml"), trusted("2020-01-01T00:00:00Z")).unwrap();
    e.ok(&[
        "verify",
        "--record",
        &rec,
        "--store",
        "store",
        "--key",
        "later.yaml",
    ]);
    let out = e.run(&[
        "verify",
        "--record",
        &rec,
        "--store",
        "store",
        "--key",
        "earlier.yaml",
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("ci-2025")
            && said.contains("revoked at 2020-01-01T00:00:00Z (exposed in a job log)"),
        "{said}"
    );
    // the same bundle, judged with the auditor's trusted-keys file
    e.ok(&[
        "export",
        "--store",
        "store",
        "--commit",
        "0123abcd",
        "--key",
        "signer.key.pub",
        "--out",
        "audit.tar.gz",
        "--require-stages",
        "build",
    ]);
    let bundle = |key: &str| {
        e.run(&[
            "verify-bundle",
            "audit.tar.gz",
            "--key",
            key,
            "--require-stages",
            "build",
        ])
    };
    assert!(bundle("later.yaml").status.success());
    let out = bundle("earlier.yaml");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `custody attest` of the SBOM fixture with `key`, into `store`, as JSON: the KMS and
/// PKCS#11 tests' command.
fn attest_args(key: &str) -> Vec<String> {
    let sbom = fixtures().join(SBOM);
    [
        "attest",
        sbom.to_str().unwrap(),
        "--subject",
        &image(),
        "--key",
        key,
        "--store",
        "store",
        "--format",
        "json",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// stdout and stderr of a run, together.
fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `custody gate …` runs the custody-gate binary with the same arguments (here `echo`,
/// as CUSTODY_GATE_BIN), and says what to install when it is missing.
#[test]
fn gate_runs_the_custody_gate_binary() {
    let e = Env::new();
    let out = e
        .cmd(&["gate", "serve", "--config", "gate.yaml", "-v"])
        .env("CUSTODY_GATE_BIN", "/bin/echo")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "serve --config gate.yaml -v\n"
    );
    let out = e
        .cmd(&["gate", "serve"])
        .env("CUSTODY_GATE_BIN", e.path("no-such-gate"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("custody gate runs the custody-gate binary")
            && stderr.contains("cargo build --release -p custody-gate"),
        "{stderr}"
    );
}

/// `custody scan` finds the synthetic corpus's secrets and PHI (exit 1), prints where and
/// which rule but never a value, and passes the real fixtures (exit 0).
#[test]
fn scan_finds_secrets_and_phi_without_printing_them() {
    let e = Env::new();
    let corpus = custody_test_support::phi::Corpus::new();
    let paths = corpus.write(e.dir.path());
    let mut args: Vec<String> = vec!["scan".into()];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = e.run(&refs);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for rule in [
        "ssn",
        "hl7-pid-segment",
        "fhir-patient",
        "aws-access-key-id",
        "private-key",
    ] {
        assert!(stdout.contains(&format!(": {rule} (")), "{rule}: {stdout}");
    }
    let mut json_args = refs.clone();
    json_args.extend(["--format", "json"]);
    let json = e.run(&json_args);
    let all = format!("{stdout}{stderr}{}", String::from_utf8_lossy(&json.stdout));
    for v in corpus.values() {
        assert!(!all.contains(v), "custody scan printed a planted value");
    }
    let findings: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(findings.as_array().unwrap().len() >= corpus.planted.len());
    // the real fixtures are clean
    let sbom = fixtures().join(SBOM);
    let scan = fixtures().join(SCAN);
    let out = e.run(&["scan", sbom.to_str().unwrap(), scan.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
