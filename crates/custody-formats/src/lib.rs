//! Recognizes and summarizes the evidence files CI steps produce: SBOMs (CycloneDX
//! JSON/XML, SPDX JSON), test reports (JUnit XML), coverage reports (Cobertura XML,
//! lcov) and vulnerability scans (Trivy JSON, Grype JSON, SARIF).
//!
//! Formats are recognized from content, never from the file name alone, and a file
//! that is empty, cut short, malformed, of no known format, or evidence for another
//! stage than expected is refused with its own [`FormatError`] variant. Summaries
//! are normalized per stage ([`Summary`]) so policies read one shape whatever tool
//! wrote the file.
//!
//! The crate does no I/O: callers pass the bytes and a file name used only in
//! messages. Parsing streams (quick-xml events, serde structs that skip unknown
//! fields), so a large SBOM or report is summarized without building a tree of it.

mod cobertura;
mod cyclonedx;
mod error;
mod format;
mod grype;
mod json;
mod junit;
mod lcov;
mod sarif;
mod spdx;
mod summary;
mod trivy;
mod xml;

pub use error::{FormatError, Syntax};
pub use format::{Format, Kind};
pub use summary::{
    CoverageSummary, DbInfo, DeclaredTotals, Finding, JunitDialect, Misconfigurations, ReportTime,
    SbomSummary, ScanSummary, SecretFinding, Secrets, Severity, SeverityCounts, Summary,
    TestSummary, Tool,
};

/// Detects the format of an evidence file from its content.
///
/// The whole file is checked, not only its first bytes: a file this returns `Ok`
/// for also summarizes. That costs a full parse, which is what a caller about to
/// trust the file needs anyway.
pub fn detect(name: &str, bytes: &[u8]) -> Result<Format, FormatError> {
    summarize(name, bytes).map(|s| s.format())
}

/// Detects the format and fails with [`FormatError::WrongStage`] unless it is
/// evidence for `stage`.
pub fn detect_for(name: &str, bytes: &[u8], stage: Kind) -> Result<Format, FormatError> {
    summarize_for(name, bytes, stage).map(|s| s.format())
}

/// Detects the format and summarizes the file.
pub fn summarize(name: &str, bytes: &[u8]) -> Result<Summary, FormatError> {
    let format = format::sniff(name, bytes)?;
    summarize_as(name, bytes, format)
}

/// Like [`summarize`], but refuses a file of another stage before parsing its body.
pub fn summarize_for(name: &str, bytes: &[u8], stage: Kind) -> Result<Summary, FormatError> {
    let format = format::sniff(name, bytes)?;
    format.check_kind(name, stage)?;
    summarize_as(name, bytes, format)
}

fn summarize_as(name: &str, bytes: &[u8], format: Format) -> Result<Summary, FormatError> {
    Ok(match format {
        Format::CycloneDxJson => Summary::Sbom(cyclonedx::summarize_json(name, bytes)?),
        Format::CycloneDxXml => Summary::Sbom(cyclonedx::summarize_xml(name, bytes)?),
        Format::SpdxJson => Summary::Sbom(spdx::summarize(name, bytes)?),
        Format::JunitXml => Summary::Tests(junit::summarize(name, bytes)?),
        Format::CoberturaXml => Summary::Coverage(cobertura::summarize(name, bytes)?),
        Format::Lcov => Summary::Coverage(lcov::summarize(name, bytes)?),
        Format::TrivyJson => Summary::Scan(trivy::summarize(name, bytes)?),
        Format::GrypeJson => Summary::Scan(grype::summarize(name, bytes)?),
        Format::Sarif => Summary::Scan(sarif::summarize(name, bytes)?),
    })
}
