//! `custody verify-bundle`: an exported bundle checked offline, with no store, held to
//! the auditor's checks (`--require-stages`, `--min-retention-years`) where given.

use anyhow::Context as _;
use custody_audit::KeySource;
use custody_platform::keyfiles;

use crate::cli::{Format, VerifyBundleArgs};
use crate::exit::{Exit, fail};

pub async fn run(args: VerifyBundleArgs) -> anyhow::Result<Exit> {
    if !args.bundle.is_file() {
        return Err(fail(
            Exit::Usage,
            format!("{}: not a readable file", args.bundle.display()),
        ));
    }
    let keys = if args.bundle_keys {
        errln!(
            "trusting the keys inside the bundle: this proves the bundle is intact, not who made it; pass --key with keys you hold to prove that"
        );
        KeySource::Bundled
    } else {
        KeySource::Given(keyfiles::read_trusted_keys(&args.keys).context("reading trusted keys")?)
    };
    // the auditor's checks, not the ones the bundle's maker chose, when given
    let auditor = custody_audit::AuditorChecks {
        required_stages: args.require_stages.as_deref().map(crate::cli::stage_list),
        min_retention_years: args.min_retention_years,
        log_keys: crate::commands::log::read_verifiers(&args.log_keys)?,
        max_checkpoint_age: args.max_checkpoint_age,
        witness_keys: crate::commands::log::read_witnesses(&args.witnesses.witness_keys)?,
        min_witnesses: crate::commands::log::min_witnesses(&args.witnesses),
    };
    if !auditor.witness_keys.is_empty() && auditor.log_keys.is_empty() {
        return Err(fail(
            Exit::Usage,
            "--witness-key needs --log-key: witnesses cosign the log's checkpoint",
        ));
    }
    let check = match custody_audit::verify_bundle(&args.bundle, &keys, &auditor).await {
        Ok(c) => c,
        Err(e @ custody_audit::BundleError::Unsafe { .. }) => {
            return Err(fail(Exit::Verify, e.to_string()));
        }
        Err(e @ custody_audit::BundleError::Format { .. }) => {
            return Err(fail(Exit::Verify, e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let ok = check.ok();
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "bundle": args.bundle,
                "ok": ok,
                "manifest": check.manifest,
                "checks": check.checks,
                "consistency": check.consistency,
                "completeness": check.completeness,
                "verification": check.audit,
            });
            out!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            out!(
                "bundle     {} (exported {} from {})",
                args.bundle.display(),
                check.manifest.created_at,
                check.manifest.source
            );
            out!("query      {}", check.manifest.query);
            match &check.completeness {
                Some(c) => {
                    out!(
                        "complete   log {} checkpoint of {} entries{} (root {}): entries {}..{} read, {} answer the query, all in the bundle unless listed below",
                        c.origin,
                        c.checkpoint_size,
                        c.checkpoint_time
                            .map(|t| format!(" signed {t}"))
                            .unwrap_or_default(),
                        c.root,
                        c.from,
                        c.checkpoint_size,
                        c.matching
                    );
                    for w in &c.witnesses {
                        out!("witness    {} cosigned it at {}", w.witness, w.time);
                    }
                }
                None if args.log_keys.is_empty() => out!(
                    "complete   not checked: pass --log-key with the log's verifier key to prove no record is missing"
                ),
                None => out!("complete   NOT PROVEN (see the findings below)"),
            }
            let c = &check.checks;
            out!(
                "checks     required stages {} ({}); minimum retention {} years ({})",
                if c.required_stages.is_empty() {
                    "none".to_owned()
                } else {
                    c.required_stages.join(", ")
                },
                c.required_stages_from,
                c.min_retention_years,
                c.min_retention_years_from
            );
            if !check.consistency.is_empty() {
                let rows: Vec<Vec<String>> = check
                    .consistency
                    .iter()
                    .map(|f| vec![f.about.clone(), f.message.clone()])
                    .collect();
                out!("");
                out!(
                    "{}",
                    crate::output::table(&["BUNDLE FILE", "WHAT IS WRONG"], &rows)
                );
            }
            out!("");
            crate::output::print_audit(&check.audit, Format::Table)?;
        }
    }
    Ok(if ok { Exit::Ok } else { Exit::Verify })
}
