//! What `evidence-upload` says when the records are stored: one line per record on
//! stdout (or the whole outcome as JSON), the records as step outputs and dotenv
//! variables, and a Markdown table for the step summary.

use custody_platform::step::Report;
use serde_json::Value;

use crate::Outcome;

/// The report of a run; `json`: the outcome as JSON on stdout instead of lines.
pub fn report(outcome: &Outcome, json: bool) -> Report {
    let rows: Vec<[String; 4]> = outcome
        .records
        .iter()
        .map(|r| {
            [
                r.record.to_string(),
                r.predicate_type.clone(),
                r.material
                    .as_ref()
                    .map_or_else(|| "-".into(), |m| m.name.clone()),
                summary_cell(r.summary.as_ref()),
            ]
        })
        .collect();
    let mut report = Report::default();
    if json {
        match serde_json::to_string_pretty(outcome) {
            Ok(s) => report.stdout = format!("{s}\n"),
            Err(e) => report.stderr.push(format!("error: {e}")),
        }
    } else {
        for [rec, ptype, file, summary] in &rows {
            report
                .stdout
                .push_str(&format!("{rec}  {ptype}  {file}  {summary}\n"));
        }
        report.stderr.push(format!(
            "{} record(s) of stage {} stored in {}",
            rows.len(),
            outcome.stage,
            outcome.store
        ));
    }
    let all: Vec<String> = rows.iter().map(|[rec, ..]| rec.clone()).collect();
    let last = all.last().cloned().unwrap_or_default();
    report.github = vec![
        ("record", last.clone()),
        ("records", serde_json::to_string(&all).unwrap_or_default()),
        ("store", outcome.store.clone()),
    ];
    let mut md = format!(
        "### Custody evidence: stage `{}`\n\n| record | predicate | file | summary |\n|---|---|---|---|\n",
        outcome.stage
    );
    for [rec, ptype, file, summary] in &rows {
        md.push_str(&format!(
            "| `{}` | {ptype} | {file} | {summary} |\n",
            rec.get(..19).unwrap_or(rec)
        ));
    }
    md.push_str(&format!("\nStore: `{}`\n", outcome.store));
    report.summary = md;
    report.dotenv = vec![
        ("CUSTODY_RECORD", last),
        ("CUSTODY_RECORDS", all.join(",")),
        ("CUSTODY_STORE_URI", outcome.store.clone()),
    ];
    report
}

/// A record's summary in a few words, for the table.
fn summary_cell(s: Option<&Value>) -> String {
    let Some(s) = s else { return "-".into() };
    let n = |v: Option<&Value>, k: &str| v.and_then(|v| v.get(k)).and_then(Value::as_u64);
    let g = |k: &str| n(Some(s), k).unwrap_or(0);
    match s.get("kind").and_then(Value::as_str) {
        Some("sbom") => format!(
            "{} components, {} licenses",
            g("componentCount"),
            g("licenseCount")
        ),
        Some("tests") => format!(
            "{} passed, {} failed, {} errored, {} skipped",
            g("passed"),
            g("failed"),
            g("errored"),
            g("skipped")
        ),
        Some("coverage") => match s.get("lineRate").and_then(Value::as_f64) {
            Some(r) => format!("{:.1}% lines covered", r * 100.0),
            None => "no line data".into(),
        },
        Some("scan") => {
            let c = |k: &str| n(s.get("counts"), k).unwrap_or(0);
            format!(
                "{} critical, {} high, {} medium, {} low",
                c("critical"),
                c("high"),
                c("medium"),
                c("low")
            )
        }
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn summaries_read_in_a_few_words() {
        let cell = |v: Value| summary_cell(Some(&v));
        assert_eq!(
            cell(json!({"kind": "scan", "counts": {"critical": 1, "high": 2}})),
            "1 critical, 2 high, 0 medium, 0 low"
        );
        assert_eq!(
            cell(json!({"kind": "coverage", "lineRate": 0.8123})),
            "81.2% lines covered"
        );
        assert_eq!(
            cell(json!({"kind": "tests", "passed": 3, "failed": 1})),
            "3 passed, 1 failed, 0 errored, 0 skipped"
        );
        assert_eq!(cell(json!({"kind": "other"})), "-");
        assert_eq!(summary_cell(None), "-");
    }
}
