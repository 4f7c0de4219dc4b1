//! Queries over the index.

use custody_evidence::{Control, Digest};
use jiff::Timestamp;
use serde::Serialize;

use crate::index::IndexKey;

/// What an auditor asks for. Criteria combine with AND; an empty query lists all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub commit: Option<String>,
    pub subject: Option<Digest>,
    pub pipeline: Option<String>,
    pub day: Option<jiff::civil::Date>,
    pub environment: Option<String>,
    pub stage: Option<String>,
    pub control: Option<Control>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Query {
    /// The index keys named by the query; each yields a candidate set to intersect.
    pub fn keys(&self) -> Vec<IndexKey> {
        let mut keys = Vec::new();
        if let Some(s) = self.subject {
            keys.push(IndexKey::Subject(s));
        }
        if let Some(c) = &self.commit {
            keys.push(IndexKey::Commit(c.clone()));
        }
        if let Some(p) = &self.pipeline {
            keys.push(IndexKey::Pipeline(p.clone()));
        }
        if let Some(d) = self.day {
            keys.push(IndexKey::Day(d));
        }
        if let Some(e) = &self.environment {
            keys.push(IndexKey::Environment(e.clone()));
        }
        if let Some(s) = &self.stage {
            keys.push(IndexKey::Stage(s.clone()));
        }
        if let Some(c) = self.control {
            keys.push(IndexKey::Control(c));
        }
        keys
    }

    pub(crate) fn in_time_range(&self, t: Timestamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// A record found by a query: its envelope digest and when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordRef {
    pub recorded_at: Timestamp,
    pub digest: Digest,
}

/// Combines the answer of a query from its parts, the same way for every backend.
///
/// `sets` holds one candidate list per key of [`Query::keys`] (AND: intersected,
/// smallest first), or a single list of everything in the days of the time range when
/// the query names no key. Then the time range applies, and the result is sorted by
/// time without duplicates.
pub(crate) fn combine(q: &Query, sets: Vec<Vec<RecordRef>>) -> Vec<RecordRef> {
    let mut sets: Vec<Vec<RecordRef>> = sets
        .into_iter()
        .map(|mut s| {
            s.sort_unstable();
            s
        })
        .collect();
    sets.sort_by_key(Vec::len);
    let mut iter = sets.into_iter();
    let mut acc = iter.next().unwrap_or_default();
    for other in iter {
        acc.retain(|r| other.binary_search(r).is_ok());
    }
    acc.retain(|r| q.in_time_range(r.recorded_at));
    acc.sort_unstable();
    acc.dedup();
    acc
}

impl Query {
    /// Whether a day's index (named `YYYY-MM-DD`) can hold records in the time range:
    /// the walk a query without keys makes.
    pub(crate) fn wants_day(&self, day: &str) -> bool {
        let Ok(date) = day.parse::<jiff::civil::Date>() else {
            return false;
        };
        let day_of = |t: Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
        !(self.since.is_some_and(|s| date < day_of(s))
            || self.until.is_some_and(|u| date > day_of(u)))
    }
}
