//! Index keys: the pointer entries written for each record so that queries are prefix
//! listings. Keys come only from the signed statement, never from unsigned input.

use custody_evidence::{Control, Digest, RecordInfo, Statement};

/// One pointer a record is filed under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum IndexKey {
    Subject(Digest),
    Commit(String),
    Pipeline(String),
    Day(jiff::civil::Date),
    Environment(String),
    Stage(String),
    Control(Control),
}

impl IndexKey {
    /// Directory segments below `index/`, each safe as a single path component.
    pub fn segments(&self) -> [String; 2] {
        match self {
            Self::Subject(d) => ["subject".into(), d.hex()],
            Self::Commit(c) => ["commit".into(), encode_component(&c.to_ascii_lowercase())],
            Self::Pipeline(p) => ["pipeline".into(), encode_component(p)],
            Self::Day(d) => ["day".into(), d.to_string()],
            Self::Environment(e) => ["environment".into(), encode_component(e)],
            Self::Stage(s) => ["stage".into(), encode_component(s)],
            Self::Control(c) => ["control".into(), encode_component(c.citation())],
        }
    }
}

/// Every index key of a record.
pub fn index_keys(statement: &Statement, record: &RecordInfo) -> Vec<IndexKey> {
    let mut keys: Vec<IndexKey> = statement
        .subject_digests()
        .into_iter()
        .map(IndexKey::Subject)
        .collect();
    if let Some(c) = &record.pipeline.commit {
        keys.push(IndexKey::Commit(c.clone()));
    }
    if let Some(p) = record.pipeline.pipeline_key() {
        keys.push(IndexKey::Pipeline(p));
    }
    keys.push(IndexKey::Day(
        record.recorded_at.to_zoned(jiff::tz::TimeZone::UTC).date(),
    ));
    if let Some(e) = &record.pipeline.environment {
        keys.push(IndexKey::Environment(e.clone()));
    }
    keys.push(IndexKey::Stage(record.stage.clone()));
    keys.extend(record.hipaa.iter().copied().map(IndexKey::Control));
    keys.sort();
    keys.dedup();
    keys
}

/// Encodes any string as one safe path component: bytes outside `[A-Za-z0-9._-]` are
/// percent-encoded, `.` and `..` cannot result, and long values are replaced by a
/// digest so no name exceeds filesystem limits. The mapping is injective for values
/// up to 160 bytes and collision-resistant beyond.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && !out.is_empty()) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        return "%00".into();
    }
    if out.len() > 160 {
        return format!("%h{}", Digest::of(value.as_bytes()).hex());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_safe() {
        for (input, want) in [
            ("abc123", "abc123"),
            ("..", "%2E."),
            (".", "%2E"),
            ("../../etc/passwd", "%2E.%2F..%2Fetc%2Fpasswd"),
            ("github:o/r:12", "github%3Ao%2Fr%3A12"),
            ("", "%00"),
            ("a b", "a%20b"),
        ] {
            let got = encode_component(input);
            assert_eq!(got, want, "{input}");
            assert!(!got.contains('/') && got != "." && got != "..");
        }
        let long = "x".repeat(500);
        assert!(encode_component(&long).len() < 100);
        assert_ne!(encode_component(&long), encode_component(&"x".repeat(501)));
    }
}
