//! Audits end to end: `custody verify` over a query, `export`, `verify-bundle` and
//! `retention`, and the tampering an auditor must see named: a changed byte anywhere in
//! the store or a bundle, a record removed from a chain, a swapped material, an untrusted
//! signer, a dropped lock, a missing stage, an unsafe bundle.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{Env, fixtures, python, sslib};

mod adversarial;
mod complete;

const COMMIT: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const KEY: &str = "signer.key.pub";

impl Env {
    /// A record of a pipeline `7` of `acme/app` at [`COMMIT`], in `job`'s chain.
    fn record(&self, file: &str, stage: &str, job: &str, key: &str) -> String {
        let f = fixtures().join(file);
        let out = self.ok(&[
            "attest",
            f.to_str().unwrap(),
            "--subject",
            &crate::image(),
            "--key",
            key,
            "--store",
            "store",
            "--stage",
            stage,
            "--commit",
            COMMIT,
            "--pipeline",
            "7",
            "--repository",
            "acme/app",
            "--job",
            job,
            "--format",
            "json",
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["record"].as_str().unwrap().to_owned()
    }

    /// build, test, and a scan job with three records: a chain to break.
    fn pipeline(&self) -> Vec<String> {
        vec![
            self.record(crate::SBOM, "build", "build", "signer.key"),
            self.record(
                "tests-junit/cargo-nextest-basic.xml",
                "test",
                "test",
                "signer.key",
            ),
            self.record(crate::SCAN, "scan", "scan", "signer.key"),
            self.record("scan-grype/grype-image.json", "scan", "scan", "signer.key"),
            self.record(
                "scan-sarif/trivy-alpine-310.sarif.json",
                "scan",
                "scan",
                "signer.key",
            ),
        ]
    }

    fn verify_in(&self, store: &str) -> (i32, Value, String) {
        let out = self.run(&[
            "verify", "--store", store, "--commit", COMMIT, "--key", KEY, "--format", "json",
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap(), v, format!("{stdout}\n{stderr}"))
    }
}

fn findings(v: &Value) -> Vec<(String, String, String)> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["check"].as_str().unwrap().to_owned(),
                        f["about"].as_str().unwrap().to_owned(),
                        f["message"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has(v: &Value, check: &str, about: &str, message: &str) -> bool {
    findings(v)
        .iter()
        .any(|(c, a, m)| c == check && a.contains(about) && m.contains(message))
}

pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn make_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// Changes one byte of a file. Lock files get an earlier year (a later one is a lawful
/// extension, not tampering); other files get their middle byte's low bit flipped.
pub(crate) fn change_one_byte(p: &Path) {
    make_writable(p);
    let mut b = std::fs::read(p).unwrap();
    if p.to_string_lossy().contains("/retention/") {
        let text = String::from_utf8(b.clone()).unwrap();
        let at = text.find("\"retainUntil\":\"").unwrap() + "\"retainUntil\":\"".len() + 3;
        b[at] -= 1;
    } else {
        let mid = b.len() / 2;
        b[mid] ^= 0x01;
    }
    std::fs::write(p, b).unwrap();
}

#[test]
fn verify_of_a_commit_checks_signatures_materials_chains_stages_and_locks() {
    let e = Env::new();
    e.pipeline();
    let (code, v, out) = e.verify_in("store");
    assert_eq!(code, 0, "{out}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["totals"]["records"], 5);
    assert_eq!(v["totals"]["verified"], 5);
    assert_eq!(v["totals"]["materials"], 5);
    assert_eq!(v["totals"]["chains"], 3);
    assert_eq!(v["pipelines"][0]["key"], "local:acme/app:7");
    assert_eq!(
        v["pipelines"][0]["stages"],
        serde_json::json!(["build", "scan", "test"])
    );
    let scan_chain = v["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "local:acme/app:7:scan")
        .unwrap();
    assert_eq!(scan_chain["length"], 3);
    assert_eq!(scan_chain["intact"], true);
    for r in v["records"].as_array().unwrap() {
        assert_eq!(r["retention"]["mode"], "COMPLIANCE", "{r}");
        assert!(r["signer"]["keyid"].as_str().unwrap().len() == 64);
    }

    // the required stages are configurable: a release audit wants a deploy record
    let out = e.run(&[
        "verify",
        "--store",
        "store",
        "--commit",
        COMMIT,
        "--key",
        KEY,
        "--require-stages",
        "build,test,scan,deploy",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        has(
            &v,
            "stages",
            "pipeline local:acme/app:7",
            "no verified `deploy` record"
        ),
        "{v}"
    );
    let table = e.run(&[
        "verify",
        "--store",
        "store",
        "--commit",
        COMMIT,
        "--key",
        KEY,
        "--require-stages",
        "build,deploy",
    ]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("FAILED  1 error(s)"), "{text}");
    assert!(text.contains("no verified `deploy` record"), "{text}");
}

#[test]
fn every_changed_byte_in_the_store_is_found_and_named() {
    let e = Env::new();
    e.pipeline();
    let store = e.path("store");
    let mut checked = 0;
    for file in files_under(&store) {
        let rel = file.strip_prefix(&store).unwrap().to_path_buf();
        let first = rel.components().next().unwrap().as_os_str().to_owned();
        // index entries are empty files (their names are the data): nothing to change;
        // the log's files are `custody log verify`'s (log::every_changed_byte_in_the_log…)
        if first == "index" || first == "tmp" || first == "log" {
            continue;
        }
        let copy = e.path(&format!("t{checked}"));
        copy_dir(&store, &copy);
        change_one_byte(&copy.join(&rel));
        let (code, v, out) = e.verify_in(copy.to_str().unwrap());
        assert_ne!(code, 0, "changed {rel:?} went unnoticed: {out}");
        let name = rel.to_string_lossy();
        if first == "objects" || first == "retention" {
            // the finding names the object by its digest
            let hex: String = name
                .trim_start_matches("objects/sha256/")
                .trim_start_matches("retention/sha256/")
                .trim_end_matches(".json")
                .replace('/', "");
            assert!(
                out.contains(&hex),
                "changed {name}: the finding does not name it: {out}"
            );
            assert_eq!(code, 1, "{out}");
            assert_eq!(v["ok"], false);
        } else if first == "chains" {
            assert!(
                findings(&v).iter().any(|(c, _, _)| c == "chain"),
                "changed {name}: {out}"
            );
        } else {
            // the store's marker: not a store any more
            assert!(
                out.contains("CUSTODY-STORE") || out.contains("store"),
                "{out}"
            );
        }
        checked += 1;
    }
    // 5 envelopes, 5 materials, their 10 locks, 5 chain entries and the marker
    assert_eq!(checked, 26);
}

#[test]
fn a_record_removed_from_the_middle_of_a_chain_is_named() {
    let e = Env::new();
    let recs = e.pipeline();
    let middle = &recs[3]; // the scan chain's #1
    let hex = middle.trim_start_matches("sha256:");

    // deleting the envelope alone: the chain names a record that is gone
    let object = e.object(middle);
    std::fs::remove_file(&object).unwrap();
    let (code, v, out) = e.verify_in("store");
    assert_eq!(code, 1, "{out}");
    assert!(has(&v, "object", hex, "missing"), "{out}");
    assert!(
        has(&v, "chain", "local:acme/app:7:scan", "entry #1 names"),
        "{out}"
    );

    // and a thorough deletion (its chain entry and index entries too) leaves a gap
    std::fs::remove_file(e.path("store/chains/local%3Aacme%2Fapp%3A7%3Ascan/000000000001"))
        .or_else(|_| {
            // the chain directory's encoding is the store's business: find the entry
            let entry = files_under(&e.path("store/chains"))
                .into_iter()
                .find(|p| std::fs::read_to_string(p).unwrap().trim() == middle.as_str())
                .unwrap();
            std::fs::remove_file(entry)
        })
        .unwrap();
    for p in files_under(&e.path("store/index")) {
        if p.file_name().unwrap().to_string_lossy().ends_with(hex) {
            std::fs::remove_file(p).unwrap();
        }
    }
    let (code, v, out) = e.verify_in("store");
    assert_eq!(code, 1, "{out}");
    assert!(
        has(
            &v,
            "chain",
            "local:acme/app:7:scan",
            "no entry #1: a record was removed"
        ),
        "{out}"
    );
}

#[test]
fn a_swapped_material_an_untrusted_signer_and_a_dropped_lock_are_named() {
    let e = Env::new();
    let recs = e.pipeline();
    // swap: the Trivy report's stored bytes replaced by the Grype report's
    let v0: Value = serde_json::from_str(&e.ok(&[
        "verify", "--store", "store", "--commit", COMMIT, "--key", KEY, "--format", "json",
    ]))
    .unwrap();
    let trivy = v0["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["digest"] == recs[2].as_str())
        .unwrap()["materials"][0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = e.object(&trivy);
    make_writable(&path);
    std::fs::copy(fixtures().join("scan-grype/grype-image.json"), &path).unwrap();
    let (code, v, out) = e.verify_in("store");
    assert_eq!(code, 1);
    assert!(
        has(&v, "material", &trivy, "changed after it was stored"),
        "{out}"
    );
    std::fs::copy(fixtures().join(crate::SCAN), &path).unwrap();
    assert_eq!(e.verify_in("store").0, 0);

    // a record signed with a key the auditor does not trust
    e.ok(&["keygen", "--out", "other.key"]);
    let rogue = e.record("scan-grype/grype-empty.json", "sign", "sign", "other.key");
    let (code, v, out) = e.verify_in("store");
    assert_eq!(code, 1);
    assert!(has(&v, "signature", &rogue, "trusted"), "{out}");
    // it counts for nothing: a stage only it claims is missing
    let out = e.run(&[
        "verify",
        "--store",
        "store",
        "--commit",
        COMMIT,
        "--key",
        KEY,
        "--require-stages",
        "sign",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        has(&v, "stages", "pipeline", "no verified `sign` record"),
        "{v}"
    );

    // a dropped lock, found by verify and by the retention audit
    let e = Env::new();
    let recs = e.pipeline();
    let hex = recs[0].trim_start_matches("sha256:");
    let lock = e.path(&format!(
        "store/retention/sha256/{}/{}.json",
        &hex[..2],
        &hex[2..]
    ));
    std::fs::remove_file(lock).unwrap();
    let (code, v, out) = e.verify_in("store");
    assert_eq!(code, 1);
    assert!(has(&v, "retention", hex, "no retention lock"), "{out}");
    let out = e.run(&["retention", "--store", "store", "--commit", COMMIT]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NO LOCK"), "{text}");
    assert!(text.contains("no retention lock"), "{text}");
    // unlocked objects come first: what expires soonest is what an auditor reads first
    assert!(
        text.lines().nth(1).unwrap().starts_with("NO LOCK"),
        "{text}"
    );
}

#[test]
fn retention_lists_what_expires_when_and_flags_short_locks() {
    let e = Env::new();
    e.pipeline();
    let out = e.ok(&[
        "retention",
        "--store",
        "store",
        "--commit",
        COMMIT,
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    let objects = v["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 10); // 5 envelopes, 5 materials
    for o in objects {
        assert_eq!(o["mode"], "COMPLIANCE");
        let until: jiff::Timestamp = o["retainUntil"].as_str().unwrap().parse().unwrap();
        let recorded: jiff::Timestamp = o["recordedAt"].as_str().unwrap().parse().unwrap();
        let years = (until.as_second() - recorded.as_second()) / (365 * 86_400);
        assert_eq!(years, 6, "{o}");
    }
    // a policy of ten years makes every six-year lock a finding
    let out = e.run(&[
        "retention",
        "--store",
        "store",
        "--commit",
        COMMIT,
        "--min-retention-years",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 10, "{v}");
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("shorter than the 10 years required")
    );
}

fn bundle_files(e: &Env, bundle: &str) -> PathBuf {
    let dir = e.path(&format!("{bundle}.d"));
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(e.path(bundle))
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    dir
}

fn repack(from: &Path, to: &Path) {
    let st = Command::new("tar")
        .arg("czf")
        .arg(to)
        .arg("-C")
        .arg(from)
        .arg("custody-bundle")
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn an_exported_bundle_verifies_offline_after_the_store_is_deleted() {
    let e = Env::new();
    e.pipeline();
    let out = e.ok(&[
        "export",
        "--store",
        "store",
        "--commit",
        COMMIT,
        "--key",
        KEY,
        "--out",
        "audit.tar.gz",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["totals"]["records"], 5);
    // never overwritten
    let err = e.fails(
        2,
        &[
            "export",
            "--store",
            "store",
            "--commit",
            COMMIT,
            "--key",
            KEY,
            "--out",
            "audit.tar.gz",
        ],
    );
    assert!(err.contains("already exists"), "{err}");

    std::fs::remove_dir_all(e.path("store")).unwrap();
    let out = e.ok(&[
        "verify-bundle",
        "audit.tar.gz",
        "--key",
        KEY,
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["verification"]["totals"]["verified"], 5);
    assert_eq!(v["manifest"]["query"], format!("--commit {COMMIT}"));

    // the report is there, for people, with no script
    let dir = bundle_files(&e, "audit.tar.gz");
    let root = dir.join("custody-bundle");
    let html = std::fs::read_to_string(root.join("report.html")).unwrap();
    assert!(html.contains("VERIFIED"));
    assert!(html.contains("164.312(b)"));
    assert!(!html.to_lowercase().contains("<script"));
    let md = std::fs::read_to_string(root.join("report.md")).unwrap();
    assert!(md.contains("## HIPAA Security Rule controls"), "{md}");
    assert!(md.contains("local:acme/app:7"), "{md}");

    // another key: every signature fails, and the report says so
    e.ok(&["keygen", "--out", "stranger.key"]);
    let out = e.run(&["verify-bundle", "audit.tar.gz", "--key", "stranger.key.pub"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAILED"), "{text}");
    assert!(text.contains("signature"), "{text}");
    // trusting the bundle's own keys is possible, and said to be weaker
    let out = e.run(&["verify-bundle", "audit.tar.gz", "--bundle-keys"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not who made it"));

    // each envelope verifies with the reference verifier, securesystemslib
    if let Some(py) = python() {
        let envelopes = files_under(&root.join("envelopes"));
        assert_eq!(envelopes.len(), 5);
        for env in envelopes {
            let pem = root.join("keys/signer.key.pub");
            let o = sslib(
                &py,
                &["verify", env.to_str().unwrap(), pem.to_str().unwrap(), ""],
            );
            assert!(
                o.status.success(),
                "{env:?}: {}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
    }
}

#[test]
fn every_changed_byte_in_a_bundle_is_found_and_named() {
    let e = Env::new();
    e.pipeline();
    e.ok(&[
        "export", "--store", "store", "--commit", COMMIT, "--key", KEY, "--out", "a.tar.gz",
    ]);
    let dir = bundle_files(&e, "a.tar.gz");
    let root = dir.join("custody-bundle");
    let mut checked = 0;
    for file in files_under(&root) {
        let rel = file.strip_prefix(&dir).unwrap().to_path_buf();
        let name = rel.to_string_lossy().into_owned();
        if name.contains("/store/index/") || std::fs::metadata(&file).unwrap().len() == 0 {
            continue;
        }
        let copy = e.path(&format!("b{checked}"));
        copy_dir(&dir, &copy);
        change_one_byte(&copy.join(&rel));
        let tampered = e.path(&format!("b{checked}.tar.gz"));
        repack(&copy, &tampered);
        let out = e.run(&["verify-bundle", tampered.to_str().unwrap(), "--key", KEY]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(1),
            "changed {name} went unnoticed: {text}"
        );
        let short = Path::new(&name)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let named = text.contains(short.trim_end_matches(".json"))
            || text.contains(&name.replace("custody-bundle/", ""))
            || (name.contains("/chains/") && text.contains("chain"))
            || (name.ends_with("CUSTODY-STORE") && text.contains("store"));
        assert!(named, "changed {name}: not named in {text}");
        checked += 1;
    }
    // manifest, 4 derived files, 5 envelopes, a key, and the store's 26 files
    assert_eq!(checked, 37);
}

#[test]
fn unsafe_bundles_are_refused_before_anything_is_written() {
    let e = Env::new();
    let py = python().unwrap_or_else(|| "python3".into());
    // tarfile writes what a malicious bundle would hold: a parent path, an absolute
    // path, a symlink out of the bundle
    for (case, script) in [
        (
            "parent",
            "t.add(i('custody-bundle/../../evil'), io.BytesIO(b'x'))",
        ),
        (
            "absolute",
            "t.add(i('/tmp/custody-evil'), io.BytesIO(b'x'))",
        ),
        (
            "symlink",
            "s = tarfile.TarInfo('custody-bundle/BUNDLE.json'); s.type = tarfile.SYMTYPE; s.linkname = '/etc/passwd'; t.add(s)",
        ),
    ] {
        let out = e.path(&format!("{case}.tar.gz"));
        let program = format!(
            "import io, tarfile\n\
             def i(n):\n    x = tarfile.TarInfo(n); x.size = 1; return x\n\
             class T:\n    def __init__(s, t): s.t = t\n    def add(s, info, data=None): s.t.addfile(info, data)\n\
             with tarfile.open('{}', 'w:gz') as raw:\n    t = T(raw)\n    {script}\n",
            out.display()
        );
        let st = Command::new(&py).args(["-c", &program]).status().unwrap();
        assert!(st.success());
        let r = e.run(&["verify-bundle", out.to_str().unwrap(), "--key", KEY]);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{case}: {err}");
        assert!(err.contains("refusing entry"), "{case}: {err}");
        assert!(!Path::new("/tmp/custody-evil").exists());
    }
    // not a bundle at all
    std::fs::write(e.path("junk.tar.gz"), b"not gzip").unwrap();
    let err = e.fails(1, &["verify-bundle", "junk.tar.gz", "--key", KEY]);
    assert!(
        err.contains("junk.tar.gz") && err.contains("not a readable .tar.gz"),
        "{err}"
    );
    let err = e.fails(2, &["verify-bundle", "missing.tar.gz", "--key", KEY]);
    assert!(err.contains("missing.tar.gz"), "{err}");
}

#[test]
fn bad_audit_queries_get_clear_errors_and_documented_codes() {
    let e = Env::new();
    e.pipeline();
    for cmd in ["verify", "retention"] {
        let mut args = vec![cmd, "--store", "store", "--commit", "deadbeef"];
        if cmd == "verify" {
            args.extend(["--key", KEY]);
        }
        let err = e.fails(4, &args);
        assert!(err.contains("no records match"), "{cmd}: {err}");
    }
    let err = e.fails(
        4,
        &[
            "export", "--store", "store", "--commit", "deadbeef", "--key", KEY, "--out", "x.tar.gz",
        ],
    );
    assert!(err.contains("no bundle written"), "{err}");
    assert!(!e.path("x.tar.gz").exists());
    let err = e.fails(
        2,
        &[
            "verify",
            "--store",
            "store",
            "--subject",
            "sha256:zz",
            "--key",
            KEY,
        ],
    );
    assert!(err.contains("sha256:zz"), "{err}");
    let err = e.fails(2, &["verify", "--store", "store", "--key", KEY]);
    assert!(err.contains("query flags"), "{err}");
    let err = e.fails(
        3,
        &[
            "verify", "--store", "nowhere", "--commit", COMMIT, "--key", KEY,
        ],
    );
    assert!(err.contains("nowhere"), "{err}");
    let err = e.fails(3, &["retention", "--store", "nowhere", "--commit", COMMIT]);
    assert!(err.contains("nowhere"), "{err}");
}

impl Env {
    /// A record of pipeline `pipeline` of `acme/app` at [`COMMIT`], naming `service`
    /// when given; each stage is its own job, as in the per-service templates.
    fn service_record(
        &self,
        file: &str,
        stage: &str,
        pipeline: &str,
        service: Option<&str>,
        key: &str,
    ) -> String {
        let f = fixtures().join(file);
        let image = crate::image();
        let mut args = vec![
            "attest",
            f.to_str().unwrap(),
            "--subject",
            &image,
            "--key",
            key,
            "--store",
            "store",
            "--stage",
            stage,
            "--commit",
            COMMIT,
            "--pipeline",
            pipeline,
            "--repository",
            "acme/app",
            "--job",
            stage,
            "--format",
            "json",
        ];
        if let Some(s) = service {
            args.extend(["--service", s]);
        }
        let v: Value = serde_json::from_str(&self.ok(&args)).unwrap();
        v["record"].as_str().unwrap().to_owned()
    }

    /// GitLab's shape: a parent pipeline `100` with no build, test or scan of its own
    /// and one child pipeline per service (`101` api, `102` web), each with the given
    /// stages; the records are signed with `signer.key`.
    fn services(&self, api: &[&str], web: &[&str]) {
        self.service_record(crate::SBOM, "policy", "100", None, "signer.key");
        for (pipeline, service, stages) in [("101", "api", api), ("102", "web", web)] {
            for stage in stages {
                let file = match *stage {
                    "build" => crate::SBOM,
                    "test" => "tests-junit/cargo-nextest-basic.xml",
                    _ => crate::SCAN,
                };
                self.service_record(file, stage, pipeline, Some(service), "signer.key");
            }
        }
    }

    fn verify_services(&self, services: &[&str], format: &str) -> (i32, String) {
        let mut args = vec![
            "verify", "--store", "store", "--commit", COMMIT, "--key", KEY, "--format", format,
        ];
        for s in services {
            args.extend(["--service", s]);
        }
        let out = self.run(&args);
        (
            out.status.code().unwrap(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

#[test]
fn every_named_service_must_have_every_required_stage() {
    let e = Env::new();
    e.services(&["build", "test", "scan"], &["build", "test", "scan"]);
    // a service nobody asked about, with only a build: not judged
    e.service_record(crate::SBOM, "build", "103", Some("worker"), "signer.key");

    let (code, out) = e.verify_services(&["api", "web"], "json");
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["requiredServices"], serde_json::json!(["api", "web"]));
    assert_eq!(v["services"][0]["name"], "api");
    assert_eq!(
        v["services"][1]["stages"],
        serde_json::json!(["build", "scan", "test"])
    );
    assert_eq!(v["services"][1]["missing"], serde_json::json!([]));
    // the parent pipeline's missing stages are not judged per service
    let parent = v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "local:acme/app:100")
        .unwrap();
    assert_eq!(parent["missing"], serde_json::json!([]), "{parent}");
    // negative twin: per pipeline (no --service), the parent lacks a build
    let (code, out) = e.verify_services(&[], "json");
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        has(
            &v,
            "stages",
            "pipeline local:acme/app:100",
            "no verified `build` record"
        ),
        "{v}"
    );
    assert!(v.get("requiredServices").is_none(), "{v}");
    // query shows the service of each record
    let rows: Value = serde_json::from_str(&e.ok(&[
        "query",
        "--store",
        "store",
        "--pipeline",
        "local:acme/app:101",
        "--format",
        "json",
    ]))
    .unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["service"] == "api"),
        "{rows}"
    );
}

#[test]
fn a_service_missing_a_stage_is_named_with_the_stage_and_the_scope() {
    let e = Env::new();
    e.services(&["build", "test", "scan"], &["build", "test"]);
    let (code, out) = e.verify_services(&["api", "web"], "json");
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let message = format!("no verified `scan` record for commit {COMMIT}");
    assert!(has(&v, "stages", "service web", &message), "{v}");
    let stage_findings: Vec<_> = findings(&v)
        .into_iter()
        .filter(|(c, _, _)| c == "stages")
        .collect();
    assert_eq!(
        stage_findings.len(),
        1,
        "only web's scan: {stage_findings:?}"
    );
    assert_eq!(v["services"][1]["missing"], serde_json::json!(["scan"]));
    // a service that recorded nothing at all lacks every stage
    let (code, out) = e.verify_services(&["api", "billing"], "json");
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    for stage in ["build", "test", "scan"] {
        assert!(
            has(&v, "stages", "service billing", &format!("`{stage}`")),
            "{v}"
        );
    }
    // the table says the same
    let (code, text) = e.verify_services(&["api", "web"], "table");
    assert_eq!(code, 1);
    assert!(text.starts_with("FAILED  1 error(s)"), "{text}");
    assert!(text.contains("service web"), "{text}");
    assert!(text.contains(&message), "{text}");
    assert!(text.contains("SERVICE"), "{text}");
}

#[test]
fn a_forged_service_record_does_not_count() {
    let e = Env::new();
    e.services(&["build", "test"], &["build", "test", "scan"]);
    e.ok(&["keygen", "--out", "other.key"]);
    let forged = e.service_record(crate::SCAN, "scan", "101", Some("api"), "other.key");
    let (code, out) = e.verify_services(&["api", "web"], "json");
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(has(&v, "signature", &forged, "trusted"), "{v}");
    assert!(
        has(&v, "stages", "service api", "no verified `scan` record"),
        "{v}"
    );
    assert_eq!(
        v["services"][0]["stages"],
        serde_json::json!(["build", "test"])
    );
}

#[test]
fn bad_service_names_are_usage_errors() {
    let e = Env::new();
    e.services(&["build"], &["build"]);
    for bad in ["", "web\u{1b}[2K"] {
        let err = e.fails(
            2,
            &[
                "verify",
                "--store",
                "store",
                "--commit",
                COMMIT,
                "--key",
                KEY,
                "--service",
                bad,
            ],
        );
        assert!(err.contains("--service"), "{err}");
        let f = fixtures().join(crate::SCAN);
        let err = e.fails(
            2,
            &[
                "attest",
                f.to_str().unwrap(),
                "--subject",
                &crate::image(),
                "--key",
                "signer.key",
                "--store",
                "store",
                "--service",
                bad,
            ],
        );
        assert!(err.contains("--service"), "{err}");
    }
    // --service judges a query's records, not one envelope
    let err = e.fails(
        2,
        &[
            "verify",
            "--record",
            "sha256:00",
            "--key",
            KEY,
            "--service",
            "api",
        ],
    );
    assert!(err.contains("--service"), "{err}");
}

/// Issue 15, item 3: years beyond the calendar's range panicked (exit 101). On every
/// flag they are usage errors (exit 2); in a bundle's manifest, a verification failure.
#[test]
fn years_out_of_range_are_usage_errors_not_panics() {
    let e = Env::new();
    e.pipeline();
    for years in ["20000", "101", "32767"] {
        let err = e.fails(
            2,
            &[
                "verify",
                "--store",
                "store",
                "--commit",
                COMMIT,
                "--key",
                KEY,
                "--min-retention-years",
                years,
            ],
        );
        assert!(err.contains("min-retention-years"), "{years}: {err}");
        let err = e.fails(
            2,
            &[
                "retention",
                "--store",
                "store",
                "--commit",
                COMMIT,
                "--min-retention-years",
                years,
            ],
        );
        assert!(err.contains("min-retention-years"), "{years}: {err}");
    }
    // a retention is at least a year (a minimum of 0 is valid: no lock required)
    for years in ["20000", "101", "0"] {
        let err = e.fails(
            2,
            &[
                "attest",
                "Cargo.toml",
                "--subject",
                "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "--key",
                "signer.key",
                "--store",
                "store",
                "--retention-years",
                years,
            ],
        );
        assert!(err.contains("retention-years"), "{years}: {err}");
    }

    // a bundle whose manifest asks for 30,000 years
    e.ok(&[
        "export", "--store", "store", "--commit", COMMIT, "--key", KEY, "--out", "a.tar.gz",
    ]);
    let dir = bundle_files(&e, "a.tar.gz");
    let manifest = dir.join("custody-bundle/BUNDLE.json");
    make_writable(&manifest);
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["minRetentionYears"] = serde_json::json!(30000);
    std::fs::write(&manifest, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let bad = e.path("years.tar.gz");
    repack(&dir, &bad);
    // the bundle is evidence handed over, not a flag: like any bundle Custody cannot have
    // written, it fails verification (exit 1), naming the field, and nothing panics
    let err = e.fails(1, &["verify-bundle", bad.to_str().unwrap(), "--key", KEY]);
    assert!(
        err.contains("BUNDLE.json") && err.contains("minRetentionYears 30000"),
        "{err}"
    );
}

/// Issue 15, item 8: 3 MB of gzip made verify-bundle write 3 GB to the temp dir before
/// refusing. The entries and the bytes they declare are checked before anything is
/// written: a bundle expanding past 200 times its size (and past 256 MiB) is refused.
#[test]
fn a_decompression_bomb_is_refused_before_anything_is_written() {
    let e = Env::new();
    e.pipeline();
    e.ok(&[
        "export", "--store", "store", "--commit", COMMIT, "--key", KEY, "--out", "a.tar.gz",
    ]);
    let dir = bundle_files(&e, "a.tar.gz");
    // 300 MiB of zeros beside the evidence: gzip makes it about 300 KB
    let bomb = dir.join("custody-bundle/padding.bin");
    let f = std::fs::File::create(&bomb).unwrap();
    f.set_len(300 << 20).unwrap();
    let packed = e.path("bomb.tar.gz");
    repack(&dir, &packed);
    std::fs::remove_file(&bomb).unwrap();
    let size = std::fs::metadata(&packed).unwrap().len();
    assert!(size < 2 << 20, "the bomb is small: {size}");
    // the process's temporary directory, watched while it runs: the bytes it ever held
    let tmp = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["verify-bundle", packed.to_str().unwrap(), "--key"])
        .arg(e.path(KEY))
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watched = tmp.path().to_path_buf();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let watcher = std::thread::spawn(move || {
        let mut most = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            most = most.max(walk(&watched));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        most
    });
    let out = child.wait_with_output().unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused before anything was written"), "{err}");
    assert_eq!(most, 0, "{most} bytes were written before the refusal");
}

fn walk(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            total += walk(&p);
        } else {
            total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}
