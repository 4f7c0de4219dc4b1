//! Test support: a pipeline's evidence written by the real evidence-upload into a
//! local store, and a runner-guard record of the HELPERS.md contract shape. The loopback
//! server for platform APIs is custody-test-support's (`http`).

use std::path::{Path, PathBuf};

use custody_evidence::{
    ChainLink, Control, KeyIdScheme, PipelineContext, Platform, RecordInfo, ResourceDescriptor,
    SigningKey, TrustedKeys,
};
use custody_policy::check::{self, CheckConfig, PlatformSource};
use custody_policy::{Gate, PolicyInput, PolicySet};
use custody_store::{Draft, LocalStore, Retention, append_record};
use evidence_upload::{Config, Stage};
use serde_json::{Value, json};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// custody-policy's test data (also from custody-gate's tests, which share this file).
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../custody-policy/tests/data")
        .join(name)
}

pub fn hex(n: u8) -> String {
    format!("{n:x}").repeat(64)
}

/// A CycloneDX SBOM (syft's alpine fixture) describing `digest` by its pkg:oci purl.
pub fn sbom(digest_hex: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("sbom-cyclonedx/syft-1.5.0-alpine.cdx.json")).unwrap(),
    )
    .unwrap();
    v["metadata"]["component"]["purl"] = json!(format!(
        "pkg:oci/app@sha256:{digest_hex}?repository_url=ghcr.io/acme/app"
    ));
    serde_json::to_vec_pretty(&v).unwrap()
}

/// A Trivy report (alpine fixture: 4 MEDIUM) of `digest`, scanned `age` seconds ago,
/// with extra findings `(id, severity)`.
pub fn trivy(digest_hex: &str, age: i64, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(
        &std::fs::read(fixtures().join("scan-trivy/trivy-alpine-310.json")).unwrap(),
    )
    .unwrap();
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(age);
    v["CreatedAt"] = json!(at.to_string());
    v["Metadata"]["RepoDigests"] = json!([format!("ghcr.io/acme/app@sha256:{digest_hex}")]);
    let template = v["Results"][0]["Vulnerabilities"][0].clone();
    for (id, sev) in extra {
        let mut f = template.clone();
        f["VulnerabilityID"] = json!(id);
        f["Severity"] = json!(sev);
        v["Results"][0]["Vulnerabilities"]
            .as_array_mut()
            .unwrap()
            .push(f);
    }
    serde_json::to_vec_pretty(&v).unwrap()
}

pub fn junit(failed: bool) -> Vec<u8> {
    let case = if failed {
        r#"<testcase classname="app" name="c"><failure message="boom">boom</failure></testcase>"#
    } else {
        r#"<testcase classname="app" name="c"/>"#
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><testsuites><testsuite name="app" tests="3"><testcase classname="app" name="a"/><testcase classname="app" name="b"/>{case}</testsuite></testsuites>"#
    )
    .into_bytes()
}

/// lcov with 3 of 4 lines covered (75%).
pub fn lcov() -> Vec<u8> {
    b"TN:\nSF:src/lib.rs\nDA:1,1\nDA:2,1\nDA:3,4\nDA:4,0\nLF:4\nLH:3\nend_of_record\n".to_vec()
}

/// A pipeline's store, keys and workspace.
pub struct Pipeline {
    pub dir: tempfile::TempDir,
    pub key: SigningKey,
    pub digest_hex: String,
}

impl Pipeline {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ws")).unwrap();
        Self {
            dir,
            key: SigningKey::generate(),
            digest_hex: hex(1),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn subject(&self) -> String {
        format!("ghcr.io/acme/app@sha256:{}", self.digest_hex)
    }

    pub fn context(&self, job: &str, environment: Option<&str>) -> PipelineContext {
        PipelineContext {
            platform: Some(Platform::Github),
            server: Some("https://github.com".into()),
            repository: Some("acme/app".into()),
            commit: Some(COMMIT.into()),
            pipeline_id: Some("42".into()),
            job: Some(job.into()),
            environment: environment.map(str::to_owned),
            source: Some("flags".into()),
            ..PipelineContext::default()
        }
    }

    /// Runs evidence-upload's library for a stage with the given files.
    pub async fn upload(
        &self,
        stage: &str,
        files: &[(&str, Vec<u8>)],
        environment: Option<&str>,
        key: &SigningKey,
    ) {
        let ws = self.dir.path().join("ws");
        let mut paths = Vec::new();
        for (name, bytes) in files {
            let p = ws.join(name);
            std::fs::write(&p, bytes).unwrap();
            paths.push(PathBuf::from(name));
        }
        let cfg = Config {
            stage: Stage::parse(stage).unwrap(),
            subject: self.subject(),
            files: paths.iter().map(|p| ws.join(p)).collect(),
            workspace: ws.clone(),
            store: self.store_path().display().to_string(),
            spool: self.dir.path().join("spool"),
            keyid_scheme: KeyIdScheme::Empty,
            retention: Retention::hipaa_default().unwrap(),
            context: self.context(stage, environment),
            signing_key_id: (stage == "sign").then(|| "cosign.pub".to_owned()),
            max_parse_bytes: 1 << 30,
            inline_bytes: 4 << 20,
            scan: None,
        };
        let store = custody_store::AnyStore::Local(LocalStore::create(&cfg.store).unwrap());
        evidence_upload::run(&cfg, key, || Ok(store)).await.unwrap();
    }

    /// A runner-guard record as HELPERS.md specifies it.
    pub async fn runner_guard(&self, tier: &str, outcome: &str, key: &SigningKey) {
        let ctx = self.context("deploy", Some("production"));
        self.runner_guard_in(ctx, tier, outcome, key).await;
    }

    /// A runner-guard record of the run `ctx` names.
    pub async fn runner_guard_in(
        &self,
        ctx: PipelineContext,
        tier: &str,
        outcome: &str,
        key: &SigningKey,
    ) {
        let store = LocalStore::create(self.store_path().to_str().unwrap()).unwrap();
        let mut hipaa = Control::baseline();
        hipaa.push(Control::AccessManagement);
        let mut subject = ResourceDescriptor::sha256("", &custody_evidence::Digest::of(b""));
        subject.digest.clear();
        subject.digest.insert("gitCommit".into(), COMMIT.into());
        subject.name = format!("git:{COMMIT}");
        let predicate = json!({
            "schema": "https://custody.dev/runner-guard/report/v1",
            "platform": "github",
            "tier": tier,
            "environment": "production",
            "requireVerified": true,
            "tierModelDigest": format!("sha256:{}", hex(9)),
            "outcome": outcome,
            "exitCode": if outcome == "pass" { 0 } else { 1 },
            "checks": [{"id": "runner-environment", "status": outcome, "source": "verified-token", "reason": "test"}],
            "claims": null,
            "runner": null,
            "local": {},
        });
        let draft = Draft {
            subject: vec![subject],
            predicate_type: "https://custody.dev/runner-guard/report/v1".into(),
            predicate: predicate.as_object().unwrap().clone(),
            record: RecordInfo {
                stage: "runner-guard".into(),
                recorded_at: jiff::Timestamp::now(),
                materials: vec![],
                pipeline: ctx.clone(),
                hipaa,
                chain: ChainLink {
                    id: String::new(),
                    sequence: 0,
                    previous: None,
                },
                summary: None,
            },
        };
        append_record(
            &store,
            key,
            KeyIdScheme::Empty,
            &ctx.chain_id(),
            draft,
            &Retention::hipaa_default().unwrap(),
        )
        .await
        .unwrap();
    }

    /// Every stage of a compliant pipeline.
    pub async fn compliant(&self) {
        let key = self.key.clone();
        self.upload(
            "build",
            &[("bom.cdx.json", sbom(&self.digest_hex))],
            Some("production"),
            &key,
        )
        .await;
        self.upload(
            "test",
            &[("junit.xml", junit(false)), ("lcov.info", lcov())],
            Some("production"),
            &key,
        )
        .await;
        self.upload(
            "scan",
            &[("trivy.json", trivy(&self.digest_hex, 3600, &[]))],
            Some("production"),
            &key,
        )
        .await;
        self.upload(
            "sign",
            &[("app.sig", b"MEUCIQD-signature-bytes".to_vec())],
            Some("production"),
            &key,
        )
        .await;
        self.runner_guard("production", "pass", &key).await;
    }

    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys::new(vec![self.key.public().clone()])
    }

    /// The built-in policies with the test data (tests/data/policy-data.yaml) and extra data.
    pub fn policies(&self, extra: Value) -> PolicySet {
        let extra_path = self
            .dir
            .path()
            .join(format!("extra-{}.json", rand_suffix()));
        std::fs::write(&extra_path, serde_json::to_vec(&extra).unwrap()).unwrap();
        PolicySet::load(&[], &[data("policy-data.yaml"), extra_path], false).unwrap()
    }

    pub fn config(&self, gate: Gate, policies: PolicySet, platform: PlatformSource) -> CheckConfig {
        CheckConfig {
            gate,
            subject: self.subject(),
            environment: Some("production".into()),
            trusted_keys: self.trusted(),
            policies,
            context: self.context("deploy", Some("production")),
            platform,
            cosign: None,
            attestations: None,
            record: None,
            now: jiff::Timestamp::now(),
        }
    }

    pub async fn input(&self, cfg: &CheckConfig) -> PolicyInput {
        let store = LocalStore::create(self.store_path().to_str().unwrap()).unwrap();
        check::gather_input(cfg, &store).await.unwrap().0
    }

    /// Writes an approvals file and returns the platform source reading it.
    pub fn approvals(&self, doc: Value) -> PlatformSource {
        let p = self
            .dir
            .path()
            .join(format!("approvals-{}.json", rand_suffix()));
        std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
        PlatformSource::File(p)
    }
}

pub fn rand_suffix() -> String {
    custody_evidence::Digest::of(
        &std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            .to_le_bytes(),
    )
    .hex()[..12]
        .to_owned()
}

/// Approvals, authorship and protection facts where nobody approves their own change.
pub fn good_approvals() -> Value {
    json!({
        "approvals": [
            {"login": "alice", "state": "approved", "at": "2026-11-29T09:00:00Z"},
            {"login": "bob", "state": "approved", "at": "2026-11-29T09:05:00Z"}
        ],
        "people": {
            "prAuthors": [{"login": "dev"}],
            "commitAuthors": [{"login": "dev", "name": "Dev Eloper", "email": "dev@example.com"}],
            "committers": [{"login": "dev"}],
            "triggeringActors": [{"login": "releaser"}]
        },
        "environmentProtection": {"requiredReviewers": true, "reviewers": ["user:alice", "user:bob"], "canAdminsBypass": false}
    })
}
