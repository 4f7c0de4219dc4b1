//! `custody export`: a query's evidence as a self-contained audit bundle.

use anyhow::Context as _;
use custody_platform::context::ProcessEnv;
use custody_platform::{keyfiles, stores};
use custody_store::EvidenceStore;

use crate::cli::{ExportArgs, Format};
use crate::exit::{Exit, fail};

pub async fn run(args: ExportArgs) -> anyhow::Result<Exit> {
    let keys = keyfiles::read_trusted_keys(&args.keys).context("reading trusted keys")?;
    if args.out.exists() {
        return Err(fail(
            Exit::Usage,
            format!(
                "{}: already exists; choose another --out (bundles are never overwritten)",
                args.out.display()
            ),
        ));
    }
    let query = crate::commands::query::build_query(&args.filter)?;
    let store = stores::open(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let refs = store.query(&query).await?;
    if refs.is_empty() {
        errln!(
            "no records match the query in {}; no bundle written",
            store.uri()
        );
        return Ok(Exit::NotFound);
    }
    let log_keys = crate::commands::log::read_verifiers(&args.log_keys)?;
    let req = custody_audit::ExportRequest {
        query: args.filter.describe(),
        filter: query.clone(),
        log_keys,
        required_stages: args.audit.stages(),
        min_retention_years: args.audit.min_retention_years,
        created_at: jiff::Timestamp::now(),
    };
    let exported = custody_audit::export(&store, &refs, &keys, &req, &args.out)
        .await
        .with_context(|| format!("writing {}", args.out.display()))?;
    let audit = &exported.bundle;
    match args.format {
        Format::Json => {
            let v = serde_json::json!({
                "bundle": exported.path,
                "bytes": exported.bytes,
                "ok": audit.ok,
                "totals": audit.totals,
                "findings": audit.findings,
            });
            out!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            crate::output::print_audit(audit, Format::Table)?;
            out!("");
            out!(
                "bundle     {} ({} bytes)",
                exported.path.display(),
                exported.bytes
            );
            out!("report     custody-bundle/report.html and report.md inside it");
            out!(
                "verify it  custody verify-bundle {} --key PUBLIC-KEY",
                exported.path.display()
            );
        }
    }
    Ok(if audit.ok { Exit::Ok } else { Exit::Verify })
}
