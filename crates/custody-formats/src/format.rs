//! Format identities and content sniffing. The extension of a file says nothing
//! trustworthy about it (`report.json` may be Trivy, Grype or SARIF), so detection
//! reads the content: the first byte picks the syntax, then the JSON top-level keys
//! or the XML root element pick the format.

use std::fmt;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FormatError;
use crate::{json, xml};

/// A supported evidence format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    #[serde(rename = "cyclonedx-json")]
    CycloneDxJson,
    #[serde(rename = "cyclonedx-xml")]
    CycloneDxXml,
    #[serde(rename = "spdx-json")]
    SpdxJson,
    #[serde(rename = "junit-xml")]
    JunitXml,
    #[serde(rename = "cobertura-xml")]
    CoberturaXml,
    #[serde(rename = "lcov")]
    Lcov,
    #[serde(rename = "trivy-json")]
    TrivyJson,
    #[serde(rename = "grype-json")]
    GrypeJson,
    #[serde(rename = "sarif")]
    Sarif,
}

/// The pipeline stage a format is evidence for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Sbom,
    Tests,
    Coverage,
    Scan,
}

/// CycloneDX spec versions read. 1.2 is the first with a JSON encoding; 1.7 is the
/// newest published. The product promises 1.4–1.6, the rest is accepted because
/// generators in the field (cyclonedx-node 2, Trivy today) still write them.
pub(crate) const CYCLONEDX_VERSIONS: &[&str] = &["1.2", "1.3", "1.4", "1.5", "1.6", "1.7"];

impl Format {
    /// The stage this format is evidence for.
    pub fn kind(self) -> Kind {
        match self {
            Format::CycloneDxJson | Format::CycloneDxXml | Format::SpdxJson => Kind::Sbom,
            Format::JunitXml => Kind::Tests,
            Format::CoberturaXml | Format::Lcov => Kind::Coverage,
            Format::TrivyJson | Format::GrypeJson | Format::Sarif => Kind::Scan,
        }
    }

    /// Fails with [`FormatError::WrongStage`] unless this format belongs to `stage`.
    pub fn check_kind(self, file: &str, stage: Kind) -> Result<(), FormatError> {
        if self.kind() == stage {
            Ok(())
        } else {
            Err(FormatError::WrongStage {
                file: file.to_owned(),
                format: self,
                stage,
            })
        }
    }

    /// Human-readable list of the versions read, for error messages.
    pub fn supported_versions(self) -> &'static str {
        match self {
            Format::CycloneDxJson | Format::CycloneDxXml => "CycloneDX 1.2 to 1.7",
            Format::SpdxJson => "SPDX-2.2 and SPDX-2.3",
            Format::TrivyJson => "SchemaVersion 2",
            Format::Sarif => "2.1.0",
            Format::JunitXml | Format::CoberturaXml | Format::Lcov | Format::GrypeJson => {
                "any version"
            }
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::CycloneDxJson => "CycloneDX JSON",
            Format::CycloneDxXml => "CycloneDX XML",
            Format::SpdxJson => "SPDX JSON",
            Format::JunitXml => "JUnit XML",
            Format::CoberturaXml => "Cobertura XML",
            Format::Lcov => "lcov",
            Format::TrivyJson => "Trivy JSON",
            Format::GrypeJson => "Grype JSON",
            Format::Sarif => "SARIF",
        })
    }
}

impl Kind {
    /// What the file is evidence of, in a person's words.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Sbom => "an SBOM",
            Kind::Tests => "test results",
            Kind::Coverage => "test coverage",
            Kind::Scan => "a vulnerability scan",
        }
    }

    /// What files of this stage look like, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::Sbom => "a CycloneDX (JSON or XML) or SPDX 2.2/2.3 JSON SBOM",
            Kind::Tests => "a JUnit XML test report",
            Kind::Coverage => "a Cobertura XML or lcov coverage report",
            Kind::Scan => "a Trivy JSON, Grype JSON or SARIF 2.1.0 scan report",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Sbom => "SBOM",
            Kind::Tests => "test",
            Kind::Coverage => "coverage",
            Kind::Scan => "scan",
        })
    }
}

/// Strips a UTF-8 byte-order mark, which Windows tools write and parsers reject.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Recognizes the format from the content, reading no more than needed: JSON is
/// parsed once without keeping values (so truncation shows up here), XML only up to
/// the root element (the body is checked when it is summarized).
pub(crate) fn sniff(file: &str, bytes: &[u8]) -> Result<Format, FormatError> {
    let bytes = strip_bom(bytes);
    let Some(first) = bytes.iter().copied().find(|b| !b.is_ascii_whitespace()) else {
        return Err(FormatError::Empty {
            file: file.to_owned(),
        });
    };
    match first {
        b'{' => sniff_json(file, bytes),
        b'[' => {
            // Parse anyway so a truncated array is reported as truncated.
            json::parse::<IgnoredAny>(file, bytes, None)?;
            Err(FormatError::UnknownJson {
                file: file.to_owned(),
                keys: "none, the document is an array".to_owned(),
                hint: String::new(),
            })
        }
        b'<' => xml::sniff(file, bytes),
        _ if looks_like_lcov(bytes) => Ok(Format::Lcov),
        _ => Err(FormatError::Unknown {
            file: file.to_owned(),
        }),
    }
}

/// An lcov tracefile starts with a test name or source file record.
fn looks_like_lcov(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    text.lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .is_some_and(|line| line.starts_with("TN:") || line.starts_with("SF:"))
}

/// The top-level keys that tell the JSON formats apart. Large members are
/// `IgnoredAny`, so probing a big SBOM allocates nothing for its components.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Probe {
    #[serde(rename = "bomFormat")]
    bom_format: Option<Value>,
    #[serde(rename = "specVersion")]
    spec_version: Option<Value>,
    #[serde(rename = "spdxVersion")]
    spdx_version: Option<Value>,
    #[serde(rename = "SchemaVersion")]
    trivy_schema_version: Option<Value>,
    #[serde(rename = "ArtifactName")]
    trivy_artifact_name: Option<IgnoredAny>,
    #[serde(rename = "Results")]
    trivy_results: Option<IgnoredAny>,
    matches: Option<IgnoredAny>,
    descriptor: Option<Value>,
    runs: Option<IgnoredAny>,
    version: Option<Value>,
    #[serde(rename = "$schema")]
    schema: Option<Value>,
}

fn sniff_json(file: &str, bytes: &[u8]) -> Result<Format, FormatError> {
    let probe: Probe = json::parse(file, bytes, None)?;
    let unsupported = |format, version: &Option<Value>| FormatError::Unsupported {
        file: file.to_owned(),
        format,
        version: version
            .as_ref()
            .map_or_else(|| "missing".to_owned(), scalar),
    };

    if probe.bom_format.as_ref().and_then(Value::as_str) == Some("CycloneDX") {
        let version = probe.spec_version.as_ref().map(scalar);
        return match version {
            Some(v) if CYCLONEDX_VERSIONS.contains(&v.as_str()) => Ok(Format::CycloneDxJson),
            _ => Err(unsupported(Format::CycloneDxJson, &probe.spec_version)),
        };
    }
    if let Some(version) = &probe.spdx_version {
        return match version.as_str() {
            Some("SPDX-2.2" | "SPDX-2.3") => Ok(Format::SpdxJson),
            _ => Err(unsupported(Format::SpdxJson, &probe.spdx_version)),
        };
    }
    if probe.trivy_schema_version.is_some()
        && (probe.trivy_artifact_name.is_some() || probe.trivy_results.is_some())
    {
        return match probe.trivy_schema_version.as_ref().and_then(Value::as_u64) {
            Some(2) => Ok(Format::TrivyJson),
            _ => Err(unsupported(Format::TrivyJson, &probe.trivy_schema_version)),
        };
    }
    let grype_descriptor = probe
        .descriptor
        .as_ref()
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
        == Some("grype");
    if grype_descriptor || (probe.matches.is_some() && probe.descriptor.is_some()) {
        return Ok(Format::GrypeJson);
    }
    let sarif_schema = probe
        .schema
        .as_ref()
        .and_then(Value::as_str)
        .is_some_and(|s| s.to_ascii_lowercase().contains("sarif"));
    if probe.runs.is_some() && (sarif_schema || probe.version.is_some()) {
        return match probe.version.as_ref().and_then(Value::as_str) {
            Some("2.1.0") => Ok(Format::Sarif),
            _ => Err(unsupported(Format::Sarif, &probe.version)),
        };
    }
    Err(unknown_json(file, bytes))
}

/// Builds the error for JSON of no known format, listing its top-level keys so the
/// reader can tell what they were given instead.
fn unknown_json(file: &str, bytes: &[u8]) -> FormatError {
    let keys: Vec<String> =
        match serde_json::from_slice::<std::collections::BTreeMap<String, IgnoredAny>>(bytes) {
            Ok(map) => map.into_keys().collect(),
            Err(_) => Vec::new(),
        };
    let has = |k: &str| keys.iter().any(|key| key == k);
    let hint = if has("payloadType") && has("signatures") {
        ", it looks like a DSSE envelope: pass the evidence file itself, not its attestation"
    } else if has("mediaType") && has("verificationMaterial") {
        ", it looks like a Sigstore bundle: pass the evidence file itself, not its attestation"
    } else if has("_type") && has("predicateType") {
        ", it looks like an in-toto statement: pass the evidence file itself, not its attestation"
    } else {
        ""
    };
    const SHOWN: usize = 12;
    let mut listed = keys
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        listed.push_str(", ...");
    }
    if listed.is_empty() {
        listed.push_str("none");
    }
    FormatError::UnknownJson {
        file: file.to_owned(),
        keys: listed,
        hint: hint.to_owned(),
    }
}

/// A JSON scalar as text: strings without quotes, anything else as written.
pub(crate) fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
