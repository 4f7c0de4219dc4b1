//! `custody log`: the transparency log under every store (issue 14). The governance
//! parent holds the log signing key and runs `checkpoint` after its children; an
//! auditor holds the verifier key and runs `verify`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use custody_platform::context::ProcessEnv;
use custody_platform::stores;
use custody_store::log::{self, LogSigner, LogVerifier};
use custody_store::{EvidenceStore as _, Retention};

use crate::cli::{
    Format, LogCheckpointArgs, LogCommand, LogKeygenArgs, LogSequenceArgs, LogVerifyArgs,
};
use crate::exit::{Exit, fail};

pub async fn run(cmd: LogCommand) -> anyhow::Result<Exit> {
    match cmd {
        LogCommand::Keygen(a) => keygen(&a),
        LogCommand::Checkpoint(a) => checkpoint(a).await,
        LogCommand::Verify(a) => verify(a).await,
        LogCommand::Sequence(a) => sequence(a).await,
    }
}

fn keygen(args: &LogKeygenArgs) -> anyhow::Result<Exit> {
    let (private, verifier) =
        log::generate_log_key(&args.origin).map_err(|e| fail(Exit::Usage, e))?;
    let public = args.out.with_extension(match args.out.extension() {
        Some(e) => format!("{}.pub", e.to_string_lossy()),
        None => "pub".into(),
    });
    for p in [&args.out, &public] {
        if p.exists() {
            return Err(fail(
                Exit::Usage,
                format!("{}: exists; a log key is never overwritten", p.display()),
            ));
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    f.write_all(format!("{private}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", args.out.display()))?;
    std::fs::write(&public, format!("{verifier}\n"))
        .with_context(|| format!("writing {}", public.display()))?;
    out!("{verifier}");
    eprintln!(
        "log signing key in {} (keep it with the governance parent); verifier key in {} (give it to auditors)",
        args.out.display(),
        public.display()
    );
    Ok(Exit::Ok)
}

fn read_key(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        fail(
            Exit::Usage,
            format!("{}: cannot read the log key: {e}", path.display()),
        )
    })
}

pub fn read_verifiers(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<LogVerifier>> {
    paths
        .iter()
        .map(|p| {
            LogVerifier::parse(&read_key(p)?)
                .map_err(|e| fail(Exit::Usage, format!("{}: {e}", p.display())))
        })
        .collect()
}

async fn checkpoint(args: LogCheckpointArgs) -> anyhow::Result<Exit> {
    let signer = LogSigner::parse(&read_key(&args.log_signing_key)?).map_err(|e| {
        fail(
            Exit::Usage,
            format!("{}: {e}", args.log_signing_key.display()),
        )
    })?;
    let retention = Retention::years_from(jiff::Timestamp::now(), args.retention_years)?;
    let store = stores::create(&args.store.store, &ProcessEnv)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let outcome = log::checkpoint(&store, &signer, &retention)
        .await
        .with_context(|| format!("checkpointing the log of {}", store.uri()))?;
    let cp = &outcome.checkpoint;
    match args.format {
        Format::Json => out!(
            "{}",
            serde_json::json!({
                "store": store.uri(),
                "origin": cp.origin,
                "size": cp.size,
                "previous": outcome.previous,
                "root": cp.root_base64(),
                "tilesWritten": outcome.tiles_written,
                "checkpoint": String::from_utf8_lossy(&cp.note),
            })
        ),
        Format::Table => out!("{}", String::from_utf8_lossy(&cp.note).trim_end()),
    }
    eprintln!(
        "checkpoint of {} entries ({} new) signed for {}",
        cp.size,
        cp.size - outcome.previous,
        store.uri()
    );
    Ok(Exit::Ok)
}

async fn verify(args: LogVerifyArgs) -> anyhow::Result<Exit> {
    let verifiers = read_verifiers(&args.log_keys)?;
    let mut kept = Vec::new();
    for p in &args.checkpoints {
        kept.push(std::fs::read(p).map_err(|e| {
            fail(
                Exit::Usage,
                format!("{}: cannot read the checkpoint: {e}", p.display()),
            )
        })?);
    }
    let store = stores::open(&args.store.store, &ProcessEnv)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let audit = log::verify_log(&store, &verifiers, &kept)
        .await
        .with_context(|| format!("verifying the log of {}", store.uri()))?;
    match args.format {
        Format::Json => out!(
            "{}",
            serde_json::json!({
                "store": store.uri(),
                "ok": audit.ok(),
                "log": audit,
            })
        ),
        Format::Table => {
            out!(
                "log of {}: {} entries, {} checkpoint(s), {} after the latest",
                store.uri(),
                audit.size,
                audit.checkpoints.len(),
                audit.uncheckpointed
            );
            for (size, root) in &audit.checkpoints {
                out!("checkpoint  {size:>10}  {root}");
            }
            for (d, idx) in &audit.duplicates {
                out!("note        record {d} was sequenced more than once: {idx:?}");
            }
            for f in &audit.findings {
                out!("FINDING     {}: {}", f.about, f.message);
            }
        }
    }
    if audit.ok() {
        eprintln!("the log verifies: append-only, and every stored record is in it");
        Ok(Exit::Ok)
    } else {
        eprintln!("{} finding(s)", audit.findings.len());
        Ok(Exit::Verify)
    }
}

async fn sequence(args: LogSequenceArgs) -> anyhow::Result<Exit> {
    let retention = Retention::years_from(jiff::Timestamp::now(), args.retention_years)?;
    let store = stores::create(&args.store.store, &ProcessEnv)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let done = log::sequence_pending(&store, &retention)
        .await
        .with_context(|| format!("sequencing pending records of {}", store.uri()))?;
    match args.format {
        Format::Json => out!(
            "{}",
            serde_json::json!({
                "store": store.uri(),
                "sequenced": done.iter().map(|(d, i)| serde_json::json!({"record": d, "index": i})).collect::<Vec<_>>(),
            })
        ),
        Format::Table => {
            for (d, i) in &done {
                out!("{i:>10}  {d}");
            }
        }
    }
    eprintln!(
        "{} pending record(s) sequenced in {}",
        done.len(),
        store.uri()
    );
    Ok(Exit::Ok)
}
