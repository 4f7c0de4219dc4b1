//! The built-in policies' own Rego tests, user policies and data, and the schemas.

use custody_policy::testing::{TestStatus, run_tests};
use custody_policy::{PolicySet, schema};

#[test]
fn builtin_rego_tests_pass() {
    let set = PolicySet::load(&[], &[], true).unwrap();
    let report = run_tests(&set, None);
    let bad: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.status != TestStatus::Pass)
        .map(|r| format!("{}.{}: {:?}", r.package, r.name, r.message))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(report.passed >= 60, "only {} tests ran", report.passed);
}

#[test]
fn a_failing_rego_test_is_reported_as_failing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine_test.rego"),
        "package acme_test\n\nimport rego.v1\n\ntest_wrong if data.custody.decision.result.decision == \"allow\" with input as {\"gate\": \"pre-deploy\"}\n\ntest_right if data.custody.decision.result.decision == \"deny\" with input as {\"gate\": \"pre-deploy\"}\n\ntest_broken if 1 / 0\n",
    )
    .unwrap();
    let set = PolicySet::load(&[dir.path().to_path_buf()], &[], false).unwrap();
    let report = run_tests(&set, Some("acme_test"));
    let by_name = |n: &str| report.results.iter().find(|r| r.name == n).unwrap().status;
    assert_eq!(by_name("test_wrong"), TestStatus::Fail);
    assert_eq!(by_name("test_right"), TestStatus::Pass);
    assert_ne!(by_name("test_broken"), TestStatus::Pass);
    assert!(!report.ok());
}

#[test]
fn user_policies_add_rules_and_replace_builtins() {
    let dir = tempfile::tempdir().unwrap();
    // a new rule
    std::fs::write(
        dir.path().join("owner.rego"),
        r#"package custody.rules.acme_owner

import rego.v1

meta := {"id": "acme-owner", "title": "Image has an owner", "control": "164.308(a)(4)", "gates": ["pre-approval", "pre-deploy"]}

deny contains "the image name must be under ghcr.io/acme/" if not startswith(input.artifact.name, "ghcr.io/acme/")
"#,
    )
    .unwrap();
    // a replacement: coverage no longer checked
    std::fs::write(
        dir.path().join("coverage.rego"),
        r#"package custody.rules.coverage

import rego.v1

meta := {"id": "coverage", "control": "164.308(a)(1)(ii)(B)", "gates": ["pre-deploy"]}

deny := set()

pass := "coverage is reviewed by hand"
"#,
    )
    .unwrap();
    let data = dir.path().join("data.yaml");
    std::fs::write(&data, "scan:\n  max_high: 7\n").unwrap();
    let set = PolicySet::load(&[dir.path().to_path_buf()], &[data], false).unwrap();
    assert_eq!(set.data()["custody"]["config"]["scan"]["max_high"], 7);
    assert_eq!(set.data()["custody"]["config"]["scan"]["max_critical"], 0);
    let input = serde_json::json!({
        "gate": "pre-deploy",
        "artifact": {"name": "docker.io/evil/app", "digest": "sha256:00"},
        "coverage": [], "tests": [], "scans": [], "sboms": [], "signatures": [],
        "runnerGuard": [], "rejected": [], "verifiedRecords": 0,
        "today": "2026-01-01", "evaluatedAt": "2026-01-01T00:00:00Z",
    });
    let e = set.evaluate_value(input).unwrap();
    let rule = |id: &str| e.rules.iter().find(|r| r.id == id).unwrap().clone();
    assert_eq!(rule("acme-owner").status, custody_policy::Status::Fail);
    assert!(rule("acme-owner").message.contains("ghcr.io/acme/"));
    assert_eq!(rule("coverage").status, custody_policy::Status::Pass);
    assert_eq!(rule("coverage").message, "coverage is reviewed by hand");
    assert_eq!(e.rules.len(), 24);
}

#[test]
fn a_broken_user_policy_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.rego"), "package x\n\nallow if {\n").unwrap();
    let err = PolicySet::load(&[dir.path().to_path_buf()], &[], false).unwrap_err();
    assert!(err.to_string().contains("bad.rego"), "{err}");
    let data = dir.path().join("d.yaml");
    std::fs::write(&data, "- a list\n").unwrap();
    let err = PolicySet::load(&[], &[data], false).unwrap_err();
    assert!(err.to_string().contains("must be a mapping"), "{err}");
}

#[test]
fn schemas_are_stable() {
    insta::assert_snapshot!("policy-input.schema.json", schema::input_schema());
    insta::assert_snapshot!("decision.schema.json", schema::decision_schema());
}
