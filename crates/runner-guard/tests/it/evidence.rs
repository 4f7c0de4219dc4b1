//! The verdict as evidence: stored as a signed runner attestation per the "runner-guard
//! record" contract, verified the way `custody verify --record` does (envelope, trusted key,
//! material digests), stored for a failing verdict too, and never carrying a secret. A store
//! that cannot be written is exit code 4 with the verdict still printed.

use crate::cli::GitHub;
use crate::support::{API_TOKEN, REQUEST_TOKEN, Sandbox, read_guard_data};
use custody_evidence::{
    Control, Digest, Envelope, PublicKey, SigningKey, TrustedKeys, Verified, verify_envelope,
};
use custody_store::{EvidenceStore as _, Query};
use custody_test_support::oidc::{ISSUER, SHA, github_claims, sign_rs256};

struct Keys {
    pem: String,
    public: PublicKey,
}

fn keys(sandbox: &Sandbox) -> (Keys, std::path::PathBuf) {
    let key = SigningKey::generate();
    let pem = key.to_pkcs8_pem().unwrap();
    let path = sandbox.path("ci.key");
    std::fs::write(&path, &pem).unwrap();
    let public = PublicKey::from_pem(key.public().pem(), "ci.key.pub").unwrap();
    (Keys { pem, public }, path)
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Reads a stored record and verifies it as `custody verify --record` does: the envelope
/// against the trusted key, and every material it names against its digest.
fn verify_stored(store: &str, record: &str, public: &PublicKey) -> (Verified, Vec<u8>) {
    block_on(async {
        let store = custody_store::open_store(store).unwrap();
        let digest = Digest::parse(record).unwrap();
        let bytes = store.get_object(&digest).await.unwrap();
        assert_eq!(Digest::of(&bytes), digest);
        let env = Envelope::from_slice(&bytes).unwrap();
        let verified = verify_envelope(&env, &TrustedKeys::new(vec![public.clone()])).unwrap();
        for m in &verified.statement.record().unwrap().materials {
            store.get_object(&m.digest).await.unwrap();
        }
        // The negative twin: another key does not verify it.
        let other = PublicKey::from_pem(SigningKey::generate().public().pem(), "other").unwrap();
        assert!(verify_envelope(&env, &TrustedKeys::new(vec![other])).is_err());
        (verified, bytes)
    })
}

fn with_store(gh: GitHub) -> (GitHub, Keys, String) {
    let (k, key_path) = keys(&gh.sandbox);
    let store = format!("file://{}", gh.sandbox.path("store").display());
    let gh = gh
        .arg("--store")
        .arg(&store)
        .arg("--key")
        .arg(key_path.to_str().unwrap());
    (gh, k, store)
}

fn no_secrets(bytes: &[u8], gh: &GitHub, k: &Keys) {
    let text = String::from_utf8_lossy(bytes);
    let mut secrets = vec![API_TOKEN.to_owned(), REQUEST_TOKEN.to_owned()];
    secrets.extend(gh.token.clone());
    secrets.extend(k.pem.lines().filter(|l| l.len() > 20).map(str::to_owned));
    for s in secrets {
        assert!(!text.contains(&s), "a secret reached the record");
        assert!(!gh.outputs().contains(&s) && !gh.summary().contains(&s));
    }
}

#[test]
fn passing_verdict_is_stored_as_a_signed_runner_attestation() {
    let (gh, k, store) = with_store(GitHub::production());
    let run = gh.run();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    assert_eq!(v["evidence"]["state"], "stored");
    let record = v["evidence"]["record"].as_str().unwrap().to_owned();
    assert_eq!(v["evidence"]["subject"], format!("git:{SHA}"));

    let (verified, bytes) = verify_stored(&store, &record, &k.public);
    let st = &verified.statement;
    assert_eq!(
        st.predicate_type,
        "https://custody.dev/runner-guard/report/v1"
    );
    assert_eq!(st.subject.len(), 1);
    assert_eq!(st.subject[0].name, format!("git:{SHA}"));
    assert_eq!(st.subject[0].digest["gitCommit"], SHA);
    // The predicate is the report, as printed.
    assert_eq!(st.predicate, v["report"]);
    assert_eq!(st.predicate["tier"], "production");
    assert_eq!(st.predicate["environment"], "production");
    assert_eq!(st.predicate["outcome"], "pass");
    assert!(st.predicate["checks"].as_array().unwrap().len() > 10);
    let rec = st.record().unwrap();
    assert_eq!(rec.stage, "runner-guard");
    for c in [
        Control::AccessManagement,
        Control::AccessControl,
        Control::AuditControls,
    ] {
        assert!(rec.hipaa.contains(&c), "{c} missing: {:?}", rec.hipaa);
    }
    assert_eq!(rec.pipeline.environment.as_deref(), Some("production"));
    assert_eq!(rec.pipeline.commit.as_deref(), Some(SHA));
    assert_eq!(rec.pipeline.job_id.as_deref(), Some("399444496"));
    assert_eq!(rec.pipeline.runner.as_deref(), Some("prod-runner-01"));
    assert_eq!(rec.chain.sequence, 0);
    assert_eq!(
        rec.chain.id,
        "github:acme-health/claims-service:29679449:deploy#1"
    );
    // The tier model is the one material, and its digest is the report's.
    assert_eq!(rec.materials.len(), 1);
    assert_eq!(
        rec.materials[0].digest.to_string(),
        st.predicate["tierModelDigest"].as_str().unwrap()
    );
    assert_eq!(
        Digest::of(&std::fs::read(gh.sandbox.path("tiers.yaml")).unwrap()),
        rec.materials[0].digest
    );
    assert_eq!(rec.summary.as_ref().unwrap()["outcome"], "pass");

    // Findable the way policy-check will look: by commit, stage and environment.
    let found = block_on(async {
        let store = custody_store::open_store(&store).unwrap();
        store
            .query(&Query {
                commit: Some(SHA.into()),
                stage: Some("runner-guard".into()),
                environment: Some("production".into()),
                ..Query::default()
            })
            .await
            .unwrap()
    });
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest.to_string(), record);

    assert!(
        gh.outputs().contains(&format!("record={record}\n")),
        "{}",
        gh.outputs()
    );
    assert!(
        gh.summary().contains(&format!("Record: `{record}`")),
        "{}",
        gh.summary()
    );
    no_secrets(&bytes, &gh, &k);
}

#[test]
fn failing_verdict_is_stored_too_and_the_exit_code_is_the_verdicts() {
    let (gh, k, store) = with_store(GitHub::production());
    gh.sandbox.file("/var/run/docker.sock", "");
    let run = gh.run();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    assert_eq!(v["evidence"]["state"], "stored");
    let (verified, bytes) =
        verify_stored(&store, v["evidence"]["record"].as_str().unwrap(), &k.public);
    assert_eq!(verified.statement.predicate["outcome"], "fail");
    let summary = &verified.statement.record().unwrap().summary;
    assert_eq!(
        summary.as_ref().unwrap()["failedChecks"],
        serde_json::json!(["no-container-socket"])
    );
    no_secrets(&bytes, &gh, &k);
}

#[test]
fn untrusted_verdict_without_a_commit_names_the_tier_model() {
    // No token, no GITHUB_SHA: the subject is the tier model by digest.
    let (gh, k, store) = with_store(GitHub::new(None).arg("--environment").arg("production"));
    let run = gh.run();
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    let (verified, _) = verify_stored(&store, v["evidence"]["record"].as_str().unwrap(), &k.public);
    let st = &verified.statement;
    assert_eq!(st.predicate["outcome"], "untrusted");
    assert_eq!(st.subject[0].name, "tiers.yaml");
    assert_eq!(
        st.subject[0]
            .sha256_digest()
            .map(|d| d.to_string())
            .as_deref(),
        st.predicate["tierModelDigest"].as_str()
    );
    assert_eq!(v["evidence"]["subject"], st.predicate["tierModelDigest"]);

    // With --commit the subject is that commit.
    let (gh, _, _) = with_store(
        GitHub::new(None)
            .arg("--environment")
            .arg("production")
            .arg("--commit")
            .arg(SHA),
    );
    let v = gh.run().json();
    assert_eq!(v["evidence"]["subject"], format!("git:{SHA}"));
}

#[test]
fn signing_key_from_the_environment_is_masked_and_never_printed() {
    let gh = GitHub::production();
    let key = SigningKey::generate();
    let pem = key.to_pkcs8_pem().unwrap();
    let store = format!("file://{}", gh.sandbox.path("store").display());
    let gh = gh
        .arg("--store")
        .arg(&store)
        .var("CUSTODY_SIGNING_KEY_PEM", &pem);
    let run = gh.run();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for line in &body {
        assert!(
            run.stderr.contains(&format!("::add-mask::{line}")),
            "{}",
            run.stderr
        );
        assert!(!run.stdout.contains(line));
        assert!(!gh.outputs().contains(line) && !gh.summary().contains(line));
    }
    let public = PublicKey::from_pem(key.public().pem(), "k").unwrap();
    verify_stored(
        &store,
        run.json()["evidence"]["record"].as_str().unwrap(),
        &public,
    );
}

#[test]
fn unwritable_store_is_exit_4_with_the_verdict_still_printed() {
    let gh = GitHub::production();
    // A store below a regular file cannot be created.
    std::fs::write(gh.sandbox.path("not-a-dir"), "x").unwrap();
    let (k, key_path) = keys(&gh.sandbox);
    let store = format!("file://{}/store", gh.sandbox.path("not-a-dir").display());
    let gh = gh
        .arg("--store")
        .arg(&store)
        .arg("--key")
        .arg(key_path.to_str().unwrap());
    let run = gh.run();
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    let v = run.json();
    assert_eq!(v["report"]["outcome"], "pass");
    assert_eq!(v["evidence"]["state"], "failed");
    assert!(
        run.stderr
            .contains("error: runner-guard: the verdict was not stored as evidence"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("not-a-dir"),
        "the error names the store: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("::error::runner-guard: the verdict was not stored")
    );
    assert!(gh.outputs().contains("exit-code=4\n"), "{}", gh.outputs());
    assert!(gh.outputs().contains("outcome=pass\n"));
    assert!(gh.summary().contains("**not stored**"));
    assert!(!run.stderr.contains(&k.pem));
}

#[test]
fn store_and_key_come_together_or_not_at_all() {
    let gh = GitHub::production().var("CUSTODY_STORE", "file:///tmp/never-created-custody-store");
    let run = gh.run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no signing key"), "{}", run.stderr);
    assert!(!std::path::Path::new("/tmp/never-created-custody-store").exists());

    let sandbox = Sandbox::new();
    let (_, key) = keys(&sandbox);
    let run = GitHub::production()
        .arg("--key")
        .arg(key.to_str().unwrap())
        .run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no store"), "{}", run.stderr);
}

#[test]
fn gate_job_record_carries_the_tier_of_the_environment_it_gates() {
    // A policy gate before the staging deployment's approval: no environment of its own, on a
    // staging runner, judged by the tier `staging` belongs to.
    let mut claims = github_claims(ISSUER);
    let object = claims.as_object_mut().unwrap();
    object.remove("environment");
    object.insert(
        "sub".into(),
        "repo:acme-health/claims-service:ref:refs/heads/main".into(),
    );
    let job = read_guard_data("github-job.json")
        .replace("production-runners", "staging-runners")
        .replace("custody-production", "custody-staging");
    let gh = GitHub::with_api(
        Some(sign_rs256(&claims, false)),
        &job,
        &read_guard_data("github-environment.json"),
    )
    .arg("--for-environment")
    .arg("staging");
    let (gh, k, store) = with_store(gh);
    let run = gh.run();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let tier = run.check("tier");
    assert_eq!(tier["status"], "pass");
    assert_eq!(tier["source"], "verified-token");
    assert!(
        tier["reason"]
            .as_str()
            .unwrap()
            .contains("gating environment `staging`, which belongs to tier `staging`"),
        "{tier}"
    );
    assert!(gh.outputs().contains("tier=staging\n"), "{}", gh.outputs());

    // What policy-check's runner-tier rule reads: the record's `tier` and `outcome`.
    let record = run.json()["evidence"]["record"]
        .as_str()
        .unwrap()
        .to_owned();
    let (verified, bytes) = verify_stored(&store, &record, &k.public);
    let predicate = &verified.statement.predicate;
    assert_eq!(predicate["tier"], "staging");
    assert_eq!(predicate["outcome"], "pass");
    assert_eq!(predicate["environment"], serde_json::Value::Null);
    no_secrets(&bytes, &gh, &k);
}
