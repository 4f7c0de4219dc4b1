//! `custody attest`: wrap a file as a signed statement about a subject and store it.

use std::path::Path;

use anyhow::Context as _;
use custody_evidence::{ChainLink, Control, KeyIdScheme, Material, RecordInfo};
use custody_platform::context::ProcessEnv;
use custody_platform::stores;
use custody_platform::{files, step};
use custody_store::{Draft, EvidenceStore, ObjectSource, Retention, append_record};

use crate::cli::{AttestArgs, ContextArgs, Format};
use crate::exit::{Exit, fail};

pub async fn run(args: AttestArgs) -> anyhow::Result<Exit> {
    let scheme: KeyIdScheme = args.keyid_scheme.parse()?;
    let key = step::signer(
        &ProcessEnv,
        Some(&args.key),
        &args.tsa.tsa,
        &args.store.tls.ca_file,
    )
    .map_err(|e| fail(Exit::Usage, format!("the signing key: {e}")))?
    .ok_or_else(|| fail(Exit::Usage, "no signing key: pass --key FILE|URI"))?;
    let mut controls = Control::baseline();
    for c in &args.controls {
        let c: Control = c.parse()?;
        if !controls.contains(&c) {
            controls.push(c);
        }
    }
    if args.retention_years < 1 {
        return Err(fail(Exit::Usage, "--retention-years must be at least 1"));
    }
    if let Some(service) = &args.context.service {
        custody_evidence::check_service_name(service)
            .map_err(|e| fail(Exit::Usage, format!("--service {service:?}: {e}")))?;
    }
    if !args.file.is_file() {
        return Err(fail(
            Exit::Usage,
            format!("{}: not a readable file", args.file.display()),
        ));
    }
    let subject = files::resolve_subject(&args.subject, None)?;
    let pipeline = context(&args.context);
    let chain_id = pipeline.chain_id();

    let store = stores::create(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let retention = Retention::years_from(jiff::Timestamp::now(), args.retention_years)?;
    let stored = store
        .put_object(ObjectSource::File(&args.file), &retention)
        .await
        .with_context(|| format!("storing {}", args.file.display()))?;
    let material = Material {
        name: file_name(&args.file),
        digest: stored.digest,
        size: stored.size,
        media_type: None,
        format: None,
    };
    let record = RecordInfo {
        stage: args.stage.clone(),
        recorded_at: jiff::Timestamp::now(),
        materials: vec![material],
        pipeline,
        hipaa: controls,
        chain: ChainLink::first(chain_id.clone()),
        summary: None,
    };
    let draft = Draft {
        subject: vec![subject],
        predicate_type: args.predicate_type.clone(),
        predicate: serde_json::Map::new(),
        record,
    };
    let appended = append_record(&store, &key, scheme, &chain_id, draft, &retention).await?;
    let out = serde_json::json!({
        "record": appended.outcome.digest,
        "store": store.uri(),
        "stage": args.stage,
        "chain": appended.link,
        "material": stored.digest,
        "retainUntil": retention.retain_until,
    });
    match args.format {
        Format::Json => out!("{}", serde_json::to_string_pretty(&out)?),
        Format::Table => {
            out!("record     {}", appended.outcome.digest);
            out!("store      {}", store.uri());
            out!(
                "chain      {} #{}",
                appended.link.id,
                appended.link.sequence
            );
            out!("material   {} ({} bytes)", stored.digest, stored.size);
            out!("locked to  {}", retention.retain_until);
        }
    }
    Ok(Exit::Ok)
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The platform's context, with flags filling in or overriding.
pub fn context(flags: &ContextArgs) -> custody_evidence::PipelineContext {
    let mut c = step::context(
        &ProcessEnv,
        &flags.run,
        flags.service.as_deref(),
        flags.environment.as_deref(),
    );
    if let Some(repository) = &flags.repository {
        c.repository = Some(repository.clone());
        step::mark_flagged(&mut c);
    }
    c
}
