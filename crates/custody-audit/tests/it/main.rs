//! The auditor's report from real evidence: every stage's summary, a policy decision and
//! a runner verdict (in the shapes `policy-check` and `runner-guard` record), hostile
//! text escaped, and the page rendered by a real headless browser (Debian `chromium`,
//! named by `CUSTODY_CHROMIUM`; `cargo xtask test` installs it) into a screenshot and a
//! PDF that are checked to hold a page.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::too_many_arguments
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use custody_audit::{AuditOptions, ExportRequest, KeySource, audit_query, export, verify_bundle};
use custody_evidence::{
    ChainLink, Control, Material, PipelineContext, Platform, RecordInfo, ResourceDescriptor,
    SigningKey, TrustedKeys,
};
use custody_store::{
    Draft, EvidenceStore, LocalStore, ObjectSource, Query, Retention, append_record,
};
use serde_json::json;

mod misfiled;

const COMMIT: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";
const HOSTILE: &str = "<script>alert('x')</script>|**bold**";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

fn subject() -> ResourceDescriptor {
    let d = custody_evidence::Digest::of(b"the image manifest");
    ResourceDescriptor::sha256("ghcr.io/acme/app", &d)
}

fn context(job: &str) -> PipelineContext {
    PipelineContext {
        platform: Some(Platform::Github),
        repository: Some("acme/app".into()),
        commit: Some(COMMIT.into()),
        pipeline_id: Some("4242".into()),
        job: Some(job.into()),
        actor: Some(HOSTILE.into()),
        environment: Some("production".into()),
        url: Some("https://github.com/acme/app/actions/runs/4242".into()),
        ..PipelineContext::default()
    }
}

struct Pipeline {
    _dir: tempfile::TempDir,
    root: PathBuf,
    store: LocalStore,
    key: SigningKey,
    retention: Retention,
}

impl Pipeline {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let store = LocalStore::create(root.join("store")).unwrap();
        Self {
            _dir: dir,
            root,
            store,
            key: SigningKey::generate(),
            retention: Retention::hipaa_default().unwrap(),
        }
    }

    async fn record(
        &self,
        job: &str,
        stage: &str,
        predicate_type: &str,
        predicate: serde_json::Value,
        file: Option<&str>,
        summary: Option<serde_json::Value>,
        controls: &[Control],
    ) {
        let mut materials = Vec::new();
        let mut summary = summary;
        if let Some(f) = file {
            let bytes = std::fs::read(fixtures().join(f)).unwrap();
            let name = Path::new(f)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let s = custody_formats::summarize(&name, &bytes).unwrap();
            summary = Some(serde_json::to_value(&s).unwrap());
            let out = self
                .store
                .put_object(ObjectSource::Bytes(&bytes), &self.retention)
                .await
                .unwrap();
            materials.push(Material {
                name,
                digest: out.digest,
                size: out.size,
                media_type: None,
                format: None,
            });
        }
        let ctx = context(job);
        let chain = ctx.chain_id();
        let mut hipaa = Control::baseline();
        hipaa.extend_from_slice(controls);
        let draft = Draft {
            subject: vec![subject()],
            predicate_type: predicate_type.into(),
            predicate: predicate.as_object().cloned().unwrap_or_default(),
            record: RecordInfo {
                stage: stage.into(),
                recorded_at: jiff::Timestamp::now(),
                materials,
                pipeline: ctx,
                hipaa,
                chain: ChainLink {
                    id: chain.clone(),
                    sequence: 0,
                    previous: None,
                },
                summary,
            },
        };
        append_record(
            &self.store,
            &self.key,
            custody_evidence::KeyIdScheme::Empty,
            &chain,
            draft,
            &self.retention,
        )
        .await
        .unwrap();
    }

    /// A release: every stage, a runner verdict, both policy gates, the deploy.
    async fn release(&self) {
        let none = json!({});
        self.record("runner", "runner-guard", "https://custody.dev/runner-guard/report/v1",
            json!({"tier": "production", "outcome": "pass", "checks": [{"id": "runner-group", "status": "pass"}]}),
            None, None, &[Control::AccessManagement]).await;
        self.record(
            "build",
            "build",
            "https://cyclonedx.org/bom",
            none.clone(),
            Some("sbom-cyclonedx/syft-1.5.0-alpine.cdx.json"),
            None,
            &[],
        )
        .await;
        self.record(
            "test",
            "test",
            "https://in-toto.io/attestation/test-result/v0.1",
            none.clone(),
            Some("tests-junit/cargo-nextest-basic.xml"),
            None,
            &[],
        )
        .await;
        self.record(
            "test",
            "test",
            "https://custody.dev/coverage/v1",
            none.clone(),
            Some("coverage-cobertura/coveragepy-4.0.3.cobertura.xml"),
            None,
            &[],
        )
        .await;
        self.record(
            "scan",
            "scan",
            "https://in-toto.io/attestation/vulns/v0.2",
            none.clone(),
            Some("scan-trivy/trivy-debian-buster.json"),
            None,
            &[Control::RiskAnalysis],
        )
        .await;
        self.record(
            "sign",
            "sign",
            "https://custody.dev/signature/v1",
            json!({"signed": subject(), "keyId": "cosign.pub"}),
            None,
            Some(json!({"signed": subject().sha256_digest().unwrap(), "keyId": "cosign.pub"})),
            &[Control::Authentication],
        )
        .await;
        self.record("gate", "policy", "https://custody.dev/policy/decision/v1",
            json!({"gate": "pre-approval", "decision": "deny", "environment": "production",
                   "rules": [{"id": "scan.critical", "status": "fail", "message": "2 CRITICAL vulnerabilities (CVE-2021-3711, CVE-2021-3712)", "control": "164.308(a)(1)(ii)(B)"}],
                   "approvals": []}),
            None, None, &[Control::RiskManagement]).await;
        self.record("gate", "policy", "https://custody.dev/policy/decision/v1",
            json!({"gate": "pre-deploy", "decision": "allow", "environment": "production",
                   "rules": [{"id": "approvers.authorized", "status": "pass", "message": "ok", "control": "164.312(d)"}],
                   "approvals": [{"approver": "carol", "at": "2026-11-29T10:00:00Z", "source": "github"}]}),
            None, None, &[Control::RiskManagement, Control::Authentication]).await;
        self.record("deploy", "deploy", "https://custody.dev/deployment/v1",
            json!({"artifact": subject(), "environment": "production"}), None,
            Some(json!({"environment": "production", "artifact": subject().sha256_digest().unwrap()})),
            &[Control::AccessManagement]).await;
    }

    fn trusted(&self) -> TrustedKeys {
        let pem = self.key.public().pem().to_owned();
        let k = custody_evidence::PublicKey::from_pem(&pem, "ci.pub").unwrap();
        TrustedKeys::new(vec![k])
    }
}

fn commit_query() -> Query {
    Query {
        commit: Some(COMMIT.into()),
        ..Query::default()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_report_shows_every_stage_decision_and_control_and_escapes_hostile_text() {
    let p = Pipeline::new();
    p.release().await;
    let opts = AuditOptions {
        keys: p.trusted(),
        required_stages: ["build", "test", "scan", "sign", "deploy"]
            .map(String::from)
            .to_vec(),
        min_retention_years: 6,
        verified_at: jiff::Timestamp::now(),
        store_label: None,
        required_services: Vec::new(),
        scope: None,
    };
    let audit = audit_query(&p.store, &commit_query(), &opts)
        .await
        .unwrap()
        .audit;
    assert!(audit.ok, "{:?}", audit.findings);
    assert_eq!(audit.totals.records, 9);
    let keys = vec!["keys/ci.pub".to_owned()];
    let meta = custody_audit::report::Meta {
        query: "--commit 9f86d08",
        source: "file:///evidence",
        created_at: audit.verified_at,
        keys: &keys,
    };
    let html = custody_audit::report::html(&audit, &meta);
    for expected in [
        "VERIFIED",
        "ghcr.io/acme/app → production",
        "SBOM: ",
        "components",
        "tests: ",
        "line coverage ",
        "vulnerabilities: ",
        "runner: tier production, outcome pass",
        "pre-approval gate: <strong>deny</strong>",
        "failed scan.critical: 2 CRITICAL vulnerabilities",
        "approved by carol at 2026-11-29T10:00:00Z (github)",
        "164.316(b)(2)(i) Documentation retention",
        "164.308(a)(4) Information access management",
    ] {
        assert!(
            html.contains(expected),
            "the HTML report lacks {expected:?}"
        );
    }
    // evidence is untrusted text: escaped, never markup
    assert!(!html.contains(HOSTILE));
    assert!(!html.contains("<script"));
    assert!(html.contains("&#60;script&#62;"));
    let md = custody_audit::report::markdown(&audit, &meta);
    assert!(md.contains("\\<script\\>"), "{md}");
    assert!(md.contains("\\|\\*\\*bold\\*\\*"), "{md}");
    assert!(md.contains("### ghcr.io/acme/app to production"), "{md}");
    assert!(md.contains("- pre-deploy gate: **allow**"), "{md}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_bundle_verifies_offline_and_its_report_renders_in_a_real_browser() {
    let p = Pipeline::new();
    p.release().await;
    let refs = p.store.query(&commit_query()).await.unwrap();
    let out = p.root.join("audit.tar.gz");
    let req = ExportRequest {
        query: format!("--commit {COMMIT}"),
        filter: commit_query(),
        log_keys: Vec::new(),
        required_stages: ["build", "test", "scan", "deploy"]
            .map(String::from)
            .to_vec(),
        min_retention_years: 6,
        created_at: jiff::Timestamp::now(),
    };
    let exported = export(&p.store, &refs, &p.trusted(), &req, &out)
        .await
        .unwrap();
    assert!(exported.bundle.ok, "{:?}", exported.bundle.findings);
    assert_eq!(exported.source.findings, exported.bundle.findings);
    std::fs::remove_dir_all(p.root.join("store")).unwrap();
    let check = verify_bundle(
        &out,
        &KeySource::Given(p.trusted()),
        &custody_audit::AuditorChecks::default(),
    )
    .await
    .unwrap();
    assert!(
        check.ok(),
        "{:?} {:?}",
        check.consistency,
        check.audit.findings
    );

    let Some(chromium) = std::env::var_os("CUSTODY_CHROMIUM") else {
        eprintln!(
            "CUSTODY_CHROMIUM not set: the report was not rendered in a browser (cargo xtask test sets it)"
        );
        return;
    };
    let dir = p.root.join("unpacked");
    std::fs::create_dir(&dir).unwrap();
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&out)
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let page = dir.join("custody-bundle/report.html");
    let url = format!("file://{}", page.display());
    let shot = p.root.join("report.png");
    let pdf = p.root.join("report.pdf");
    for extra in [
        format!("--screenshot={}", shot.display()),
        format!("--print-to-pdf={}", pdf.display()),
    ] {
        let profile = tempfile::tempdir().unwrap();
        let o = Command::new(&chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-javascript",
                "--window-size=1280,2000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(&extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // the screenshot holds a page: many colours, not one blank sheet
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2000));
    let px = info.color_type.samples();
    let colours: std::collections::BTreeSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    assert!(
        colours.len() > 50,
        "a blank screenshot ({} colours)",
        colours.len()
    );
    let dark = buf[..info.buffer_size()]
        .chunks(px)
        .filter(|c| c.iter().take(3).all(|&v| v < 100))
        .count();
    assert!(dark > 5_000, "no text on the page ({dark} dark pixels)");
    // and it prints: a PDF of at least one page
    let pdf = std::fs::read(&pdf).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(pdf.len() > 10_000, "{} bytes", pdf.len());
    let _ = std::fs::copy(&shot, std::env::temp_dir().join("custody-report.png"));
}

/// Issue 15, item 14: GOVERNANCE-mode locks were warnings (exit 0) while the README says
/// bypassable locks are findings. HIPAA retention needs a lock nobody can lift: an
/// error naming the mode; the COMPLIANCE twin of the same pipeline passes.
#[tokio::test(flavor = "current_thread")]
async fn a_governance_lock_is_an_error() {
    let opts = |p: &Pipeline| AuditOptions {
        keys: p.trusted(),
        required_stages: Vec::new(),
        min_retention_years: 6,
        verified_at: jiff::Timestamp::now(),
        store_label: None,
        required_services: Vec::new(),
        scope: None,
    };
    let compliance = Pipeline::new();
    compliance.release().await;
    let audit = audit_query(&compliance.store, &commit_query(), &opts(&compliance))
        .await
        .unwrap()
        .audit;
    assert!(audit.ok, "{:?}", audit.findings);

    let mut governance = Pipeline::new();
    governance.retention.mode = custody_store::LockMode::Governance;
    governance.release().await;
    let audit = audit_query(&governance.store, &commit_query(), &opts(&governance))
        .await
        .unwrap()
        .audit;
    assert!(!audit.ok, "a GOVERNANCE lock passed");
    let errors: Vec<_> = audit
        .findings
        .iter()
        .filter(|f| f.severity == custody_audit::Severity::Error)
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|f| f.message.contains("GOVERNANCE mode")),
        "{errors:?}"
    );
}
