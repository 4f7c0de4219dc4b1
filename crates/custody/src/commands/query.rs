//! `custody query`: records by commit, subject, pipeline, day, environment, stage,
//! control and time, as a table for people or JSON for machines.

use anyhow::Context as _;
use custody_evidence::{Control, Digest, Envelope, Statement, SubjectSpec};
use custody_platform::context::ProcessEnv;
use custody_platform::stores;
use custody_store::{EvidenceStore, Query};
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::{Filter, Format, QueryArgs};
use crate::exit::{Exit, fail};
use crate::output::table;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    record: Digest,
    recorded_at: Timestamp,
    stage: Option<String>,
    predicate_type: String,
    subject: Vec<custody_evidence::ResourceDescriptor>,
    commit: Option<String>,
    pipeline: Option<String>,
    environment: Option<String>,
    service: Option<String>,
    chain: Option<custody_evidence::ChainLink>,
}

fn parse_time(flag: &str, value: &str) -> anyhow::Result<Timestamp> {
    if let Ok(t) = value.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = value.parse::<jiff::civil::Date>() {
        return Ok(d.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp());
    }
    Err(fail(
        Exit::Usage,
        format!(
            "--{flag} {value}: expected RFC 3339 (2026-03-01T00:00:00Z) or a date (2026-03-01)"
        ),
    ))
}

/// The store query a filter asks for, with each flag validated.
pub fn build_query(a: &Filter) -> anyhow::Result<Query> {
    let subject = match &a.subject {
        Some(s) => Some(match SubjectSpec::parse(s)? {
            SubjectSpec::Image { digest, .. } | SubjectSpec::Digest(digest) => digest,
            _ => {
                return Err(fail(
                    Exit::Usage,
                    format!("--subject {s}: expected `sha256:<64 hex>` or `name@sha256:<64 hex>`"),
                ));
            }
        }),
        None => None,
    };
    let day = match &a.day {
        Some(d) => Some(
            d.parse::<jiff::civil::Date>()
                .map_err(|e| fail(Exit::Usage, format!("--day {d}: expected YYYY-MM-DD ({e})")))?,
        ),
        None => None,
    };
    let control = a
        .control
        .as_deref()
        .map(str::parse::<Control>)
        .transpose()?;
    let since = a
        .since
        .as_deref()
        .map(|v| parse_time("since", v))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|v| parse_time("until", v))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(fail(Exit::Usage, "--since must be before --until"));
    }
    Ok(Query {
        commit: a.commit.clone(),
        subject,
        pipeline: a.pipeline.clone(),
        day,
        environment: a.environment.clone(),
        stage: a.stage.clone(),
        control,
        since,
        until,
    })
}

pub async fn run(args: QueryArgs) -> anyhow::Result<Exit> {
    let query = build_query(&args.filter)?;
    let store = stores::open(&args.store.store, &ProcessEnv)
        .with_context(|| format!("opening store {}", args.store.store))?;
    let refs = store.query(&query).await?;
    let mut rows = Vec::with_capacity(refs.len());
    for r in &refs {
        let bytes = store.get_object(&r.digest).await?;
        let env = Envelope::from_slice(&bytes).with_context(|| format!("record {}", r.digest))?;
        let st = Statement::from_slice(&env.payload_bytes()?)
            .with_context(|| format!("record {}", r.digest))?;
        let rec = st.record().cloned();
        rows.push(Row {
            record: r.digest,
            recorded_at: r.recorded_at,
            stage: rec.as_ref().map(|x| x.stage.clone()),
            predicate_type: st.predicate_type.clone(),
            commit: rec.as_ref().and_then(|x| x.pipeline.commit.clone()),
            pipeline: rec.as_ref().and_then(|x| x.pipeline.pipeline_key()),
            environment: rec.as_ref().and_then(|x| x.pipeline.environment.clone()),
            service: rec.as_ref().and_then(|x| x.pipeline.service.clone()),
            chain: rec.map(|x| x.chain),
            subject: st.subject,
        });
    }
    match args.format {
        Format::Json => out!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table => {
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let subject = r
                        .subject
                        .first()
                        .map(|s| {
                            if s.name.is_empty() {
                                "-".to_owned()
                            } else {
                                s.name.clone()
                            }
                        })
                        .unwrap_or_else(|| "-".into());
                    vec![
                        r.recorded_at.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
                        r.stage.clone().unwrap_or_else(|| "-".into()),
                        subject,
                        r.commit
                            .as_deref()
                            .map_or("-".into(), |c| c.chars().take(12).collect()),
                        r.pipeline.clone().unwrap_or_else(|| "-".into()),
                        r.record.hex().chars().take(16).collect(),
                    ]
                })
                .collect();
            out!(
                "{}",
                table(
                    &[
                        "RECORDED", "STAGE", "SUBJECT", "COMMIT", "PIPELINE", "RECORD"
                    ],
                    &body
                )
            );
            eprintln!("{} record(s) in {}", rows.len(), store.uri());
        }
    }
    if rows.is_empty() {
        eprintln!("no records match the query");
        return Ok(Exit::NotFound);
    }
    Ok(Exit::Ok)
}
