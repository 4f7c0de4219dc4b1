//! One gate, end to end: gather verified facts, evaluate the policies, store the
//! decision as a signed evidence record. The binary resolves flags into a
//! [`CheckConfig`] and renders the [`CheckOutcome`].

use std::path::PathBuf;

use custody_evidence::{
    ChainLink, Control, Digest, KeyIdScheme, Material, PipelineContext, RecordInfo,
    ResourceDescriptor, Signer, SubjectSpec, TrustedKeys,
};
use custody_store::{Draft, EvidenceStore, ObjectSource, Retention, append_record};
use jiff::Timestamp;

use crate::decision::{ApprovalEntry, DECISION_PREDICATE, DECISION_STAGE, Decision, Status};
use crate::engine::PolicySet;
use crate::error::PolicyError;
use crate::facts::cosign::{self, CosignConfig};
use crate::facts::evidence::{self, Scope};
use crate::facts::github::{self, GitHubConfig};
use crate::facts::gitlab::{self, GitLabConfig};
use crate::facts::{PlatformFacts, log, offline};
use crate::gate::Gate;
use crate::input::{Artifact, PolicyInput};

/// Where approvals, authorship and protection facts come from.
#[derive(Debug, Clone)]
pub enum PlatformSource {
    GitHub(GitHubConfig),
    GitLab(GitLabConfig),
    /// `--approvals FILE`: unverified.
    File(PathBuf),
    /// No platform: those facts stay absent and the rules that need them deny.
    None,
}

/// How the decision is stored.
#[derive(Debug, Clone)]
pub struct RecordSettings {
    pub key: std::sync::Arc<dyn Signer>,
    pub keyid_scheme: KeyIdScheme,
    pub retention: Retention,
}

/// Everything a gate needs, resolved and validated at the edge.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub gate: Gate,
    /// `name@sha256:…` (or `sha256:…`): the artifact being deployed.
    pub subject: String,
    pub environment: Option<String>,
    pub trusted_keys: TrustedKeys,
    pub policies: PolicySet,
    pub context: PipelineContext,
    pub platform: PlatformSource,
    pub cosign: Option<CosignConfig>,
    /// GitHub artifact attestations to read and verify (`--trusted-root`).
    pub attestations: Option<crate::facts::attestations::AttestationsConfig>,
    /// `None`: evaluate only, store nothing (`--no-record`).
    pub record: Option<RecordSettings>,
    pub now: Timestamp,
}

/// A gate's result.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub decision: Decision,
    pub input: PolicyInput,
    /// Facts that could not be had (already reflected as denials).
    pub problems: Vec<String>,
    /// The stored VSA (record digest, signed envelope), when the decision was stored.
    pub vsa: Option<(Digest, Vec<u8>)>,
}

/// Parses the subject into the artifact and its digest.
pub fn artifact(subject: &str) -> Result<(Artifact, Digest), PolicyError> {
    match SubjectSpec::parse(subject) {
        Ok(SubjectSpec::Image { name, digest }) => Ok((
            Artifact {
                name,
                digest: digest.to_string(),
            },
            digest,
        )),
        Ok(SubjectSpec::Digest(digest)) => Ok((
            Artifact {
                name: String::new(),
                digest: digest.to_string(),
            },
            digest,
        )),
        _ => Err(PolicyError::Usage(format!(
            "--subject {subject}: expected the image by manifest digest, `registry/name@sha256:<64 hex>`"
        ))),
    }
}

/// Gathers facts from the store, the registry and the platform into the input.
pub async fn gather_input<S: EvidenceStore>(
    cfg: &CheckConfig,
    store: &S,
) -> Result<(PolicyInput, Vec<String>), PolicyError> {
    let (artifact, digest) = artifact(&cfg.subject)?;
    let scope = Scope {
        digest,
        commit: cfg.context.commit.clone(),
        pipeline: cfg.context.pipeline_key(),
        now: cfg.now,
    };
    let mut input = PolicyInput::new(cfg.gate, cfg.now, artifact);
    input.environment.clone_from(&cfg.environment);
    input.pipeline = serde_json::to_value(&cfg.context).ok();
    evidence::gather(store, &cfg.trusted_keys, &scope, &mut input).await?;
    let log_keys = log::keys(cfg.policies.data())?;
    if !log_keys.is_empty() {
        input.log = Some(log::gather(store, &log_keys, &input.relied_on()).await?);
    }
    if let Some(c) = &cfg.cosign {
        input.cosign = Some(cosign::check(c, &input.artifact.name, &digest).await);
    }
    if let Some(a) = &cfg.attestations {
        input.attestations = Some(crate::facts::attestations::check(a, &digest).await);
    }
    let platform = match (&cfg.platform, &cfg.environment) {
        (PlatformSource::GitHub(g), Some(_)) => github::gather(g, cfg.gate).await?,
        (PlatformSource::GitLab(g), Some(_)) => gitlab::gather(g, cfg.gate).await?,
        (PlatformSource::File(p), _) => offline::read(p)?,
        (_, None) | (PlatformSource::None, _) => PlatformFacts::default(),
    };
    input.approvals = platform.approvals;
    input.people = platform.people;
    input.environment_protection = platform.protection;
    Ok((input, platform.problems))
}

/// Evaluates an input into the decision document (not yet stored).
pub fn decide(policies: &PolicySet, input: &PolicyInput) -> Result<Decision, PolicyError> {
    let eval = policies.evaluate(input)?;
    let mut unverified = Vec::new();
    let mut approvals = Vec::new();
    if let Some(a) = &input.approvals {
        let source = if a.provenance.verified {
            a.provenance.source.clone()
        } else {
            unverified.push(format!("approvals ({})", a.provenance.source));
            format!("{} (unverified)", a.provenance.source)
        };
        approvals = a
            .approvals
            .iter()
            .filter(|x| x.state == "approved")
            .map(|x| ApprovalEntry {
                approver: x.login.clone(),
                at: x.at.clone(),
                source: source.clone(),
            })
            .collect();
    }
    if let Some(p) = &input.people
        && !p.provenance.verified
    {
        unverified.push(format!("authorship ({})", p.provenance.source));
    }
    if let Some(p) = &input.environment_protection
        && !p.provenance.verified
    {
        unverified.push(format!("environment protection ({})", p.provenance.source));
    }
    Ok(Decision {
        gate: input.gate,
        decision: eval.decision,
        environment: input.environment.clone(),
        artifact: input.artifact.clone(),
        evaluated_at: input.evaluated_at.clone(),
        policy_digest: policies.digest().to_string(),
        rules: eval.rules,
        approvals,
        unverified,
        record: None,
    })
}

/// Runs the gate: facts, decision, and (unless `cfg.record` is `None`) the signed
/// decision record, whose material is the exact policy input.
pub async fn run<S: EvidenceStore>(
    cfg: &CheckConfig,
    store: &S,
) -> Result<CheckOutcome, PolicyError> {
    let (input, problems) = gather_input(cfg, store).await?;
    let mut decision = decide(&cfg.policies, &input)?;
    let vsa = record(cfg, store, &input, &mut decision).await?;
    Ok(CheckOutcome {
        decision,
        input,
        problems,
        vsa,
    })
}

/// Stores a decision [`decide`] made on `input` as `cfg.record` says (nothing when it
/// is `None`): the decision record, whose digest goes into `decision.record`, then its
/// VSA, which is returned.
pub async fn record<S: EvidenceStore>(
    cfg: &CheckConfig,
    store: &S,
    input: &PolicyInput,
    decision: &mut Decision,
) -> Result<Option<(Digest, Vec<u8>)>, PolicyError> {
    let Some(rec) = &cfg.record else {
        return Ok(None);
    };
    let digest = store_decision(cfg, store, rec, input, decision).await?;
    decision.record = Some(digest.to_string());
    Ok(Some(store_vsa(cfg, store, rec, input, decision).await?))
}

/// The decision as a VSA (`vsa.rs`), signed and stored after the decision record, in
/// its chain: the record digest and the envelope.
async fn store_vsa<S: EvidenceStore>(
    cfg: &CheckConfig,
    store: &S,
    rec: &RecordSettings,
    input: &PolicyInput,
    decision: &Decision,
) -> Result<(Digest, Vec<u8>), PolicyError> {
    let exceptions = cfg
        .policies
        .data()
        .pointer("/custody/config/exceptions")
        .cloned()
        .unwrap_or_else(|| serde_json::json!([]));
    let appended = append_gate_record(
        cfg,
        store,
        rec,
        crate::vsa::VSA_PREDICATE,
        crate::vsa::predicate(decision, input, &exceptions, decision.record.as_deref()),
        Vec::new(),
        Control::baseline(),
        serde_json::json!({
            "gate": decision.gate,
            "decision": decision.decision,
            "vsa": true,
        }),
    )
    .await?;
    Ok((appended.outcome.digest, appended.envelope))
}

async fn store_decision<S: EvidenceStore>(
    cfg: &CheckConfig,
    store: &S,
    rec: &RecordSettings,
    input: &PolicyInput,
    decision: &Decision,
) -> Result<Digest, PolicyError> {
    let input_bytes =
        serde_json::to_vec_pretty(input).map_err(|e| PolicyError::Input(e.to_string()))?;
    let put = store
        .put_object(ObjectSource::Bytes(&input_bytes), &rec.retention)
        .await?;
    let mut hipaa = Control::baseline();
    hipaa.extend([
        Control::AccessManagement,
        Control::Authentication,
        Control::RiskManagement,
    ]);
    let failed: Vec<&str> = decision
        .rules
        .iter()
        .filter(|r| r.status == Status::Fail)
        .map(|r| r.id.as_str())
        .collect();
    let appended = append_gate_record(
        cfg,
        store,
        rec,
        DECISION_PREDICATE,
        decision.predicate(),
        vec![Material {
            name: "policy-input.json".into(),
            digest: put.digest,
            size: put.size,
            media_type: Some("application/json".into()),
            format: None,
        }],
        hipaa,
        serde_json::json!({
            "gate": decision.gate,
            "decision": decision.decision,
            "failed": failed,
            "policyDigest": decision.policy_digest,
        }),
    )
    .await?;
    Ok(appended.outcome.digest)
}

/// Signs and appends one of the gate's records (stage `policy`, about the artifact) to
/// the job's chain, the environment filled in from the gate's when the platform did not
/// say it.
#[allow(clippy::too_many_arguments)]
async fn append_gate_record<S: EvidenceStore>(
    cfg: &CheckConfig,
    store: &S,
    rec: &RecordSettings,
    predicate_type: &str,
    predicate: serde_json::Map<String, serde_json::Value>,
    materials: Vec<Material>,
    hipaa: Vec<Control>,
    summary: serde_json::Value,
) -> Result<custody_store::Appended, PolicyError> {
    let (artifact, digest) = artifact(&cfg.subject)?;
    let mut context = cfg.context.clone();
    if context.environment.is_none() {
        context.environment.clone_from(&cfg.environment);
    }
    let chain_id = context.chain_id();
    let draft = Draft {
        subject: vec![ResourceDescriptor::sha256(artifact.name, &digest)],
        predicate_type: predicate_type.to_owned(),
        predicate,
        record: RecordInfo {
            stage: DECISION_STAGE.to_owned(),
            recorded_at: cfg.now,
            materials,
            pipeline: context,
            hipaa,
            chain: ChainLink::first(chain_id.clone()),
            summary: Some(summary),
        },
    };
    Ok(append_record(
        store,
        rec.key.as_ref(),
        rec.keyid_scheme,
        &chain_id,
        draft,
        &rec.retention,
    )
    .await?)
}
