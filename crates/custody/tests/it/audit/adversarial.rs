//! Issue 14, an adversarial review of the audit: an index pointer that files a record
//! under a commit its signed statement is not for, files added to an exported bundle,
//! and a bundle whose maker chose the checks it is held to. Each attack is tried on a
//! real store and a real bundle, and must be a finding that names the record or file
//! (exit 1); its honest twin passes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{COMMIT, KEY, bundle_files, copy_dir, files_under, findings, has, repack};
use crate::{Env, fixtures};

/// Another commit, with a pipeline of its own.
const OTHER: &str = "b0bab0bab0bab0bab0bab0bab0bab0bab0bab0ba";

impl Env {
    /// A record at `commit` in pipeline `pipeline` of `acme/app`, naming `service` when
    /// given, each stage its own job; signed with `signer.key`.
    fn attest_for(
        &self,
        commit: &str,
        pipeline: &str,
        service: Option<&str>,
        file: &str,
        stage: &str,
    ) -> String {
        let f = fixtures().join(file);
        let image = crate::image();
        let mut args = vec![
            "attest",
            f.to_str().unwrap(),
            "--subject",
            &image,
            "--key",
            "signer.key",
            "--store",
            "store",
            "--stage",
            stage,
            "--commit",
            commit,
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

    /// `custody verify` of `commit` with extra flags: exit code, JSON, everything printed.
    fn verify_commit(&self, commit: &str, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec![
            "verify", "--store", "store", "--commit", commit, "--key", KEY, "--format", "json",
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap(), v, format!("{stdout}\n{stderr}"))
    }

    /// `custody verify-bundle` with extra flags: exit code, JSON, everything printed.
    fn verify_bundle(&self, bundle: &Path, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec![
            "verify-bundle",
            bundle.to_str().unwrap(),
            "--key",
            KEY,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (out.status.code().unwrap(), v, format!("{stdout}\n{stderr}"))
    }
}

/// The pointer file naming `record` in the index directory `dir` (below `store/index`).
fn pointer(e: &Env, dir: &Path, record: &str) -> PathBuf {
    let hex = record.trim_start_matches("sha256:");
    files_under(&e.path("store/index").join(dir))
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().ends_with(hex))
        .unwrap_or_else(|| panic!("no pointer for {record} in {dir:?}"))
}

/// Copies a pointer file into another index directory, as an attacker with write access
/// to the store's index (not to its signing key) would.
fn forge_pointer(from: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    std::fs::copy(from, into.join(from.file_name().unwrap())).unwrap();
}

/// Commit A (`COMMIT`, pipeline 7) has every stage; commit B (`OTHER`, pipeline 8) has
/// no scan. Both name service `api`. Returns A's scan and B's build.
fn two_commits(e: &Env) -> (String, String) {
    e.attest_for(COMMIT, "7", Some("api"), crate::SBOM, "build");
    e.attest_for(
        COMMIT,
        "7",
        Some("api"),
        "tests-junit/cargo-nextest-basic.xml",
        "test",
    );
    let scan_a = e.attest_for(COMMIT, "7", Some("api"), crate::SCAN, "scan");
    let build_b = e.attest_for(OTHER, "8", Some("api"), crate::SBOM, "build");
    e.attest_for(
        OTHER,
        "8",
        Some("api"),
        "tests-junit/cargo-nextest-basic.xml",
        "test",
    );
    (scan_a, build_b)
}

fn matched(v: &Value) -> Vec<String> {
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["matched"] == true)
        .map(|r| r["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Attack 1: commit A's scan pointer copied into commit B's index directory made A's
/// record part of B's answer, and its `scan` satisfied B's required stages.
#[test]
fn a_pointer_filed_under_another_commit_is_named_and_left_out() {
    let e = Env::new();
    let (scan_a, _) = two_commits(&e);
    let hex = scan_a.trim_start_matches("sha256:");
    // honest twin: B lacks its scan, per service and per pipeline
    let (code, v, out) = e.verify_commit(OTHER, &["--service", "api"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        has(&v, "stages", "service api", "no verified `scan` record"),
        "{out}"
    );
    let (code, _, out) = e.verify_commit(OTHER, &["--require-stages", "build,test"]);
    assert_eq!(code, 0, "{out}");

    let from = pointer(&e, Path::new("commit").join(COMMIT).as_path(), &scan_a);
    forge_pointer(&from, &e.path("store/index/commit").join(OTHER));

    let message = format!(
        "index pointer for commit {OTHER} names record {scan_a} whose signed statement is for commit {COMMIT}"
    );
    let (code, v, out) = e.verify_commit(OTHER, &["--require-stages", "build,test"]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&v, "index", hex, &message), "{out}");
    assert!(!matched(&v).contains(&scan_a), "{out}");
    // `custody query` checks each pointer against the signed statement too
    let q = e.run(&[
        "query", "--store", "store", "--commit", OTHER, "--format", "json",
    ]);
    assert_eq!(q.status.code(), Some(1));
    let rows: Value = serde_json::from_slice(&q.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["record"] != scan_a.as_str()),
        "{rows}"
    );
    assert!(
        String::from_utf8_lossy(&q.stderr).contains(&format!(
            "record {scan_a} is pointed to by the store's index, but its signed statement does not answer the query"
        )),
        "{}",
        String::from_utf8_lossy(&q.stderr)
    );
    assert_eq!(v["totals"]["matched"], 2, "{out}");
    // it does not help B meet its required stages
    let (code, v, out) = e.verify_commit(OTHER, &["--service", "api"]);
    assert_eq!(code, 1, "{out}");
    assert!(has(&v, "index", hex, &message), "{out}");
    assert!(
        has(&v, "stages", "service api", "no verified `scan` record"),
        "{out}"
    );
    // the table names it too
    let table = e.run(&[
        "verify",
        "--store",
        "store",
        "--commit",
        OTHER,
        "--key",
        KEY,
        "--require-stages",
        "build,test",
    ]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1), "{text}");
    assert!(text.contains(&message), "{text}");
    // A's own audit is untouched by the stray pointer
    let (code, _, out) = e.verify_commit(COMMIT, &["--service", "api"]);
    assert_eq!(code, 0, "{out}");
    // an answer made only of misfiled records is a failed audit, not an empty answer
    let nobody = "dddddddddddddddddddddddddddddddddddddddd";
    forge_pointer(&from, &e.path("store/index/commit").join(nobody));
    let (code, v, out) = e.verify_commit(nobody, &["--require-stages", "none"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        has(
            &v,
            "index",
            hex,
            &format!("index pointer for commit {nobody} names record {scan_a}")
        ),
        "{out}"
    );
    assert_eq!(v["totals"]["records"], 0, "{out}");
}

/// Attack 1, through the pipeline index: the audit reads each matched record's whole
/// pipeline, so A's scan pointer copied into B's pipeline directory brought A's scan
/// into B's audit, where it counted for service `api`.
#[test]
fn a_pointer_filed_under_another_pipeline_is_named_and_left_out() {
    let e = Env::new();
    let (scan_a, build_b) = two_commits(&e);
    let hex = scan_a.trim_start_matches("sha256:");
    // the directories' encoding is the store's business: find them by a record in each
    let a_pointer = pointer(&e, Path::new("pipeline"), &scan_a);
    let b_dir = pointer(&e, Path::new("pipeline"), &build_b)
        .parent()
        .unwrap()
        .to_path_buf();
    assert_ne!(a_pointer.parent().unwrap(), b_dir);
    forge_pointer(&a_pointer, &b_dir);

    let (code, v, out) = e.verify_commit(OTHER, &["--service", "api"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        has(
            &v,
            "index",
            hex,
            &format!(
                "index pointer for pipeline local:acme/app:8 names record {scan_a} whose signed statement is for pipeline local:acme/app:7"
            )
        ),
        "{out}"
    );
    assert!(
        has(&v, "stages", "service api", "no verified `scan` record"),
        "{out}"
    );
    assert!(
        v["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["digest"] != scan_a.as_str()),
        "{out}"
    );
}

/// Attack 2: files added to a bundle after export were ignored. Each is named.
#[test]
fn every_file_added_to_a_bundle_is_named() {
    let e = Env::new();
    e.pipeline();
    // a record of another commit, in its own store, to smuggle into the bundle
    let other = Env::new();
    std::fs::copy(e.path("signer.key"), other.path("signer.key")).unwrap();
    std::fs::copy(e.path(KEY), other.path(KEY)).unwrap();
    let smuggled = other.attest_for(OTHER, "8", None, crate::SCAN, "scan");
    let smuggled_hex = smuggled.trim_start_matches("sha256:").to_owned();
    let other_store = other.path("store");

    e.ok(&[
        "export", "--store", "store", "--commit", COMMIT, "--key", KEY, "--out", "a.tar.gz",
    ]);
    let (code, _, out) = e.verify_bundle(&e.path("a.tar.gz"), &[]);
    assert_eq!(code, 0, "the untouched bundle: {out}");
    let dir = bundle_files(&e, "a.tar.gz");
    let root = dir.join("custody-bundle");
    let envelope = files_under(&root.join("envelopes"))[0].clone();
    let scan_material = files_under(&root.join("store/objects"))
        .into_iter()
        .find(|p| std::fs::read(p).unwrap() == std::fs::read(fixtures().join(crate::SCAN)).unwrap())
        .unwrap();

    // (what is added, relative to custody-bundle/; where its bytes come from)
    let other_files: Vec<(String, PathBuf)> = files_under(&other_store)
        .into_iter()
        .filter(|p| {
            let rel = p.strip_prefix(&other_store).unwrap().to_string_lossy();
            rel.replace('/', "").contains(&smuggled_hex) || rel.starts_with("chains/")
        })
        .map(|p| {
            let rel = p.strip_prefix(&other_store).unwrap();
            (format!("store/{}", rel.display()), p)
        })
        .collect();
    // its envelope, its lock, its chain entry and its pointers
    assert!(other_files.len() > 5, "{other_files:?}");
    let bundle_pointer = files_under(&root.join("store/index/commit"))[0].clone();
    let mut cases: Vec<(String, PathBuf)> = vec![
        ("keys/extra.pub".into(), other.path(KEY)),
        (
            format!("envelopes/{smuggled_hex}.json"),
            other.object(&smuggled),
        ),
        ("envelopes/copy.json".into(), envelope.clone()),
        ("index.html".into(), root.join("report.html")),
        ("keys/notes/page.html".into(), root.join("report.html")),
        ("store/page.html".into(), root.join("report.html")),
        (
            "store/objects/sha256/00/extra".into(),
            scan_material.clone(),
        ),
        (
            format!(
                "store/index/commit/{OTHER}/{}",
                bundle_pointer.file_name().unwrap().to_string_lossy()
            ),
            bundle_pointer,
        ),
        ("store/chains/someone%3Aelse/000000000000".into(), envelope),
        ("store/tmp/.partial-1".into(), scan_material),
    ];
    cases.extend(other_files.iter().cloned());
    for (n, (name, bytes_from)) in cases.iter().enumerate() {
        let copy = e.path(&format!("added{n}"));
        copy_dir(&dir, &copy);
        let dest = copy.join("custody-bundle").join(name);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(bytes_from, &dest).unwrap();
        let bundle = e.path(&format!("added{n}.tar.gz"));
        repack(&copy, &bundle);
        let (code, v, out) = e.verify_bundle(&bundle, &[]);
        assert_eq!(code, 1, "{name} was added unnoticed: {out}");
        let consistency = v["consistency"].as_array().unwrap();
        assert!(
            consistency
                .iter()
                .any(|f| f["about"] == format!("bundle file {name}")
                    && f["message"]
                        .as_str()
                        .unwrap()
                        .contains("not accounted for by BUNDLE.json or the evidence")),
            "{name}: {out}"
        );
    }
    // the smuggled record, all its files at once: each is named
    let copy = e.path("smuggled");
    copy_dir(&dir, &copy);
    for (name, from) in &other_files {
        let dest = copy.join("custody-bundle").join(name);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, &dest).unwrap();
    }
    let bundle = e.path("smuggled.tar.gz");
    repack(&copy, &bundle);
    let (code, v, out) = e.verify_bundle(&bundle, &[]);
    assert_eq!(code, 1, "{out}");
    for (name, _) in &other_files {
        assert!(
            findings_of(&v["consistency"])
                .iter()
                .any(|(about, _)| about == &format!("bundle file {name}")),
            "{name}: {out}"
        );
    }
    // the smuggled record filed under the bundle's pipeline: the audit reads it as part
    // of the pipeline, finds its statement is for another, and leaves it out
    let copy = e.path("filed");
    copy_dir(&dir, &copy);
    let pipeline_7 = files_under(&root.join("store/index/pipeline"))[0]
        .parent()
        .unwrap()
        .strip_prefix(&dir)
        .unwrap()
        .to_path_buf();
    let smuggled_pointer = other_files
        .iter()
        .find(|(n, _)| n.starts_with("store/index/pipeline/"))
        .unwrap()
        .1
        .clone();
    let object = other_files
        .iter()
        .find(|(n, _)| n.starts_with("store/objects/"))
        .unwrap()
        .clone();
    let pointer_name = pipeline_7
        .join(smuggled_pointer.file_name().unwrap())
        .strip_prefix("custody-bundle")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for (name, from) in [(pointer_name.clone(), smuggled_pointer), object.clone()] {
        let dest = copy.join("custody-bundle").join(&name);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, &dest).unwrap();
    }
    let bundle = e.path("filed.tar.gz");
    repack(&copy, &bundle);
    let (code, v, out) = e.verify_bundle(&bundle, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        has(
            &v["verification"],
            "index",
            &smuggled_hex,
            "index pointer for pipeline local:acme/app:7 names record"
        ),
        "{out}"
    );
    for name in [&pointer_name, &object.0] {
        assert!(
            findings_of(&v["consistency"])
                .iter()
                .any(|(about, m)| about == &format!("bundle file {name}")
                    && m.contains("not accounted for")),
            "{name}: {out}"
        );
    }

    // and the table says it in words
    let table = e.run(&["verify-bundle", bundle.to_str().unwrap(), "--key", KEY]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert_eq!(table.status.code(), Some(1), "{text}");
    assert!(
        text.contains("not accounted for by BUNDLE.json or the evidence"),
        "{text}"
    );
}

fn findings_of(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["about"].as_str().unwrap().to_owned(),
                f["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Attack 3: `export --require-stages none` made a bundle `verify-bundle` accepted
/// although `custody verify` of the commit fails. The auditor's flags decide.
#[test]
fn the_auditor_chooses_the_checks_a_bundle_is_held_to() {
    let e = Env::new();
    e.pipeline();
    let release = ["--require-stages", "build,test,scan,deploy"];
    // the store's own verdict: no deploy record
    let (code, v, out) = e.verify_commit(COMMIT, &release);
    assert_eq!(code, 1, "{out}");
    assert!(
        has(&v, "stages", "pipeline", "no verified `deploy` record"),
        "{out}"
    );

    e.ok(&[
        "export",
        "--store",
        "store",
        "--commit",
        COMMIT,
        "--key",
        KEY,
        "--require-stages",
        "none",
        "--min-retention-years",
        "0",
        "--out",
        "lenient.tar.gz",
    ]);
    let bundle = e.path("lenient.tar.gz");
    // without flags, the bundle's own checks apply, and say whose they are
    let (code, v, out) = e.verify_bundle(&bundle, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        v["checks"]["requiredStages"],
        serde_json::json!([]),
        "{out}"
    );
    assert_eq!(v["checks"]["requiredStagesFrom"], "bundle", "{out}");
    assert_eq!(v["checks"]["minRetentionYears"], 0, "{out}");
    assert_eq!(v["checks"]["minRetentionYearsFrom"], "bundle", "{out}");

    // the auditor's stages replace the bundle's
    let (code, v, out) = e.verify_bundle(&bundle, &release);
    assert_eq!(code, 1, "{out}");
    assert!(
        findings(&v["verification"])
            .iter()
            .any(|(c, a, m)| c == "stages"
                && a == "pipeline local:acme/app:7"
                && m.contains("no verified `deploy` record")),
        "{out}"
    );
    assert_eq!(
        v["checks"]["requiredStages"],
        serde_json::json!(["build", "test", "scan", "deploy"]),
        "{out}"
    );
    assert_eq!(v["checks"]["requiredStagesFrom"], "auditor", "{out}");
    assert_eq!(v["checks"]["minRetentionYearsFrom"], "bundle", "{out}");
    assert_eq!(
        v["verification"]["requiredStages"],
        serde_json::json!(["build", "test", "scan", "deploy"])
    );
    // the derived files were compared with the bundle's own values: still consistent
    assert_eq!(v["consistency"], serde_json::json!([]), "{out}");
    // the same with the bundle's keys
    let out = e.run(&[
        "verify-bundle",
        bundle.to_str().unwrap(),
        "--bundle-keys",
        "--require-stages",
        "build,test,scan,deploy",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("no verified `deploy` record"), "{text}");
    assert!(
        text.contains("required stages build, test, scan, deploy (auditor)"),
        "{text}"
    );
    assert!(
        text.contains("minimum retention 0 years (bundle)"),
        "{text}"
    );

    // the auditor's retention minimum replaces the bundle's 0
    let (code, v, out) = e.verify_bundle(&bundle, &["--min-retention-years", "10"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        findings(&v["verification"])
            .iter()
            .any(|(c, _, m)| c == "retention" && m.contains("shorter than the 10 years required")),
        "{out}"
    );
    assert_eq!(v["checks"]["minRetentionYears"], 10, "{out}");
    assert_eq!(v["checks"]["minRetentionYearsFrom"], "auditor", "{out}");
    // `none` is the auditor's to say too, and the store's stages pass as they are
    let (code, _, out) = e.verify_bundle(
        &bundle,
        &[
            "--require-stages",
            "build,test,scan",
            "--min-retention-years",
            "6",
        ],
    );
    assert_eq!(code, 0, "{out}");
    // out of range is a usage error, as for verify
    for years in ["101", "-1", "x"] {
        let flag = format!("--min-retention-years={years}");
        let err = e.fails(
            2,
            &[
                "verify-bundle",
                bundle.to_str().unwrap(),
                "--key",
                KEY,
                &flag,
            ],
        );
        assert!(err.contains("min-retention-years"), "{years}: {err}");
    }
}
