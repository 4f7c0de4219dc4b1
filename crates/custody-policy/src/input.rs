//! The policy input: verified facts, assembled in Rust, that the Rego policies decide on.
//!
//! This is a wire format (JSON Schema: `policy-check --print-schema input`, snapshot
//! tested). Absent facts are absent fields or empty lists, never guesses: the policies
//! fail closed on them. Everything cryptographic was checked before a fact got here; a
//! record that did not verify appears only in `rejected`, with the reason.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::gate::Gate;

/// The document handed to the policies as `input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyInput {
    pub gate: Gate,
    /// When the gate ran (RFC 3339, UTC).
    pub evaluated_at: String,
    /// The UTC date of `evaluatedAt` (`YYYY-MM-DD`), for exception expiry dates.
    pub today: String,
    pub artifact: Artifact,
    /// The target environment; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The pipeline this gate runs in, as the CI variables say (unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<serde_json::Value>,
    /// How many records verified against the trusted keys.
    pub verified_records: u64,
    /// Signature records (stage `sign`) that verified.
    pub signatures: Vec<SignatureFact>,
    /// cosign signatures in the registry; absent when not checked (no `--cosign-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosign: Option<CosignFact>,
    /// GitHub artifact attestations of the digest, verified keyless; absent when not
    /// checked (no `--trusted-root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestations: Option<AttestationsFact>,
    pub sboms: Vec<SbomFact>,
    pub scans: Vec<ScanFact>,
    pub tests: Vec<TestFact>,
    pub coverage: Vec<CoverageFact>,
    pub runner_guard: Vec<RunnerGuardFact>,
    /// Records about this artifact or pipeline that failed verification.
    pub rejected: Vec<Rejected>,
    /// Inclusion of the relied-on records in the store's transparency log; absent when
    /// the policy data names no log keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogFact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalsFact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<PeopleFact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_protection: Option<ProtectionFact>,
}

impl PolicyInput {
    /// The input of `gate` evaluated at `now` for `artifact`, before any fact is gathered.
    pub fn new(gate: Gate, now: Timestamp, artifact: Artifact) -> Self {
        Self {
            gate,
            evaluated_at: now.to_string(),
            today: now.to_zoned(TimeZone::UTC).date().to_string(),
            artifact,
            environment: None,
            pipeline: None,
            verified_records: 0,
            signatures: Vec::new(),
            cosign: None,
            attestations: None,
            sboms: Vec::new(),
            scans: Vec::new(),
            tests: Vec::new(),
            coverage: Vec::new(),
            runner_guard: Vec::new(),
            rejected: Vec::new(),
            log: None,
            approvals: None,
            people: None,
            environment_protection: None,
        }
    }

    /// Every record a fact comes from, sorted and once each.
    pub fn relied_on(&self) -> Vec<String> {
        let mut out: BTreeSet<&String> = BTreeSet::new();
        out.extend(self.signatures.iter().map(|f| &f.record));
        out.extend(self.sboms.iter().map(|f| &f.record));
        out.extend(self.scans.iter().map(|f| &f.record));
        out.extend(self.tests.iter().map(|f| &f.record));
        out.extend(self.coverage.iter().map(|f| &f.record));
        out.extend(self.runner_guard.iter().map(|f| &f.record));
        out.into_iter().cloned().collect()
    }
}

/// The image to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// `registry/repository`, as the subject was written (empty for a bare digest).
    pub name: String,
    /// The manifest digest, `sha256:<64 hex>`.
    pub digest: String,
}

/// A verified signature record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignatureFact {
    pub record: String,
    /// The trusted key the record's envelope verified with (its file name).
    pub signer: String,
    /// The artifact signing key the record names (`--signing-key-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub subject_digests: Vec<String>,
    pub recorded_at: String,
}

/// The outcome of checking cosign signatures in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CosignFact {
    /// The signature manifest looked at: `registry/repo:sha256-<hex>.sig`, or
    /// `registry/repo@sha256:<hex> (OCI referrers)` when only cosign v3 bundles verified.
    pub reference: String,
    /// Signatures that verified with a trusted cosign key.
    pub signatures: Vec<CosignSignature>,
    /// Why other signatures (or the lookup) did not count.
    pub problems: Vec<String>,
}

/// One verified cosign signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CosignSignature {
    /// The cosign public key that verified it (its file name).
    pub key: String,
    /// `critical.image.docker-manifest-digest` of the signed payload.
    pub manifest_digest: String,
    /// `critical.identity.docker-reference` of the signed payload (empty for a cosign v3
    /// bundle, whose statement names the digest only).
    pub docker_reference: String,
}

/// A verified SBOM record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SbomFact {
    pub record: String,
    pub subject_digests: Vec<String>,
    /// True when the SBOM file is in the store with the recorded digest and says what
    /// the record's summary says.
    pub material_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub material_problem: Option<String>,
    /// The image manifest digest the SBOM describes (its `pkg:oci` purl).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub describes: Option<String>,
    pub oci_digests: Vec<String>,
    pub component_count: u64,
    pub licenses: Vec<String>,
    /// The components, when the SBOM file is JSON and could be read.
    pub components: Vec<Component>,
}

/// One SBOM component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    pub licenses: Vec<String>,
}

/// A verified vulnerability scan record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanFact {
    pub record: String,
    pub subject_digests: Vec<String>,
    pub scanner: String,
    /// Image manifest digests the report names (Trivy RepoDigests, Grype manifestDigest).
    pub manifest_digests: Vec<String>,
    /// The image config digest (Trivy ImageID, Grype imageID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// When the scan ran (RFC 3339), if the report says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_at: Option<String>,
    /// Seconds between the scan and the gate; absent without a scan time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
    /// The environment recorded with the scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    pub counts: SeverityCounts,
    pub findings: Vec<Finding>,
    /// Secrets the scan found; absent when the report holds no secret scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsFact>,
    /// Failed misconfiguration checks; absent when the report holds no config scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misconfigurations: Option<MisconfigurationsFact>,
}

/// Secrets a scan found: how many, of which rules and where, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretsFact {
    pub total: u64,
    pub counts: SeverityCounts,
    /// `rule in target:line`, one per secret.
    pub found: Vec<String>,
}

/// Failed misconfiguration checks of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MisconfigurationsFact {
    pub failures: u64,
    pub counts: SeverityCounts,
    /// The failed checks' ids.
    pub ids: Vec<String>,
}

/// Finding counts by severity: the type the scan summaries carry.
pub use custody_formats::SeverityCounts;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub id: String,
    /// `critical`, `high`, `medium`, `low`, `negligible` or `unknown`.
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// A verified test-result record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestCounts {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub errored: u64,
    pub skipped: u64,
}

/// A verified test-result record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestFact {
    pub record: String,
    #[serde(flatten)]
    pub counts: TestCounts,
}

/// A verified coverage record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverageFact {
    pub record: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_rate: Option<f64>,
    pub lines_valid: u64,
    pub lines_covered: u64,
}

/// A verified runner-guard record of this pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunnerGuardFact {
    pub record: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `pass`, `fail` or `untrusted`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// GitHub artifact attestations of the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttestationsFact {
    /// Where they were read: `owner/repo`.
    pub repository: String,
    /// Bundles that verified keyless against the trusted root, about this digest.
    pub verified: Vec<AttestationFact>,
    /// Why others (or the lookup) did not count.
    pub problems: Vec<String>,
}

/// One verified attestation: what it says and who signed it (the policy judges who).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttestationFact {
    pub predicate_type: String,
    /// The OIDC issuer the Fulcio certificate names.
    pub issuer: String,
    /// The certificate's subject alternative name (a workflow URI, an e-mail address).
    pub identity: String,
    /// The trusted time of the signature (RFC 3339).
    pub time: String,
    /// Its Rekor log index.
    pub log_index: Option<u64>,
}

/// Inclusion of the relied-on records in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogFact {
    /// The latest checkpoint a log key of the policy data verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointFact>,
    /// Why there is no checkpoint to rely on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Every record the facts above come from.
    pub records: Vec<LogRecordFact>,
}

/// A verified log checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointFact {
    pub origin: String,
    pub size: u64,
    /// The tree root, base64.
    pub root: String,
    /// When it was signed (RFC 3339), if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
}

/// One relied-on record's place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogRecordFact {
    pub record: String,
    /// Its log index, present only when its inclusion under the checkpoint was proven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Why inclusion was disproven (an index marker naming another record's entry, a
    /// leaf that does not authenticate), beyond simply not being sequenced yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A record that did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub record: String,
    /// The stage the record claims (unverified), or `unknown`.
    pub stage: String,
    pub reason: String,
}

/// Where platform facts came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// `github`, `gitlab`, or `file:<path>` for `--approvals FILE`.
    pub source: String,
    /// True only for answers of the platform API.
    pub verified: bool,
}

/// Approvals of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalsFact {
    #[serde(flatten)]
    pub provenance: Provenance,
    pub approvals: Vec<Approval>,
}

/// One approval (or rejection) of the deployment to the target environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    pub login: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// When it was given (RFC 3339), where the platform says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// `approved` or `rejected`.
    pub state: String,
}

/// A person as the platform names them: a login, a name, an e-mail, or several.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Person {
    pub fn login(login: &str) -> Self {
        Self {
            login: Some(login.to_owned()),
            ..Self::default()
        }
    }
}

/// Who wrote, committed and triggered the change, for separation of duties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PeopleFact {
    #[serde(flatten)]
    pub provenance: Provenance,
    pub pr_authors: Vec<Person>,
    pub commit_authors: Vec<Person>,
    pub committers: Vec<Person>,
    pub triggering_actors: Vec<Person>,
}

impl PeopleFact {
    /// No one yet, from `provenance`.
    pub fn new(provenance: Provenance) -> Self {
        Self {
            provenance,
            pr_authors: Vec::new(),
            commit_authors: Vec::new(),
            committers: Vec::new(),
            triggering_actors: Vec::new(),
        }
    }
}

/// The environment's protection on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProtectionFact {
    #[serde(flatten)]
    pub provenance: Provenance,
    /// A human must approve deployments to the environment.
    pub required_reviewers: bool,
    /// Who may approve, as the platform lists them.
    pub reviewers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevent_self_review: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_admins_bypass: Option<bool>,
}
