//! `policy-check` through the real binary: exit codes (0 allow, 1 deny, 2 error), the
//! decision document on stdout, the step summary, annotations, outputs and dotenv
//! report, and the signed decision record exactly as HELPERS.md's contract says.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use custody_evidence::{Envelope, SigningKey, TrustedKeys, verify_envelope};
use custody_store::{EvidenceStore, LocalStore, Query};
use serde_json::{Value, json};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn input_ok() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../custody-policy/tests/data/input-ok.json")
}

fn cross_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../custody-policy/tests/data/cross-config.yaml")
}

fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_policy-check"));
    c.current_dir(dir);
    for v in [
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_OUTPUT",
        "CUSTODY_STORE",
        "CUSTODY_SIGNING_KEY",
        "CUSTODY_SIGNING_KEY_PEM",
        "GITHUB_TOKEN",
    ] {
        c.env_remove(v);
    }
    c
}

fn json_out(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn allow_exits_0_with_the_decision_on_stdout_and_the_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let outputs = dir.path().join("outputs");
    let out = cmd(dir.path())
        .args([
            "--gate",
            "pre-deploy",
            "--subject",
            &format!("ghcr.io/acme/app@{DIGEST}"),
            "--no-record",
            "--input",
        ])
        .arg(input_ok())
        .arg("--data")
        .arg(cross_config())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = json_out(&out);
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["gate"], "pre-deploy");
    assert_eq!(d["rules"].as_array().unwrap().len(), 23);
    assert!(d["policyDigest"].as_str().unwrap().starts_with("sha256:"));
    for r in d["rules"].as_array().unwrap() {
        assert!(r["control"].as_str().unwrap().starts_with("164."));
    }
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("### policy-check pre-deploy: ALLOW"), "{md}");
    assert!(
        md.contains("| scan-fresh | pass | §164.308(a)(1)(ii)(A) |"),
        "{md}"
    );
    let o = std::fs::read_to_string(&outputs).unwrap();
    assert!(
        o.contains("decision=allow\n") && o.contains("failed=\n"),
        "{o}"
    );
}

#[test]
fn deny_exits_1_with_annotations_and_a_dotenv_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut input: Value = serde_json::from_slice(&std::fs::read(input_ok()).unwrap()).unwrap();
    input["scans"][0]["ageSeconds"] = json!(200_000);
    let path = dir.path().join("stale.json");
    std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();
    let out = cmd(dir.path())
        .args([
            "--gate",
            "pre-deploy",
            "--subject",
            DIGEST,
            "--no-record",
            "--dotenv",
            "policy.env",
            "--input",
        ])
        .arg(&path)
        .arg("--data")
        .arg(cross_config())
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // annotations on stderr; stdout is the decision document alone
    let stderr = String::from_utf8_lossy(&out.stderr);
    let annotations: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect();
    assert_eq!(annotations.len(), 1, "{stderr}");
    assert!(annotations[0].contains("policy scan-fresh failed (HIPAA §164.308(a)(1)(ii)(A))"));
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["decision"], "deny");
    let env = std::fs::read_to_string(dir.path().join("policy.env")).unwrap();
    assert!(env.contains("CUSTODY_POLICY_DECISION=deny\n"), "{env}");
    assert!(env.contains("CUSTODY_POLICY_FAILED=scan-fresh\n"), "{env}");
}

#[test]
fn errors_exit_2_and_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.rego"),
        "package custody.rules.x\n\ndeny contains \"x\" if {\n",
    )
    .unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--gate".into(),
                "later".into(),
                "--subject".into(),
                DIGEST.into(),
            ],
            "use pre-approval or pre-deploy",
        ),
        (
            vec![
                "--gate".into(),
                "pre-deploy".into(),
                "--subject".into(),
                DIGEST.into(),
                "--no-record".into(),
                "--input".into(),
                "missing.json".into(),
            ],
            "missing.json",
        ),
        (
            vec![
                "--gate".into(),
                "pre-deploy".into(),
                "--subject".into(),
                DIGEST.into(),
                "--policy".into(),
                dir.path().display().to_string(),
            ],
            "broken.rego",
        ),
        (
            vec![
                "--gate".into(),
                "pre-deploy".into(),
                "--subject".into(),
                DIGEST.into(),
            ],
            "--trusted-key",
        ),
        (
            vec![
                "--gate".into(),
                "pre-deploy".into(),
                "--subject".into(),
                "latest".into(),
                "--trusted-key".into(),
                "k.pub".into(),
            ],
            "",
        ),
    ];
    for (args, why) in cases {
        let out = cmd(dir.path()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

/// An allow whose decision could not be written (stdout on a full disk) is not an
/// allow: exit 2, saying why. A reader that stops reading (`| head`) is not a failure.
#[test]
fn a_decision_lost_on_its_way_out_fails_the_gate_but_a_closed_pipe_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let allow = || decide_input_cmd(dir.path(), &input_ok(), &[]);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = allow().stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "policy-check: error: writing standard output failed: No space left on device"
        ),
        "{err}"
    );
    // the reader closes its end before the decision is written
    let mut child = allow()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn schemas_print() {
    let dir = tempfile::tempdir().unwrap();
    for which in ["input", "decision"] {
        let out = cmd(dir.path())
            .args(["--print-schema", which])
            .output()
            .unwrap();
        assert!(out.status.success());
        let s = json_out(&out);
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    }
}

#[test]
fn the_decision_is_stored_as_a_signed_record_of_the_contract_shape() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    std::fs::write(dir.path().join("ci.key"), key.to_pkcs8_pem().unwrap()).unwrap();
    std::fs::write(dir.path().join("ci.pub"), key.public().pem()).unwrap();
    std::fs::write(
        dir.path().join("approvals.json"),
        serde_json::to_vec(&json!({"approvals": [{"login": "alice", "state": "approved", "at": "2026-11-29T09:00:00Z"}]})).unwrap(),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = cmd(dir.path())
        .args([
            "--gate",
            "pre-deploy",
            "--subject",
            &format!("ghcr.io/acme/app@{DIGEST}"),
            "--environment",
            "production",
        ])
        .args([
            "--trusted-key",
            "ci.pub",
            "--signing-key",
            "ci.key",
            "--approvals",
            "approvals.json",
            "--vsa",
            "vsa.json",
            "--commit",
        ])
        .arg("0123456789abcdef0123456789abcdef01234567")
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    // an empty store: nothing is proven, so the gate denies and records that it did
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = json_out(&out);
    let record = d["record"].as_str().unwrap().to_owned();
    assert_eq!(d["unverified"][0], "approvals (file:approvals.json)");

    let s = LocalStore::open(store.to_str().unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let digest = custody_evidence::Digest::parse(&record).unwrap();
    let bytes = rt.block_on(s.get_object(&digest)).unwrap();
    let env = Envelope::from_slice(&bytes).unwrap();
    let verified = verify_envelope(&env, &TrustedKeys::new(vec![key.public().clone()])).unwrap();
    let st = verified.statement;
    assert_eq!(st.predicate_type, "https://custody.dev/policy/decision/v1");
    assert_eq!(st.subject[0].name, "ghcr.io/acme/app");
    assert_eq!(format!("sha256:{}", st.subject[0].digest["sha256"]), DIGEST);
    let rec = st.record().unwrap();
    assert_eq!(rec.stage, "policy");
    let p = st.predicate.as_object().unwrap();
    let mut keys: Vec<&str> = p.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "approvals",
            "decision",
            "environment",
            "evaluatedAt",
            "gate",
            "policyDigest",
            "rules"
        ]
    );
    assert_eq!(p["gate"], "pre-deploy");
    assert_eq!(p["decision"], "deny");
    assert_eq!(p["environment"], "production");
    assert_eq!(p["policyDigest"], d["policyDigest"]);
    assert_eq!(
        p["approvals"],
        json!([{"approver": "alice", "at": "2026-11-29T09:00:00Z", "source": "file:approvals.json (unverified)"}])
    );
    for r in p["rules"].as_array().unwrap() {
        let mut k: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        assert_eq!(k, ["control", "id", "message", "status"]);
    }
    // the exact input is stored beside it, and the record is found by the artifact
    let m = &rec.materials[0];
    assert_eq!(m.name, "policy-input.json");
    let input: Value =
        serde_json::from_slice(&rt.block_on(s.get_object(&m.digest)).unwrap()).unwrap();
    assert_eq!(input["artifact"]["digest"], DIGEST);
    let found = rt
        .block_on(s.query(&Query {
            subject: Some(custody_evidence::Digest::parse(DIGEST).unwrap()),
            stage: Some("policy".into()),
            ..Query::default()
        }))
        .unwrap();
    assert_eq!(found.len(), 2, "the decision and its VSA");

    // the VSA: signed like the decision, stored right after it in its chain, and given
    // as the --vsa file
    let vsa_file = dir.path().join("vsa.json");
    let vsa = Envelope::from_slice(&std::fs::read(&vsa_file).unwrap()).unwrap();
    let v = verify_envelope(&vsa, &TrustedKeys::new(vec![key.public().clone()]))
        .unwrap()
        .statement;
    assert_eq!(v.predicate_type, "https://slsa.dev/verification_summary/v1");
    assert_eq!(v.subject, st.subject);
    let vrec = v.record().unwrap();
    assert_eq!(vrec.chain.sequence, rec.chain.sequence + 1);
    assert_eq!(vrec.chain.previous, Some(digest));
    let vp = v.predicate.as_object().unwrap();
    // VSA v1's fields, with the types the spec gives them
    assert_eq!(vp["verifier"]["id"], "https://custody.dev/policy-check");
    assert!(vp["verifier"]["version"]["policy-check"].is_string());
    assert_eq!(vp["resourceUri"], format!("ghcr.io/acme/app@{DIGEST}"));
    assert_eq!(vp["policy"]["uri"], "https://custody.dev/policy/pre-deploy");
    assert_eq!(
        format!(
            "sha256:{}",
            vp["policy"]["digest"]["sha256"].as_str().unwrap()
        ),
        d["policyDigest"].as_str().unwrap()
    );
    assert_eq!(vp["verificationResult"], "FAILED");
    assert_eq!(vp["verifiedLevels"], json!(["FAILED"]));
    assert_eq!(vp["slsaVersion"], "1.0");
    vp["timeVerified"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    for a in vp["inputAttestations"].as_array().unwrap() {
        assert!(
            a["uri"]
                .as_str()
                .unwrap()
                .starts_with("custody:record/sha256:")
        );
        assert_eq!(a["digest"]["sha256"].as_str().unwrap().len(), 64);
    }
    // the decision and its VSA agree on every rule, and the VSA names the decision
    assert_eq!(vp["custody"]["rules"], p["rules"]);
    assert_eq!(vp["custody"]["gate"], "pre-deploy");
    assert_eq!(vp["custody"]["decisionRecord"], record.as_str());
    assert!(vp["custody"]["exceptions"].is_array());
    // the reference verifier accepts the same envelope with the same public key
    if let Ok(py) = std::env::var("CUSTODY_PYTHON") {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/sslib.py");
        let out = Command::new(py)
            .arg(script)
            .args(["verify"])
            .arg(&vsa_file)
            .arg(dir.path().join("ci.pub"))
            .arg("")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs the pre-deploy gate on `input` (no store, nothing recorded) with `extra` flags.
fn decide_input(dir: &Path, input: &Path, extra: &[&str]) -> Output {
    decide_input_cmd(dir, input, extra).output().unwrap()
}

fn decide_input_cmd(dir: &Path, input: &Path, extra: &[&str]) -> Command {
    let mut c = cmd(dir);
    c.args([
        "--gate",
        "pre-deploy",
        "--subject",
        DIGEST,
        "--no-record",
        "--input",
    ])
    .arg(input)
    .arg("--data")
    .arg(cross_config())
    .args(extra);
    c
}

fn stale_scan_input(dir: &Path) -> PathBuf {
    let mut input: Value = serde_json::from_slice(&std::fs::read(input_ok()).unwrap()).unwrap();
    input["scans"][0]["ageSeconds"] = json!(200_000);
    let path = dir.join("stale.json");
    std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();
    path
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn table_lists_every_rule_with_its_status_and_is_far_shorter_than_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = decide_input(dir.path(), &input_ok(), &[]);
    assert_eq!(json.status.code(), Some(0));
    let table = decide_input(dir.path(), &input_ok(), &["--format", "table"]);
    assert_eq!(
        table.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let d = json_out(&json);
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "policy-check pre-deploy: allow (23 rules, 0 failed)",
        "{text}"
    );
    let rules = d["rules"].as_array().unwrap();
    assert_eq!(lines.len(), 1 + rules.len(), "{text}");
    for r in rules {
        let id = r["id"].as_str().unwrap();
        let status = r["status"].as_str().unwrap().to_uppercase();
        let found: Vec<&&str> = lines
            .iter()
            .filter(|l| l.split_whitespace().nth(1) == Some(id))
            .collect();
        assert_eq!(found.len(), 1, "{id}: {text}");
        assert!(found[0].starts_with(&format!("{status}  {id} ")), "{text}");
    }
    assert!(
        lines.len() * 4 < String::from_utf8_lossy(&json.stdout).lines().count(),
        "{text}"
    );
    assert!(text.len() * 2 < json.stdout.len(), "{text}");
    // plain text: no escape sequences, whatever the terminal
    assert!(!text.contains('\u{1b}'), "{text}");
    // said once, on stdout: not again among the logs on stderr
    let stderr = String::from_utf8_lossy(&table.stderr);
    assert!(
        !stderr.contains("policy-check pre-deploy: allow"),
        "{stderr}"
    );
}

#[test]
fn a_deny_in_table_format_puts_the_failed_rule_and_its_message_first() {
    let dir = tempfile::tempdir().unwrap();
    let stale = stale_scan_input(dir.path());
    let json = decide_input(dir.path(), &stale, &[]);
    let table = decide_input_cmd(dir.path(), &stale, &["--format", "table"])
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(1));
    assert_eq!(table.status.code(), Some(1));
    let d = json_out(&json);
    let failed = d["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "scan-fresh")
        .unwrap();
    assert_eq!(failed["status"], "fail");
    let message = failed["message"].as_str().unwrap();
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "policy-check pre-deploy: deny (23 rules, 1 failed)",
        "{text}"
    );
    assert!(lines[1].starts_with("FAIL  scan-fresh "), "{text}");
    let shown = lines[1]["FAIL  scan-fresh ".len()..].trim_start();
    // short enough to be shown whole (cutting is table_puts_a_long_multiline_message_…)
    assert!(message.chars().count() <= 200, "{message}");
    assert_eq!(shown, message, "{text}");
    assert_eq!(text.matches("FAIL").count(), 1, "{text}");
    // the annotation still goes to stderr, as with --format json
    let stderr = String::from_utf8_lossy(&table.stderr);
    assert!(
        stderr.contains("policy scan-fresh failed (HIPAA §164.308(a)(1)(ii)(A))"),
        "{stderr}"
    );
}

#[test]
fn table_puts_a_long_multiline_message_on_one_cut_line() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let long = "y".repeat(400);
    std::fs::write(
        policies.join("acme-chatty.rego"),
        format!(
            r#"package custody.rules.acme_chatty

import rego.v1

meta := {{"id": "acme-chatty", "control": "164.312(b)", "gates": ["pre-approval", "pre-deploy"]}}

deny contains "first line\nsecond\tline \u001b[31m{long}"
"#
        ),
    )
    .unwrap();
    let table = decide_input(
        dir.path(),
        &input_ok(),
        &["--format", "table", "--policy", policies.to_str().unwrap()],
    );
    assert_eq!(
        table.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 24, "{text}");
    let line = lines[1];
    assert!(
        line.starts_with("FAIL  acme-chatty ") && line.contains("first line second line [31myyy"),
        "{text}"
    );
    let message = line["FAIL  acme-chatty ".len()..].trim_start();
    assert_eq!(message.chars().count(), 200, "{message}");
    assert!(message.ends_with("y…"), "{message}");
    assert!(!text.contains('\u{1b}') && !text.contains('\t'), "{text}");
}

#[test]
fn output_holds_the_json_that_format_json_prints_whatever_the_format() {
    let dir = tempfile::tempdir().unwrap();
    let stale = stale_scan_input(dir.path());
    let printed = decide_input(dir.path(), &stale, &["--output", "json.json"]);
    assert_eq!(printed.status.code(), Some(1));
    let file = std::fs::read(dir.path().join("json.json")).unwrap();
    assert_eq!(file, printed.stdout, "the same bytes as stdout");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let table = decide_input(
        dir.path(),
        &stale,
        &["--format", "table", "--output", "out/table.json"],
    );
    assert_eq!(
        table.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let from_table: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/table.json")).unwrap()).unwrap();
    assert_eq!(from_table, json_out(&printed));
    assert_eq!(from_table["decision"], "deny");
    let text = stdout(&table);
    assert!(
        text.ends_with("decision document (JSON) in out/table.json\n"),
        "{text}"
    );
    // nothing left beside it: the temporary file was renamed into place
    let names = |d: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(dir.path()), ["json.json", "out", "stale.json"]);
    assert_eq!(names(&dir.path().join("out")), ["table.json"]);
}

#[test]
fn an_output_that_cannot_be_written_exits_2_naming_it_after_printing_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    for format in ["json", "table"] {
        let out = decide_input(
            dir.path(),
            &input_ok(),
            &["--format", format, "--output", "missing/decision.json"],
        );
        assert_eq!(out.status.code(), Some(2), "{format}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("policy-check: error: writing --output missing/decision.json: ")
                && stderr.contains("the decision above (allow) stands"),
            "{stderr}"
        );
        // the decision was made: it is printed all the same
        let text = stdout(&out);
        match format {
            "json" => assert_eq!(json_out(&out)["decision"], "allow"),
            _ => {
                assert!(text.starts_with("policy-check pre-deploy: allow"), "{text}");
                assert!(!text.contains("missing/decision.json"), "{text}");
            }
        }
        assert!(!dir.path().join("missing").exists());
    }
    // an existing file is replaced whole, and a directory is not a file name
    std::fs::write(dir.path().join("old.json"), "stale").unwrap();
    let out = decide_input(dir.path(), &input_ok(), &["--output", "old.json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read(dir.path().join("old.json")).unwrap(),
        out.stdout
    );
    let out = decide_input(dir.path(), &input_ok(), &["--output", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("writing --output .: "));
}

#[test]
fn output_and_format_apply_to_the_decision_only() {
    let dir = tempfile::tempdir().unwrap();
    for extra in [["--format", "table"], ["--output", "d.json"]] {
        let out = cmd(dir.path())
            .args(["--print-schema", "decision"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
            "{extra:?}"
        );
    }
}

/// Issue 15, item 7: a scan report's finding id is evidence text; the rule message
/// that quotes it reaches the log, and must not become a workflow command there, in
/// the table, the JSON or the annotations.
#[test]
fn evidence_in_rule_messages_cannot_write_workflow_commands() {
    let dir = tempfile::tempdir().unwrap();
    let mut input: Value = serde_json::from_slice(&std::fs::read(input_ok()).unwrap()).unwrap();
    let evil = "CVE-9\n::error title=X::pwned ##[warning]y";
    input["scans"][0]["counts"]["critical"] = json!(2);
    input["scans"][0]["findings"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": evil, "severity": "critical"}));
    let path = dir.path().join("evil.json");
    std::fs::write(&path, serde_json::to_vec(&input).unwrap()).unwrap();
    for format in ["table", "json"] {
        let out = decide_input_cmd(dir.path(), &path, &["--format", format])
            .env("GITHUB_ACTIONS", "true")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{format}");
        let text = stdout(&out);
        assert!(
            text.contains("pwned"),
            "the message quotes the finding: {text}"
        );
        for l in text.lines() {
            assert!(!l.trim_start().starts_with("::"), "{format}: {l:?}");
        }
        assert!(!text.contains("##["), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        for l in err.lines().filter(|l| l.trim_start().starts_with("::")) {
            // Custody's own annotations, the message escaped inside
            assert!(l.starts_with("::error::policy "), "{l:?}");
        }
        assert!(!err.contains("##["), "{err}");
        assert!(err.contains("%0A::error title=X::pwned"), "{err}");
    }
}

/// Issue 14: `--log-signing-key` signs a checkpoint of the store's log before the gate
/// gathers, so `log.require_checkpoint` can hold for the evidence just written; a bad
/// key is an error naming the file (exit 2) and checkpoints nothing.
#[test]
fn the_gate_checkpoints_the_log_it_relies_on() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, verifier) = custody_store::log::generate_log_key("ci.test/evidence").unwrap();
    std::fs::write(dir.path().join("log.key"), format!("{signer}\n")).unwrap();
    let ci = SigningKey::generate();
    std::fs::write(dir.path().join("ci.pub"), ci.public().pem()).unwrap();
    std::fs::write(
        dir.path().join("data.json"),
        serde_json::to_vec(
            &json!({"log": {"keys": [verifier.to_string()], "require_checkpoint": true}}),
        )
        .unwrap(),
    )
    .unwrap();
    let run = |key: &str| {
        cmd(dir.path())
            .args([
                "--gate",
                "pre-approval",
                "--subject",
                &format!("ghcr.io/acme/app@{DIGEST}"),
                "--store",
                "store",
                "--data",
                "data.json",
                "--platform",
                "none",
                "--trusted-key",
                "ci.pub",
                "--print-input",
                "--log-signing-key",
                key,
            ])
            .output()
            .unwrap()
    };
    let out = run("log.key");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("log checkpoint of 0 entries (0 new) signed"),
        "{err}"
    );
    let input = json_out(&out);
    assert_eq!(
        input["log"]["checkpoint"]["origin"], "ci.test/evidence",
        "{input}"
    );
    assert!(dir.path().join("store/log/checkpoints").is_dir());
    std::fs::write(dir.path().join("bad.key"), "not a key\n").unwrap();
    let out = run("bad.key");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.key") && err.contains("not a log signing key"),
        "{err}"
    );
}

/// `--trusted-root`: the digest's GitHub artifact attestations, read from a loopback
/// GitHub answering the documented `GET /repos/{owner}/{repo}/attestations/{digest}`
/// shape with a real public-good bundle (kubewarden-controller's cosign v3 signature),
/// verified keyless and offline; the policy data decides whose they must be. A tampered
/// bundle and one given only by URL are named and not counted; an API that does not
/// answer fails the rule, never passes it.
#[test]
fn github_attestations_are_verified_keyless_and_judged_by_the_policy() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(fixtures.join("attestation-dsse/sigstore-rs-bundle-v0.3.sigstore.json"))
            .unwrap(),
    )
    .unwrap();
    let mut tampered = bundle.clone();
    tampered["dsseEnvelope"]["signatures"][0]["sig"] =
        "MEUCIQCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            .into();
    let digest = "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    let repo = "kubewarden/kubewarden-controller";
    let listing = json!({"attestations": [
        {"bundle": bundle, "repository_id": 1},
        {"bundle": tampered, "repository_id": 1},
        {"bundle_url": "https://example.invalid/bundle.json", "repository_id": 1},
    ]});
    let github = custody_test_support::Server::start(&[(
        format!("/repos/{repo}/attestations/{digest}"),
        200,
        listing.to_string(),
    )]);
    let dir = tempfile::tempdir().unwrap();
    LocalStore::create(dir.path().join("store").to_str().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("ci.pub"),
        SigningKey::generate().public().pem(),
    )
    .unwrap();
    let data = |prefix: &str| {
        let path = dir.path().join(format!("data-{}.json", prefix.len()));
        std::fs::write(
            &path,
            serde_json::to_vec(&json!({"attestations": {
                "require": true,
                "predicate_types": ["https://sigstore.dev/cosign/sign/v1"],
                "issuer": "https://token.actions.githubusercontent.com",
                "identity_prefix": prefix,
            }}))
            .unwrap(),
        )
        .unwrap();
        path
    };
    let root = fixtures.join("sigstore/trusted_root-public-good.json");
    let run = |api: &str, data: &Path| {
        let out = cmd(dir.path())
            .args([
                "--gate",
                "pre-approval",
                "--platform",
                "none",
                "--no-record",
            ])
            .args(["--store", "store", "--trusted-key", "ci.pub"])
            .arg("--subject")
            .arg(format!("ghcr.io/kubewarden/kubewarden-controller@{digest}"))
            .arg("--data")
            .arg(data)
            .arg("--trusted-root")
            .arg(&root)
            .args(["--repository", repo, "--github-api-url", api])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = json_out(&out);
        d["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == "github-attestation")
            .unwrap()
            .clone()
    };
    let api = github.url("");
    let api = api.trim_end_matches('/');
    let ok = run(
        api,
        &data("https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@"),
    );
    assert_eq!(ok["status"], "pass", "{ok}");
    assert!(
        ok["message"]
            .as_str()
            .unwrap()
            .contains("Rekor entry 1261105807"),
        "{ok}"
    );

    let other = run(api, &data("https://github.com/acme/"));
    assert_eq!(other["status"], "fail", "{other}");
    let msg = other["message"].as_str().unwrap();
    assert!(
        msg.contains("kubewarden"),
        "the verified one is named: {msg}"
    );
    assert!(msg.contains("altered"), "the tampered one is named: {msg}");
    assert!(msg.contains("not inline"), "{msg}");

    let down = format!("http://{}", custody_test_support::closed_port());
    let failed = run(&down, &data("https://github.com/kubewarden/"));
    assert_eq!(failed["status"], "fail", "{failed}");
}
