//! `custody push`: resend what an upload spooled while the store was unreachable.
//! Each put is idempotent, so a push that fails halfway is run again.

use anyhow::Context as _;
use custody_platform::context::ProcessEnv;
use custody_platform::stores;
use custody_store::{EvidenceStore, LocalStore, push_spool};

use crate::cli::{Format, PushArgs};
use crate::exit::{Exit, fail};

pub async fn run(args: PushArgs) -> anyhow::Result<Exit> {
    if !args.spool.exists() {
        return Err(fail(
            Exit::NotFound,
            format!("{}: no spool here, nothing to push", args.spool.display()),
        ));
    }
    let spool = LocalStore::open(&args.spool)
        .with_context(|| format!("opening spool {}", args.spool.display()))?;
    let store = stores::create(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let report = push_spool(&spool, &store)
        .await
        .context("pushing the spool")?;
    match args.format {
        Format::Json => out!(
            "{}",
            serde_json::json!({ "store": store.uri(), "stored": report.stored, "alreadyStored": report.already })
        ),
        Format::Table => {
            for d in &report.stored {
                out!("stored   {d}");
            }
            for d in &report.already {
                out!("present  {d}");
            }
        }
    }
    errln!(
        "{} record(s) stored, {} already present in {}",
        report.stored.len(),
        report.already.len(),
        store.uri()
    );
    if !args.keep {
        std::fs::remove_dir_all(&args.spool)
            .with_context(|| format!("removing the pushed spool {}", args.spool.display()))?;
    }
    Ok(Exit::Ok)
}
