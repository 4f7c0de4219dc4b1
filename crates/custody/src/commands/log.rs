//! `custody log`: the transparency log under every store (issue 14). The governance
//! parent holds the log signing key and runs `checkpoint` after its children; an
//! auditor holds the verifier key and runs `verify`.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use custody_platform::context::ProcessEnv;
use custody_platform::stores;
use custody_store::log::{self, LogSigner, LogVerifier};
use custody_store::witness::{self, WitnessSigner, WitnessVerifier};
use custody_store::{EvidenceStore as _, Retention};

use crate::cli::{
    Format, LogCheckpointArgs, LogCommand, LogKeygenArgs, LogSequenceArgs, LogVerifyArgs,
    LogWitnessArgs, WitnessArgs, WitnessKeygenArgs,
};
use crate::exit::{Exit, fail};

pub async fn run(cmd: LogCommand) -> anyhow::Result<Exit> {
    match cmd {
        LogCommand::Keygen(a) => keygen(&a),
        LogCommand::Checkpoint(a) => checkpoint(a).await,
        LogCommand::Verify(a) => verify(a).await,
        LogCommand::Sequence(a) => sequence(a).await,
        LogCommand::WitnessKeygen(a) => witness_keygen(&a),
        LogCommand::Witness(a) => witness(a).await,
    }
}

fn keygen(args: &LogKeygenArgs) -> anyhow::Result<Exit> {
    let (private, verifier) =
        log::generate_log_key(&args.origin).map_err(|e| fail(Exit::Usage, e))?;
    write_key_pair(
        &args.out,
        &private,
        &verifier.to_string(),
        "log signing key",
        "keep it with the governance project, out of the jobs that write evidence",
    )
}

fn witness_keygen(args: &WitnessKeygenArgs) -> anyhow::Result<Exit> {
    let (private, verifier) =
        WitnessSigner::generate(&args.name).map_err(|e| fail(Exit::Usage, e))?;
    write_key_pair(
        &args.out,
        &private,
        &verifier.to_string(),
        "witness signing key",
        "keep it away from the store's operator",
    )
}

/// Writes a private key (mode 0600, never overwriting) and its verifier key beside it
/// (`<out>.pub`), prints the verifier key, and says where both went: `what` names the
/// private key, `keep` says who must not have it.
fn write_key_pair(
    out: &Path,
    private: &str,
    verifier: &str,
    what: &str,
    keep: &str,
) -> anyhow::Result<Exit> {
    custody_platform::keyfiles::write_new_pair(
        out,
        &format!("{private}\n"),
        &format!("{verifier}\n"),
    )
    .map_err(|e| match e {
        custody_platform::keyfiles::KeyFileError::Exists { path } => fail(
            Exit::Usage,
            format!("{}: exists; a key is never overwritten", path.display()),
        ),
        other => other.into(),
    })?;
    out!("{verifier}");
    errln!(
        "{what} in {} ({keep}); verifier key in {}.pub (give it to auditors)",
        out.display(),
        out.display()
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

/// Reads a key file and parses it; either failure is a usage error naming the file.
fn parse_key<K>(path: &Path, parse: impl FnOnce(&str) -> Result<K, String>) -> anyhow::Result<K> {
    parse(&read_key(path)?).map_err(|e| fail(Exit::Usage, format!("{}: {e}", path.display())))
}

pub fn read_verifiers(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<LogVerifier>> {
    paths
        .iter()
        .map(|p| parse_key(p, LogVerifier::parse))
        .collect()
}

pub fn read_witnesses(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<WitnessVerifier>> {
    paths
        .iter()
        .map(|p| parse_key(p, WitnessVerifier::parse))
        .collect()
}

/// `--min-witnesses`, defaulting to every witness given.
pub fn min_witnesses(args: &WitnessArgs) -> usize {
    args.min_witnesses.unwrap_or(args.witness_keys.len())
}

fn unix_now() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_second()).unwrap_or(0)
}

async fn witness(args: LogWitnessArgs) -> anyhow::Result<Exit> {
    let verifiers = read_verifiers(&args.log_keys)?;
    let signer = parse_key(&args.witness_signing_key, WitnessSigner::parse)?;
    let state = match std::fs::read(&args.state) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(fail(
                Exit::Usage,
                format!(
                    "{}: cannot read the witness state: {e}",
                    args.state.display()
                ),
            ));
        }
    };
    let retention = Retention::years_from(jiff::Timestamp::now(), args.retention_years)?;
    let store = stores::open(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let outcome = match witness::witness(
        &store,
        &verifiers,
        &signer,
        state.as_deref(),
        &retention,
        unix_now(),
    )
    .await
    {
        Ok(o) => o,
        Err(e @ custody_store::StoreError::LogInconsistent(_)) => {
            errln!(
                "witness {} refuses to cosign: {e}",
                signer.verifier().name()
            );
            return Ok(Exit::Verify);
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("witnessing the log of {}", store.uri()))
            );
        }
    };
    // the new state, replaced atomically: a crash leaves the old or the new one
    let dir = args
        .state
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing the witness state in {}", dir.display()))?;
    tmp.write_all(&outcome.checkpoint.note)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", args.state.display()))?;
    tmp.persist(&args.state)
        .with_context(|| format!("writing {}", args.state.display()))?;
    let cp = &outcome.checkpoint;
    print_checkpoint(
        args.format,
        store.uri(),
        cp,
        &outcome.cosigned_note,
        outcome.previous,
        serde_json::json!({
            "witness": outcome.cosignature.witness,
            "time": outcome.cosignature.time,
        }),
    );
    errln!(
        "witness {} cosigned the checkpoint of {} entries of {} (it had seen {})",
        outcome.cosignature.witness,
        cp.size,
        store.uri(),
        outcome.previous
    );
    Ok(Exit::Ok)
}

async fn checkpoint(args: LogCheckpointArgs) -> anyhow::Result<Exit> {
    let signer = parse_key(&args.log_signing_key, LogSigner::parse)?;
    let retention = Retention::years_from(jiff::Timestamp::now(), args.retention_years)?;
    let store = stores::create(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let outcome = log::checkpoint(&store, &signer, &retention)
        .await
        .with_context(|| format!("checkpointing the log of {}", store.uri()))?;
    let cp = &outcome.checkpoint;
    print_checkpoint(
        args.format,
        store.uri(),
        cp,
        &cp.note,
        outcome.previous,
        serde_json::json!({ "tilesWritten": outcome.tiles_written }),
    );
    errln!(
        "checkpoint of {} entries ({} new) signed for {}",
        cp.size,
        cp.size - outcome.previous,
        store.uri()
    );
    Ok(Exit::Ok)
}

/// Prints a checkpoint as `checkpoint` and `witness` hand it out: its `note`, or in JSON
/// the store, the checkpoint, the note, the log's size before it and the command's
/// `own` fields.
fn print_checkpoint(
    format: Format,
    store: String,
    cp: &log::SignedCheckpoint,
    note: &[u8],
    previous: u64,
    own: serde_json::Value,
) {
    let note = String::from_utf8_lossy(note);
    match format {
        Format::Json => {
            let mut v = serde_json::json!({
                "store": store,
                "origin": cp.origin,
                "size": cp.size,
                "previous": previous,
                "root": cp.root_base64(),
                "checkpoint": note,
            });
            if let (Some(v), serde_json::Value::Object(own)) = (v.as_object_mut(), own) {
                v.extend(own);
            }
            out!("{v}");
        }
        Format::Table => out!("{}", note.trim_end()),
    }
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
    let store = stores::open(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let mut audit = log::verify_log(&store, &verifiers, &kept)
        .await
        .with_context(|| format!("verifying the log of {}", store.uri()))?;
    let witnesses = read_witnesses(&args.witnesses.witness_keys)?;
    let min = min_witnesses(&args.witnesses);
    let mut cosigned = Vec::new();
    if min > 0 || !witnesses.is_empty() {
        cosigned = check_witnessed(&store, &verifiers, &witnesses, min, &mut audit).await?;
    }
    match args.format {
        Format::Json => out!(
            "{}",
            serde_json::json!({
                "store": store.uri(),
                "ok": audit.ok(),
                "log": audit,
                "witnesses": cosigned,
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
            for w in &cosigned {
                out!(
                    "witness     {} cosigned the latest at {}",
                    w.witness,
                    w.time
                );
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
        errln!("the log verifies: append-only, and every stored record is in it");
        Ok(Exit::Ok)
    } else {
        errln!("{} finding(s)", audit.findings.len());
        Ok(Exit::Verify)
    }
}

/// The latest checkpoint's cosignatures from `witnesses`; too few, or a bad one, is a
/// finding of `audit`.
async fn check_witnessed<S: custody_store::EvidenceStore>(
    store: &S,
    verifiers: &[LogVerifier],
    witnesses: &[WitnessVerifier],
    min: usize,
    audit: &mut log::LogAudit,
) -> anyhow::Result<Vec<witness::Cosignature>> {
    let finding = |message: String| log::LogFinding {
        about: "latest checkpoint".into(),
        message,
    };
    let Some(cp) = log::latest_checkpoint(store, verifiers).await? else {
        audit.findings.push(finding(
            "there is no checkpoint for witnesses to cosign".into(),
        ));
        return Ok(Vec::new());
    };
    let note = witness::cosigned_note(store, &cp).await?;
    let c = witness::check_cosignatures(&note, verifiers, witnesses, unix_now())
        .map_err(|e| fail(Exit::Verify, e))?;
    audit.findings.extend(c.invalid.into_iter().map(finding));
    if c.valid.len() < min {
        audit.findings.push(finding(format!(
            "the checkpoint of size {} carries {} valid cosignature(s) from the witnesses given, {min} required",
            cp.size,
            c.valid.len()
        )));
    }
    Ok(c.valid)
}

async fn sequence(args: LogSequenceArgs) -> anyhow::Result<Exit> {
    let retention = Retention::years_from(jiff::Timestamp::now(), args.retention_years)?;
    let store = stores::create(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
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
    errln!(
        "{} pending record(s) sequenced in {}",
        done.len(),
        store.uri()
    );
    Ok(Exit::Ok)
}
