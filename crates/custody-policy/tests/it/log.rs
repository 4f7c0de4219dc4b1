//! `evidence-logged`: policy data can require that every record the gate relies on is
//! included in a checkpoint of the store's transparency log (issue 14, item 2). Real
//! records from evidence-upload in a local store, a real log key and checkpoint; each
//! attack changes the store under the gate and expects the rule to deny, naming the
//! record.

use custody_policy::{Status, Verdict};
use custody_store::log::{self, LogSigner};
use custody_store::{LocalStore, Retention};
use serde_json::json;

use crate::support::{Pipeline, good_approvals, hex, trivy};

async fn decide_with(p: &Pipeline, data: serde_json::Value) -> custody_policy::Decision {
    let cfg = p.config(
        custody_policy::Gate::PreDeploy,
        p.policies(data),
        p.approvals(good_approvals()),
    );
    let input = p.input(&cfg).await;
    custody_policy::check::decide(&cfg.policies, &input).unwrap()
}

fn rule<'a>(d: &'a custody_policy::Decision, id: &str) -> &'a custody_policy::RuleResult {
    d.rules.iter().find(|r| r.id == id).unwrap()
}

fn log_key() -> (LogSigner, String) {
    let (s, v) = log::generate_log_key("example.org/custody-log").unwrap();
    (LogSigner::parse(&s).unwrap(), v.to_string())
}

async fn checkpoint(p: &Pipeline, signer: &LogSigner) {
    let store = LocalStore::create(p.store_path().to_str().unwrap()).unwrap();
    log::checkpoint(&store, signer, &Retention::hipaa_default().unwrap())
        .await
        .unwrap();
}

fn required(key: &str) -> serde_json::Value {
    json!({"log": {"keys": [key], "require_checkpoint": true}})
}

#[tokio::test]
async fn every_relied_on_record_in_a_checkpoint_allows() {
    let p = Pipeline::new();
    p.compliant().await;
    let (signer, key) = log_key();
    checkpoint(&p, &signer).await;
    let d = decide_with(&p, required(&key)).await;
    assert_eq!(d.decision, Verdict::Allow, "{d:#?}");
    let r = rule(&d, "evidence-logged");
    assert_eq!(r.status, Status::Pass, "{r:?}");
    // SBOM, tests, coverage, scan, signature and runner-guard records (the store also
    // holds the build's provenance, which no fact comes from)
    assert!(
        r.message.starts_with(
            "6 record(s) included in log example.org/custody-log's checkpoint of size 7"
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn no_checkpoint_denies_when_required_and_skips_when_not() {
    let p = Pipeline::new();
    p.compliant().await;
    let (_, key) = log_key();
    let d = decide_with(&p, required(&key)).await;
    assert_eq!(d.decision, Verdict::Deny);
    let r = rule(&d, "evidence-logged");
    assert_eq!(r.status, Status::Fail);
    assert!(
        r.message
            .contains("has no checkpoint signed by the policy data's log keys"),
        "{r:?}"
    );

    let d = decide_with(&p, json!({"log": {"keys": [key]}})).await;
    assert_eq!(rule(&d, "evidence-logged").status, Status::Skip);
    assert_eq!(d.decision, Verdict::Allow, "{d:#?}");
}

#[tokio::test]
async fn a_record_after_the_checkpoint_denies_naming_it() {
    let p = Pipeline::new();
    p.compliant().await;
    let (signer, key) = log_key();
    checkpoint(&p, &signer).await;
    // a newer scan, stored and sequenced after the checkpoint: the gate relies on it
    let key_ = p.key.clone();
    p.upload(
        "scan",
        &[("trivy2.json", trivy(&p.digest_hex, 60, &[]))],
        Some("production"),
        &key_,
    )
    .await;
    let d = decide_with(&p, required(&key)).await;
    let r = rule(&d, "evidence-logged");
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert!(
        r.message.contains(
            "is not in the log's checkpoint of size 7: it was sequenced after the checkpoint"
        ),
        "{r:?}"
    );
    assert_eq!(d.decision, Verdict::Deny);
    // checkpointing again includes it
    checkpoint(&p, &signer).await;
    let d = decide_with(&p, required(&key)).await;
    assert_eq!(rule(&d, "evidence-logged").status, Status::Pass, "{d:#?}");
}

#[tokio::test]
async fn a_checkpoint_signed_by_another_key_is_not_relied_on() {
    let p = Pipeline::new();
    p.compliant().await;
    let (signer, _) = log_key();
    let (_, other) = log_key();
    checkpoint(&p, &signer).await;
    let d = decide_with(&p, required(&other)).await;
    let r = rule(&d, "evidence-logged");
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert!(r.message.contains("no log checkpoint to rely on"), "{r:?}");
}

#[tokio::test]
async fn a_forged_index_marker_is_disproven() {
    let p = Pipeline::new();
    p.compliant().await;
    let (signer, key) = log_key();
    checkpoint(&p, &signer).await;
    let input = {
        let cfg = p.config(
            custody_policy::Gate::PreDeploy,
            p.policies(required(&key)),
            p.approvals(good_approvals()),
        );
        p.input(&cfg).await
    };
    let scan = input.scans[0].record.clone();
    let logged = input.log.unwrap();
    let at = logged
        .records
        .iter()
        .find(|r| r.record == scan)
        .unwrap()
        .index
        .unwrap();
    // the scan's marker now names another record's index
    let hexd = scan.strip_prefix("sha256:").unwrap();
    let marker = p
        .store_path()
        .join("log/records")
        .join(&hexd[..2])
        .join(hexd);
    let mut perms = std::fs::metadata(&marker).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&marker, perms).unwrap();
    std::fs::write(&marker, format!("{}\n", (at + 1) % 7)).unwrap();
    let d = decide_with(&p, required(&key)).await;
    let r = rule(&d, "evidence-logged");
    assert_eq!(r.status, Status::Fail, "{r:?}");
    assert!(
        r.message
            .contains(&format!("record {scan} is not in the log")),
        "{r:?}"
    );
    assert!(r.message.contains("whose entry is record"), "{r:?}");
}

#[tokio::test]
async fn bad_log_keys_in_policy_data_are_an_error() {
    let p = Pipeline::new();
    p.compliant().await;
    let cfg = p.config(
        custody_policy::Gate::PreDeploy,
        p.policies(json!({"log": {"keys": ["not a key"]}})),
        p.approvals(good_approvals()),
    );
    let store = LocalStore::create(p.store_path().to_str().unwrap()).unwrap();
    let err = custody_policy::check::gather_input(&cfg, &store)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("log.keys[0]"), "{err}");
    let _ = hex(1);
}

/// The README's policy data for `evidence-logged`, as written there (its placeholder
/// key replaced by this log's), gates on the log.
#[tokio::test]
async fn the_readme_policy_data_requires_the_log() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let block = readme
        .split("<!-- readme: log-policy -->\n```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("README's log policy block");
    let mut data: serde_json::Value = serde_yaml_ng::from_str(block).unwrap();
    assert_eq!(data["log"]["require_checkpoint"], true, "{block}");
    let p = Pipeline::new();
    p.compliant().await;
    let (signer, key) = log_key();
    data["log"]["keys"] = json!([key]);
    let d = decide_with(&p, data.clone()).await;
    assert_eq!(rule(&d, "evidence-logged").status, Status::Fail);
    checkpoint(&p, &signer).await;
    let d = decide_with(&p, data).await;
    assert_eq!(rule(&d, "evidence-logged").status, Status::Pass, "{d:#?}");
    assert_eq!(d.decision, Verdict::Allow);
}
