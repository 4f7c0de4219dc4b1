//! SARIF 2.1.0 logs (CodeQL, Trivy, Grype and any other SARIF producer).
//!
//! Severity mapping, in order:
//! 1. `properties.security-severity` (a CVSS score, the convention GitHub code
//!    scanning reads), on the result or else on its rule: ≥ 9.0 critical,
//!    ≥ 7.0 high, ≥ 4.0 medium, > 0 low. A score of 0, out of range or unreadable
//!    is ignored.
//! 2. Otherwise the SARIF level: the result's `level`, else the rule's
//!    `defaultConfiguration.level`, else `warning` (the SARIF default). error →
//!    high, warning → medium, note → low, none → unknown.
//!
//! Results whose `kind` is `pass`, `notApplicable` or `informational` are not
//! findings and are not counted. Results of a secret scanner (a gitleaks run, or a
//! rule tagged `secret`, as Trivy tags its secret rules) are secrets, counted in
//! `secrets`, not vulnerabilities. SARIF has no scan time unless
//! `invocations[].startTimeUtc` is present; none is invented.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_json::Value;

use crate::error::FormatError;
use crate::format::Format;
use crate::json::{self, nullable};
use crate::summary::{
    Finding, ReportTime, ScanSummary, SecretFinding, Secrets, Severity, SeverityCounts, Tool,
    repo_digest, sha256_digest, sorted,
};

#[derive(Deserialize, Default)]
#[serde(default)]
struct Log {
    #[serde(deserialize_with = "nullable")]
    runs: Vec<Run>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Run {
    #[serde(deserialize_with = "nullable")]
    tool: ToolSection,
    #[serde(deserialize_with = "nullable")]
    invocations: Vec<Invocation>,
    #[serde(deserialize_with = "nullable")]
    results: Vec<SarifResult>,
    #[serde(deserialize_with = "nullable")]
    properties: RunProperties,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ToolSection {
    #[serde(deserialize_with = "nullable")]
    driver: Component,
    #[serde(deserialize_with = "nullable")]
    extensions: Vec<Component>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Component {
    name: Option<String>,
    version: Option<String>,
    semantic_version: Option<String>,
    #[serde(deserialize_with = "nullable")]
    rules: Vec<Rule>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Rule {
    id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    default_configuration: Configuration,
    #[serde(deserialize_with = "nullable")]
    properties: Properties,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Configuration {
    level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Properties {
    #[serde(rename = "security-severity")]
    security_severity: Option<Value>,
    #[serde(deserialize_with = "nullable")]
    tags: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Location {
    #[serde(deserialize_with = "nullable")]
    physical_location: PhysicalLocation,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PhysicalLocation {
    #[serde(deserialize_with = "nullable")]
    artifact_location: ArtifactLocation,
    #[serde(deserialize_with = "nullable")]
    region: Region,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ArtifactLocation {
    uri: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Region {
    start_line: Option<u64>,
}

/// Trivy writes the scanned image into the run's property bag.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RunProperties {
    image_name: Option<String>,
    #[serde(rename = "imageID")]
    image_id: Option<String>,
    #[serde(deserialize_with = "nullable")]
    repo_digests: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Invocation {
    start_time_utc: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SarifResult {
    rule_id: Option<String>,
    rule_index: Option<i64>,
    rule: Option<RuleReference>,
    level: Option<String>,
    kind: Option<String>,
    #[serde(deserialize_with = "nullable")]
    properties: Properties,
    #[serde(deserialize_with = "nullable")]
    locations: Vec<Location>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RuleReference {
    id: Option<String>,
    index: Option<i64>,
    tool_component: Option<ToolComponentReference>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ToolComponentReference {
    index: Option<i64>,
}

/// Maps a CVSS score to a severity band; `None` when there is no usable score.
fn band(score: &Value) -> Option<Severity> {
    let score = match score {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !(score > 0.0 && score <= 10.0) {
        return None;
    }
    Some(if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else {
        Severity::Low
    })
}

fn level_severity(level: &str) -> Severity {
    match level {
        "error" => Severity::High,
        "warning" => Severity::Medium,
        "note" => Severity::Low,
        _ => Severity::Unknown,
    }
}

/// Index of each rule id in a component, for results that name their rule only by id.
fn index_by_id(component: &Component) -> HashMap<&str, usize> {
    let mut map = HashMap::new();
    for (i, rule) in component.rules.iter().enumerate() {
        if let Some(id) = rule.id.as_deref() {
            map.entry(id).or_insert(i);
        }
    }
    map
}

fn to_index(i: Option<i64>) -> Option<usize> {
    i.and_then(|i| usize::try_from(i).ok())
}

pub(crate) fn summarize(file: &str, bytes: &[u8]) -> Result<ScanSummary, FormatError> {
    let log: Log = json::parse(file, bytes, Some(Format::Sarif))?;

    let mut counts = SeverityCounts::default();
    let mut findings = Vec::new();
    let mut secrets: Option<Secrets> = None;
    let mut scanned_at = None;
    let mut artifact_name = None;
    let mut image_id = None;
    let mut repo_digests = Vec::new();
    for run in &log.runs {
        if scanned_at.is_none() {
            scanned_at = run
                .invocations
                .iter()
                .find_map(|i| i.start_time_utc.as_deref().and_then(ReportTime::parse));
        }
        if artifact_name.is_none() {
            artifact_name.clone_from(&run.properties.image_name);
        }
        if image_id.is_none() {
            image_id = run.properties.image_id.as_deref().and_then(sha256_digest);
        }
        repo_digests.extend(run.properties.repo_digests.iter().cloned());

        // Rules live in the driver or, for CodeQL query packs, in an extension
        // named by `rule.toolComponent.index`: slot 0 is the driver, i + 1 extension i.
        let components: Vec<&Component> = std::iter::once(&run.tool.driver)
            .chain(&run.tool.extensions)
            .collect();
        let ids: Vec<HashMap<&str, usize>> = components.iter().map(|c| index_by_id(c)).collect();
        let secret_scanner = run
            .tool
            .driver
            .name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case("gitleaks"));
        if secret_scanner {
            secrets.get_or_insert_with(Secrets::default);
        }
        for result in &run.results {
            if matches!(
                result.kind.as_deref(),
                Some("pass" | "notApplicable" | "informational")
            ) {
                continue;
            }
            let reference = result.rule.as_ref();
            let rule_id = result
                .rule_id
                .as_deref()
                .or_else(|| reference.and_then(|r| r.id.as_deref()));
            let slot = match reference.and_then(|r| r.tool_component.as_ref()) {
                Some(tc) => to_index(tc.index).and_then(|i| i.checked_add(1)),
                None => Some(0),
            };
            let index = to_index(result.rule_index).or_else(|| to_index(reference?.index));
            let rule = slot.and_then(|slot| {
                let component = components.get(slot)?;
                index.and_then(|i| component.rules.get(i)).or_else(|| {
                    let i = ids.get(slot)?.get(rule_id?)?;
                    component.rules.get(*i)
                })
            });

            let score = result
                .properties
                .security_severity
                .as_ref()
                .and_then(band)
                .or_else(|| rule?.properties.security_severity.as_ref().and_then(band));
            let severity = score.unwrap_or_else(|| {
                let level = result
                    .level
                    .as_deref()
                    .or_else(|| rule?.default_configuration.level.as_deref())
                    .unwrap_or("warning");
                level_severity(level)
            });
            let id = rule_id
                .or_else(|| rule.and_then(|r| r.id.as_deref()))
                .unwrap_or_default()
                .to_owned();
            // a secret scanner's result (gitleaks; Trivy tags its secret rules) is a
            // secret, not a vulnerability
            let tagged = |p: &Properties| {
                p.tags
                    .iter()
                    .any(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("secret")))
            };
            if secret_scanner
                || tagged(&result.properties)
                || rule.is_some_and(|r| tagged(&r.properties))
            {
                let place = result.locations.first().map(|l| &l.physical_location);
                secrets
                    .get_or_insert_with(Secrets::default)
                    .add(SecretFinding {
                        rule: id,
                        severity,
                        target: place.and_then(|p| p.artifact_location.uri.clone()),
                        line: place.and_then(|p| p.region.start_line),
                    });
                continue;
            }
            counts.add(severity);
            findings.push(Finding {
                id,
                severity,
                package: None,
                version: None,
                aliases: Vec::new(),
            });
        }
    }

    let driver = log.runs.first().map(|r| &r.tool.driver);
    let manifest_digests: BTreeSet<String> =
        repo_digests.iter().filter_map(|d| repo_digest(d)).collect();
    Ok(ScanSummary {
        format: Format::Sarif,
        scanner: Tool {
            name: driver.and_then(|d| d.name.clone()).unwrap_or_default(),
            version: driver.and_then(|d| d.version.clone().or_else(|| d.semantic_version.clone())),
        },
        db: None,
        scanned_at,
        artifact_name,
        artifact_type: None,
        manifest_digests: sorted(manifest_digests),
        repo_digests,
        image_id,
        total: counts.total(),
        counts,
        findings,
        misconfigurations: None,
        secrets,
    })
}
