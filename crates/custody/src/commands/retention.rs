//! `custody retention`: what expires when. Missing, short or bypassable locks are
//! findings; an object whose lock cannot be read is one too.

use anyhow::Context as _;
use custody_platform::context::ProcessEnv;
use custody_platform::stores;
use custody_store::EvidenceStore as _;

use crate::cli::{Format, RetentionArgs};
use crate::exit::Exit;
use crate::output::table;
use custody_audit::report::wire_name;

pub async fn run(args: RetentionArgs) -> anyhow::Result<Exit> {
    let query = crate::commands::query::build_query(&args.filter)?;
    let store = stores::open(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let now = jiff::Timestamp::now();
    // Signatures are not judged here (`custody verify` does that): no keys needed.
    let opts = custody_audit::AuditOptions {
        keys: custody_evidence::TrustedKeys::default(),
        required_stages: Vec::new(),
        min_retention_years: args.min_retention_years,
        verified_at: now,
        store_label: None,
        required_services: Vec::new(),
        scope: None,
    };
    let audit = custody_audit::audit_query(&store, &query, &opts)
        .await?
        .audit;
    if audit.totals.records == 0 {
        errln!("no records match the query in {}", store.uri());
        return Ok(Exit::NotFound);
    }
    let rows = custody_audit::retention::rows(&audit);
    let findings = custody_audit::retention::findings(&audit);
    let errors = findings
        .iter()
        .filter(|f| f.severity == custody_audit::Severity::Error)
        .count();
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "store": audit.store,
                "checkedAt": now,
                "minRetentionYears": args.min_retention_years,
                "ok": errors == 0,
                "objects": rows,
                "findings": findings,
            });
            out!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let left = r.retain_until.map_or_else(
                        || "-".to_owned(),
                        |u| {
                            let days = (u.as_second() - now.as_second()) / 86_400;
                            if days < 0 {
                                "expired".to_owned()
                            } else {
                                format!("{days} days")
                            }
                        },
                    );
                    vec![
                        r.retain_until.map_or_else(
                            || "NO LOCK".to_owned(),
                            |u| u.strftime("%Y-%m-%d").to_string(),
                        ),
                        left,
                        r.mode.as_ref().map_or_else(|| "-".to_owned(), wire_name),
                        if r.legal_hold { "yes" } else { "no" }.into(),
                        r.kind.clone(),
                        r.stage.clone(),
                        r.digest.hex().chars().take(16).collect(),
                    ]
                })
                .collect();
            out!(
                "{}",
                table(
                    &[
                        "RETAIN UNTIL",
                        "LEFT",
                        "MODE",
                        "HOLD",
                        "OBJECT",
                        "STAGE",
                        "DIGEST"
                    ],
                    &body
                )
            );
            if !findings.is_empty() {
                let f: Vec<Vec<String>> = findings
                    .iter()
                    .map(|f| vec![wire_name(&f.severity), f.about.clone(), f.message.clone()])
                    .collect();
                out!("");
                out!("{}", table(&["SEVERITY", "ABOUT", "WHAT IS WRONG"], &f));
            }
            errln!(
                "{} object(s) of {} record(s) in {}; {} finding(s)",
                rows.len(),
                audit.totals.records,
                audit.store,
                findings.len()
            );
        }
    }
    Ok(if errors == 0 { Exit::Ok } else { Exit::Verify })
}
