//! What `runner-guard` says about its verdict: the table (or JSON) on stdout, an
//! `::error` annotation per failed check, the tier, outcome and record as step outputs
//! and dotenv variables, and the verdict in Markdown for the step summary.

use custody_platform::step::Report;

use crate::{Evidence, Outcome};

/// The report of a verdict; `json`: the outcome as JSON on stdout instead of the table.
pub fn report(outcome: &Outcome, json: bool) -> Report {
    let r = &outcome.report;
    let mut out = Report::default();
    if json {
        match serde_json::to_string_pretty(outcome) {
            Ok(s) => out.stdout = format!("{s}\n"),
            Err(e) => out
                .stderr
                .push(format!("error: could not render the verdict as JSON: {e}")),
        }
    } else {
        out.stdout = format!("{}\n", r.to_text().trim_end());
        if let Evidence::Stored(s) = &outcome.evidence {
            out.stdout.push_str(&format!(
                "record {} stored in {} (subject {}, chain {} #{})\n",
                s.record, s.store, s.subject, s.chain.id, s.chain.sequence
            ));
        }
    }
    for c in r.failed() {
        out.errors
            .push((None, format!("runner-guard {}: {}", c.id, c.reason)));
    }
    let mut md = r.to_markdown();
    let (record, store) = match &outcome.evidence {
        Evidence::Stored(s) => {
            md.push_str(&format!(
                "\nRecord: `{}` in `{}` (subject `{}`)\n",
                s.record, s.store, s.subject
            ));
            (s.record.to_string(), s.store.clone())
        }
        Evidence::Failed { store, error } => {
            let message = format!(
                "runner-guard: the verdict was not stored as evidence ({error}); exit code 4"
            );
            out.errors.push((None, message.clone()));
            out.stderr.push(format!("error: {message}"));
            md.push_str(&format!(
                "\nRecord: **not stored** in `{store}` (exit code 4)\n"
            ));
            (String::new(), store.clone())
        }
        Evidence::NotConfigured => (String::new(), String::new()),
    };
    let outcome_name = serde_json::to_value(r.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let tier = r.tier.clone().unwrap_or_default();
    out.github = vec![
        ("tier", tier.clone()),
        ("outcome", outcome_name.clone()),
        ("exit-code", outcome.exit_code().to_string()),
        ("record", record.clone()),
        ("store", store),
    ];
    out.summary = md;
    out.dotenv = vec![
        ("CUSTODY_RUNNER_TIER", tier),
        ("CUSTODY_RUNNER_OUTCOME", outcome_name),
        ("CUSTODY_RUNNER_RECORD", record),
    ];
    out
}
