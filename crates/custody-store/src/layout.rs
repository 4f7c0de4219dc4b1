//! What every backend shares: the names of chain entries and index pointers, reading a
//! record out of its envelope, and combining per-key listings into a query answer.
//! Backends differ in where names live (directories, package versions), not in the names.

use custody_evidence::{Digest, Envelope, RecordInfo, Statement};
use jiff::Timestamp;

use crate::Retention;
use crate::error::StoreError;
use crate::log::LogEntry;
use crate::query::{Query, RecordRef};

/// `objects/sha256/ab/cdef…`, relative to the store root (S3 keys under the prefix).
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) fn object_key(d: &Digest) -> String {
    let hex = d.hex();
    let (a, b) = hex.split_at(2);
    format!("objects/sha256/{a}/{b}")
}

/// `chains/<chain>`, the directory of a chain's positions.
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) fn chain_dir(chain: &str) -> String {
    format!("chains/{}", crate::index::encode_component(chain))
}

/// `index/<kind>/<key>`, the directory of one index key's pointers.
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) fn index_dir(key: &crate::index::IndexKey) -> String {
    let [kind, value] = key.segments();
    format!("index/{kind}/{value}")
}

/// `index/day`, the directory listed when a query names no key.
#[cfg_attr(not(feature = "s3"), allow(dead_code))]
pub(crate) const DAY_INDEX: &str = "index/day";

/// The name of a chain entry: the zero-padded sequence number, so names sort in order.
pub(crate) fn chain_entry_name(sequence: u64) -> String {
    format!("{sequence:012}")
}

/// The name of an index pointer: recording time in nanoseconds, then the envelope digest.
pub(crate) fn pointer_name(t: Timestamp, d: &Digest) -> String {
    format!("{:020}_{}", t.as_nanosecond().max(0), d.hex())
}

pub(crate) fn parse_pointer_name(name: &str) -> Option<RecordRef> {
    let (nanos, hex) = name.split_once('_')?;
    let nanos: i128 = nanos.parse().ok()?;
    Some(RecordRef {
        recorded_at: Timestamp::from_nanosecond(nanos).ok()?,
        digest: Digest::parse(hex).ok()?,
    })
}

/// A record as a store sees it: the statement (for index keys), the Custody record
/// extension (chain link, materials, time), the envelope's digest, and the entry that
/// will sequence it in the transparency log.
pub(crate) struct DecodedRecord {
    pub statement: Statement,
    pub record: RecordInfo,
    pub digest: Digest,
    pub log_entry: LogEntry,
}

/// Reads the statement and record extension out of a DSSE envelope, and makes the
/// record's log entry. The entry's size is checked here, before any backend stores
/// anything: a record the log cannot take is refused whole. The signature is not
/// checked: stores keep what they are given; verification is the reader's job.
pub(crate) fn decode_record(envelope: &[u8]) -> Result<DecodedRecord, StoreError> {
    let env = Envelope::from_slice(envelope).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let payload = env
        .payload_bytes()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let statement =
        Statement::from_slice(&payload).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let record = statement.record().cloned().ok_or_else(|| {
        StoreError::Invalid("the statement carries no Custody record (custodyRecord)".into())
    })?;
    let digest = Digest::of(envelope);
    let log_entry = LogEntry::of_record(&statement, &record, digest);
    log_entry.to_bytes()?;
    Ok(DecodedRecord {
        statement,
        record,
        digest,
        log_entry,
    })
}

impl DecodedRecord {
    /// The chain check every backend makes after writing its chain entry: the entry
    /// that holds the record's position (the first written) must name this record.
    /// Another record there is a fork and refused; so is nothing there at all.
    pub(crate) fn check_position(&self, held: Option<Digest>) -> Result<(), StoreError> {
        if held == Some(self.digest) {
            return Ok(());
        }
        let chain = &self.record.chain;
        Err(StoreError::ChainConflict {
            chain: chain.id.clone(),
            sequence: chain.sequence,
            existing: held.unwrap_or(self.digest),
            new: self.digest,
        })
    }
}

/// The chain check both backends make before writing: the record's `previous` must be
/// what the chain holds at `sequence - 1` (nothing for the first record).
pub(crate) fn check_previous(
    record: &RecordInfo,
    actual: Option<Digest>,
) -> Result<(), StoreError> {
    let chain = &record.chain;
    if actual == chain.previous {
        return Ok(());
    }
    let show = |d: Option<Digest>| d.map_or_else(|| "nothing".to_owned(), |d| d.to_string());
    Err(StoreError::ChainBroken {
        chain: chain.id.clone(),
        sequence: chain.sequence,
        claimed: show(chain.previous),
        actual: show(actual),
    })
}

/// Intersects the listings of each queried key (AND), smallest first.
#[cfg_attr(not(any(feature = "s3", feature = "gitlab")), allow(dead_code))]
pub(crate) fn intersect(mut sets: Vec<Vec<RecordRef>>) -> Vec<RecordRef> {
    for set in &mut sets {
        set.sort_unstable();
    }
    sets.sort_by_key(Vec::len);
    let mut iter = sets.into_iter();
    let mut acc = iter.next().unwrap_or_default();
    for other in iter {
        acc.retain(|r| other.binary_search(r).is_ok());
    }
    acc
}

/// Applies the query's time range, orders by time and drops duplicates.
pub(crate) fn finish(query: &Query, mut result: Vec<RecordRef>) -> Vec<RecordRef> {
    result.retain(|r| query.in_time_range(r.recorded_at));
    result.sort_unstable();
    result.dedup();
    result
}

/// Whether a day's pointers can hold records in the query's time range.
pub(crate) fn day_in_range(query: &Query, day: jiff::civil::Date) -> bool {
    let utc = |t: Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    !(query.since.is_some_and(|s| day < utc(s)) || query.until.is_some_and(|u| day > utc(u)))
}

/// Whether a retention lock still forbids deleting: a legal hold, or a date not reached.
pub(crate) fn retention_holds(r: &Retention, now: Timestamp) -> bool {
    r.legal_hold || now < r.retain_until
}

/// The lock after re-storing with `requested`: the later date and any legal hold win.
/// `None` when `current` already covers the request (nothing to write).
pub(crate) fn merge_retention(current: &Retention, requested: &Retention) -> Option<Retention> {
    if requested.retain_until > current.retain_until
        || (requested.legal_hold && !current.legal_hold)
    {
        Some(Retention {
            mode: current.mode,
            retain_until: requested.retain_until.max(current.retain_until),
            legal_hold: current.legal_hold || requested.legal_hold,
        })
    } else {
        None
    }
}
