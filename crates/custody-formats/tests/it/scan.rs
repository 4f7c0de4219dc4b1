//! Scan summaries: Trivy JSON, Grype JSON, SARIF.

use custody_formats::{
    Format, Kind, ScanSummary, Severity, SeverityCounts, Summary, detect, summarize, summarize_for,
};
use serde_json::{Value, json};

use crate::read;

type F = (
    &'static str,
    Severity,
    Option<&'static str>,
    Option<&'static str>,
);
/// failures, successes, exceptions, failed (id, severity)
type Misconf = (u64, u64, u64, &'static [(&'static str, Severity)]);

pub(crate) struct Expected {
    format: Format,
    scanner: (&'static str, Option<&'static str>),
    scanned_at: Option<&'static str>,
    artifact: Option<&'static str>,
    artifact_type: Option<&'static str>,
    manifest_digests: &'static [&'static str],
    image_id: Option<&'static str>,
    /// critical, high, medium, low, negligible, unknown
    counts: [u64; 6],
    /// (id, severity, package, version); `None` to check only counts.
    findings: Option<&'static [F]>,
    misconfig: Option<Misconf>,
}

use Severity::{Critical, High, Low, Medium, Unknown};

const ALPINE_310_ID: &str =
    "sha256:961769676411f082461f9ef46626dd7a2d1e2b2a38e6a44364bcbecf51e66dd4";

// How these were counted:
// - Trivy: `jq '.Results[] | .Vulnerabilities[]? | [.VulnerabilityID, .PkgName,
//   .InstalledVersion, .Severity]'`; misconfigurations `jq '.Results[] |
//   .Misconfigurations[] | [.ID, .Severity, .Status]'` and `.MisconfSummary`
//   (Successes 26, Failures 1). Digests: `jq .Metadata` has ImageID and no
//   RepoDigests in these goldens (the RepoDigests path is tested below).
// - Grype: `jq '.matches[] | [.vulnerability.id, .vulnerability.severity,
//   .artifact.name, .artifact.version]'` and `jq .source, .descriptor`
//   (timestamp "" → no scan time).
// - SARIF: python over `runs[].results[]`: severity from rule
//   `properties["security-severity"]` when present (Trivy 5.3 ×4 → medium,
//   Grype 8.2 and 8.5 → high), else result `level`, else the rule's
//   `defaultConfiguration.level` via ruleIndex (CodeQL: 11 error → high,
//   4 warning → medium, 57 note → low; 72 results). No `invocations` anywhere.
pub(crate) const CASES: &[(&str, Expected)] = &[
    (
        "scan-trivy/trivy-alpine-310.json",
        Expected {
            format: Format::TrivyJson,
            scanner: ("trivy", Some("dev")),
            scanned_at: Some("2021-08-25T12:20:30.000000005Z"),
            artifact: Some("testdata/fixtures/images/alpine-310.tar.gz"),
            artifact_type: Some("container_image"),
            manifest_digests: &[],
            image_id: Some(ALPINE_310_ID),
            counts: [0, 0, 4, 0, 0, 0],
            findings: Some(&[
                (
                    "CVE-2019-1549",
                    Medium,
                    Some("libcrypto1.1"),
                    Some("1.1.1c-r0"),
                ),
                (
                    "CVE-2019-1551",
                    Medium,
                    Some("libcrypto1.1"),
                    Some("1.1.1c-r0"),
                ),
                (
                    "CVE-2019-1549",
                    Medium,
                    Some("libssl1.1"),
                    Some("1.1.1c-r0"),
                ),
                (
                    "CVE-2019-1551",
                    Medium,
                    Some("libssl1.1"),
                    Some("1.1.1c-r0"),
                ),
            ]),
            misconfig: None,
        },
    ),
    (
        "scan-trivy/trivy-debian-buster.json",
        Expected {
            format: Format::TrivyJson,
            scanner: ("trivy", Some("dev")),
            scanned_at: Some("2021-08-25T12:20:30.000000005Z"),
            artifact: Some("testdata/fixtures/images/debian-buster.tar.gz"),
            artifact_type: Some("container_image"),
            manifest_digests: &[],
            image_id: Some(
                "sha256:c2c03a296d2329a4f3ab72a7bf38b78a8a80108204d326b0139d6af700e152d1",
            ),
            counts: [1, 0, 0, 1, 0, 0],
            findings: Some(&[
                ("CVE-2019-18276", Low, Some("bash"), Some("5.0-4")),
                (
                    "CVE-2019-18224",
                    Critical,
                    Some("libidn2-0"),
                    Some("2.0.5-1"),
                ),
            ]),
            misconfig: None,
        },
    ),
    (
        "scan-trivy/trivy-dockerfile-misconfig.json",
        Expected {
            format: Format::TrivyJson,
            scanner: ("trivy", Some("dev")),
            scanned_at: Some("2021-08-25T12:20:30.000000005Z"),
            artifact: Some("testdata/fixtures/repo/dockerfile"),
            artifact_type: Some("repository"),
            manifest_digests: &[],
            image_id: None,
            counts: [0, 0, 0, 0, 0, 0],
            findings: Some(&[]),
            misconfig: Some((1, 26, 0, &[("DS-0002", High)])),
        },
    ),
    (
        "scan-grype/grype-image.json",
        Expected {
            format: Format::GrypeJson,
            scanner: ("grype", Some("[not provided]")),
            scanned_at: None,
            artifact: Some("user-input"),
            artifact_type: Some("image"),
            manifest_digests: &[
                "sha256:ca738abb87a8d58f112d3400ebb079b61ceae7dc290beb34bda735be4b1941d5",
            ],
            image_id: Some(
                "sha256:ab5608d634db2716a297adbfa6a5dd5d8f8f5a7d0cab73649ea7fbb8c8da544f",
            ),
            counts: [1, 0, 0, 1, 0, 0],
            findings: Some(&[
                ("CVE-1999-0001", Low, Some("package-1"), Some("1.1.1")),
                ("CVE-1999-0002", Critical, Some("package-2"), Some("2.2.2")),
            ]),
            misconfig: None,
        },
    ),
    (
        "scan-grype/grype-directory.json",
        Expected {
            format: Format::GrypeJson,
            scanner: ("grype", Some("[not provided]")),
            scanned_at: None,
            artifact: Some("/some/path"),
            artifact_type: Some("directory"),
            manifest_digests: &[],
            image_id: None,
            counts: [1, 0, 0, 1, 0, 0],
            findings: Some(&[
                ("CVE-1999-0001", Low, Some("package-1"), Some("1.1.1")),
                ("CVE-1999-0002", Critical, Some("package-2"), Some("2.2.2")),
            ]),
            misconfig: None,
        },
    ),
    (
        "scan-grype/grype-empty.json",
        Expected {
            format: Format::GrypeJson,
            scanner: ("grype", Some("[not provided]")),
            scanned_at: None,
            artifact: Some("unknown"),
            artifact_type: Some("unknown"),
            manifest_digests: &[],
            image_id: None,
            counts: [0, 0, 0, 0, 0, 0],
            findings: Some(&[]),
            misconfig: None,
        },
    ),
    (
        "scan-sarif/trivy-alpine-310.sarif.json",
        Expected {
            format: Format::Sarif,
            scanner: ("Trivy", Some("dev")),
            scanned_at: None,
            artifact: Some("testdata/fixtures/images/alpine-310.tar.gz"),
            artifact_type: None,
            manifest_digests: &[],
            image_id: Some(ALPINE_310_ID),
            counts: [0, 0, 4, 0, 0, 0],
            findings: Some(&[
                ("CVE-2019-1549", Medium, None, None),
                ("CVE-2019-1551", Medium, None, None),
                ("CVE-2019-1549", Medium, None, None),
                ("CVE-2019-1551", Medium, None, None),
            ]),
            misconfig: None,
        },
    ),
    (
        "scan-sarif/grype-image.sarif.json",
        Expected {
            format: Format::Sarif,
            scanner: ("grype", Some("0.0.0-dev")),
            scanned_at: None,
            artifact: None,
            artifact_type: None,
            manifest_digests: &[],
            image_id: None,
            // The CVSS score (8.2, 8.5) wins over the result levels (note, error).
            counts: [0, 2, 0, 0, 0, 0],
            findings: Some(&[
                ("CVE-1999-0001-package-1", High, None, None),
                ("CVE-1999-0002-package-2", High, None, None),
            ]),
            misconfig: None,
        },
    ),
    (
        "scan-sarif/codeql-2.5.4.sarif",
        Expected {
            format: Format::Sarif,
            // driver.version is absent; semanticVersion is 2.5.4.
            scanner: ("CodeQL", Some("2.5.4")),
            scanned_at: None,
            artifact: None,
            artifact_type: None,
            manifest_digests: &[],
            image_id: None,
            counts: [0, 11, 4, 57, 0, 0],
            findings: None,
            misconfig: None,
        },
    ),
];

fn scan(name: &str, bytes: &[u8]) -> ScanSummary {
    match summarize(name, bytes).unwrap() {
        Summary::Scan(s) => s,
        other => panic!("{name}: expected a scan summary, got {other:?}"),
    }
}

fn counts(c: [u64; 6]) -> SeverityCounts {
    let [critical, high, medium, low, negligible, unknown] = c;
    SeverityCounts {
        critical,
        high,
        medium,
        low,
        negligible,
        unknown,
    }
}

fn check(name: &str, bytes: &[u8], e: &Expected) -> ScanSummary {
    assert_eq!(detect(name, bytes).unwrap(), e.format, "{name}");
    assert!(
        summarize_for(name, bytes, Kind::Scan).is_ok(),
        "{name}: stage"
    );
    let s = scan(name, bytes);
    assert_eq!(s.scanner.name, e.scanner.0, "{name}: scanner");
    assert_eq!(
        s.scanner.version.as_deref(),
        e.scanner.1,
        "{name}: scanner version"
    );
    assert_eq!(
        s.scanned_at.as_ref().map(|t| t.raw.as_str()),
        e.scanned_at,
        "{name}: scan time"
    );
    if e.scanned_at.is_some() {
        assert!(
            s.scanned_at.as_ref().unwrap().utc.is_some(),
            "{name}: instant"
        );
    }
    assert_eq!(s.artifact_name.as_deref(), e.artifact, "{name}: artifact");
    assert_eq!(
        s.artifact_type.as_deref(),
        e.artifact_type,
        "{name}: artifact type"
    );
    assert_eq!(
        s.manifest_digests, e.manifest_digests,
        "{name}: manifest digests"
    );
    assert_eq!(s.image_id.as_deref(), e.image_id, "{name}: image id");
    assert_eq!(s.counts, counts(e.counts), "{name}: counts");
    assert_eq!(s.total, e.counts.iter().sum::<u64>(), "{name}: total");
    assert_eq!(
        s.findings.len() as u64,
        s.total,
        "{name}: one finding per count"
    );
    if let Some(findings) = e.findings {
        let got: Vec<F> = s
            .findings
            .iter()
            .map(|f| {
                (
                    // Leak is fine in a test: it lets the tuples compare as 'static.
                    &*String::leak(f.id.clone()),
                    f.severity,
                    f.package.clone().map(|p| &*String::leak(p)),
                    f.version.clone().map(|v| &*String::leak(v)),
                )
            })
            .collect();
        assert_eq!(got, findings, "{name}: findings");
    }
    match (&s.misconfigurations, e.misconfig) {
        (Some(m), Some((failures, successes, exceptions, ids))) => {
            assert_eq!(
                (m.failures, m.successes, m.exceptions),
                (failures, successes, exceptions),
                "{name}: misconfigurations"
            );
            let got: Vec<(&str, Severity)> = m
                .findings
                .iter()
                .map(|f| (f.id.as_str(), f.severity))
                .collect();
            assert_eq!(got, ids, "{name}: misconfiguration ids");
            assert_eq!(
                m.counts.total(),
                failures,
                "{name}: misconfiguration counts"
            );
        }
        (None, None) => {}
        (got, want) => panic!("{name}: misconfigurations {got:?}, expected {want:?}"),
    }
    s
}

#[test]
fn scan_fixtures() {
    for (file, expected) in CASES {
        check(file, &read(file), expected);
    }
}

/// CodeQL's 72 findings carry their rule ids: `jq '[.runs[].results[].ruleId] |
/// group_by(.) | length'` = 13 distinct, py/unused-import 40 times.
#[test]
fn sarif_finding_ids_are_rule_ids() {
    let file = "scan-sarif/codeql-2.5.4.sarif";
    let s = scan(file, &read(file));
    let ids: std::collections::BTreeSet<&str> = s.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids.len(), 13);
    let unused = s
        .findings
        .iter()
        .filter(|f| f.id == "py/unused-import")
        .count();
    assert_eq!(unused, 40);
}

fn with(file: &str, change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(&read(file)).unwrap();
    change(&mut doc);
    serde_json::to_vec(&doc).unwrap()
}

const MANIFEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// Trivy's RepoDigests are manifest digests; ImageID stays apart as the config digest.
#[test]
fn trivy_repo_digests_are_manifest_digests_not_image_id() {
    let file = "scan-trivy/trivy-alpine-310.json";
    let bytes = with(file, |d| {
        d["Metadata"]["RepoDigests"] = json!([
            format!("ghcr.io/aquasecurity/trivy-test-images@{MANIFEST}"),
            format!("mirror.example/trivy-test-images@{MANIFEST}"),
        ]);
    });
    let s = scan(file, &bytes);
    assert_eq!(s.manifest_digests, [MANIFEST]);
    assert_eq!(s.repo_digests.len(), 2);
    assert_eq!(s.image_id.as_deref(), Some(ALPINE_310_ID));
    assert!(!s.manifest_digests.contains(&ALPINE_310_ID.to_owned()));
}

/// Grype: manifestDigest and repoDigests both count as manifest digests; imageID
/// does not. Grype's DB descriptor is read in both shapes.
#[test]
fn grype_digests_and_db() {
    let file = "scan-grype/grype-image.json";
    let bytes = with(file, |d| {
        d["source"]["target"]["repoDigests"] = json!([format!("docker.io/library/x@{OTHER}")]);
        d["descriptor"]["timestamp"] = json!("2024-05-06T07:08:09.123Z");
        d["descriptor"]["db"] =
            json!({"status": {"schemaVersion": "v6.0.2", "built": "2024-05-06T01:02:03Z"}});
    });
    let s = scan(file, &bytes);
    assert_eq!(
        s.manifest_digests,
        // Sorted: "sha256:2…" before "sha256:c…".
        [
            OTHER,
            "sha256:ca738abb87a8d58f112d3400ebb079b61ceae7dc290beb34bda735be4b1941d5",
        ]
    );
    assert_eq!(
        s.image_id.as_deref(),
        Some("sha256:ab5608d634db2716a297adbfa6a5dd5d8f8f5a7d0cab73649ea7fbb8c8da544f")
    );
    assert_eq!(
        s.scanned_at.as_ref().map(|t| t.raw.as_str()),
        Some("2024-05-06T07:08:09.123Z")
    );
    let db = s.db.expect("db");
    assert_eq!(db.version.as_deref(), Some("v6.0.2"));
    assert_eq!(
        db.updated.and_then(|t| t.utc).map(|t| t.as_second()),
        Some(1_714_957_323)
    );

    let bytes = with(file, |d| {
        d["descriptor"]["db"] = json!({"built": "2021-01-01T00:00:00Z", "schemaVersion": 5});
    });
    let db = scan(file, &bytes).db.expect("db");
    assert_eq!(db.version.as_deref(), Some("5"));
    assert_eq!(
        db.updated.map(|t| t.raw),
        Some("2021-01-01T00:00:00Z".to_owned())
    );
}

/// SARIF carries a scan time only in invocations; when present it is used.
#[test]
fn sarif_scan_time_from_invocations() {
    let file = "scan-sarif/trivy-alpine-310.sarif.json";
    let bytes = with(file, |d| {
        d["runs"][0]["invocations"] =
            json!([{"executionSuccessful": true, "startTimeUtc": "2024-01-02T03:04:05Z"}]);
    });
    let s = scan(file, &bytes);
    let t = s.scanned_at.expect("scan time");
    assert_eq!(t.raw, "2024-01-02T03:04:05Z");
    assert_eq!(t.utc.map(|u| u.as_second()), Some(1_704_164_645));
}

/// The SARIF severity mapping, one result per row: (result level, result
/// security-severity, rule default level, rule security-severity) → severity.
#[test]
fn sarif_severity_mapping() {
    let rows: &[(Value, Value, Value, Value, Severity)] = &[
        // CVSS bands, boundaries included; the score wins over the level.
        (
            json!("note"),
            json!("9.0"),
            Value::Null,
            Value::Null,
            Critical,
        ),
        (json!("note"), json!(8.9), Value::Null, Value::Null, High),
        (json!("note"), json!("7.0"), Value::Null, Value::Null, High),
        (
            json!("error"),
            json!("6.9"),
            Value::Null,
            Value::Null,
            Medium,
        ),
        (
            json!("error"),
            json!("4.0"),
            Value::Null,
            Value::Null,
            Medium,
        ),
        (json!("error"), json!("0.1"), Value::Null, Value::Null, Low),
        // The rule's score applies when the result has none.
        (
            Value::Null,
            Value::Null,
            Value::Null,
            json!("9.8"),
            Critical,
        ),
        // A score of 0 or garbage is ignored: fall back to the level.
        (json!("error"), json!("0.0"), Value::Null, Value::Null, High),
        (
            json!("warning"),
            json!("n/a"),
            Value::Null,
            Value::Null,
            Medium,
        ),
        (json!("note"), json!(11), Value::Null, Value::Null, Low),
        // Levels.
        (
            json!("none"),
            Value::Null,
            Value::Null,
            Value::Null,
            Unknown,
        ),
        // No result level: the rule default; no rule default: SARIF's "warning".
        (Value::Null, Value::Null, json!("error"), Value::Null, High),
        (Value::Null, Value::Null, json!("note"), Value::Null, Low),
        (Value::Null, Value::Null, Value::Null, Value::Null, Medium),
    ];
    let mut rules = Vec::new();
    let mut results = Vec::new();
    for (i, (level, score, rule_level, rule_score, _)) in rows.iter().enumerate() {
        let id = format!("R{i}");
        let mut rule = json!({"id": id});
        if !rule_level.is_null() {
            rule["defaultConfiguration"] = json!({"level": rule_level});
        }
        if !rule_score.is_null() {
            rule["properties"] = json!({"security-severity": rule_score});
        }
        rules.push(rule);
        // Half the results find their rule by index, half by id.
        let mut result = if i % 2 == 0 {
            json!({"ruleId": id, "ruleIndex": i, "message": {"text": "x"}})
        } else {
            json!({"ruleId": id, "message": {"text": "x"}})
        };
        if !level.is_null() {
            result["level"] = level.clone();
        }
        if !score.is_null() {
            result["properties"] = json!({"security-severity": score});
        }
        results.push(result);
    }
    // Passing results are not findings.
    results
        .push(json!({"ruleId": "R0", "kind": "pass", "level": "none", "message": {"text": "ok"}}));
    let log = json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{"tool": {"driver": {"name": "t", "rules": rules}}, "results": results}]
    });
    let s = scan("mapping.sarif", &serde_json::to_vec(&log).unwrap());
    let got: Vec<(String, Severity)> = s
        .findings
        .iter()
        .map(|f| (f.id.clone(), f.severity))
        .collect();
    let want: Vec<(String, Severity)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("R{i}"), r.4))
        .collect();
    assert_eq!(got, want);
}

/// The summary is a wire format: lowercase severity keys, camelCase fields.
#[test]
fn scan_summary_serializes_camel_case() {
    let file = "scan-grype/grype-image.json";
    let summary = summarize(file, &read(file)).unwrap();
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["kind"], "scan");
    assert_eq!(json["format"], "grype-json");
    assert_eq!(json["counts"]["critical"], 1);
    assert_eq!(json["counts"]["low"], 1);
    assert_eq!(json["findings"][1]["severity"], "critical");
    assert_eq!(
        json["imageId"],
        "sha256:ab5608d634db2716a297adbfa6a5dd5d8f8f5a7d0cab73649ea7fbb8c8da544f"
    );
    assert!(json["manifestDigests"].is_array());
    assert!(json.get("scannedAt").is_some());
    let back: Summary = serde_json::from_value(json).unwrap();
    assert_eq!(back, summary);
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

/// Issue 15, item 12: Trivy's `Secrets` were dropped and gitleaks' SARIF results counted
/// as vulnerabilities. Secrets are counted on their own, by rule and place, and the
/// secret itself (Trivy's `Match` and code lines, gitleaks' snippet) is never read.
/// Expected values: `jq '.Results[].Secrets[] | [.RuleID, .Severity, .StartLine]'
/// tests/data/trivy-secrets.json`; `jq '.runs[].results[] | .ruleId'
/// tests/data/gitleaks.sarif`.
#[test]
fn secrets_are_counted_on_their_own_and_never_quoted() {
    let s = scan("trivy-secrets.json", &data("trivy-secrets.json"));
    assert_eq!(s.total, 0, "a secret is not a vulnerability");
    let secrets = s.secrets.clone().unwrap();
    assert_eq!(secrets.total, 2);
    assert_eq!(secrets.counts.critical, 1);
    assert_eq!(secrets.counts.high, 1);
    let found: Vec<(&str, Option<&str>, Option<u64>)> = secrets
        .findings
        .iter()
        .map(|f| (f.rule.as_str(), f.target.as_deref(), f.line))
        .collect();
    assert_eq!(
        found,
        [
            ("aws-access-key-id", Some("deploy.sh"), Some(3)),
            ("mysecret", Some("deploy.sh"), Some(7))
        ]
    );
    let text = serde_json::to_string(&s).unwrap();
    for quoted in ["AWS_ACCESS_KEY_ID=", "ghp_0123456789", "echo ****"] {
        assert!(
            !text.contains(quoted),
            "the summary quotes the secret: {text}"
        );
    }

    let g = scan("gitleaks.sarif", &data("gitleaks.sarif"));
    assert_eq!(g.scanner.name, "gitleaks");
    assert_eq!(g.total, 0, "gitleaks' results are not vulnerabilities");
    let secrets = g.secrets.clone().unwrap();
    assert_eq!(secrets.total, 1);
    assert_eq!(secrets.findings[0].rule, "test-rule");
    assert_eq!(secrets.findings[0].target.as_deref(), Some("auth.py"));
    assert_eq!(secrets.findings[0].line, Some(1));
    assert!(!serde_json::to_string(&g).unwrap().contains("a secret"));

    // image scans without a secret scanner say nothing about secrets
    let image = scan(
        "scan-trivy/trivy-alpine-310.json",
        &read("scan-trivy/trivy-alpine-310.json"),
    );
    assert!(image.secrets.is_none());
}
