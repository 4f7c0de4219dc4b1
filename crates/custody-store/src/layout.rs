//! The key layout every backend shares, and the record checks that do not depend on
//! where bytes live. A local store and an S3 prefix hold the same relative names, so
//! a store can be copied between backends with ordinary tools.
//!
//! ```text
//! objects/sha256/ab/cdef…                content-addressed bytes (envelopes, materials)
//! chains/<chain>/<000000000007>          the digest of the chain's 8th record
//! index/<kind>/<key>/<nanos>_<digest>    empty pointer entries: subject, commit, day, …
//! ```

use custody_evidence::{Digest, Envelope, RecordInfo, Statement};
use jiff::Timestamp;

use crate::error::StoreError;
use crate::index::{IndexKey, encode_component};
use crate::query::RecordRef;

/// `objects/sha256/ab/cdef…`, relative to the store root.
pub(crate) fn object_key(d: &Digest) -> String {
    let hex = d.hex();
    let (a, b) = hex.split_at(2);
    format!("objects/sha256/{a}/{b}")
}

/// `chains/<chain>`, the directory of a chain's positions.
pub(crate) fn chain_dir(chain: &str) -> String {
    format!("chains/{}", encode_component(chain))
}

/// The name of a chain position: zero-padded so names sort like numbers.
pub(crate) fn chain_entry_name(seq: u64) -> String {
    format!("{seq:012}")
}

/// `index/<kind>/<key>`, the directory of one index key's pointers.
pub(crate) fn index_dir(key: &IndexKey) -> String {
    let [kind, value] = key.segments();
    format!("index/{kind}/{value}")
}

/// `index/day`, the directory listed when a query names no key.
pub(crate) const DAY_INDEX: &str = "index/day";

/// A pointer's name: the record time (zero-padded nanoseconds, so names sort by time)
/// and the envelope digest.
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

/// The statement and Custody record inside a DSSE envelope. Index keys and the chain
/// link come only from here: the signed payload, never unsigned input.
pub(crate) fn parse_record(envelope: &[u8]) -> Result<(Statement, RecordInfo), StoreError> {
    let env = Envelope::from_slice(envelope).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let payload = env
        .payload_bytes()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let statement =
        Statement::from_slice(&payload).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let record = statement
        .record()
        .ok_or_else(|| {
            StoreError::Invalid("the statement carries no Custody record extension".into())
        })?
        .map_err(|e| StoreError::Invalid(format!("record extension: {e}")))?;
    Ok((statement, record))
}

/// Checks that the chain position before `record` holds what the record names as its
/// previous link (`actual`: what the store holds there).
pub(crate) fn check_link(record: &RecordInfo, actual: Option<Digest>) -> Result<(), StoreError> {
    let chain = &record.chain;
    if actual != chain.previous {
        let show = |d: Option<Digest>| d.map_or_else(|| "nothing".to_owned(), |d| d.to_string());
        return Err(StoreError::ChainBroken {
            chain: chain.id.clone(),
            sequence: chain.sequence,
            claimed: show(chain.previous),
            actual: show(actual),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_time() {
        let d = Digest::of(b"x");
        let t: Timestamp = "2026-03-14T10:00:00.5Z".parse().unwrap();
        let name = pointer_name(t, &d);
        assert_eq!(
            parse_pointer_name(&name),
            Some(RecordRef {
                recorded_at: t,
                digest: d
            })
        );
        let later = pointer_name("2026-03-14T10:00:01Z".parse().unwrap(), &d);
        assert!(name < later);
        assert!(parse_pointer_name("nonsense").is_none());
        assert_eq!(chain_entry_name(7), "000000000007");
        assert!(object_key(&d).starts_with("objects/sha256/"));
        assert_eq!(chain_dir("../x"), "chains/%2E.%2Fx");
    }
}
