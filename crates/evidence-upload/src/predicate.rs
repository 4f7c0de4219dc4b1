//! Statement predicates: the standard in-toto predicate types where they exist
//! (CycloneDX, SPDX, test-result v0.1, vulns v0.2, SLSA provenance v1) and Custody
//! types for the rest (coverage, large SBOMs, signatures, deployments). The normalized
//! summary travels separately, in the record, so every record has one in one place.

use custody_evidence::{Material, PipelineContext, ResourceDescriptor};
use custody_formats::{Format, ScanSummary, Summary, TestSummary};
use serde_json::{Map, Value, json};

pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
pub const SPDX: &str = "https://spdx.dev/Document";
pub const TEST_RESULT: &str = "https://in-toto.io/attestation/test-result/v0.1";
pub const VULNS: &str = "https://in-toto.io/attestation/vulns/v0.2";
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
pub const SBOM_REF: &str = "https://custody.dev/sbom/v1";
pub const COVERAGE: &str = "https://custody.dev/coverage/v1";
pub const SIGNATURE: &str = "https://custody.dev/signature/v1";
pub const DEPLOYMENT: &str = "https://custody.dev/deployment/v1";
pub const MATERIAL: &str = "https://custody.dev/material/v1";
/// The build type of the SLSA provenance Custody writes for a CI build.
pub const BUILD_TYPE: &str = "https://custody.dev/ci-build/v1";

/// A descriptor of a stored material, as predicates reference it.
pub fn material_descriptor(m: &Material) -> Value {
    let mut d = object(json!({
        "name": m.name,
        "digest": { "sha256": m.digest.hex() },
    }));
    if let Some(mt) = &m.media_type {
        d.insert("mediaType".into(), Value::String(mt.clone()));
    }
    Value::Object(d)
}

pub fn media_type(format: Format) -> &'static str {
    match format {
        Format::CycloneDxJson => "application/vnd.cyclonedx+json",
        Format::CycloneDxXml => "application/vnd.cyclonedx+xml",
        Format::SpdxJson => "application/spdx+json",
        Format::JunitXml | Format::CoberturaXml => "application/xml",
        Format::Lcov => "text/plain",
        Format::Sarif => "application/sarif+json",
        Format::TrivyJson | Format::GrypeJson => "application/json",
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other);
            m
        }
    }
}

/// The predicate for a parsed evidence file. `inline` is the parsed document when the
/// caller chose to inline it (small JSON SBOMs): the standard SBOM predicate types
/// are the document itself, so larger ones get a reference predicate instead.
pub fn for_summary(
    summary: &Summary,
    material: &Material,
    inline: Option<Value>,
    ctx: &PipelineContext,
) -> (String, Map<String, Value>) {
    match summary {
        Summary::Sbom(s) => match (s.format, inline) {
            (Format::CycloneDxJson, Some(doc)) => (CYCLONEDX.into(), object(doc)),
            (Format::SpdxJson, Some(doc)) => (SPDX.into(), object(doc)),
            _ => (
                SBOM_REF.into(),
                object(json!({ "sbom": material_descriptor(material), "format": s.format })),
            ),
        },
        Summary::Tests(t) => (TEST_RESULT.into(), test_result(t, material, ctx)),
        Summary::Coverage(_) => (
            COVERAGE.into(),
            object(json!({ "report": material_descriptor(material) })),
        ),
        Summary::Scan(s) => (VULNS.into(), vulns(s)),
    }
}

/// in-toto test-result v0.1. JUnit reports carry test names, but the summary keeps
/// counts; the lists stay empty rather than guessed, and counts are in the record.
fn test_result(t: &TestSummary, material: &Material, ctx: &PipelineContext) -> Map<String, Value> {
    let result = if t.failed + t.errored > 0 {
        "FAILED"
    } else if t.total == 0 {
        "WARNED"
    } else {
        "PASSED"
    };
    let mut m = object(json!({
        "result": result,
        "configuration": [material_descriptor(material)],
    }));
    if let Some(url) = &ctx.url {
        m.insert("url".into(), Value::String(url.clone()));
    }
    m
}

/// in-toto vulns v0.2: scanner, database and every finding with its severity.
fn vulns(s: &ScanSummary) -> Map<String, Value> {
    let result: Vec<Value> = s
        .findings
        .iter()
        .map(|f| {
            let mut r = object(json!({
                "id": f.id,
                "severity": [{ "method": "scanner", "score": f.severity }],
            }));
            let mut ann = Map::new();
            if let Some(p) = &f.package {
                ann.insert("package".into(), Value::String(p.clone()));
            }
            if let Some(v) = &f.version {
                ann.insert("version".into(), Value::String(v.clone()));
            }
            if !ann.is_empty() {
                r.insert("annotations".into(), Value::Array(vec![Value::Object(ann)]));
            }
            Value::Object(r)
        })
        .collect();
    let mut scanner = object(json!({
        "uri": s.scanner.name,
        "result": result,
    }));
    if let Some(v) = &s.scanner.version {
        scanner.insert("version".into(), Value::String(v.clone()));
    }
    if let Some(db) = &s.db {
        let mut d = Map::new();
        if let Some(v) = &db.version {
            d.insert("version".into(), Value::String(v.clone()));
        }
        if let Some(u) = db.updated.as_ref().and_then(|u| u.utc) {
            d.insert("lastUpdate".into(), Value::String(u.to_string()));
        }
        scanner.insert("db".into(), Value::Object(d));
    }
    let mut m = object(json!({ "scanner": scanner }));
    if let Some(t) = s.scanned_at.as_ref().and_then(|t| t.utc) {
        m.insert(
            "metadata".into(),
            json!({ "scanStartedOn": t.to_string(), "scanFinishedOn": t.to_string() }),
        );
    }
    m
}

/// SLSA provenance v1 for a CI build, from the pipeline context. Fields the platform
/// did not provide are left out, not invented.
pub fn provenance(ctx: &PipelineContext, byproducts: &[Material]) -> Map<String, Value> {
    let mut external = Map::new();
    for (k, v) in [
        ("repository", &ctx.repository),
        ("ref", &ctx.ref_),
        ("job", &ctx.job),
    ] {
        if let Some(v) = v {
            external.insert(k.into(), Value::String(v.clone()));
        }
    }
    let mut deps = Vec::new();
    if let (Some(repo), Some(commit)) = (&ctx.repository, &ctx.commit) {
        let server = ctx.server.as_deref().unwrap_or("");
        let mut uri = format!("git+{server}/{repo}");
        if let Some(r) = &ctx.ref_ {
            uri.push('@');
            uri.push_str(r);
        }
        deps.push(json!({ "uri": uri, "digest": { "gitCommit": commit } }));
    }
    let builder = match (&ctx.server, &ctx.repository) {
        (Some(s), Some(r)) => format!("{s}/{r}/custody-ci-builder"),
        _ => "https://custody.dev/local-builder".into(),
    };
    let mut metadata = Map::new();
    if let Some(id) = ctx.url.clone().or_else(|| ctx.pipeline_key()) {
        metadata.insert("invocationId".into(), Value::String(id));
    }
    metadata.insert(
        "finishedOn".into(),
        Value::String(jiff::Timestamp::now().to_string()),
    );
    object(json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": { "platform": ctx.platform },
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": { "id": builder },
            "metadata": metadata,
            "byproducts": byproducts.iter().map(material_descriptor).collect::<Vec<_>>(),
        },
    }))
}

/// A signature record: what was signed, by which key, with which signature bytes.
pub fn signature(
    subject: &ResourceDescriptor,
    key_id: Option<&str>,
    sig: Option<&Material>,
) -> Map<String, Value> {
    let mut m = object(json!({ "signed": subject }));
    if let Some(k) = key_id {
        m.insert("keyId".into(), Value::String(k.to_owned()));
    }
    if let Some(s) = sig {
        m.insert("signature".into(), material_descriptor(s));
    }
    m
}

/// A deployment record: what went where.
pub fn deployment(
    subject: &ResourceDescriptor,
    environment: &str,
    manifests: &[Material],
) -> Map<String, Value> {
    object(json!({
        "artifact": subject,
        "environment": environment,
        "deployedAt": jiff::Timestamp::now().to_string(),
        "manifests": manifests.iter().map(material_descriptor).collect::<Vec<_>>(),
    }))
}
