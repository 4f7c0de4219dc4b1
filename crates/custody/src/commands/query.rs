//! `custody query`: records by commit, subject, pipeline, day, environment, stage,
//! control and time, as a table for people or JSON for machines.

use anyhow::Context as _;
use custody_evidence::{Control, Digest, Envelope, Statement, SubjectSpec};
use custody_platform::context::ProcessEnv;
use custody_platform::stores;
use std::collections::{BTreeMap, BTreeSet};

use custody_store::log::{self, LogEntry};
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
    /// Its log index, when the answer came from the log (`--log-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    log_index: Option<u64>,
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
    let log_keys = crate::commands::log::read_verifiers(&args.log_keys)?;
    let store = stores::open(&args.store.store, &ProcessEnv, &args.store.tls.ca_file)
        .with_context(|| format!("opening store {}", args.store.store))?;
    // what answers: the index's pointers, and with --log-key the log's entries
    let mut answer: BTreeMap<Digest, Option<u64>> = store
        .query(&query)
        .await?
        .into_iter()
        .map(|r| (r.digest, None))
        .collect();
    let mut problems = Vec::new();
    if !log_keys.is_empty() {
        let cp = match log::latest_checkpoint(&store, &log_keys).await {
            Ok(cp) => cp,
            // a checkpoint the keys do not accept proves nothing: a failed check
            Err(custody_store::StoreError::Invalid(m)) => {
                return Err(fail(Exit::Verify, format!("the log of {}: {m}", store.uri())));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("reading the log of {}", store.uri())));
            }
        }
        .ok_or_else(|| {
                fail(
                    Exit::Verify,
                    format!(
                        "the log of {} has no checkpoint signed by the log key: run `custody log checkpoint`",
                        store.uri()
                    ),
                )
            })?;
        let from_log = custody_audit::completeness::answer_from_log(&store, &cp, &query).await?;
        problems.extend(
            from_log
                .findings
                .iter()
                .map(|f| format!("{}: {}", f.about, f.message)),
        );
        let logged: BTreeSet<Digest> = from_log.entries.iter().map(|(_, e)| e.record).collect();
        for d in answer.keys() {
            if !logged.contains(d) && log::log_index(&store, d).await?.is_none() {
                problems.push(format!(
                    "record {d} answers through the store's index but is not in the log: run `custody log sequence`, or it was put in the store around Custody"
                ));
            }
        }
        for (i, e) in &from_log.entries {
            if answer.insert(e.record, Some(*i)).is_none() {
                problems.push(format!(
                    "record {} (log index {i}) answers the query but the store's index does not return it: its index pointers were removed",
                    e.record
                ));
            }
        }
    }
    let mut rows = Vec::with_capacity(answer.len());
    for (digest, log_index) in answer {
        let bytes = store.get_object(&digest).await?;
        let env = Envelope::from_slice(&bytes).with_context(|| format!("record {digest}"))?;
        let st = Statement::from_slice(&env.payload_bytes()?)
            .with_context(|| format!("record {digest}"))?;
        let rec = st.record().cloned();
        // an index pointer is a file name: the signed statement decides
        let answers = match &rec {
            Some(r) => LogEntry::of_record(&st, r, digest).matches(&query),
            None => query == Query::default(),
        };
        if !answers {
            problems.push(format!(
                "record {digest} is pointed to by the store's index, but its signed statement does not answer the query: the pointer was forged or misplaced (left out)"
            ));
            continue;
        }
        rows.push(Row {
            record: digest,
            recorded_at: rec
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |x| x.recorded_at),
            stage: rec.as_ref().map(|x| x.stage.clone()),
            predicate_type: st.predicate_type.clone(),
            commit: rec.as_ref().and_then(|x| x.pipeline.commit.clone()),
            pipeline: rec.as_ref().and_then(|x| x.pipeline.pipeline_key()),
            environment: rec.as_ref().and_then(|x| x.pipeline.environment.clone()),
            service: rec.as_ref().and_then(|x| x.pipeline.service.clone()),
            chain: rec.map(|x| x.chain),
            subject: st.subject,
            log_index,
        });
    }
    rows.sort_by_key(|a| (a.recorded_at, a.record));
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
            errln!("{} record(s) in {}", rows.len(), store.uri());
        }
    }
    for p in &problems {
        errln!("FINDING: {p}");
    }
    if !problems.is_empty() {
        return Ok(Exit::Verify);
    }
    if rows.is_empty() {
        errln!("no records match the query");
        return Ok(Exit::NotFound);
    }
    Ok(Exit::Ok)
}
