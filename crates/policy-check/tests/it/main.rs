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
    assert_eq!(d["rules"].as_array().unwrap().len(), 19);
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
    assert_eq!(found.len(), 1);
}
