//! Appending a signed record to its chain: read the head, link, sign, store; when a
//! concurrent writer took the position first, read the new head and sign again.

use custody_evidence::{
    ChainLink, Digest, KeyIdScheme, RecordInfo, ResourceDescriptor, SigningKey, Statement,
    sign_statement,
};

use crate::{EvidenceStore, PutOutcome, Retention, StoreError};

/// How many times a record is re-linked after losing a race for a chain position. A
/// chain normally has one writer (one job); this bounds the pathological case.
const MAX_ATTEMPTS: u32 = 100;

/// What to sign, without its chain link (the store decides that).
#[derive(Debug, Clone)]
pub struct Draft {
    pub subject: Vec<ResourceDescriptor>,
    pub predicate_type: String,
    pub predicate: serde_json::Map<String, serde_json::Value>,
    pub record: RecordInfo,
}

/// The stored record.
#[derive(Debug, Clone)]
pub struct Appended {
    pub outcome: PutOutcome,
    pub envelope: Vec<u8>,
    pub link: ChainLink,
}

/// A failed append: the error, and the signed envelope when the store may hold it
/// (its put was sent and failed on the way, so the write may have happened, and only
/// its answer was lost). Writing that same envelope again is always safe; signing the
/// record anew would store it twice if the first write did land.
#[derive(Debug)]
pub struct AppendFailure {
    pub error: StoreError,
    pub in_doubt: Option<Vec<u8>>,
}

/// Links `draft` to the head of `chain_id`, signs and stores it.
pub async fn append_record<S: EvidenceStore>(
    store: &S,
    key: &SigningKey,
    scheme: KeyIdScheme,
    chain_id: &str,
    draft: Draft,
    retention: &Retention,
) -> Result<Appended, StoreError> {
    append_or_doubt(store, key, scheme, chain_id, draft, retention)
        .await
        .map_err(|f| f.error)
}

/// [`append_record`], keeping the envelope whose write is in doubt when it fails.
pub async fn append_or_doubt<S: EvidenceStore>(
    store: &S,
    key: &SigningKey,
    scheme: KeyIdScheme,
    chain_id: &str,
    mut draft: Draft,
    retention: &Retention,
) -> Result<Appended, AppendFailure> {
    let sure = |error| AppendFailure {
        error,
        in_doubt: None,
    };
    let mut last_err = None;
    for attempt in 0..MAX_ATTEMPTS {
        let head = store.chain_head(chain_id).await.map_err(sure)?;
        if attempt == 0
            && let Some((_, d)) = head
        {
            repair_head(store, &d, retention).await;
        }
        let link = ChainLink {
            id: chain_id.to_owned(),
            sequence: head.map_or(0, |(seq, _)| seq + 1),
            previous: head.map(|(_, d): (u64, Digest)| d),
        };
        draft.record.chain = link.clone();
        let statement = Statement::new(
            draft.subject.clone(),
            draft.predicate_type.clone(),
            draft.predicate.clone(),
            &draft.record,
        )
        .map_err(|e| sure(StoreError::Invalid(e.to_string())))?;
        let envelope = sign_statement(&statement, key, scheme)
            .map_err(|e| sure(StoreError::Invalid(e.to_string())))?
            .to_vec();
        match store.put_record(&envelope, retention).await {
            Ok(outcome) => {
                return Ok(Appended {
                    outcome,
                    envelope,
                    link,
                });
            }
            Err(e @ (StoreError::ChainConflict { .. } | StoreError::ChainBroken { .. })) => {
                last_err = Some(e);
                backoff(attempt);
            }
            Err(error) => {
                let in_doubt = error.is_transient().then_some(envelope);
                return Err(AppendFailure { error, in_doubt });
            }
        }
    }
    Err(sure(last_err.unwrap_or_else(|| {
        StoreError::Invalid("chain append did not run".into())
    })))
}

/// The chain head's writer may have been killed after its chain entry and before its
/// index pointers or its log index: the record is stored and linked, but no query finds
/// it. Storing its envelope again (every step of a put is idempotent) writes what is
/// missing. Best effort: a head that cannot be repaired here (a spool, whose records
/// the target store sequences; a store error) is left for `custody log verify` to name.
async fn repair_head<S: EvidenceStore>(store: &S, head: &Digest, retention: &Retention) {
    if !matches!(crate::log::log_index(store, head).await, Ok(None)) {
        return;
    }
    if let Ok(envelope) = store.get_object(head).await {
        let _ = store.put_record(&envelope, retention).await;
    }
}

/// A short randomized pause so racing writers stop colliding. The jitter comes from
/// the clock and the process id; it only spreads retries, it guards nothing.
fn backoff(attempt: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(nanos ^ std::process::id().rotate_left(16));
    let cap_ms = 2u64 << attempt.min(5);
    std::thread::sleep(std::time::Duration::from_micros(seed % (cap_ms * 1000)));
}
