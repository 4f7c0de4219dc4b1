//! Trivy JSON reports (`SchemaVersion: 2`). Vulnerabilities are counted per
//! (vulnerability, package) pair, as Trivy's own table does; misconfigurations
//! from config scans are counted apart, because a Dockerfile check is not a CVE.
//!
//! Digests: `Metadata.RepoDigests` (`name@sha256:…`) are manifest digests, the
//! ones cosign signs; `Metadata.ImageID` is the config digest. They are kept in
//! separate fields so a policy cannot compare the wrong one by accident.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::error::FormatError;
use crate::format::Format;
use crate::json::{self, nullable};
use crate::summary::{
    Finding, Misconfigurations, ReportTime, ScanSummary, SecretFinding, Secrets, Severity,
    SeverityCounts, Tool, repo_digest, sha256_digest, sorted,
};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Report {
    created_at: Option<String>,
    artifact_name: Option<String>,
    artifact_type: Option<String>,
    #[serde(deserialize_with = "nullable")]
    metadata: Metadata,
    #[serde(deserialize_with = "nullable")]
    results: Vec<TargetResult>,
    trivy: Option<TrivyInfo>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TrivyInfo {
    version: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Metadata {
    #[serde(rename = "ImageID")]
    image_id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    repo_digests: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct TargetResult {
    #[serde(deserialize_with = "nullable")]
    vulnerabilities: Vec<Vulnerability>,
    #[serde(deserialize_with = "nullable")]
    misconfigurations: Vec<Misconfiguration>,
    misconf_summary: Option<MisconfSummary>,
    target: Option<String>,
    class: Option<String>,
    /// Only the rule, severity and place of each secret are read, never `Match` or
    /// `Code`, which quote it.
    #[serde(deserialize_with = "nullable")]
    secrets: Vec<Secret>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Secret {
    #[serde(rename = "RuleID")]
    rule_id: Option<String>,
    severity: Option<String>,
    start_line: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Vulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: Option<String>,
    pkg_name: Option<String>,
    installed_version: Option<String>,
    severity: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct Misconfiguration {
    #[serde(rename = "ID")]
    id: Option<String>,
    #[serde(rename = "AVDID")]
    avd_id: Option<String>,
    severity: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct MisconfSummary {
    successes: u64,
    failures: u64,
    exceptions: u64,
}

pub(crate) fn summarize(file: &str, bytes: &[u8]) -> Result<ScanSummary, FormatError> {
    let report: Report = json::parse(file, bytes, Some(Format::TrivyJson))?;

    let mut counts = SeverityCounts::default();
    let mut findings = Vec::new();
    let mut misconf: Option<Misconfigurations> = None;
    let mut secrets: Option<Secrets> = None;
    for result in report.results {
        if !result.secrets.is_empty() || result.class.as_deref() == Some("secret") {
            let found = secrets.get_or_insert_with(Secrets::default);
            for x in &result.secrets {
                found.add(SecretFinding {
                    rule: x.rule_id.clone().unwrap_or_default(),
                    severity: Severity::from_name(x.severity.as_deref().unwrap_or_default()),
                    target: result.target.clone(),
                    line: x.start_line,
                });
            }
        }
        for v in result.vulnerabilities {
            let severity = Severity::from_name(v.severity.as_deref().unwrap_or_default());
            counts.add(severity);
            findings.push(Finding {
                id: v.vulnerability_id.unwrap_or_default(),
                severity,
                package: v.pkg_name,
                version: v.installed_version,
                aliases: Vec::new(),
            });
        }
        if result.misconfigurations.is_empty() && result.misconf_summary.is_none() {
            continue;
        }
        let m = misconf.get_or_insert_with(Misconfigurations::default);
        if let Some(s) = result.misconf_summary {
            m.successes = m.successes.saturating_add(s.successes);
            m.exceptions = m.exceptions.saturating_add(s.exceptions);
        }
        // Trivy lists passed checks too with --include-non-failures; only
        // failures are findings. A missing status is Trivy's default, a failure.
        for c in result.misconfigurations {
            let status = c.status.as_deref().unwrap_or("FAIL");
            if !status.eq_ignore_ascii_case("FAIL") {
                continue;
            }
            let severity = Severity::from_name(c.severity.as_deref().unwrap_or_default());
            m.counts.add(severity);
            m.failures = m.failures.saturating_add(1);
            m.findings.push(Finding {
                id: c.id.or(c.avd_id).unwrap_or_default(),
                severity,
                package: None,
                version: None,
                aliases: Vec::new(),
            });
        }
    }

    let repo_digests = report.metadata.repo_digests;
    let manifest_digests: BTreeSet<String> =
        repo_digests.iter().filter_map(|d| repo_digest(d)).collect();
    Ok(ScanSummary {
        format: Format::TrivyJson,
        scanner: Tool {
            name: "trivy".to_owned(),
            version: report.trivy.and_then(|t| t.version),
        },
        // Trivy's JSON report does not record the database it used.
        db: None,
        scanned_at: report.created_at.as_deref().and_then(ReportTime::parse),
        artifact_name: report.artifact_name,
        artifact_type: report.artifact_type,
        manifest_digests: sorted(manifest_digests),
        repo_digests,
        image_id: report.metadata.image_id.as_deref().and_then(sha256_digest),
        total: counts.total(),
        counts,
        findings,
        misconfigurations: misconf,
        secrets,
    })
}
