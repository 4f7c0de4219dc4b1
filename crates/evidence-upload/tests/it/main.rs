//! `evidence-upload` end to end through the real binary: every stage with real
//! fixtures, the records and materials it stores, CI outputs, and bad input that
//! must leave nothing behind.

// Test helpers outside #[test] functions are not covered by clippy.toml's test
// exemptions; a failing unwrap here is a failing test, which is what we want.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn image() -> String {
    format!("ghcr.io/acme/app@sha256:{}", "a".repeat(64))
}

struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    /// A workspace holding a copy of the fixtures and a signing key.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        copy_dir(&fixtures(), &ws.join("fixtures"));
        let out = Command::new(custody())
            .args(["keygen", "--out"])
            .arg(dir.path().join("ci.key"))
            .output()
            .unwrap();
        assert!(out.status.success());
        Self { dir }
    }
    fn ws(&self) -> PathBuf {
        self.dir.path().join("ws")
    }
    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
    fn cmd(&self, stage: &str, files: &[&str]) -> Command {
        self.cmd_to(stage, files, self.store().as_os_str())
    }
    fn cmd_to(&self, stage: &str, files: &[&str], store: &std::ffi::OsStr) -> Command {
        self.command(stage, &image(), files, store)
    }
    /// A run about another subject.
    fn cmd_about(&self, stage: &str, subject: &str, files: &[&str]) -> Command {
        self.command(stage, subject, files, self.store().as_os_str())
    }
    fn command(
        &self,
        stage: &str,
        subject: &str,
        files: &[&str],
        store: &std::ffi::OsStr,
    ) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_evidence-upload"));
        c.current_dir(self.ws())
            .args(["--stage", stage, "--subject", subject, "--key"])
            .arg(self.dir.path().join("ci.key"))
            .arg("--store")
            .arg(store)
            .arg("--spool")
            .arg(self.dir.path().join("spool"))
            .args([
                "--commit",
                "0123456789abcdef0123456789abcdef01234567",
                "--pipeline",
                "42",
                "--job",
                "release",
            ])
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("CUSTODY_STORE")
            .env_remove("CUSTODY_SIGNING_KEY_PEM")
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY");
        for f in files {
            c.args(["--file", f]);
        }
        c
    }
    fn json(&self, stage: &str, files: &[&str], extra: &[&str]) -> Value {
        let out = self
            .cmd(stage, files)
            .args(extra)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{stage} {files:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
    fn object(&self, digest: &str) -> Vec<u8> {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::read(
            self.store()
                .join("objects/sha256")
                .join(&hex[..2])
                .join(&hex[2..]),
        )
        .unwrap()
    }
    /// The statement inside a stored record.
    fn statement(&self, digest: &str) -> Value {
        let env: Value = serde_json::from_slice(&self.object(digest)).unwrap();
        let payload = base64_decode(env["payload"].as_str().unwrap());
        serde_json::from_slice(&payload).unwrap()
    }
    fn query(&self, args: &[&str]) -> Output {
        Command::new(custody())
            .arg("query")
            .arg("--store")
            .arg(self.store())
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap()
    }
}

fn custody() -> PathBuf {
    // the workspace's custody binary, built beside this one by `cargo test --workspace`
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_evidence-upload"));
    exe.with_file_name("custody")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let out = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    out.stdin.as_ref().unwrap().write_all(s.as_bytes()).unwrap();
    out.wait_with_output().unwrap().stdout
}

#[test]
fn every_fixture_of_every_stage_becomes_a_record_with_its_raw_bytes() {
    let job = Job::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "build",
            "sbom-cyclonedx/bom-examples-laravel-7.12.0-1.4.cdx.json",
            "https://cyclonedx.org/bom",
        ),
        (
            "build",
            "sbom-cyclonedx/syft-1.5.0-alpine.cdx.json",
            "https://cyclonedx.org/bom",
        ),
        (
            "build",
            "sbom-cyclonedx/trivy-centos-7.cdx.json",
            "https://cyclonedx.org/bom",
        ),
        (
            "build",
            "sbom-cyclonedx/trivy-npm-1.7.cdx.json",
            "https://cyclonedx.org/bom",
        ),
        (
            "build",
            "sbom-cyclonedx/bom-examples-cern-lhc-vdm-editor-1.2.cdx.json",
            "https://cyclonedx.org/bom",
        ),
        (
            "build",
            "sbom-spdx/spdx-examples-example8-examplemaven-2.3.spdx.json",
            "https://spdx.dev/Document",
        ),
        (
            "build",
            "sbom-spdx/syft-1.5.0-alpine-2.3.spdx.json",
            "https://spdx.dev/Document",
        ),
        (
            "build",
            "sbom-spdx/trivy-centos-7-2.2.spdx.json",
            "https://spdx.dev/Document",
        ),
        (
            "test",
            "tests-junit/cargo-nextest-basic.xml",
            "https://in-toto.io/attestation/test-result/v0.1",
        ),
        (
            "test",
            "tests-junit/go-junit-report-001.xml",
            "https://in-toto.io/attestation/test-result/v0.1",
        ),
        (
            "test",
            "tests-junit/jest-junit.xml",
            "https://in-toto.io/attestation/test-result/v0.1",
        ),
        (
            "test",
            "tests-junit/maven-surefire-StringUtilsTest.xml",
            "https://in-toto.io/attestation/test-result/v0.1",
        ),
        (
            "test",
            "tests-junit/pytest-fail-skip.xml",
            "https://in-toto.io/attestation/test-result/v0.1",
        ),
        (
            "test",
            "coverage-cobertura/coveragepy-4.0.3.cobertura.xml",
            "https://custody.dev/coverage/v1",
        ),
        (
            "test",
            "coverage-cobertura/gcovr-5.0.cobertura.xml",
            "https://custody.dev/coverage/v1",
        ),
        (
            "test",
            "coverage-cobertura/istanbul.cobertura.xml",
            "https://custody.dev/coverage/v1",
        ),
        (
            "test",
            "coverage-lcov/gcovr-gcc14-nested.lcov",
            "https://custody.dev/coverage/v1",
        ),
        (
            "test",
            "coverage-lcov/grcov-fn-with-commas.info",
            "https://custody.dev/coverage/v1",
        ),
        (
            "test",
            "coverage-lcov/istanbul-js.lcov",
            "https://custody.dev/coverage/v1",
        ),
        (
            "scan",
            "scan-trivy/trivy-alpine-310.json",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
        (
            "scan",
            "scan-trivy/trivy-debian-buster.json",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
        (
            "scan",
            "scan-trivy/trivy-dockerfile-misconfig.json",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
        (
            "scan",
            "scan-grype/grype-image.json",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
        (
            "scan",
            "scan-grype/grype-directory.json",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
        (
            "scan",
            "scan-grype/grype-empty.json",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
        (
            "scan",
            "scan-sarif/codeql-2.5.4.sarif",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
        (
            "scan",
            "scan-sarif/grype-image.sarif.json",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
        (
            "scan",
            "scan-sarif/trivy-alpine-310.sarif.json",
            "https://in-toto.io/attestation/vulns/v0.2",
        ),
    ];
    let mut previous: Option<String> = None;
    for (stage, file, ptype) in cases {
        let path = format!("fixtures/{file}");
        let out = job.json(stage, &[&path], &[]);
        let rec = &out["records"][0];
        assert_eq!(rec["predicateType"], *ptype, "{file}");
        let digest = rec["record"].as_str().unwrap();
        let st = job.statement(digest);
        assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(st["predicateType"], *ptype);
        assert_eq!(st["subject"][0]["digest"]["sha256"], "a".repeat(64));
        let record = &st["custodyRecord"];
        assert_eq!(record["stage"], *stage);
        assert_eq!(
            record["pipeline"]["commit"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert!(
            record["summary"].is_object(),
            "{file}: a normalized summary"
        );
        // the raw file is stored byte for byte under its digest
        let material = &record["materials"][0];
        let original = std::fs::read(fixtures().join(file)).unwrap();
        assert_eq!(
            job.object(material["digest"].as_str().unwrap()),
            original,
            "{file}"
        );
        assert_eq!(material["name"], path.as_str());
        // one chain per job: every record names the one before it
        assert_eq!(
            record["chain"]["previous"].as_str().map(str::to_owned),
            previous,
            "{file}"
        );
        previous = Some(digest.to_owned());
        if *stage == "build" {
            // a build also records SLSA provenance of the subject
            let prov = &out["records"][1];
            assert_eq!(prov["predicateType"], "https://slsa.dev/provenance/v1");
            previous = Some(prov["record"].as_str().unwrap().to_owned());
        }
        if *stage == "scan" {
            let controls = record["hipaa"].as_array().unwrap();
            assert!(
                controls.iter().any(|c| c == "164.308(a)(1)(ii)(A)"),
                "scans support risk analysis"
            );
        }
    }
}

#[test]
fn standard_predicates_carry_what_their_specifications_define() {
    let job = Job::new();
    // a small CycloneDX SBOM is the predicate itself, unchanged
    let out = job.json(
        "build",
        &["fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"],
        &[],
    );
    let st = job.statement(out["records"][0]["record"].as_str().unwrap());
    let original: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("sbom-cyclonedx/syft-1.5.0-alpine.cdx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(st["predicate"], original);
    // above the inline limit the SBOM is referenced by digest, never inlined
    let out = job.json(
        "build",
        &["fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"],
        &["--inline-size", "0"],
    );
    let st = job.statement(out["records"][0]["record"].as_str().unwrap());
    assert_eq!(st["predicateType"], "https://custody.dev/sbom/v1");
    assert!(st["predicate"]["sbom"]["digest"]["sha256"].is_string());
    // test-result v0.1: FAILED when any test failed
    let out = job.json("test", &["fixtures/tests-junit/pytest-fail-skip.xml"], &[]);
    let st = job.statement(out["records"][0]["record"].as_str().unwrap());
    assert_eq!(st["predicate"]["result"], "FAILED");
    assert_eq!(
        st["predicate"]["configuration"][0]["name"],
        "fixtures/tests-junit/pytest-fail-skip.xml"
    );
    // vulns v0.2: one result per finding, with the scanner
    let out = job.json("scan", &["fixtures/scan-trivy/trivy-alpine-310.json"], &[]);
    let st = job.statement(out["records"][0]["record"].as_str().unwrap());
    let results = st["predicate"]["scanner"]["result"].as_array().unwrap();
    // counted independently: the fixture lists 4 vulnerabilities (VulnerabilityID entries)
    let raw = std::fs::read_to_string(fixtures().join("scan-trivy/trivy-alpine-310.json")).unwrap();
    assert_eq!(results.len(), raw.matches("\"VulnerabilityID\"").count());
    assert_eq!(st["predicate"]["scanner"]["uri"], "trivy");
}

#[test]
fn sign_and_deploy_record_what_was_released_where() {
    let job = Job::new();
    std::fs::write(job.ws().join("app.sig"), b"MEUCIQD signature bytes").unwrap();
    let out = job.json("sign", &["app.sig"], &["--signing-key-id", "cosign.pub"]);
    let st = job.statement(out["records"][0]["record"].as_str().unwrap());
    assert_eq!(st["predicateType"], "https://custody.dev/signature/v1");
    assert_eq!(st["predicate"]["keyId"], "cosign.pub");
    assert!(
        st["custodyRecord"]["hipaa"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "164.312(d)")
    );
    let out = job.json("deploy", &[], &["--environment", "production"]);
    let st = job.statement(out["records"][0]["record"].as_str().unwrap());
    assert_eq!(st["predicate"]["environment"], "production");
    assert_eq!(st["custodyRecord"]["pipeline"]["environment"], "production");
    // deploy without an environment and sign without anything are refused
    let o = job.cmd("deploy", &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--environment"));
    let o = job.cmd("sign", &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn service_is_recorded_in_the_context_and_a_bad_name_is_refused() {
    let job = Job::new();
    let scan = "fixtures/scan-trivy/trivy-alpine-310.json";
    let out = job.json("scan", &[scan], &["--service", "api"]);
    let st = job.statement(out["records"][0]["record"].as_str().unwrap());
    assert_eq!(st["custodyRecord"]["pipeline"]["service"], "api");
    assert_eq!(st["custodyRecord"]["pipeline"]["source"], "flags");
    // custody query shows it
    let o = job.query(&["--commit", "0123456789abcdef0123456789abcdef01234567"]);
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows[0]["service"], "api", "{rows}");
    // without the flag, the context has no `service` key at all (not even null)
    let out = job.json("scan", &[scan], &[]);
    let st = job.statement(out["records"][0]["record"].as_str().unwrap());
    let pipeline = st["custodyRecord"]["pipeline"].as_object().unwrap();
    assert!(!pipeline.contains_key("service"), "{pipeline:?}");

    let objects = || {
        std::fs::read_dir(job.store().join("objects/sha256"))
            .unwrap()
            .map(|shard| std::fs::read_dir(shard.unwrap().path()).unwrap().count())
            .sum::<usize>()
    };
    let before = objects();
    let long = "a".repeat(129);
    for (bad, needle) in [
        ("", "empty"),
        (" ", "empty"),
        ("api\nweb", "control character"),
        (long.as_str(), "at most 128"),
    ] {
        let o = job
            .cmd("scan", &[scan])
            .args(["--service", bad])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {err}");
        assert!(err.contains("--service"), "names the flag: {err}");
        assert!(err.contains(needle), "{bad:?}: {err}");
    }
    assert_eq!(objects(), before, "nothing is stored for a refused name");
}

/// Issue 15, item 3: `--retention-years 20000` panicked (exit 101, a release build
/// aborting); a retention outside 1 to 100 years is a usage error and stores nothing.
#[test]
fn retention_years_out_of_range_are_usage_errors() {
    let job = Job::new();
    let scan = "fixtures/scan-trivy/trivy-alpine-310.json";
    for years in ["20000", "101", "0", "32767"] {
        let o = job
            .cmd("scan", &[scan])
            .args(["--retention-years", years])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{years}: {err}");
        assert!(err.contains("--retention-years"), "{years}: {err}");
        assert!(
            !job.store().join("objects").exists(),
            "{years}: something was stored"
        );
    }
}

/// Issue 15, item 6: a valid CycloneDX document nested 126 levels deep had its
/// material stored, then its record failed (exit 4): the statement inlining it nested
/// past the 128 levels JSON readers accept. It is referenced by digest instead, like a
/// large SBOM, and the stage stores its record.
#[test]
fn a_deeply_nested_sbom_is_referenced_not_inlined() {
    let job = Job::new();
    let mut component = serde_json::json!({"type": "library", "name": "leaf", "version": "1"});
    // each level is an object holding an array: 62 levels make 126 with the root's two
    for i in 0..62 {
        component = serde_json::json!({
            "type": "library",
            "name": format!("level-{i}"),
            "version": "1",
            "components": [component],
        });
    }
    let bom = serde_json::json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {"component": {"type": "container", "name": "app"}},
        "components": [component],
    });
    std::fs::write(
        job.ws().join("deep.cdx.json"),
        serde_json::to_vec(&bom).unwrap(),
    )
    .unwrap();
    let out = job.json("build", &["deep.cdx.json"], &[]);
    let record = out["records"][0]["record"].as_str().unwrap();
    let st = job.statement(record);
    assert_eq!(st["predicateType"], "https://custody.dev/sbom/v1", "{st}");
    let o = Command::new(custody())
        .args(["verify", "--record", record, "--store"])
        .arg(job.store())
        .arg("--key")
        .arg(job.dir.path().join("ci.key.pub"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Runs a failing upload and checks the error, its exit code, and that the store
/// received nothing.
fn refused(job: &Job, stage: &str, files: &[&str], needle: &str) {
    let o = job.cmd(stage, files).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{files:?}: {err}");
    assert!(
        err.contains(needle),
        "{files:?}: expected `{needle}` in: {err}"
    );
    assert!(
        !job.store().join("objects").exists(),
        "{files:?}: nothing is stored for a failed stage"
    );
}

#[test]
fn bad_input_is_refused_clearly_and_stores_nothing() {
    let job = Job::new();
    let ws = job.ws();
    let sbom = std::fs::read(fixtures().join("sbom-cyclonedx/trivy-centos-7.cdx.json")).unwrap();
    std::fs::write(ws.join("truncated.json"), &sbom[..sbom.len() / 2]).unwrap();
    let junit = std::fs::read(fixtures().join("tests-junit/jest-junit.xml")).unwrap();
    std::fs::write(ws.join("truncated.xml"), &junit[..junit.len() / 2]).unwrap();
    std::fs::write(ws.join("empty.json"), b"").unwrap();
    std::fs::write(ws.join("notes.txt"), b"just some text, no evidence here\n").unwrap();
    std::fs::write(job.dir.path().join("outside.json"), &sbom).unwrap();

    refused(&job, "build", &["truncated.json"], "truncated.json");
    refused(&job, "test", &["truncated.xml"], "truncated.xml");
    refused(&job, "build", &["empty.json"], "empty");
    refused(&job, "scan", &["notes.txt"], "notes.txt");
    // in the user's words, with what to do (issue 15, item 16: it said "a JunitXml
    // file is Tests evidence … takes Scan")
    refused(
        &job,
        "scan",
        &["fixtures/tests-junit/jest-junit.xml"],
        "this JUnit XML file is test results, which stage `scan` does not take: it takes a Trivy JSON, Grype JSON or SARIF 2.1.0 scan report; upload it with the stage it belongs to",
    );
    refused(&job, "build", &["../outside.json"], "outside the workspace");
    refused(
        &job,
        "build",
        &[job.dir.path().join("outside.json").to_str().unwrap()],
        "outside the workspace",
    );
    refused(&job, "build", &["missing.json"], "missing.json");
    refused(&job, "build", &[], "needs at least one evidence file");
    // one good and one bad file: the good one is not stored either
    refused(
        &job,
        "scan",
        &[
            "fixtures/scan-trivy/trivy-alpine-310.json",
            "truncated.json",
        ],
        "truncated.json",
    );
    // a 2 GiB file: refused before it is read, not held in memory
    let big = ws.join("huge.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    refused(&job, "build", &["huge.json"], "parse limit");
    let o = job.query(&[]);
    assert_eq!(o.status.code(), Some(3), "the store was never created");
}

#[test]
fn a_large_raw_material_streams_through_in_bounded_memory() {
    let job = Job::new();
    let big = job.ws().join("release.bin.sig");
    let size: u64 = 512 << 20;
    std::fs::File::create(&big).unwrap().set_len(size).unwrap();
    // GNU time reports the child's peak RSS; the machines this runs on have it
    let time = Path::new("/usr/bin/time");
    let mut c = if time.exists() {
        let mut t = Command::new(time);
        t.args(["-f", "peak-rss-kib=%M"])
            .arg(env!("CARGO_BIN_EXE_evidence-upload"));
        let base = job.cmd("sign", &["release.bin.sig"]);
        t.args(base.get_args()).current_dir(job.ws());
        t
    } else {
        job.cmd("sign", &["release.bin.sig"])
    };
    let o = c.args(["--format", "json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &out["records"][0]["material"];
    assert_eq!(m["size"], size);
    // sha256 of the file, computed independently
    let sum = Command::new("sha256sum").arg(&big).output().unwrap();
    let hex = String::from_utf8_lossy(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(m["digest"], format!("sha256:{hex}"));
    assert!(
        stderr.contains("evidence-upload: storing release.bin.sig (512 MiB)"),
        "progress for a large file: {stderr}"
    );
    assert!(
        stderr.contains("evidence-upload: stored release.bin.sig (512 MiB in"),
        "{stderr}"
    );
    if let Some(kib) = stderr.lines().find_map(|l| l.strip_prefix("peak-rss-kib=")) {
        let kib: u64 = kib.trim().parse().unwrap();
        assert!(
            kib < 64 * 1024,
            "a {size}-byte file must not be held in memory: peak RSS {kib} KiB"
        );
    }
}

#[test]
fn github_outputs_summary_annotations_and_masks() {
    let job = Job::new();
    let out_file = job.dir.path().join("gh-output");
    let summary_file = job.dir.path().join("gh-summary");
    let pem = std::fs::read_to_string(job.dir.path().join("ci.key")).unwrap();
    let o = job
        .cmd("scan", &["fixtures/scan-grype/grype-image.json"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &out_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("CUSTODY_SIGNING_KEY_PEM", &pem)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let body_line = pem.lines().nth(1).unwrap();
    assert!(
        stderr.contains(&format!("::add-mask::{body_line}")),
        "the key is masked before anything else"
    );
    assert_eq!(
        stderr.matches(body_line).count(),
        1,
        "and never printed otherwise"
    );
    assert!(!stdout.contains(body_line), "{stdout}");
    let outputs = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        outputs.lines().any(|l| l.starts_with("record=sha256:")),
        "{outputs}"
    );
    assert!(
        outputs.lines().any(|l| l.starts_with("store=file://")),
        "{outputs}"
    );
    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        summary.contains("| record | predicate | file | summary |"),
        "{summary}"
    );
    assert!(summary.contains("critical"), "{summary}");

    let o = job
        .cmd("scan", &["fixtures/tests-junit/jest-junit.xml"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    // the workflow command goes to stderr: stdout carries data only
    assert!(o.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with("::error file=fixtures/tests-junit/jest-junit.xml::"),
        "{stderr}"
    );
}

#[test]
fn gitlab_gets_a_dotenv_report() {
    let job = Job::new();
    let o = job
        .cmd("test", &["fixtures/tests-junit/cargo-nextest-basic.xml"])
        .env("GITLAB_CI", "true")
        .env("CI_PIPELINE_ID", "777")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dotenv = std::fs::read_to_string(job.ws().join("custody.env")).unwrap();
    assert!(
        dotenv
            .lines()
            .any(|l| l.starts_with("CUSTODY_RECORD=sha256:")),
        "{dotenv}"
    );
}

#[test]
fn rerunning_a_stage_is_a_no_op_for_materials_and_extends_the_chain() {
    let job = Job::new();
    let a = job.json(
        "scan",
        &["fixtures/scan-trivy/trivy-debian-buster.json"],
        &[],
    );
    let b = job.json(
        "scan",
        &["fixtures/scan-trivy/trivy-debian-buster.json"],
        &[],
    );
    assert_eq!(
        a["records"][0]["material"]["digest"],
        b["records"][0]["material"]["digest"]
    );
    assert_eq!(
        b["records"][0]["chain"]["previous"],
        a["records"][0]["record"]
    );
    let rows: Value = serde_json::from_slice(
        &job.query(&["--commit", "0123456789abcdef0123456789abcdef01234567"])
            .stdout,
    )
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
}

#[test]
fn an_unreachable_store_spools_and_custody_push_resends_exactly_once() {
    let job = Job::new();
    // a loopback port nobody listens on: connection refused, retried, then given up
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("gitlab+http://127.0.0.1:{port}/acme/app/evidence");
    let o = job
        .cmd_to(
            "scan",
            &[
                "fixtures/scan-trivy/trivy-alpine-310.json",
                "fixtures/scan-grype/grype-image.json",
            ],
            url.as_ref(),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("custody push --spool"), "{err}");
    assert!(err.contains("2 record(s)"), "{err}");
    let spool = job.dir.path().join("spool");
    assert!(spool.join("CUSTODY-STORE").exists());

    // the spooled records verify as they are, and resend to a store once
    let push = |keep: bool| {
        let mut c = Command::new(custody());
        c.args(["push", "--spool"])
            .arg(&spool)
            .arg("--store")
            .arg(job.store())
            .args(["--format", "json"]);
        if keep {
            c.arg("--keep");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    let first = push(true);
    assert_eq!(first["stored"].as_array().unwrap().len(), 2);
    let second = push(false);
    assert_eq!(
        second["stored"].as_array().unwrap().len(),
        0,
        "nothing is stored twice"
    );
    assert_eq!(second["alreadyStored"].as_array().unwrap().len(), 2);
    assert!(!spool.exists(), "a pushed spool is removed");
    let rows: Value = serde_json::from_slice(&job.query(&["--stage", "scan"]).stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["chain"]["previous"], rows[0]["record"]);
    for r in rows {
        let o = Command::new(custody())
            .args([
                "verify",
                "--record",
                r["record"].as_str().unwrap(),
                "--store",
            ])
            .arg(job.store())
            .arg("--key")
            .arg(job.dir.path().join("ci.key.pub"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Issue 15, item 1: a job whose chain already holds a record (runner-guard stores one
/// first) and whose store then becomes unreachable spooled its records at position 0;
/// `custody push` refused them as a fork, so the printed command could never succeed.
/// Spooled records now form their own chain and push exactly once, whatever the job's
/// chain holds; a second spool of the same job after a push does not collide either.
#[test]
fn a_spool_written_mid_chain_pushes_exactly_once() {
    let job = Job::new();
    let scan = "fixtures/scan-trivy/trivy-alpine-310.json";
    // the job's first record, in the store: position 0 of its chain
    let first = job.json("scan", &[scan], &[]);
    assert_eq!(first["records"][0]["chain"]["sequence"], 0, "{first}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("gitlab+http://127.0.0.1:{port}/acme/app/evidence");
    let spool = job.dir.path().join("spool");
    let push = || {
        let o = Command::new(custody())
            .args(["push", "--spool"])
            .arg(&spool)
            .arg("--store")
            .arg(job.store())
            .args(["--format", "json"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "custody push: {err}");
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    for round in 0..2 {
        let o = job
            .cmd_to(
                "scan",
                &["fixtures/scan-grype/grype-image.json"],
                down.as_ref(),
            )
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        let pushed = push();
        assert_eq!(
            pushed["stored"].as_array().unwrap().len(),
            1,
            "round {round}: {pushed}"
        );
    }
    let rows: Value = serde_json::from_slice(&job.query(&["--stage", "scan"]).stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(
        rows.len(),
        3,
        "the first record and two spooled ones, once each: {rows:?}"
    );
    let chains: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["chain"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        chains.len(),
        3,
        "each spool on a chain of its own: {chains:?}"
    );
    for r in rows {
        let o = Command::new(custody())
            .args([
                "verify",
                "--record",
                r["record"].as_str().unwrap(),
                "--store",
            ])
            .arg(job.store())
            .arg("--key")
            .arg(job.dir.path().join("ci.key.pub"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// A moto S3 server on a free loopback port, killed on drop.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let (Ok(bin), Ok(py)) = (
        std::env::var("CUSTODY_MOTO"),
        std::env::var("CUSTODY_PYTHON"),
    ) else {
        eprintln!(
            "CUSTODY_MOTO/CUSTODY_PYTHON not set: the S3 end-to-end test was not run (cargo xtask test sets them)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let m = Moto { child, port };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // a bucket with Object Lock, made by boto3 (moto's own dependency), not by our code
    let script = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\ns3.create_bucket(Bucket='evidence', ObjectLockEnabledForBucket=True)\ns3.create_bucket(Bucket='plain')\n"
    );
    let o = Command::new(py)
        .args(["-c", &script])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(m)
}

fn s3_env(c: &mut Command, port: u16) {
    c.env("CUSTODY_S3_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("CUSTODY_S3_PATH_STYLE", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

#[test]
fn s3_object_lock_store_end_to_end_and_a_killed_server_spools() {
    let Some(server) = moto() else { return };
    let job = Job::new();
    let mut c = job.cmd_to(
        "scan",
        &["fixtures/scan-trivy/trivy-alpine-310.json"],
        "s3://evidence/ci".as_ref(),
    );
    s3_env(&mut c, server.port);
    let o = c.args(["--format", "json"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = out["records"][0]["record"].as_str().unwrap().to_owned();
    assert_eq!(out["store"], "s3://evidence/ci");

    // the record is found and verified through the S3 store
    let mut v = Command::new(custody());
    v.args([
        "verify",
        "--record",
        &rec,
        "--store",
        "s3://evidence/ci",
        "--key",
    ])
    .arg(job.dir.path().join("ci.key.pub"));
    s3_env(&mut v, server.port);
    let o = v.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // the auditor's view: the lock read back from S3 (mode and retain-until), per object
    let mut v = Command::new(custody());
    v.args([
        "verify",
        "--store",
        "s3://evidence/ci",
        "--commit",
        "0123456789abcdef0123456789abcdef01234567",
        "--require-stages",
        "scan",
        "--format",
        "json",
        "--key",
    ])
    .arg(job.dir.path().join("ci.key.pub"));
    s3_env(&mut v, server.port);
    let o = v.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let audit: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &audit["records"][0];
    assert_eq!(r["retention"]["mode"], "COMPLIANCE", "{r}");
    let until: jiff::Timestamp = r["retention"]["retainUntil"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let recorded: jiff::Timestamp = r["recordedAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        (until.as_second() - recorded.as_second()) / (365 * 86_400),
        6
    );
    assert_eq!(r["materials"][0]["retention"]["mode"], "COMPLIANCE");

    // a store that was allowed to write without a lock: every object is a finding
    let mut c = job.cmd_to(
        "scan",
        &["fixtures/scan-trivy/trivy-alpine-310.json"],
        "s3://plain/unlocked".as_ref(),
    );
    s3_env(&mut c, server.port);
    let o = c.env("CUSTODY_S3_ALLOW_UNLOCKED", "true").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = Command::new(custody());
    r.args([
        "retention",
        "--store",
        "s3://plain/unlocked",
        "--commit",
        "0123456789abcdef0123456789abcdef01234567",
    ]);
    s3_env(&mut r, server.port);
    let o = r.env("CUSTODY_S3_ALLOW_UNLOCKED", "true").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("NO LOCK"), "{text}");
    assert!(text.contains("no retention lock"), "{text}");

    // a bucket without Object Lock is refused, and nothing is spooled for a refusal
    let mut c = job.cmd_to(
        "scan",
        &["fixtures/scan-trivy/trivy-alpine-310.json"],
        "s3://plain/ci".as_ref(),
    );
    s3_env(&mut c, server.port);
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(err.contains("Object Lock"), "{err}");
    assert!(!job.dir.path().join("spool").exists());

    // the server dies: the evidence is kept in the spool and the step says how to resend
    let port = server.port;
    drop(server);
    let mut c = job.cmd_to(
        "scan",
        &["fixtures/scan-grype/grype-image.json"],
        "s3://evidence/ci".as_ref(),
    );
    s3_env(&mut c, port);
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("custody push"), "{err}");
    assert!(job.dir.path().join("spool/CUSTODY-STORE").exists());
}

/// Issue 15, item 7: text from evidence (here a file name, which a repository chooses)
/// never reaches the runner as a workflow command: the injected line is neutralized,
/// and Custody's own annotation carries it escaped.
#[test]
fn evidence_cannot_write_workflow_commands() {
    let job = Job::new();
    let name = "evil\n::error title=X::pwned ##[error]x.json";
    std::fs::write(job.ws().join(name), b"{\"bomFormat\": \"CycloneDX\", ").unwrap();
    let o = job.cmd("build", &[name]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(":\u{200B}:error title=X::pwned"), "{err}");
    assert_inert(&err, 0);
    assert_inert(&String::from_utf8_lossy(&o.stdout), 0);
    // on GitHub: one annotation, Custody's, with the name escaped inside it
    let o = job
        .cmd("build", &[name])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_inert(&err, 1);
    let annotation = err.lines().find(|l| l.starts_with("::")).unwrap();
    assert!(annotation.starts_with("::error"), "{annotation}");
    assert!(annotation.contains("%0A::error title=X"), "{annotation}");
}

/// No line is a workflow command but Custody's own `allowed` ones, and nothing holds
/// the legacy `##[` form.
fn assert_inert(text: &str, allowed: usize) {
    let commands = text
        .lines()
        .filter(|l| l.trim_start().starts_with("::"))
        .count();
    assert_eq!(
        commands, allowed,
        "workflow commands in the output:\n{text}"
    );
    assert!(!text.contains("##["), "{text}");
}

/// Issue 15, item 4: another process swaps a workspace directory for a symlink to one
/// outside, over and over, while the step reads a file below it. The file is opened
/// once, beneath the workspace, and everything is read from that descriptor: the
/// outside file is never stored, whatever the timing (it was 1 in 300 before).
#[test]
fn a_directory_swapped_for_a_symlink_never_brings_in_an_outside_file() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let job = Job::new();
    let ws = job.ws();
    let inside = std::fs::read(fixtures().join("sbom-cyclonedx/trivy-centos-7.cdx.json")).unwrap();
    let outside_dir = job.dir.path().join("outside/d");
    std::fs::create_dir_all(&outside_dir).unwrap();
    let mut outside = inside.clone();
    // the same SBOM, one byte different: a file the step must never store
    let at = outside.iter().position(|b| *b == b'{').unwrap();
    outside.insert(at + 1, b' ');
    std::fs::write(outside_dir.join("bom.json"), &outside).unwrap();
    std::fs::create_dir_all(ws.join("real")).unwrap();
    std::fs::write(ws.join("real/bom.json"), &inside).unwrap();
    std::os::unix::fs::symlink(&outside_dir, ws.join("link")).unwrap();
    std::os::unix::fs::symlink("real", ws.join("d")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (ws, stop) = (ws.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut flip = false;
            while !stop.load(Ordering::Relaxed) {
                // `d` is the inside directory (through a relative link) or the outside
                // one, swapped atomically by rename
                let tmp = ws.join("d.next");
                let _ = std::fs::remove_file(&tmp);
                let target = if flip { "real" } else { "link" };
                std::os::unix::fs::symlink(target, &tmp).unwrap();
                std::fs::rename(&tmp, ws.join("d")).unwrap();
                flip = !flip;
            }
        })
    };
    let outside_digest = format!("sha256:{}", custody_evidence::Digest::of(&outside).hex());
    let mut stored = 0;
    for _ in 0..150 {
        let out = job.cmd("build", &["d/bom.json"]).output().unwrap();
        if out.status.success() {
            stored += 1;
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("outside the workspace") || err.contains("No such file"),
                "{err}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(stored > 0, "some runs read the inside file");
    let rows = job.query(&[]);
    let text = String::from_utf8_lossy(&rows.stdout);
    let hex = outside_digest.trim_start_matches("sha256:");
    assert!(
        !job.store()
            .join("objects/sha256")
            .join(&hex[..2])
            .join(&hex[2..])
            .exists(),
        "the outside file was stored"
    );
    assert!(!text.contains(&outside_digest), "{text}");
}

/// Issue 15, fault injection through the real step: S3 (moto) behind a loopback fault
/// proxy. The chain-entry write reaches the server but every answer is lost, so the
/// step cannot know it landed: it spools (exit 3), keeping the very envelope it sent.
/// Meanwhile a later step of the job writes directly. `custody push` then writes the
/// kept envelope again (already stored: a no-op), and the scan is stored once. The
/// twin: the write never reaches the server (reset mid-upload), the later step takes
/// its chain position, and the push stores the spooled stand-in instead: again once.
#[test]
fn a_lost_answer_spools_the_sent_record_and_the_push_stores_it_once() {
    use custody_test_support::{Fault, FaultProxy, Matcher, Rule};

    let Some(server) = moto() else { return };
    let upstream = format!("http://127.0.0.1:{}", server.port);
    for (case, fault) in [
        ("answer lost", Fault::AcceptThenDrop),
        ("never arrived", Fault::ResetMidUpload),
    ] {
        let job = Job::new();
        let store = format!("s3://evidence/{}", case.replace(' ', "-"));
        let proxy = FaultProxy::start(&upstream, Vec::new()).unwrap();
        proxy.set_rules(vec![
            Rule::new(Matcher::method("PUT").and_path("/chains/"), fault).times(usize::MAX),
        ]);
        let mut c = job.cmd_to(
            "scan",
            &["fixtures/scan-trivy/trivy-alpine-310.json"],
            store.as_ref(),
        );
        s3_env(&mut c, proxy.port());
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{case}: {err}");
        assert!(proxy.fired()[0] >= 4, "{case}: every attempt was broken");
        proxy.set_rules(Vec::new());

        // a later step of the same job, the store healthy again
        let mut c = job.cmd_to(
            "sbom",
            &["fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"],
            store.as_ref(),
        );
        s3_env(&mut c, server.port);
        let o = c.output().unwrap();
        assert!(
            o.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&o.stderr)
        );

        let mut p = Command::new(custody());
        p.args(["push", "--spool"])
            .arg(job.dir.path().join("spool"))
            .args(["--store", &store]);
        s3_env(&mut p, server.port);
        let o = p.output().unwrap();
        assert!(
            o.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&o.stderr)
        );

        // one scan record, one sbom record, both verified, in one chain or two
        let mut q = Command::new(custody());
        q.args([
            "query",
            "--store",
            &store,
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "--format",
            "json",
        ]);
        s3_env(&mut q, server.port);
        let o = q.output().unwrap();
        assert!(
            o.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
        let stages: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["stage"].as_str().unwrap())
            .collect();
        let scans = stages.iter().filter(|s| **s == "scan").count();
        assert_eq!(scans, 1, "{case}: the scan is stored once: {rows}");
        assert_eq!(stages.len(), 2, "{case}: {rows}");
    }
}

/// A material that changes between the step's reading (its digest is in the statement)
/// and its storing is refused: exit 2 naming the file, and nothing is stored. Run
/// through the library, whose store opener runs after the inputs are read: the opener
/// rewrites the file in place first, as a racing process would.
#[test]
fn a_material_changed_while_it_is_stored_is_refused_and_nothing_is_stored() {
    let job = Job::new();
    let name = "fixtures/sbom-cyclonedx/syft-1.5.0-alpine.cdx.json";
    let path = job.ws().join(name);
    let key = custody_evidence::SigningKey::from_pem(
        &std::fs::read_to_string(job.dir.path().join("ci.key")).unwrap(),
    )
    .unwrap();
    let cfg = evidence_upload::Config {
        stage: evidence_upload::Stage::Build,
        subject: image(),
        files: vec![name.into()],
        workspace: job.ws(),
        store: job.store().display().to_string(),
        spool: job.dir.path().join("spool"),
        keyid_scheme: custody_evidence::KeyIdScheme::default(),
        retention: custody_store::Retention::years_from(jiff::Timestamp::now(), 1).unwrap(),
        context: custody_evidence::PipelineContext {
            platform: Some(custody_evidence::Platform::Local),
            ..Default::default()
        },
        signing_key_id: None,
        max_parse_bytes: 64 << 20,
        inline_bytes: 1 << 20,
        scan: None,
    };
    let store = job.store();
    let run = evidence_upload::run(&cfg, &key, || {
        // the same file (inode), other bytes: what the step holds open now differs
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::io::Write::write_all(&mut f, b" ").unwrap();
        custody_store::LocalStore::create(&store).map(custody_store::AnyStore::Local)
    });
    let err = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run)
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("syft-1.5.0-alpine.cdx.json")
            && text.contains("changed while it was being stored"),
        "{text}"
    );
    let objects = job.store().join("objects");
    let stored: Vec<_> = walk(&objects);
    assert!(stored.is_empty(), "stored: {stored:?}");
    assert!(!job.store().join("chains").exists() || walk(&job.store().join("chains")).is_empty());
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flat_map(|e| {
        let p = e.unwrap().path();
        if p.is_dir() { walk(&p) } else { vec![p] }
    })
    .collect()
}

/// The step with `--key awskms://…` against moto's KMS: records signed in KMS verify
/// with the public key boto3 reads; a disabled key fails the step with 2 before
/// anything (a material included) is stored.
#[test]
fn kms_key_signs_the_records_and_a_disabled_key_stores_nothing() {
    let Some(moto) = custody_test_support::moto::Moto::start("the step's AWS KMS test") else {
        return;
    };
    let job = Job::new();
    let good = moto.kms_key("ECC_NIST_P256", "SIGN_VERIFY");
    let disabled = moto.kms_key("ECC_NIST_P256", "SIGN_VERIFY");
    moto.kms(&format!("kms.disable_key(KeyId='{disabled}')"));
    let step = |key: &str, store: &Path| {
        Command::new(env!("CARGO_BIN_EXE_evidence-upload"))
            .current_dir(job.ws())
            .args(["--stage", "scan", "--subject", &image(), "--key", key])
            .args([
                "--file",
                "fixtures/scan-trivy/trivy-alpine-310.json",
                "--format",
                "json",
            ])
            .arg("--store")
            .arg(store)
            .arg("--spool")
            .arg(job.dir.path().join("spool"))
            .args(["--commit", "0123456789abcdef0123456789abcdef01234567"])
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITLAB_CI")
            .env_remove("CUSTODY_SIGNING_KEY_PEM")
            .env("AWS_ENDPOINT_URL_KMS", moto.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    };

    let refused_store = job.dir.path().join("refused");
    let o = step(&format!("awskms:///{disabled}"), &refused_store);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the key is disabled"), "{stderr}");
    assert!(
        !refused_store.join("objects").exists() && !job.dir.path().join("spool").exists(),
        "nothing stored or spooled for a refused key"
    );

    let o = step(&format!("awskms:///{good}"), &job.store());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = out["records"][0]["record"].as_str().unwrap();
    let pem = job.dir.path().join("kms.pub");
    std::fs::write(&pem, moto.kms_public_pem(&good)).unwrap();
    let v = Command::new(custody())
        .args(["verify", "--record", rec, "--store"])
        .arg(job.store())
        .arg("--key")
        .arg(&pem)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let v = Command::new(custody())
        .args(["verify", "--record", rec, "--store"])
        .arg(job.store())
        .arg("--key")
        .arg(job.dir.path().join("ci.key.pub"))
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(1), "another key does not verify it");
}

/// `--sigstore-bundles DIR`: each record is also written as a Sigstore bundle v0.3 that
/// Sigstore's reference verifier (@sigstore/verify, from npm) accepts with the public
/// key, as does `custody verify`; a flipped byte or another key is refused by both.
#[test]
fn records_written_as_sigstore_bundles_verify_with_sigstores_verifier() {
    let job = Job::new();
    let bundles = job.dir.path().join("bundles");
    let o = job
        .cmd("scan", &["fixtures/scan-trivy/trivy-alpine-310.json"])
        .arg("--sigstore-bundles")
        .arg(&bundles)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = out["records"][0]["record"].as_str().unwrap();
    let bundle = bundles.join(format!(
        "{}.sigstore.json",
        rec.trim_start_matches("sha256:")
    ));
    let text = std::fs::read_to_string(&bundle).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    // the bundle's envelope is the stored record, byte for byte in its fields
    let stored: Value = serde_json::from_slice(
        &std::fs::read(
            job.store()
                .join("objects/sha256")
                .join(&rec[7..9])
                .join(&rec[9..]),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(v["dsseEnvelope"], stored);

    let public = job.dir.path().join("ci.key.pub");
    let other = job.dir.path().join("other.pub");
    std::fs::write(&other, SigningKeyPem::generate()).unwrap();
    let custody_verify = |b: &Path, key: &Path| {
        Command::new(custody())
            .arg("verify")
            .arg(b)
            .arg("--key")
            .arg(key)
            .output()
            .unwrap()
    };
    assert!(custody_verify(&bundle, &public).status.success());
    assert_eq!(custody_verify(&bundle, &other).status.code(), Some(1));
    // one byte of the signed payload flipped
    let mut flipped = v.clone();
    let payload = flipped["dsseEnvelope"]["payload"]
        .as_str()
        .unwrap()
        .to_owned();
    let i = payload.len() / 2;
    let c = if &payload[i..=i] == "A" { "B" } else { "A" };
    flipped["dsseEnvelope"]["payload"] =
        format!("{}{c}{}", &payload[..i], &payload[i + 1..]).into();
    let tampered = job.dir.path().join("tampered.sigstore.json");
    std::fs::write(&tampered, serde_json::to_vec(&flipped).unwrap()).unwrap();
    assert_eq!(custody_verify(&tampered, &public).status.code(), Some(1));

    // a bundle directory that cannot be made: the records are stored, the step says so
    // and fails with 2
    let blocked = job.dir.path().join("not-a-dir");
    std::fs::write(&blocked, "").unwrap();
    let o = job
        .cmd("scan", &["fixtures/scan-trivy/trivy-alpine-310.json"])
        .arg("--sigstore-bundles")
        .arg(&blocked)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the records are stored, but a Sigstore bundle could not be written")
            && stderr.contains("not-a-dir"),
        "{stderr}"
    );

    let Ok(script) = std::env::var("CUSTODY_SIGSTORE_VERIFY") else {
        eprintln!(
            "CUSTODY_SIGSTORE_VERIFY not set: @sigstore/verify interop not run (cargo xtask test sets it)"
        );
        return;
    };
    let root = fixtures().join("sigstore/trusted_root-public-good.json");
    let hint = v["verificationMaterial"]["publicKey"]["hint"]
        .as_str()
        .unwrap();
    let sigstore = |b: &Path, key: &Path| {
        Command::new("node")
            .arg(&script)
            .arg(b)
            .arg(key)
            .arg(&root)
            .arg(hint)
            .output()
            .unwrap()
    };
    let ok = sigstore(&bundle, &public);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    for (b, key) in [(&bundle, &other), (&tampered, &public)] {
        let o = sigstore(b, key);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

/// A public key PEM of a fresh key, made by `custody keygen`.
struct SigningKeyPem;

impl SigningKeyPem {
    fn generate() -> String {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.key");
        let o = Command::new(custody())
            .arg("keygen")
            .arg("--out")
            .arg(&key)
            .output()
            .unwrap();
        assert!(o.status.success());
        std::fs::read_to_string(dir.path().join("k.key.pub")).unwrap()
    }
}

/// `CUSTODY_TSA` (the variable the README's YAML sets; `--tsa` is the flag): each
/// record's signature is timestamped by OpenSSL's TSA on loopback. The token is in the
/// stored record and in its Sigstore bundle, where Sigstore's reference verifier
/// requires and verifies it against the TSA's chain; `custody verify` checks it against
/// a trusted-keys file that names the TSA's root.
#[test]
fn timestamped_records_and_bundles_verify_with_custody_and_sigstore() {
    use custody_test_support::tsa::{Tsa, TsaKey};
    let job = Job::new();
    let tsa = Tsa::start(&job.dir.path().join("tsa"), TsaKey::Rsa);
    let bundles = job.dir.path().join("bundles");
    let o = job
        .cmd("scan", &["fixtures/scan-trivy/trivy-alpine-310.json"])
        .env("CUSTODY_TSA", tsa.url())
        .arg("--sigstore-bundles")
        .arg(&bundles)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(tsa.served(), 1);
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = out["records"][0]["record"].as_str().unwrap();
    let bundle = bundles.join(format!(
        "{}.sigstore.json",
        rec.trim_start_matches("sha256:")
    ));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let stamps = v["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
        .as_array()
        .unwrap();
    assert_eq!(stamps.len(), 1);
    // a bundle's envelope is plain DSSE: the token moved to the verification material
    assert!(
        v["dsseEnvelope"]["signatures"][0]
            .get("extension")
            .is_none()
    );

    let keys = job.dir.path().join("trusted.yaml");
    std::fs::write(
        &keys,
        format!(
            "keys:\n  - name: ci\n    file: {}\ntimestampAuthorities:\n  - file: {}\nrequireTimestamp: true\n",
            job.dir.path().join("ci.key.pub").display(),
            tsa.ca().display()
        ),
    )
    .unwrap();
    for what in [
        bundle.clone(),
        job.store()
            .join("objects/sha256")
            .join(&rec[7..9])
            .join(&rec[9..]),
    ] {
        let o = Command::new(custody())
            .arg("verify")
            .arg(&what)
            .arg("--key")
            .arg(&keys)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{what:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    let Ok(script) = std::env::var("CUSTODY_SIGSTORE_VERIFY") else {
        eprintln!("CUSTODY_SIGSTORE_VERIFY not set: @sigstore/verify interop not run");
        return;
    };
    // the TSA's chain as a trusted root lists it: its certificate, then its CA
    let chain = job.dir.path().join("tsa-chain.pem");
    let mut pem = std::fs::read(tsa.dir.join("tsa.pem")).unwrap();
    pem.extend(std::fs::read(tsa.ca()).unwrap());
    std::fs::write(&chain, pem).unwrap();
    let root = fixtures().join("sigstore/trusted_root-public-good.json");
    let hint = v["verificationMaterial"]["publicKey"]["hint"]
        .as_str()
        .unwrap();
    let sigstore = |b: &Path| {
        Command::new("node")
            .arg(&script)
            .arg(b)
            .arg(job.dir.path().join("ci.key.pub"))
            .arg(&root)
            .arg(hint)
            .arg(&chain)
            .output()
            .unwrap()
    };
    let ok = sigstore(&bundle);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    // the same bundle with its timestamp removed fails where one is required
    let mut bare = v.clone();
    bare["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"] =
        serde_json::json!([]);
    let bare_path = job.dir.path().join("bare.sigstore.json");
    std::fs::write(&bare_path, serde_json::to_vec(&bare).unwrap()).unwrap();
    let o = sigstore(&bare_path);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = Command::new(custody())
        .arg("verify")
        .arg(&bare_path)
        .arg("--key")
        .arg(&keys)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `--oci-attach` (`CUSTODY_OCI_ATTACH=true`): the record, as a Sigstore bundle, becomes
/// an OCI 1.1 referrer of the image in a real registry (docker-registry 2.8 on loopback,
/// which has no referrers API: the `sha256-<hex>` tag's index lists it). The referrer
/// names the image as its subject, carries cosign's annotations, and its one layer is a
/// bundle `custody verify` accepts with the key; a subject that is not an image, or an
/// image the registry does not have, fails with 2 after the records are stored.
#[test]
fn records_attach_to_the_image_as_oci_referrers() {
    use custody_http::oci::{Credentials, Registry};
    let Ok(registry) = std::env::var("CUSTODY_OCI_REGISTRY") else {
        eprintln!("CUSTODY_OCI_REGISTRY is not set: OCI attach not run (cargo xtask test sets it)");
        return;
    };
    let base = format!("http://{registry}");
    let repo = format!("custody-test/attach-{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut reg = Registry::new(
        &custody_http::net::Net::default(),
        &base,
        &repo,
        Credentials::default(),
        true,
        custody_http::client::Config::default(),
    )
    .unwrap();
    // a small image: a config, one layer, the manifest pushed by digest
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"not really a tarball";
    let sha = |b: &[u8]| custody_evidence::Digest::of(b).to_string();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(layer), "size": layer.len()}],
    }))
    .unwrap();
    let image = sha(&manifest);
    rt.block_on(async {
        reg.put_blob(&sha(config), config).await.unwrap();
        reg.put_blob(&sha(layer), layer).await.unwrap();
        reg.put_manifest(
            &image,
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await
        .unwrap();
    });
    let subject = format!("{registry}/{repo}@{image}");

    let job = Job::new();
    let upload = |subject: &str| {
        let mut c = job.cmd_about(
            "scan",
            subject,
            &["fixtures/scan-trivy/trivy-alpine-310.json"],
        );
        c.args(["--format", "json"])
            .env("CUSTODY_OCI_ATTACH", "true")
            .env("CUSTODY_REGISTRY_URL", &base);
        c.output().unwrap()
    };
    let o = upload(&subject);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = out["records"][0]["record"].as_str().unwrap().to_owned();

    // the tag schema's index lists the referrer; the referrer's subject is the image
    let tag = format!("sha256-{}", &image[7..]);
    let (index, referrer, bundle) = rt.block_on(async {
        let (s, index) = reg
            .get(
                &format!("manifests/{tag}"),
                "application/vnd.oci.image.index.v1+json",
            )
            .await
            .unwrap();
        assert_eq!(s, 200);
        let index: Value = serde_json::from_slice(&index).unwrap();
        let d = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
        let (_, m) = reg
            .get(
                &format!("manifests/{d}"),
                "application/vnd.oci.image.manifest.v1+json",
            )
            .await
            .unwrap();
        let m: Value = serde_json::from_slice(&m).unwrap();
        let layer = m["layers"][0]["digest"].as_str().unwrap().to_owned();
        let (_, bundle) = reg.get(&format!("blobs/{layer}"), "*/*").await.unwrap();
        (index, m, bundle)
    });
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    assert_eq!(referrer["subject"]["digest"], image.as_str());
    assert_eq!(referrer["subject"]["size"], manifest.len());
    assert_eq!(
        referrer["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert_eq!(
        referrer["annotations"]["dev.sigstore.bundle.content"],
        "dsse-envelope"
    );
    assert_eq!(referrer["annotations"]["dev.custody.record"], rec.as_str());
    let path = job.dir.path().join("attached.sigstore.json");
    std::fs::write(&path, &bundle).unwrap();
    let v = Command::new(custody())
        .arg("verify")
        .arg(&path)
        .arg("--key")
        .arg(job.dir.path().join("ci.key.pub"))
        .arg("--subject")
        .arg(&subject)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

    // an image the registry does not have: the record is stored, the step fails with 2
    let missing = format!("{registry}/{repo}@sha256:{}", "e".repeat(64));
    let o = upload(&missing);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the records are stored, but attaching them to the image failed"),
        "{stderr}"
    );
    assert!(stderr.contains("404"), "{stderr}");
}

/// Issue 19: nothing with a secret or PHI becomes write-once evidence. The synthetic
/// corpus (custody-test-support's `phi`) is refused file by file with exit 2, nothing is
/// stored, and no output holds a planted value; allowed synthetic data, or a stage whose
/// policy is `off`, goes through.
#[test]
fn secrets_and_phi_are_refused_before_anything_is_stored() {
    let corpus = custody_test_support::phi::Corpus::new();
    let job = Job::new();
    corpus.write(&job.ws());
    std::fs::write(
        job.ws().join("scan.yaml"),
        format!(
            "mrnPatterns: ['{}']\nallow:\n  - path: synthetic/*\n    reason: synthetic patients of the tests\nstages:\n  sign: off\n",
            custody_test_support::phi::Corpus::MRN_PATTERN
        ),
    )
    .unwrap();
    let mut outputs = String::new();
    for (name, _) in &corpus.files {
        let stage = if name.ends_with(".cdx.json") {
            "build"
        } else if name.ends_with(".xml") {
            "test"
        } else {
            // FHIR, HL7, an env file, a gitleaks report: raw materials of a deploy
            "deploy"
        };
        let out = job
            .cmd(stage, &[name])
            .args(["--scan-config", "scan.yaml", "--environment", "production"])
            .env("GITHUB_OUTPUT", job.dir.path().join("gh-output"))
            .env("GITHUB_STEP_SUMMARY", job.dir.path().join("gh-summary"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("refused:") && stderr.contains(&format!("{name}:")),
            "{name}: {stderr}"
        );
        outputs.push_str(&stderr);
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    // every planted rule named, with file and line
    for p in &corpus.planted {
        assert!(
            outputs.contains(&format!(": {} (", p.rule)) && outputs.contains(p.file),
            "{} in {} not reported",
            p.rule,
            p.file
        );
    }
    for f in ["gh-output", "gh-summary"] {
        outputs.push_str(&std::fs::read_to_string(job.dir.path().join(f)).unwrap_or_default());
    }
    for v in corpus.values() {
        assert!(!outputs.contains(v), "an output printed a planted value");
    }
    assert!(
        !job.store().join("objects").exists()
            || std::fs::read_dir(job.store().join("objects/sha256"))
                .map(|d| d.count() == 0)
                .unwrap_or(true),
        "nothing may be stored"
    );

    // the same bytes under an allow-listed path are stored
    std::fs::create_dir_all(job.ws().join("synthetic")).unwrap();
    std::fs::copy(
        job.ws().join("junit.xml"),
        job.ws().join("synthetic/junit.xml"),
    )
    .unwrap();
    let v = job.json(
        "test",
        &["synthetic/junit.xml"],
        &["--scan-config", "scan.yaml"],
    );
    assert_eq!(v["records"].as_array().unwrap().len(), 1, "{v}");
    // a stage whose policy is off is not scanned
    job.json("sign", &["secrets.env"], &["--scan-config", "scan.yaml"]);

    // a string of the statement itself (here a CI value) is scanned too
    let out = job
        .cmd("test", &["synthetic/junit.xml"])
        .args([
            "--scan-config",
            "scan.yaml",
            "--service",
            "intake-512-34-7788",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("statement:") && stderr.contains(": ssn ("),
        "{stderr}"
    );
    assert!(!stderr.contains("512-34-7788"), "{stderr}");

    // by default (no configuration) every stage refuses
    let out = job
        .cmd("deploy", &["gitleaks.json"])
        .args(["--environment", "production"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gitleaks.json:"));
    // a configuration that does not parse is named
    std::fs::write(job.ws().join("bad.yaml"), "default: sometimes\n").unwrap();
    let out = job
        .cmd("deploy", &["gitleaks.json"])
        .args(["--scan-config", "bad.yaml", "--environment", "production"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml"));
}
