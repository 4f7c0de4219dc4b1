//! Secrets and PHI, found before anything is stored write-once.
//!
//! The store keeps evidence for six years and nothing in it can be deleted, so a secret
//! or protected health information that reaches it is a permanent breach. [`Scanner`]
//! reads each material (streaming, constant memory: lines of at most [`MAX_LINE`]
//! bytes, longer ones in overlapping windows) and each string of a statement against
//! the [`rules`], and reports [`Finding`]s that name the file, line, column and rule and
//! carry the matched value's SHA-256 only, never the value.
//!
//! [`Policy`] says per stage what a finding does (`refuse`: the stage fails and nothing
//! is stored; `off`); [`Config`] (YAML) holds it, the extra medical record number
//! patterns, the rules turned off and the allow-list for synthetic test data.

pub mod rules;

use std::io::BufRead;
use std::path::Path;

use regex::bytes::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use rules::{Kind, Rule};

/// Lines longer than this are scanned in windows of this size, each overlapping the
/// last by [`OVERLAP`] bytes (a minified JSON SBOM is one line).
pub const MAX_LINE: usize = 1 << 20;
/// The overlap between windows of a long line: longer than any rule's match.
pub const OVERLAP: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{path}: cannot read the scan configuration: {source}")]
    ReadConfig {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a scan configuration: {message}")]
    Config { path: String, message: String },
    #[error("{name}: reading it to scan it: {source}")]
    Read {
        name: String,
        source: std::io::Error,
    },
}

/// What a finding does at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// The stage fails (exit 2) and nothing is stored.
    #[default]
    Refuse,
    /// No scan.
    Off,
}

/// An allow-list entry: findings it matches are not reported.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Allow {
    /// Material names (as given to the step), `*` matching any run of characters.
    pub path: Option<String>,
    /// Only these rules (default: all).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Only these values, by SHA-256 (hex) — the configuration never holds the values.
    #[serde(default)]
    pub value_sha256: Vec<String>,
    /// Why (kept for the reader: "synthetic patients of the integration tests").
    pub reason: Option<String>,
}

/// The scan configuration (`.custody/scan.yaml`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The policy of every stage not named in `stages` (default `refuse`).
    #[serde(default)]
    pub default: Policy,
    #[serde(default)]
    pub stages: std::collections::BTreeMap<String, Policy>,
    /// Medical record number formats of this organisation (regular expressions; the
    /// whole match is the value), e.g. `\bMRN[0-9]{8}\b`.
    #[serde(default)]
    pub mrn_patterns: Vec<String>,
    /// Rules turned off, by id.
    #[serde(default)]
    pub disable: Vec<String>,
    #[serde(default)]
    pub allow: Vec<Allow>,
}

impl Config {
    pub fn read(path: &Path) -> Result<Self, ScanError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScanError::ReadConfig {
            path: path.display().to_string(),
            source,
        })?;
        serde_yaml_ng::from_str(&text).map_err(|e| ScanError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The policy of `stage`.
    pub fn policy(&self, stage: &str) -> Policy {
        self.stages.get(stage).copied().unwrap_or(self.default)
    }
}

/// Something found: where and what, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The material's name, or `statement` for a string going into the statement.
    pub file: String,
    /// 1-based line and byte column.
    pub line: u64,
    pub column: u64,
    pub rule: String,
    pub kind: Kind,
    /// SHA-256 (hex) of the value, for an allow-list entry.
    pub value_sha256: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Secret => "a secret",
            Kind::Phi => "PHI",
        };
        write!(
            f,
            "{}:{}:{}: {} ({kind}; value sha256:{})",
            self.file,
            self.line,
            self.column,
            self.rule,
            &self.value_sha256[..16.min(self.value_sha256.len())]
        )
    }
}

/// The compiled rules.
#[derive(Debug, Clone)]
pub struct Scanner {
    rules: Vec<Rule>,
    set: RegexSet,
    each: Vec<Regex>,
    context: Regex,
    allow: Vec<Allow>,
}

impl Scanner {
    /// The built-in rules, with the configuration's MRN patterns, minus its disabled
    /// rules.
    pub fn new(cfg: &Config) -> Result<Self, ScanError> {
        let mut rules: Vec<Rule> = rules::builtin();
        rules.extend(cfg.mrn_patterns.iter().map(|p| rules::mrn(p)));
        rules.retain(|r| !cfg.disable.contains(&r.id));
        let bad = |message: String| ScanError::Config {
            path: "scan configuration".into(),
            message,
        };
        let each = rules
            .iter()
            .map(|r| Regex::new(&r.pattern).map_err(|e| bad(format!("rule {}: {e}", r.id))))
            .collect::<Result<Vec<_>, _>>()?;
        let set = RegexSet::new(rules.iter().map(|r| r.pattern.as_str()))
            .map_err(|e| bad(format!("the rules do not compile together: {e}")))?;
        let context = Regex::new(rules::CONTEXT).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            rules,
            set,
            each,
            context,
            allow: cfg.allow.clone(),
        })
    }

    /// Scans a stream; `name` names it in the findings.
    pub fn scan_reader(
        &self,
        name: &str,
        mut reader: impl BufRead,
    ) -> Result<Vec<Finding>, ScanError> {
        let mut findings = Vec::new();
        let mut in_context = false;
        let mut line_no: u64 = 0;
        let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
        let io = |source| ScanError::Read {
            name: name.to_owned(),
            source,
        };
        loop {
            line_no += 1;
            buf.clear();
            // a line, or a window of a long one
            let mut carried = 0usize;
            let mut column_base: u64 = 0;
            loop {
                let chunk = reader.fill_buf().map_err(io)?;
                if chunk.is_empty() {
                    break;
                }
                let room = MAX_LINE.saturating_sub(buf.len());
                let take = chunk.len().min(room);
                let part = chunk.get(..take).unwrap_or_default();
                if let Some(nl) = part.iter().position(|b| *b == b'\n') {
                    buf.extend_from_slice(part.get(..nl).unwrap_or_default());
                    reader.consume(nl + 1);
                    break;
                }
                buf.extend_from_slice(part);
                reader.consume(take);
                if buf.len() >= MAX_LINE {
                    // scan this window, keep its tail for the next one
                    self.scan_line(
                        name,
                        line_no,
                        column_base,
                        &buf,
                        carried,
                        &mut in_context,
                        &mut findings,
                    );
                    let keep = OVERLAP.min(buf.len());
                    let cut = buf.len() - keep;
                    column_base += cut as u64;
                    buf.drain(..cut);
                    carried = keep;
                }
            }
            if buf.is_empty() && reader.fill_buf().map_err(io)?.is_empty() {
                break;
            }
            self.scan_line(
                name,
                line_no,
                column_base,
                &buf,
                carried,
                &mut in_context,
                &mut findings,
            );
        }
        Ok(findings)
    }

    /// Scans a string (a statement's field, say).
    pub fn scan_text(&self, name: &str, text: &str) -> Vec<Finding> {
        self.scan_reader(name, text.as_bytes()).unwrap_or_default()
    }

    /// One line (or window); matches ending within the first `carried` bytes were
    /// reported with the window before.
    #[allow(clippy::too_many_arguments)]
    fn scan_line(
        &self,
        name: &str,
        line: u64,
        column_base: u64,
        text: &[u8],
        carried: usize,
        in_context: &mut bool,
        out: &mut Vec<Finding>,
    ) {
        let hits = self.set.matches(text);
        if !hits.matched_any() {
            return;
        }
        let line_context = *in_context || self.context.is_match(text);
        for i in hits.iter() {
            let (Some(rule), Some(re)) = (self.rules.get(i), self.each.get(i)) else {
                continue;
            };
            if rule.contextual && !line_context {
                continue;
            }
            for caps in re.captures_iter(text) {
                let Some(m) = caps.get(rule.group).or_else(|| caps.get(0)) else {
                    continue;
                };
                if m.end() <= carried && carried > 0 {
                    continue;
                }
                let value = m.as_bytes();
                if !rules::passes(rule.check, value) {
                    continue;
                }
                if rule.marks_context {
                    *in_context = true;
                }
                let value_sha256 = hex(&Sha256::digest(value));
                let finding = Finding {
                    file: name.to_owned(),
                    line,
                    column: column_base + m.start() as u64 + 1,
                    rule: rule.id.clone(),
                    kind: rule.kind,
                    value_sha256,
                };
                if !self.allowed(&finding) && !out.contains(&finding) {
                    out.push(finding);
                }
            }
        }
    }

    fn allowed(&self, f: &Finding) -> bool {
        self.allow.iter().any(|a| {
            a.path.as_deref().is_none_or(|p| wildcard(p, &f.file))
                && (a.rules.is_empty() || a.rules.contains(&f.rule))
                && (a.value_sha256.is_empty()
                    || a.value_sha256
                        .iter()
                        .any(|v| v.eq_ignore_ascii_case(&f.value_sha256)))
        })
    }
}

/// `pattern` with `*` matching any run of characters (`/` included), against `text`.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = rest.get(i + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("tests/fixtures/*", "tests/fixtures/a/b.json"));
        assert!(wildcard("*.hl7", "x/y.hl7"));
        assert!(wildcard("a*b*c", "aXbYc"));
        assert!(!wildcard("a*b*c", "aXbY"));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("exact", "exactly"));
        assert!(wildcard("*", ""));
    }

    #[test]
    fn ssn_structure() {
        use rules::{Check, passes};
        assert!(passes(Check::Ssn, b"123-45-6789"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(!passes(Check::Ssn, bad.as_bytes()), "{bad}");
        }
    }
}
