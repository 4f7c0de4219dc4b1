//! The normalized summaries: one shape per stage whatever tool wrote the file, so a
//! policy reads `scan.counts.critical` without knowing whether Trivy or Grype ran.
//! They serialize as camelCase JSON; this is a wire format that policies read.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::format::{Format, Kind};

/// The summary of one evidence file.
// One summary exists per file read, so the size gap between variants costs
// nothing; boxing would only make matching on them clumsier for callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Summary {
    Sbom(SbomSummary),
    Tests(TestSummary),
    Coverage(CoverageSummary),
    Scan(ScanSummary),
}

impl Summary {
    /// The detected format.
    pub fn format(&self) -> Format {
        match self {
            Summary::Sbom(s) => s.format,
            Summary::Tests(s) => s.format,
            Summary::Coverage(s) => s.format,
            Summary::Scan(s) => s.format,
        }
    }

    /// The stage the file is evidence for.
    pub fn kind(&self) -> Kind {
        self.format().kind()
    }
}

/// A time as written in the file, and as an instant when the text carries a UTC
/// offset (or is a Unix epoch). A time without an offset stays `utc: None`: guessing
/// the zone of a CI runner would invent evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportTime {
    pub raw: String,
    pub utc: Option<jiff::Timestamp>,
}

impl ReportTime {
    /// Parses an RFC 3339 time. Empty text is no time at all.
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        Some(Self {
            raw: raw.to_owned(),
            utc: raw.parse::<jiff::Timestamp>().ok(),
        })
    }

    /// Parses a Unix epoch in seconds or milliseconds, as Cobertura writers do
    /// (coverage.py and istanbul write milliseconds, gcovr seconds). Values above
    /// 10^11 are milliseconds: as seconds they would lie past the year 5000.
    pub(crate) fn parse_epoch(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        let utc = raw.parse::<i64>().ok().and_then(|n| {
            if n > 100_000_000_000 {
                jiff::Timestamp::from_millisecond(n).ok()
            } else {
                jiff::Timestamp::from_second(n).ok()
            }
        });
        Some(Self {
            raw: raw.to_owned(),
            utc,
        })
    }
}

/// A tool named in the file (the SBOM generator or the scanner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    pub version: Option<String>,
}

/// Summary of a CycloneDX or SPDX SBOM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SbomSummary {
    pub format: Format,
    /// `1.5` for CycloneDX, `SPDX-2.3` for SPDX.
    pub spec_version: String,
    pub tools: Vec<Tool>,
    pub timestamp: Option<ReportTime>,
    /// What the SBOM describes: CycloneDX `metadata.component`, SPDX the described
    /// package (or the document name).
    pub subject_name: Option<String>,
    pub subject_version: Option<String>,
    /// CycloneDX: every component, nested ones included, not `metadata.component`.
    /// SPDX: every package.
    pub component_count: u64,
    /// SPDX `files`; `None` for CycloneDX, which has no separate file list.
    pub file_count: Option<u64>,
    pub license_count: usize,
    /// Distinct license ids, names and expressions, sorted, as written.
    pub licenses: Vec<String>,
    /// The image manifest digest the SBOM describes, from the subject's
    /// `pkg:oci/...@sha256:` purl, or the only such digest in the file.
    pub subject_digest: Option<String>,
    /// Every distinct `sha256:` digest of a `pkg:oci` purl in the file, sorted.
    pub oci_digests: Vec<String>,
}

/// The JUnit dialect, guessed from the marks each generator leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JunitDialect {
    Pytest,
    MavenSurefire,
    JestJunit,
    GoJunitReport,
    CargoNextest,
    Generic,
}

/// Totals as the report's attributes declare them (root, else summed over the
/// top-level suites). `None` where no element carries the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeclaredTotals {
    pub tests: Option<u64>,
    pub failures: Option<u64>,
    pub errors: Option<u64>,
    pub skipped: Option<u64>,
}

/// Summary of a JUnit XML report. Counts come from the `<testcase>` elements; each
/// test case counts once: errored if it has an `<error>`, else failed if it has a
/// `<failure>`, else skipped if it has a `<skipped>`, else passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestSummary {
    pub format: Format,
    pub dialect: JunitDialect,
    pub suites: u64,
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub errored: u64,
    pub skipped: u64,
    pub duration_seconds: Option<f64>,
    pub timestamp: Option<ReportTime>,
    pub declared: DeclaredTotals,
    /// True when a declared total differs from the counted test cases.
    pub attributes_disagree: bool,
}

/// Summary of a Cobertura or lcov coverage report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoverageSummary {
    pub format: Format,
    pub lines_valid: u64,
    pub lines_covered: u64,
    /// `lines_covered / lines_valid`; the declared rate when no lines were counted.
    pub line_rate: Option<f64>,
    pub branches_valid: Option<u64>,
    pub branches_covered: Option<u64>,
    pub branch_rate: Option<f64>,
    /// lcov only: functions found and hit.
    pub functions_valid: Option<u64>,
    pub functions_covered: Option<u64>,
    pub files: u64,
    pub timestamp: Option<ReportTime>,
}

/// Normalized severity. Scanner names map as: critical, high (also `important`),
/// medium (also `moderate`), low, negligible; anything else is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Negligible,
    Unknown,
}

impl Severity {
    /// Normalizes a scanner's severity name, case-insensitively.
    pub fn from_name(name: &str) -> Self {
        match name.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" => Severity::Negligible,
            _ => Severity::Unknown,
        }
    }
}

/// Finding counts by severity, as the scanner reported them (before exceptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub negligible: u64,
    pub unknown: u64,
}

impl SeverityCounts {
    pub(crate) fn add(&mut self, severity: Severity) {
        let slot = match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Negligible => &mut self.negligible,
            Severity::Unknown => &mut self.unknown,
        };
        *slot = slot.saturating_add(1);
    }

    /// Sum over all severities.
    pub fn total(&self) -> u64 {
        [
            self.critical,
            self.high,
            self.medium,
            self.low,
            self.negligible,
            self.unknown,
        ]
        .iter()
        .fold(0u64, |acc, n| acc.saturating_add(*n))
    }
}

/// One finding, for exception lists: a CVE/GHSA id or a rule id, its severity, and
/// the affected package where the format names one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub id: String,
    pub severity: Severity,
    pub package: Option<String>,
    pub version: Option<String>,
    /// Other ids of the same vulnerability (Grype `relatedVulnerabilities`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// Vulnerability database the scanner used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DbInfo {
    pub version: Option<String>,
    pub updated: Option<ReportTime>,
}

/// Misconfiguration results of a Trivy config scan.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Misconfigurations {
    /// Failed checks, by severity.
    pub counts: SeverityCounts,
    pub failures: u64,
    pub successes: u64,
    pub exceptions: u64,
    pub findings: Vec<Finding>,
}

/// Summary of a vulnerability scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanSummary {
    pub format: Format,
    pub scanner: Tool,
    pub db: Option<DbInfo>,
    /// When the scan ran, only if the file says so (SARIF often does not).
    pub scanned_at: Option<ReportTime>,
    pub artifact_name: Option<String>,
    pub artifact_type: Option<String>,
    /// Image manifest digests (`sha256:...`): what cosign signs and a registry
    /// serves. From Trivy `RepoDigests`, Grype `manifestDigest`/`repoDigests`.
    pub manifest_digests: Vec<String>,
    /// `name@sha256:...` entries as the scanner wrote them.
    pub repo_digests: Vec<String>,
    /// Image config digest (Trivy `ImageID`, Grype `imageID`). Not the manifest
    /// digest: do not compare it with a signed image digest.
    pub image_id: Option<String>,
    /// Vulnerability findings by severity.
    pub counts: SeverityCounts,
    pub total: u64,
    pub findings: Vec<Finding>,
    pub misconfigurations: Option<Misconfigurations>,
    /// Secrets the scanner found (Trivy `Secrets`, gitleaks SARIF): counted on their
    /// own, never as vulnerabilities. Absent when the report has no secret scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Secrets>,
}

/// Secrets found by a scan: where and by which rule, never the secret itself (the
/// report's match and code lines are not read).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secrets {
    pub counts: SeverityCounts,
    pub total: u64,
    pub findings: Vec<SecretFinding>,
}

/// One secret a scanner found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretFinding {
    /// The scanner's rule (`aws-access-key-id`).
    pub rule: String,
    pub severity: Severity,
    /// The file it is in, as the scanner names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl Secrets {
    pub(crate) fn add(&mut self, f: SecretFinding) {
        self.counts.add(f.severity);
        self.total = self.total.saturating_add(1);
        self.findings.push(f);
    }
}

/// Collects distinct strings in sorted order.
pub(crate) fn sorted(set: BTreeSet<String>) -> Vec<String> {
    set.into_iter().collect()
}

/// Extracts the `sha256:<hex>` digest of a `pkg:oci/` purl. The purl spec
/// percent-encodes the colon (`sha256%3A...`); generators write both forms.
pub(crate) fn oci_purl_digest(purl: &str) -> Option<String> {
    let rest = purl.trim().strip_prefix("pkg:oci/")?;
    let (_, version) = rest.split_once('@')?;
    let version = version.split(['?', '#']).next().unwrap_or_default();
    let hex = version
        .strip_prefix("sha256:")
        .or_else(|| version.strip_prefix("sha256%3A"))
        .or_else(|| version.strip_prefix("sha256%3a"))?;
    sha256_hex(hex)
}

/// The digest part of a `name@sha256:<hex>` repo digest.
pub(crate) fn repo_digest(entry: &str) -> Option<String> {
    let (_, digest) = entry.trim().rsplit_once('@')?;
    sha256_hex(digest.strip_prefix("sha256:")?)
}

/// Normalizes a bare digest (`sha256:<hex>`), refusing anything else.
pub(crate) fn sha256_digest(value: &str) -> Option<String> {
    sha256_hex(value.trim().strip_prefix("sha256:")?)
}

fn sha256_hex(hex: &str) -> Option<String> {
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "1c3b93ed450e26eac89b471d6d140e2f99488f489739b8b8ea5e8202dd086f82";

    #[test]
    fn oci_purl_digests() {
        let want = Some(format!("sha256:{HEX}"));
        assert_eq!(
            oci_purl_digest(&format!("pkg:oci/alpine@sha256:{HEX}?arch=arm64")),
            want
        );
        assert_eq!(
            oci_purl_digest(&format!("pkg:oci/alpine@sha256%3A{HEX}")),
            want
        );
        assert_eq!(
            oci_purl_digest(&format!("pkg:oci/alpine@sha256:{}", HEX.to_uppercase())),
            want
        );
        // Not OCI, not sha256, or not a full digest: nothing.
        assert_eq!(
            oci_purl_digest(&format!("pkg:docker/alpine@sha256:{HEX}")),
            None
        );
        assert_eq!(oci_purl_digest("pkg:oci/alpine@sha256:1c3b"), None);
        assert_eq!(oci_purl_digest("pkg:oci/alpine@latest"), None);
    }

    #[test]
    fn repo_digests() {
        let want = Some(format!("sha256:{HEX}"));
        assert_eq!(repo_digest(&format!("ghcr.io/a/b@sha256:{HEX}")), want);
        assert_eq!(repo_digest(&format!("sha256:{HEX}")), None);
        assert_eq!(repo_digest("ghcr.io/a/b:latest"), None);
    }

    #[test]
    fn epochs_in_seconds_and_milliseconds() {
        let ms = ReportTime::parse_epoch("1460488624050").and_then(|t| t.utc);
        assert_eq!(ms.map(|t| t.as_millisecond()), Some(1_460_488_624_050));
        let s = ReportTime::parse_epoch("1632549295").and_then(|t| t.utc);
        assert_eq!(s.map(|t| t.as_second()), Some(1_632_549_295));
        assert_eq!(ReportTime::parse_epoch(""), None);
    }

    #[test]
    fn times_without_offset_are_not_instants() {
        let t = ReportTime::parse("2020-10-27T21:39:41");
        assert_eq!(t.map(|t| t.utc), Some(None));
        assert_eq!(ReportTime::parse("  "), None);
    }

    #[test]
    fn severity_names() {
        assert_eq!(Severity::from_name("CRITICAL"), Severity::Critical);
        assert_eq!(Severity::from_name("Moderate"), Severity::Medium);
        assert_eq!(Severity::from_name("Negligible"), Severity::Negligible);
        assert_eq!(Severity::from_name("whatever"), Severity::Unknown);
    }
}
