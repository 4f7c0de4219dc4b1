//! `custody verify-bundle`: an exported bundle checked offline, with no store.

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
        eprintln!(
            "trusting the keys inside the bundle: this proves the bundle is intact, not who made it; pass --key with keys you hold to prove that"
        );
        KeySource::Bundled
    } else {
        KeySource::Given(keyfiles::read_trusted_keys(&args.keys).context("reading trusted keys")?)
    };
    let check = match custody_audit::verify_bundle(&args.bundle, &keys).await {
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
                "consistency": check.consistency,
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
