//! Grype JSON reports. `source.target` is a string for directory and file scans
//! and an object for images; for images, `manifestDigest` and `repoDigests` are
//! manifest digests and `imageID` is the config digest, kept apart as for Trivy.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use crate::error::FormatError;
use crate::format::{Format, scalar};
use crate::json::{self, nullable};
use crate::summary::{
    DbInfo, Finding, ReportTime, ScanSummary, Severity, SeverityCounts, Tool, repo_digest,
    sha256_digest, sorted,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Document {
    #[serde(deserialize_with = "nullable")]
    matches: Vec<Match>,
    source: Option<Source>,
    #[serde(deserialize_with = "nullable")]
    descriptor: Descriptor,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Descriptor {
    name: Option<String>,
    version: Option<String>,
    timestamp: Option<String>,
    /// Shape changed across Grype versions (`db.built` → `db.status.built`), so
    /// it is read as a value.
    db: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Source {
    #[serde(rename = "type")]
    kind: Option<String>,
    target: Option<Target>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Target {
    Path(String),
    Image(ImageTarget),
    Other(IgnoredAny),
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ImageTarget {
    user_input: Option<String>,
    #[serde(rename = "imageID")]
    image_id: Option<String>,
    manifest_digest: Option<String>,
    #[serde(deserialize_with = "nullable")]
    repo_digests: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Match {
    #[serde(deserialize_with = "nullable")]
    vulnerability: Vulnerability,
    #[serde(deserialize_with = "nullable")]
    related_vulnerabilities: Vec<Related>,
    #[serde(deserialize_with = "nullable")]
    artifact: Artifact,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Vulnerability {
    id: Option<String>,
    severity: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Related {
    id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Artifact {
    name: Option<String>,
    version: Option<String>,
}

/// Database facts from either descriptor shape.
fn db_info(db: &Value) -> Option<DbInfo> {
    let pick = |key: &str| {
        db.get(key)
            .or_else(|| db.get("status").and_then(|s| s.get(key)))
            .filter(|v| !v.is_null())
    };
    let version = pick("schemaVersion").map(scalar);
    let updated = pick("built")
        .and_then(Value::as_str)
        .and_then(ReportTime::parse);
    (version.is_some() || updated.is_some()).then_some(DbInfo { version, updated })
}

pub(crate) fn summarize(file: &str, bytes: &[u8]) -> Result<ScanSummary, FormatError> {
    let doc: Document = json::parse(file, bytes, Some(Format::GrypeJson))?;

    let mut counts = SeverityCounts::default();
    let mut findings = Vec::with_capacity(doc.matches.len());
    for m in doc.matches {
        let severity = Severity::from_name(m.vulnerability.severity.as_deref().unwrap_or_default());
        counts.add(severity);
        let id = m.vulnerability.id.unwrap_or_default();
        let aliases = m
            .related_vulnerabilities
            .into_iter()
            .filter_map(|r| r.id)
            .filter(|a| *a != id)
            .collect::<BTreeSet<_>>();
        findings.push(Finding {
            id,
            severity,
            package: m.artifact.name,
            version: m.artifact.version,
            aliases: sorted(aliases),
        });
    }

    let (kind, target) = doc.source.map(|s| (s.kind, s.target)).unwrap_or_default();
    let (artifact_name, image_id, mut repo_digests, manifest) = match target {
        Some(Target::Path(path)) => (Some(path), None, Vec::new(), None),
        Some(Target::Image(image)) => (
            image.user_input,
            image.image_id,
            image.repo_digests,
            image.manifest_digest,
        ),
        Some(Target::Other(_)) | None => (None, None, Vec::new(), None),
    };
    repo_digests.retain(|d| !d.trim().is_empty());
    let mut manifest_digests: BTreeSet<String> =
        repo_digests.iter().filter_map(|d| repo_digest(d)).collect();
    manifest_digests.extend(manifest.as_deref().and_then(sha256_digest));

    let descriptor = doc.descriptor;
    Ok(ScanSummary {
        format: Format::GrypeJson,
        scanner: Tool {
            name: descriptor.name.unwrap_or_else(|| "grype".to_owned()),
            version: descriptor.version,
        },
        db: descriptor.db.as_ref().and_then(db_info),
        scanned_at: descriptor.timestamp.as_deref().and_then(ReportTime::parse),
        artifact_name,
        artifact_type: kind,
        manifest_digests: sorted(manifest_digests),
        repo_digests,
        image_id: image_id.as_deref().and_then(sha256_digest),
        total: counts.total(),
        counts,
        findings,
        misconfigurations: None,
        secrets: None,
    })
}
