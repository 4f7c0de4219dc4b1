//! The decision table on real evidence: records written by evidence-upload (and a
//! runner-guard record of the contract shape) into a local store, gathered and
//! verified by policy-check's library, decided by the built-in policies. Each case
//! changes one thing of a compliant pipeline and expects exactly the rules it breaks
//! to fail, with the reason.

use custody_evidence::SigningKey;
use custody_policy::check::{self, PlatformSource};
use custody_policy::{Decision, Gate, Status, Verdict};
use serde_json::json;

use crate::support::{Pipeline, good_approvals, hex, junit, lcov, sbom, trivy};

async fn decide(p: &Pipeline, extra: serde_json::Value, platform: PlatformSource) -> Decision {
    let cfg = p.config(Gate::PreDeploy, p.policies(extra), platform);
    let input = p.input(&cfg).await;
    check::decide(&cfg.policies, &input).unwrap()
}

fn failed(d: &Decision) -> Vec<String> {
    d.failures().map(|r| r.id.clone()).collect()
}

fn message<'a>(d: &'a Decision, id: &str) -> &'a str {
    &d.rules.iter().find(|r| r.id == id).unwrap().message
}

/// Asserts the decision denies with exactly `ids` failing, and each message says `why`.
fn expect(d: &Decision, ids: &[&str], why: &str) {
    assert_eq!(d.decision, Verdict::Deny, "{d:#?}");
    let mut want: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(failed(d), want, "{d:#?}");
    for id in ids {
        assert!(
            message(d, id).contains(why),
            "{id}: {:?} lacks {why:?}",
            message(d, id)
        );
    }
}

#[tokio::test]
async fn compliant_pipeline_is_allowed_with_every_rule_reported() {
    let p = Pipeline::new();
    p.compliant().await;
    let d = decide(&p, json!({}), p.approvals(good_approvals())).await;
    assert_eq!(d.decision, Verdict::Allow, "{d:#?}");
    assert_eq!(d.rules.len(), 23);
    let skipped: Vec<&str> = d
        .rules
        .iter()
        .filter(|r| r.status == Status::Skip)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(
        skipped,
        [
            "cosign-signature",
            "evidence-logged",
            "github-attestation",
            "sbom-licenses"
        ]
    );
    assert!(
        d.unverified
            .iter()
            .any(|u| u.starts_with("approvals (file:"))
    );
    assert_eq!(d.approvals.len(), 2);
    assert!(d.approvals[0].source.ends_with("(unverified)"));
    assert!(
        message(&d, "sbom-aligned").contains("42 components")
            || message(&d, "sbom-aligned").contains("components")
    );
}

#[tokio::test]
async fn pre_approval_needs_no_approvals() {
    let p = Pipeline::new();
    p.compliant().await;
    let platform = p.approvals(json!({"environmentProtection": {"requiredReviewers": true}}));
    let cfg = p.config(Gate::PreApproval, p.policies(json!({})), platform);
    let d = check::decide(&cfg.policies, &p.input(&cfg).await).unwrap();
    assert_eq!(d.decision, Verdict::Allow, "{d:#?}");
    for id in [
        "approvals-count",
        "approvers-authorized",
        "separation-of-duties",
    ] {
        let r = d.rules.iter().find(|r| r.id == id).unwrap();
        assert_eq!(r.status, Status::Skip);
    }
}

#[tokio::test]
async fn missing_evidence_of_every_kind_denies() {
    let p = Pipeline::new();
    std::fs::create_dir_all(p.store_path()).unwrap();
    custody_store::LocalStore::create(p.store_path().to_str().unwrap()).unwrap();
    let d = decide(&p, json!({}), PlatformSource::None).await;
    expect(
        &d,
        &[
            "approvals-count",
            "approvers-authorized",
            "coverage",
            "environment-match",
            "environment-protected",
            "image-signed",
            "runner-tier",
            "sbom-aligned",
            "sbom-authentic",
            "scan-fresh",
            "scan-severity",
            "scan-subject",
            "separation-of-duties",
            "tests-passed",
        ],
        "",
    );
    assert!(message(&d, "image-signed").contains("no verified signature record"));
    assert!(message(&d, "tests-passed").contains("no verified test record"));
    assert!(message(&d, "runner-tier").contains("no runner-guard record"));
    assert!(message(&d, "approvers-authorized").contains("no approval facts"));
}

#[tokio::test]
async fn untrusted_signing_key_denies() {
    let evil = SigningKey::generate();
    let p = pipeline_signed_by(
        "sign",
        &[("app.sig", b"sig".to_vec())],
        "production",
        Some(&evil),
    )
    .await;
    let d = decide(&p, json!({}), p.approvals(good_approvals())).await;
    expect(&d, &["evidence-integrity", "image-signed"], "");
    assert!(message(&d, "image-signed").contains("were rejected"));
    assert!(message(&d, "evidence-integrity").contains("sign record"));
}

#[tokio::test]
async fn tampered_sbom_denies() {
    let p = Pipeline::new();
    p.compliant().await;
    let bytes = sbom(&p.digest_hex);
    let store = custody_store::LocalStore::open(p.store_path().to_str().unwrap()).unwrap();
    let object = store.object_path(&custody_evidence::Digest::of(&bytes));
    assert!(
        object.is_file(),
        "the SBOM is stored at {}",
        object.display()
    );
    let mut perm = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&object, perm).unwrap();
    let mut altered = bytes.clone();
    altered.extend_from_slice(b"\n ");
    std::fs::write(&object, altered).unwrap();
    let d = decide(&p, json!({}), p.approvals(good_approvals())).await;
    expect(&d, &["sbom-aligned", "sbom-authentic"], "");
    assert!(
        message(&d, "sbom-authentic").contains("was altered"),
        "{}",
        message(&d, "sbom-authentic")
    );
}

/// A compliant pipeline except for one stage's files.
async fn pipeline_with(stage: &str, files: &[(&str, Vec<u8>)], env: &str) -> Pipeline {
    pipeline_signed_by(stage, files, env, None).await
}

/// A compliant pipeline except for one stage's files, environment and signing key.
async fn pipeline_signed_by(
    stage: &str,
    files: &[(&str, Vec<u8>)],
    env: &str,
    key: Option<&SigningKey>,
) -> Pipeline {
    let p = Pipeline::new();
    let k = p.key.clone();
    let d = p.digest_hex.clone();
    for (s, f) in [
        ("build", vec![("bom.cdx.json", sbom(&d))]),
        (
            "test",
            vec![("junit.xml", junit(false)), ("lcov.info", lcov())],
        ),
        ("scan", vec![("trivy.json", trivy(&d, 3600, &[]))]),
        ("sign", vec![("app.sig", b"sig".to_vec())]),
    ] {
        if s == stage {
            p.upload(s, files, Some(env), key.unwrap_or(&k)).await;
        } else {
            p.upload(s, &f, Some("production"), &k).await;
        }
    }
    p.runner_guard("production", "pass", &k).await;
    p
}

#[tokio::test]
async fn sbom_of_another_digest_denies() {
    let p = pipeline_with("build", &[("bom.cdx.json", sbom(&hex(3)))], "production").await;
    let d = decide(&p, json!({}), p.approvals(good_approvals())).await;
    expect(
        &d,
        &["sbom-aligned"],
        &format!("describes sha256:{}", hex(3)),
    );
}

#[tokio::test]
async fn stale_scan_denies() {
    let p = Pipeline::new();
    let scan = trivy(&p.digest_hex, 2 * 86400, &[]);
    let p = pipeline_with("scan", &[("trivy.json", scan)], "production").await;
    let d = decide(&p, json!({}), p.approvals(good_approvals())).await;
    expect(&d, &["scan-fresh"], "the limit is 24 hours");
}

#[tokio::test]
async fn scan_of_another_digest_denies() {
    let p = pipeline_with(
        "scan",
        &[("trivy.json", trivy(&hex(3), 60, &[]))],
        "production",
    )
    .await;
    let d = decide(&p, json!({}), p.approvals(good_approvals())).await;
    // the scan of the other image leaves this one unscanned: every scan rule fails
    expect(
        &d,
        &[
            "environment-match",
            "scan-fresh",
            "scan-severity",
            "scan-subject",
        ],
        "",
    );
    assert!(message(&d, "scan-subject").contains(&format!("is of sha256:{}", hex(3))));
}

#[tokio::test]
async fn severity_over_threshold_denies_and_a_valid_exception_clears_it() {
    let p = Pipeline::new();
    let scan = trivy(&p.digest_hex, 60, &[("CVE-2026-1111", "CRITICAL")]);
    let p = pipeline_with("scan", &[("trivy.json", scan)], "production").await;
    let d = decide(&p, json!({}), p.approvals(good_approvals())).await;
    expect(&d, &["scan-severity"], "1 CRITICAL finding(s)");
    assert!(message(&d, "scan-severity").contains("CVE-2026-1111"));

    let ok = json!({"exceptions": [{"id": "CVE-2026-1111", "reason": "not reachable", "expires": "2999-01-01"}]});
    let d = decide(&p, ok, p.approvals(good_approvals())).await;
    assert_eq!(d.decision, Verdict::Allow, "{d:#?}");

    let expired = json!({"exceptions": [{"id": "CVE-2026-1111", "reason": "not reachable", "expires": "2020-01-01"}]});
    let d = decide(&p, expired, p.approvals(good_approvals())).await;
    expect(&d, &["cve-exceptions", "scan-severity"], "");
    assert!(message(&d, "cve-exceptions").contains("expired on 2020-01-01"));
}

#[tokio::test]
async fn failing_tests_and_low_coverage_deny() {
    let p = pipeline_with(
        "test",
        &[("junit.xml", junit(true)), ("lcov.info", lcov())],
        "production",
    )
    .await;
    let d = decide(
        &p,
        json!({"tests": {"min_line_rate": 0.9}}),
        p.approvals(good_approvals()),
    )
    .await;
    expect(&d, &["coverage", "tests-passed"], "");
    assert!(message(&d, "tests-passed").contains("1 failed and 0 errored of 3"));
    assert!(message(&d, "coverage").contains("3 of 4 lines covered"));
}

#[tokio::test]
async fn wrong_runner_tier_denies() {
    let p = Pipeline::new();
    let k = p.key.clone();
    let d = p.digest_hex.clone();
    p.upload(
        "build",
        &[("bom.cdx.json", sbom(&d))],
        Some("production"),
        &k,
    )
    .await;
    p.upload(
        "test",
        &[("junit.xml", junit(false)), ("lcov.info", lcov())],
        Some("production"),
        &k,
    )
    .await;
    p.upload(
        "scan",
        &[("trivy.json", trivy(&d, 60, &[]))],
        Some("production"),
        &k,
    )
    .await;
    p.upload(
        "sign",
        &[("app.sig", b"sig".to_vec())],
        Some("production"),
        &k,
    )
    .await;
    p.runner_guard("build", "pass", &k).await;
    let dec = decide(&p, json!({}), p.approvals(good_approvals())).await;
    expect(
        &dec,
        &["runner-tier"],
        "tier build, outcome pass; environment production requires tier production",
    );
}

#[tokio::test]
async fn environment_mismatch_denies() {
    let p = Pipeline::new();
    let scan = trivy(&p.digest_hex, 60, &[]);
    let p = pipeline_with("scan", &[("trivy.json", scan)], "staging").await;
    let d = decide(&p, json!({}), p.approvals(good_approvals())).await;
    expect(&d, &["environment-match"], "made for environment staging");
}

fn approvals_with(change: serde_json::Value) -> serde_json::Value {
    let mut doc = good_approvals();
    custody_policy::engine::merge(&mut doc, change);
    doc
}

#[tokio::test]
async fn approval_cases_deny_with_their_reason() {
    let p = Pipeline::new();
    p.compliant().await;
    let cases = [
        (
            json!({"approvals": [{"login": "alice", "state": "approved"}, {"login": "mallory", "state": "approved"}]}),
            vec!["approvals-count", "approvers-authorized"],
            "mallory",
        ),
        (
            json!({"approvals": [{"login": "alice", "state": "approved"}]}),
            vec!["approvals-count"],
            "1 authorized approval(s) for production; 2 required",
        ),
        (
            json!({"approvals": []}),
            vec!["approvals-count", "separation-of-duties"],
            "",
        ),
        (
            json!({"people": {"prAuthors": [{"login": "alice"}]}}),
            vec!["separation-of-duties"],
            "alice approved but is the PR/MR author",
        ),
        (
            json!({"people": {"commitAuthors": [{"login": "bob"}]}}),
            vec!["separation-of-duties"],
            "bob approved but is a commit author",
        ),
        (
            json!({"people": {"committers": [{"email": "x@example.com", "login": "BOB"}]}}),
            vec!["separation-of-duties"],
            "bob approved but is a committer",
        ),
        (
            json!({"people": {"triggeringActors": [{"login": "alice"}]}}),
            vec!["separation-of-duties"],
            "alice approved but is the triggering actor",
        ),
    ];
    for (change, ids, why) in cases {
        let d = decide(&p, json!({}), p.approvals(approvals_with(change.clone()))).await;
        assert_eq!(d.decision, Verdict::Deny, "{change}");
        expect(&d, &ids, "");
        let all: Vec<&str> = ids.iter().map(|id| message(&d, id)).collect();
        assert!(
            all.iter().any(|m| m.contains(why)),
            "{change}: {all:?} lack {why:?}"
        );
    }
    // the same facts from a file are refused unless the data allows unverified facts
    let d = decide(
        &p,
        json!({"approvals": {"allow_unverified": false}}),
        p.approvals(good_approvals()),
    )
    .await;
    expect(
        &d,
        &[
            "approvers-authorized",
            "environment-protected",
            "separation-of-duties",
        ],
        "not the platform",
    );
}

/// Issue 15, item 12: a secret scan of the repository (Trivy's own golden report) is
/// evidence like any scan; the secrets it found deny, named by rule and place, and the
/// policy input never carries the secret.
#[tokio::test]
async fn a_secret_found_by_a_scan_denies() {
    let p = Pipeline::new();
    p.compliant().await;
    let report = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../custody-formats/tests/data/trivy-secrets.json"),
    )
    .unwrap();
    let key = p.key.clone();
    p.upload(
        "scan",
        &[("secrets.json", report)],
        Some("production"),
        &key,
    )
    .await;
    let cfg = p.config(
        Gate::PreDeploy,
        p.policies(json!({})),
        p.approvals(good_approvals()),
    );
    let input = p.input(&cfg).await;
    let text = serde_json::to_string(&input).unwrap();
    assert!(!text.contains("AWS_ACCESS_KEY_ID="), "{text}");
    assert!(!text.contains("ghp_"), "{text}");
    let d = check::decide(&cfg.policies, &input).unwrap();
    expect(
        &d,
        &["scan-secrets"],
        "found 2 secret(s): aws-access-key-id in deploy.sh:3, mysecret in deploy.sh:7",
    );
}
