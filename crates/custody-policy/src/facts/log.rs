//! Log facts: whether each record the decision relies on is included in the store's
//! transparency log under the latest checkpoint that a log key of the policy data
//! (`log.keys`) verifies. Only what is proven becomes an index: the record's entry is
//! read and its leaf hash authenticated against the checkpoint's root through the
//! log's tiles. Whether inclusion is required is the policy's call
//! (`evidence-logged`, `log.require_checkpoint`).

use custody_evidence::Digest;
use custody_store::log::{self, Inclusion, LogVerifier};
use custody_store::{EvidenceStore, StoreError};
use serde_json::Value;

use crate::error::PolicyError;
use crate::input::{CheckpointFact, LogFact, LogRecordFact};

/// The log verifier keys of the policy data (`data.custody.config.log.keys`).
pub fn keys(data: &Value) -> Result<Vec<LogVerifier>, PolicyError> {
    let Some(list) = data.pointer("/custody/config/log/keys") else {
        return Ok(Vec::new());
    };
    let Some(list) = list.as_array() else {
        return Err(PolicyError::Data(
            "log.keys must be a list of log verifier keys (ORIGIN+ID+KEY)".into(),
        ));
    };
    list.iter()
        .enumerate()
        .map(|(i, k)| {
            k.as_str()
                .ok_or_else(|| format!("log.keys[{i}] is not a string"))
                .and_then(LogVerifier::parse)
                .map_err(|e| PolicyError::Data(format!("log.keys[{i}]: {e}")))
        })
        .collect()
}

/// Proves each record's inclusion under the latest checkpoint `keys` verify.
pub async fn gather<S: EvidenceStore + ?Sized>(
    store: &S,
    keys: &[LogVerifier],
    records: &[String],
) -> Result<LogFact, PolicyError> {
    let cp = match log::latest_checkpoint(store, keys).await {
        Ok(Some(cp)) => cp,
        Ok(None) => {
            return Ok(LogFact {
                checkpoint: None,
                problem: Some(format!(
                    "the log of {} has no checkpoint signed by the policy data's log keys: run `custody log checkpoint` before the gate",
                    store.uri()
                )),
                records: records.iter().map(|r| unproven(r, None)).collect(),
            });
        }
        Err(StoreError::Invalid(e) | StoreError::LogInconsistent(e)) => {
            return Ok(LogFact {
                checkpoint: None,
                problem: Some(e),
                records: records.iter().map(|r| unproven(r, None)).collect(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let Ok(digest) = r.parse::<Digest>() else {
            out.push(unproven(r, Some("not a record digest".into())));
            continue;
        };
        out.push(match log::prove_included(store, &cp, &digest).await {
            Ok(Inclusion::Included(i)) => LogRecordFact {
                record: r.clone(),
                index: Some(i),
                problem: None,
            },
            Ok(Inclusion::NotYet) => unproven(r, None),
            Ok(Inclusion::Disproven(why)) => unproven(r, Some(why)),
            Err(StoreError::Invalid(e) | StoreError::LogInconsistent(e)) => unproven(r, Some(e)),
            Err(e) => return Err(e.into()),
        });
    }
    Ok(LogFact {
        checkpoint: Some(CheckpointFact {
            origin: cp.origin.clone(),
            size: cp.size,
            root: cp.root_base64(),
            signed_at: cp.time.map(|t| t.to_string()),
        }),
        problem: None,
        records: out,
    })
}

fn unproven(record: &str, problem: Option<String>) -> LogRecordFact {
    LogRecordFact {
        record: record.to_owned(),
        index: None,
        problem,
    }
}
