//! The auditor's report, in HTML (one self-contained page: no script, no external
//! resource, a print stylesheet) and Markdown, derived from an [`Audit`] alone.
//!
//! Every value shown comes from evidence, which is untrusted text: the HTML template
//! escapes everything (askama's default), Markdown cells are escaped here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use askama::Template;
use custody_evidence::Control;
use custody_formats::Summary;
use jiff::Timestamp;
use serde_json::Value;

use crate::verify::{Audit, KEPT_PREDICATES, RecordEntry, Severity};

/// What the report says about where it came from.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    pub query: &'a str,
    pub source: &'a str,
    pub created_at: Timestamp,
    pub keys: &'a [String],
}

/// One stage's evidence in a pipeline, in a line.
#[derive(Debug, Clone)]
pub struct StageLine {
    pub stage: String,
    pub when: String,
    pub what: String,
    pub verified: bool,
    pub record: String,
}

/// A policy gate's decision.
#[derive(Debug, Clone)]
pub struct DecisionLine {
    pub gate: String,
    pub decision: String,
    pub when: String,
    pub failed: Vec<String>,
    pub approvals: Vec<String>,
    pub verified: bool,
}

#[derive(Debug, Clone)]
pub struct DeploymentView {
    pub artifact: String,
    pub digest: String,
    pub environment: String,
    pub when: String,
    pub actor: String,
    pub pipeline: String,
    pub repository: String,
    pub commit: String,
    pub url: String,
    pub verified: bool,
    pub signer: String,
    pub stages: Vec<StageLine>,
    pub decisions: Vec<DecisionLine>,
    pub runners: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PipelineView {
    pub key: String,
    pub commit: String,
    pub stages: Vec<StageLine>,
    pub missing: String,
}

#[derive(Debug, Clone)]
pub struct ControlView {
    pub citation: &'static str,
    pub title: &'static str,
    pub how: String,
    pub records: Vec<RecordRow>,
}

#[derive(Debug, Clone)]
pub struct RecordRow {
    pub digest: String,
    pub short: String,
    pub stage: String,
    pub predicate_type: String,
    pub subject: String,
    pub when: String,
    pub signer: String,
    pub verified: bool,
    pub chain: String,
    pub retention: String,
}

#[derive(Debug, Clone)]
pub struct FindingRow {
    pub severity: &'static str,
    pub check: String,
    pub about: String,
    pub message: String,
}

/// Everything both renderings show.
#[derive(Debug, Clone)]
pub struct Model {
    pub ok: bool,
    pub verdict: &'static str,
    pub query: String,
    pub source: String,
    pub generated: String,
    pub records: usize,
    pub matched: usize,
    pub verified: usize,
    pub chains: usize,
    pub pipelines_count: usize,
    pub errors: usize,
    pub warnings: usize,
    pub required: String,
    pub min_years: i16,
    pub keys: Vec<String>,
    pub findings: Vec<FindingRow>,
    pub deployments: Vec<DeploymentView>,
    pub pipelines: Vec<PipelineView>,
    pub controls: Vec<ControlView>,
    pub rows: Vec<RecordRow>,
}

#[derive(Template)]
#[template(path = "report.html")]
struct HtmlReport<'a> {
    m: &'a Model,
}

/// The HTML report.
pub fn html(audit: &Audit, meta: &Meta<'_>) -> String {
    let m = model(audit, meta);
    HtmlReport { m: &m }.render().unwrap_or_else(|e| {
        format!("<!doctype html><title>report</title><p>report could not be rendered: {e}</p>")
    })
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn short(s: &str) -> String {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    hex.chars().take(12).collect()
}

fn opt(s: Option<&String>) -> String {
    s.cloned().unwrap_or_else(|| "-".into())
}

fn subject_of(r: &RecordEntry) -> String {
    r.subject
        .first()
        .map(|s| {
            let d = s
                .digest
                .get("sha256")
                .map(|h| format!("sha256:{}", h.chars().take(12).collect::<String>()))
                .unwrap_or_default();
            match (s.name.is_empty(), d.is_empty()) {
                (false, false) => format!("{} ({d})", s.name),
                (false, true) => s.name.clone(),
                (true, _) => d,
            }
        })
        .unwrap_or_else(|| "-".into())
}

/// A stage's summary in words.
pub fn describe(r: &RecordEntry) -> String {
    let Some(v) = &r.summary else {
        return match r.stage.as_str() {
            "runner-guard" => runner_line(r),
            _ => short_type(&r.predicate_type),
        };
    };
    if let Ok(s) = serde_json::from_value::<Summary>(v.clone()) {
        return match s {
            Summary::Sbom(s) => format!(
                "SBOM: {} components, {} licenses ({} {})",
                s.component_count,
                s.license_count,
                wire_name(&s.format),
                s.spec_version
            ),
            Summary::Tests(t) => format!(
                "tests: {} run, {} passed, {} failed, {} errored, {} skipped",
                t.total, t.passed, t.failed, t.errored, t.skipped
            ),
            Summary::Coverage(c) => match c.line_rate {
                Some(rate) => format!(
                    "line coverage {:.1}% ({} of {} lines, {} files)",
                    rate * 100.0,
                    c.lines_covered,
                    c.lines_valid,
                    c.files
                ),
                None => format!("coverage of {} files (no line rate)", c.files),
            },
            Summary::Scan(s) => {
                let when = s
                    .scanned_at
                    .as_ref()
                    .and_then(|t| t.utc)
                    .map(|t| format!(", scanned {}", time(t)))
                    .unwrap_or_default();
                format!(
                    "vulnerabilities: {} critical, {} high, {} medium, {} low, {} other ({}{})",
                    s.counts.critical,
                    s.counts.high,
                    s.counts.medium,
                    s.counts.low,
                    s.counts.negligible + s.counts.unknown,
                    s.scanner.name,
                    when
                )
            }
        };
    }
    match r.stage.as_str() {
        "sign" => format!(
            "signed {} with key {}",
            v.get("signed")
                .and_then(Value::as_str)
                .map_or("-".into(), short),
            text(Some(v), "keyId")
        ),
        "deploy" => format!("deployed to {}", text(Some(v), "environment")),
        "runner-guard" => runner_line(r),
        _ => short_type(&r.predicate_type),
    }
}

/// A serde enum's wire name (`error`, `COMPLIANCE`, `cyclonedx-json`, …).
pub fn wire_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn short_type(t: &str) -> String {
    t.rsplit_once("://").map_or(t, |(_, rest)| rest).to_owned()
}

/// `v[key]` when it is a string, else `-`.
fn text<'a>(v: Option<&'a Value>, key: &str) -> &'a str {
    v.and_then(|v| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("-")
}

/// The entries of the list `v[key]` (runner-guard checks, decision rules) that failed.
fn failing<'a>(v: Option<&'a Value>, key: &str) -> impl Iterator<Item = &'a Value> {
    v.and_then(|v| v.get(key))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|x| x.get("status").and_then(Value::as_str) == Some("fail"))
}

fn runner_line(r: &RecordEntry) -> String {
    let p = r.predicate.as_ref();
    let failed: Vec<&str> = failing(p, "checks")
        .filter_map(|c| c.get("id").and_then(Value::as_str))
        .collect();
    let mut s = format!(
        "runner: tier {}, outcome {}",
        text(p, "tier"),
        text(p, "outcome")
    );
    if !failed.is_empty() {
        let _ = write!(s, " (failed: {})", failed.join(", "));
    }
    s
}

fn decision_of(r: &RecordEntry) -> DecisionLine {
    let p = r.predicate.as_ref();
    let failed = failing(p, "rules")
        .map(|x| {
            format!(
                "{}: {}",
                text(Some(x), "id"),
                x.get("message").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();
    let approvals = p
        .and_then(|p| p.get("approvals"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    format!(
                        "{} at {} ({})",
                        text(Some(x), "approver"),
                        text(Some(x), "at"),
                        text(Some(x), "source")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    DecisionLine {
        gate: text(p, "gate").to_owned(),
        decision: text(p, "decision").to_owned(),
        when: time(r.recorded_at),
        failed,
        approvals,
        verified: r.verified,
    }
}

fn stage_line(r: &RecordEntry) -> StageLine {
    StageLine {
        stage: r.stage.clone(),
        when: time(r.recorded_at),
        what: describe(r),
        verified: r.verified,
        record: short(&r.digest.to_string()),
    }
}

fn row(r: &RecordEntry) -> RecordRow {
    RecordRow {
        digest: r.digest.to_string(),
        short: short(&r.digest.to_string()),
        stage: r.stage.clone(),
        predicate_type: r.predicate_type.clone(),
        subject: subject_of(r),
        when: time(r.recorded_at),
        signer: r
            .signer
            .as_ref()
            .map_or_else(|| "NOT VERIFIED".into(), |s| s.label.clone()),
        verified: r.verified,
        chain: format!("{} #{}", r.chain.id, r.chain.sequence),
        retention: r.retention.as_ref().map_or_else(
            || "NONE".into(),
            |x| {
                format!(
                    "{} until {}{}",
                    wire_name(&x.mode),
                    x.retain_until.strftime("%Y-%m-%d"),
                    if x.legal_hold { ", legal hold" } else { "" }
                )
            },
        ),
    }
}

/// The view both renderings share.
pub fn model(audit: &Audit, meta: &Meta<'_>) -> Model {
    let mut by_pipeline: BTreeMap<String, Vec<&RecordEntry>> = BTreeMap::new();
    for r in &audit.records {
        by_pipeline
            .entry(r.pipeline_key().unwrap_or_else(|| "(no pipeline)".into()))
            .or_default()
            .push(r);
    }
    let evidence_stages = |recs: &[&RecordEntry]| -> Vec<StageLine> {
        recs.iter()
            .filter(|r| r.stage != "policy")
            .map(|r| stage_line(r))
            .collect()
    };
    let mut deployments = Vec::new();
    let mut pipelines = Vec::new();
    for (key, recs) in &by_pipeline {
        let deploys: Vec<&&RecordEntry> = recs.iter().filter(|r| r.stage == "deploy").collect();
        if deploys.is_empty() {
            let missing = audit
                .pipelines
                .iter()
                .find(|p| &p.key == key)
                .map(|p| p.missing.join(", "))
                .unwrap_or_default();
            pipelines.push(PipelineView {
                key: key.clone(),
                commit: recs
                    .first()
                    .and_then(|r| r.pipeline.commit.clone())
                    .unwrap_or_else(|| "-".into()),
                stages: evidence_stages(recs),
                missing,
            });
            continue;
        }
        for d in deploys {
            let s = d.subject.first();
            deployments.push(DeploymentView {
                artifact: s.map_or_else(|| "-".into(), |s| s.name.clone()),
                digest: s
                    .and_then(|s| s.digest.get("sha256"))
                    .map_or_else(|| "-".into(), |h| format!("sha256:{h}")),
                environment: opt(d.pipeline.environment.as_ref()),
                when: time(d.recorded_at),
                actor: opt(d.pipeline.actor.as_ref()),
                pipeline: key.clone(),
                repository: opt(d.pipeline.repository.as_ref()),
                commit: opt(d.pipeline.commit.as_ref()),
                url: opt(d.pipeline.url.as_ref()),
                verified: d.verified,
                signer: d
                    .signer
                    .as_ref()
                    .map_or_else(|| "NOT VERIFIED".into(), |s| s.label.clone()),
                stages: evidence_stages(recs),
                // the decision records; a gate's VSA (same stage) summarises one of them
                decisions: recs
                    .iter()
                    .filter(|r| r.stage == "policy" && r.predicate_type == KEPT_PREDICATES[0])
                    .map(|r| decision_of(r))
                    .collect(),
                runners: recs
                    .iter()
                    .filter(|r| r.stage == "runner-guard")
                    .map(|r| runner_line(r))
                    .collect(),
            });
        }
    }
    let mut controls = Vec::new();
    for c in Control::ALL {
        let records: Vec<RecordRow> = audit
            .records
            .iter()
            .filter(|r| r.hipaa.contains(&c))
            .map(row)
            .collect();
        controls.push(ControlView {
            citation: c.citation(),
            title: c.title(),
            how: sentence(c.how()),
            records,
        });
    }
    let t = audit.totals;
    Model {
        ok: audit.ok,
        verdict: if audit.ok { "VERIFIED" } else { "FAILED" },
        query: meta.query.to_owned(),
        source: meta.source.to_owned(),
        generated: time(meta.created_at),
        records: t.records,
        matched: t.matched,
        verified: t.verified,
        chains: t.chains,
        pipelines_count: t.pipelines,
        errors: t.errors,
        warnings: t.warnings,
        required: if audit.required_stages.is_empty() {
            "none".into()
        } else {
            audit.required_stages.join(", ")
        },
        min_years: audit.min_retention_years,
        keys: audit
            .trusted_keys
            .iter()
            .map(|k| format!("{} (keyid {})", k.label, k.keyid))
            .collect(),
        findings: audit
            .findings
            .iter()
            .map(|f| FindingRow {
                severity: match f.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
                check: wire_name(&f.check),
                about: f.about.clone(),
                message: f.message.clone(),
            })
            .collect(),
        deployments,
        pipelines,
        controls,
        rows: audit.records.iter().map(row).collect(),
    }
}

/// Capitalizes the first letter.
fn sentence(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Escapes text for a Markdown table cell or line.
fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// The Markdown report.
pub fn markdown(audit: &Audit, meta: &Meta<'_>) -> String {
    let m = model(audit, meta);
    let mut o = String::new();
    let _ = writeln!(o, "# Custody audit report\n");
    let _ = writeln!(
        o,
        "**{}** — {} error(s), {} warning(s)\n",
        m.verdict, m.errors, m.warnings
    );
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| query | {} |", md(&m.query));
    let _ = writeln!(o, "| source store | {} |", md(&m.source));
    let _ = writeln!(o, "| generated | {} |", m.generated);
    let _ = writeln!(
        o,
        "| records | {} ({} named by the query, {} verified) |",
        m.records, m.matched, m.verified
    );
    let _ = writeln!(
        o,
        "| chains, pipelines | {}, {} |",
        m.chains, m.pipelines_count
    );
    let _ = writeln!(o, "| required stages | {} |", md(&m.required));
    let _ = writeln!(o, "| minimum retention | {} years |", m.min_years);
    for k in &m.keys {
        let _ = writeln!(o, "| trusted key | {} |", md(k));
    }
    if !m.findings.is_empty() {
        let _ = writeln!(
            o,
            "\n## Findings\n\n| severity | check | about | what is wrong |\n|---|---|---|---|"
        );
        for f in &m.findings {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                f.severity,
                f.check,
                md(&f.about),
                md(&f.message)
            );
        }
    }
    let stages_table = |o: &mut String, stages: &[StageLine]| {
        let _ = writeln!(
            o,
            "| stage | recorded | evidence | verified | record |\n|---|---|---|---|---|"
        );
        for s in stages {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | `{}` |",
                md(&s.stage),
                s.when,
                md(&s.what),
                if s.verified { "yes" } else { "**NO**" },
                s.record
            );
        }
    };
    let _ = writeln!(o, "\n## Deployments\n");
    if m.deployments.is_empty() {
        let _ = writeln!(o, "No deployment records in scope.");
    }
    for d in &m.deployments {
        let _ = writeln!(o, "### {} to {}\n", md(&d.artifact), md(&d.environment));
        let _ = writeln!(o, "- **what**: {} `{}`", md(&d.artifact), d.digest);
        let _ = writeln!(o, "- **when**: {}", d.when);
        let _ = writeln!(
            o,
            "- **who**: {} (signed by {})",
            md(&d.actor),
            md(&d.signer)
        );
        let _ = writeln!(
            o,
            "- **where from**: {} commit `{}`, pipeline {}",
            md(&d.repository),
            md(&d.commit),
            md(&d.pipeline)
        );
        if d.url != "-" {
            let _ = writeln!(o, "- **run**: {}", md(&d.url));
        }
        let _ = writeln!(o);
        stages_table(&mut o, &d.stages);
        let _ = writeln!(o, "\n**Policy decisions and approvals**\n");
        if d.decisions.is_empty() {
            let _ = writeln!(o, "- none recorded");
        }
        for x in &d.decisions {
            let _ = writeln!(
                o,
                "- {} gate: **{}** at {}{}",
                md(&x.gate),
                md(&x.decision),
                x.when,
                if x.verified { "" } else { " (NOT VERIFIED)" }
            );
            for f in &x.failed {
                let _ = writeln!(o, "  - failed {}", md(f));
            }
            for a in &x.approvals {
                let _ = writeln!(o, "  - approved by {}", md(a));
            }
        }
        let _ = writeln!(o);
    }
    if !m.pipelines.is_empty() {
        let _ = writeln!(o, "\n## Pipelines without a deployment\n");
        for p in &m.pipelines {
            let _ = writeln!(o, "### {}\n\ncommit `{}`", md(&p.key), md(&p.commit));
            if !p.missing.is_empty() {
                let _ = writeln!(o, "\n**missing stages: {}**", md(&p.missing));
            }
            let _ = writeln!(o);
            stages_table(&mut o, &p.stages);
            let _ = writeln!(o);
        }
    }
    let _ = writeln!(o, "\n## HIPAA Security Rule controls\n");
    let _ = writeln!(
        o,
        "Custody's mapping of evidence to 45 CFR Part 164; a reading, not legal advice.\n"
    );
    for c in &m.controls {
        let _ = writeln!(o, "### {} {}\n\n{}.\n", c.citation, c.title, c.how);
        if c.records.is_empty() {
            let _ = writeln!(o, "No evidence in scope.\n");
            continue;
        }
        let _ = writeln!(
            o,
            "| record | stage | subject | recorded | signer |\n|---|---|---|---|---|"
        );
        for r in &c.records {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} | {} |",
                r.short,
                md(&r.stage),
                md(&r.subject),
                r.when,
                md(&r.signer)
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "## Records\n\n| record | stage | predicate type | chain | retention | signer |\n|---|---|---|---|---|---|"
    );
    for r in &m.rows {
        let _ = writeln!(
            o,
            "| `{}` | {} | {} | {} | {} | {} |",
            r.digest,
            md(&r.stage),
            md(&r.predicate_type),
            md(&r.chain),
            md(&r.retention),
            md(&r.signer)
        );
    }
    o
}

/// How to check the bundle without Custody.
pub fn verify_guide(audit: &Audit, meta: &Meta<'_>) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Verifying this bundle\n");
    let _ = writeln!(
        o,
        "Exported from {} at {} for the query `{}`.\n",
        md(meta.source),
        time(meta.created_at),
        meta.query.replace('`', "'")
    );
    let _ = writeln!(o, "## With Custody (offline)\n");
    let _ = writeln!(
        o,
        "```sh\ncustody verify-bundle THIS.tar.gz --key YOUR-COPY-OF-THE-PUBLIC-KEY.pub\n```\n"
    );
    let _ = writeln!(
        o,
        "Pass public keys you obtained independently. The keys in `keys/` only say which keys\nthe exporter trusted:\n"
    );
    for k in &audit.trusted_keys {
        let _ = writeln!(
            o,
            "- `{}`: securesystemslib keyid `{}`",
            k.label.replace('`', "'"),
            k.keyid
        );
    }
    let _ = writeln!(o, "\n## With third-party verifiers\n");
    let _ = writeln!(
        o,
        "Each record is a DSSE envelope (payloadType `application/vnd.in-toto+json`) in\n`envelopes/<sha256>.json`; the file name is the SHA-256 of its bytes (`sha256sum`).\n"
    );
    let _ = writeln!(
        o,
        "securesystemslib (Python, `pip install securesystemslib[crypto]`):\n\n```python\nimport json\nfrom securesystemslib.dsse import Envelope\nfrom securesystemslib.signer import SSlibKey\n\npem = open(\"keys/KEY.pub\").read()\nkey = SSlibKey(\"\", \"ecdsa\", \"ecdsa-sha2-nistp256\", {{\"public\": pem}})  # keyid \"\" = Custody's default\nenvelope = Envelope.from_dict(json.load(open(\"envelopes/HEX.json\")))\nenvelope.verify([key], 1)  # raises VerificationError when altered or signed by another key\n```\n"
    );
    let _ = writeln!(
        o,
        "cosign, with a static key (the subject is the artifact file; `--type` is the\nrecord's predicateType):\n\n```sh\ncosign verify-blob-attestation --key keys/KEY.pub --insecure-ignore-tlog=true \\\n  --type PREDICATE-TYPE-URI --signature envelopes/HEX.json ARTIFACT\n```\n"
    );
    let _ = writeln!(
        o,
        "Materials are in `store/objects/sha256/<first two hex>/<rest>`, named by their SHA-256;\neach record lists its materials' digests in `custodyRecord.materials`."
    );
    o
}
