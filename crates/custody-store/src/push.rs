//! Resending a spool: records kept locally when the store was unreachable are pushed
//! to the store in chain order, materials first. Every put is idempotent, so a push
//! interrupted halfway is simply run again, and nothing is stored twice. A record
//! whose write failed on the way (the store may hold it, its answer was lost) is kept
//! with a stand-in on a chain of its own: the original is written again, and the
//! stand-in only when the original's chain position went to another record.

use custody_evidence::{Digest, Envelope, Statement};

use crate::local::LocalStore;
use crate::{EvidenceStore, ObjectSource, Retention, StoreError};

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Records the store did not have before.
    pub stored: Vec<Digest>,
    /// Records the store already had.
    pub already: Vec<Digest>,
}

/// Pushes every record of `spool` to `target`.
pub async fn push_spool<S: EvidenceStore>(
    spool: &LocalStore,
    target: &S,
) -> Result<PushReport, StoreError> {
    let mut report = PushReport::default();
    for digest in spool.chained_records()? {
        let envelope = spool.get_object_blocking(&digest)?;
        let env =
            Envelope::from_slice(&envelope).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let payload = env
            .payload_bytes()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let statement =
            Statement::from_slice(&payload).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let retention = match spool.retention_blocking(&digest)? {
            Some(r) => r,
            None => Retention::hipaa_default()?,
        };
        if let Some(record) = statement.record() {
            for m in &record.materials {
                if !target.has_object(&m.digest).await? {
                    let r = spool.retention_blocking(&m.digest)?.unwrap_or(retention);
                    let path = spool.object_path(&m.digest);
                    target.put_object(ObjectSource::File(&path), &r).await?;
                }
            }
        }
        // a record whose first write is in doubt: the same envelope again, at its own
        // chain position; its stand-in only when that position went to another record
        if let Some(original) = spool.in_doubt(&digest)? {
            let first = spool.get_object_blocking(&original)?;
            match target.put_record(&first, &retention).await {
                Ok(outcome) => {
                    if outcome.created {
                        report.stored.push(original);
                    } else {
                        report.already.push(original);
                    }
                    continue;
                }
                Err(StoreError::ChainConflict { .. } | StoreError::ChainBroken { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let outcome = target.put_record(&envelope, &retention).await?;
        if outcome.created {
            report.stored.push(digest);
        } else {
            report.already.push(digest);
        }
    }
    Ok(report)
}
