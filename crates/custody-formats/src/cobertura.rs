//! Cobertura XML coverage. The root `lines-valid`/`lines-covered` attributes are
//! used when present; old writers (coverage.py 4, Cobertura's DTD 03) omit them, so
//! the lines are also counted from the `<line>` elements of each class.
//!
//! Only `class/lines/line` counts: istanbul repeats lines under
//! `class/methods/method/lines`, and counting those would count a line twice.
//! Lines are keyed by file and number, because Java writers emit inner classes as
//! separate `<class>` elements of the same file.

use std::collections::{BTreeSet, HashMap};

use quick_xml::events::BytesStart;

use crate::error::FormatError;
use crate::format::Format;
use crate::summary::{CoverageSummary, ReportTime};
use crate::xml::{self, Visitor, attr, parse_f64, parse_u64};

#[derive(Default)]
struct Cobertura {
    root_lines_valid: Option<u64>,
    root_lines_covered: Option<u64>,
    root_line_rate: Option<f64>,
    root_branches_valid: Option<u64>,
    root_branches_covered: Option<u64>,
    root_branch_rate: Option<f64>,
    timestamp: Option<ReportTime>,
    files: BTreeSet<String>,
    current_file: String,
    /// (file, line number) → hit. Lines without a number cannot be merged and are
    /// counted in `unnumbered`.
    lines: HashMap<(String, u64), bool>,
    unnumbered_valid: u64,
    unnumbered_covered: u64,
    /// Branches from `condition-coverage="50% (2/4)"`.
    branches_valid: u64,
    branches_covered: u64,
}

/// Parses the `(covered/valid)` part of `condition-coverage`.
fn condition_coverage(value: &str) -> Option<(u64, u64)> {
    let inner = value.split_once('(')?.1.split_once(')')?.0;
    let (covered, valid) = inner.split_once('/')?;
    Some((parse_u64(covered)?, parse_u64(valid)?))
}

impl Visitor for Cobertura {
    fn wants_text(&self) -> bool {
        false
    }

    fn start(&mut self, path: &[String], element: &BytesStart<'_>) {
        let get = |name| attr(element, name);
        match path {
            [root] if root == "coverage" => {
                self.root_lines_valid = get("lines-valid").as_deref().and_then(parse_u64);
                self.root_lines_covered = get("lines-covered").as_deref().and_then(parse_u64);
                self.root_line_rate = get("line-rate").as_deref().and_then(parse_f64);
                self.root_branches_valid = get("branches-valid").as_deref().and_then(parse_u64);
                self.root_branches_covered = get("branches-covered").as_deref().and_then(parse_u64);
                self.root_branch_rate = get("branch-rate").as_deref().and_then(parse_f64);
                self.timestamp = get("timestamp")
                    .as_deref()
                    .and_then(ReportTime::parse_epoch);
            }
            [.., last] if last == "class" => {
                self.current_file = get("filename").unwrap_or_default();
                if !self.current_file.is_empty() {
                    self.files.insert(self.current_file.clone());
                }
            }
            [.., class, lines, line] if class == "class" && lines == "lines" && line == "line" => {
                let hit = get("hits")
                    .as_deref()
                    .and_then(parse_f64)
                    .is_some_and(|h| h > 0.0);
                if let Some((covered, valid)) = get("condition-coverage")
                    .as_deref()
                    .and_then(condition_coverage)
                {
                    self.branches_covered = self.branches_covered.saturating_add(covered);
                    self.branches_valid = self.branches_valid.saturating_add(valid);
                }
                match get("number").as_deref().and_then(parse_u64) {
                    Some(number) => {
                        let seen = self
                            .lines
                            .entry((self.current_file.clone(), number))
                            .or_insert(false);
                        *seen |= hit;
                    }
                    None => {
                        self.unnumbered_valid = self.unnumbered_valid.saturating_add(1);
                        if hit {
                            self.unnumbered_covered = self.unnumbered_covered.saturating_add(1);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

pub(crate) fn rate(covered: u64, valid: u64) -> Option<f64> {
    // Counts stay far below 2^53 in any real report, so the f64 is exact; the callers
    // refuse covered > valid, and a rate is never reported above 1 regardless.
    (valid > 0).then(|| (covered as f64 / valid as f64).min(1.0))
}

pub(crate) fn summarize(file: &str, bytes: &[u8]) -> Result<CoverageSummary, FormatError> {
    let mut c = Cobertura::default();
    xml::walk(file, bytes, &mut c)?;

    let impossible = |detail: String| FormatError::Malformed {
        file: file.to_owned(),
        syntax: crate::error::Syntax::Xml,
        detail,
    };
    for (name, r) in [
        ("line-rate", c.root_line_rate),
        ("branch-rate", c.root_branch_rate),
    ] {
        if let Some(r) = r
            && !(0.0..=1.0).contains(&r)
        {
            return Err(impossible(format!(
                "the root {name} is {r}: a rate lies between 0 and 1"
            )));
        }
    }
    for (what, covered, valid) in [
        ("lines", c.root_lines_covered, c.root_lines_valid),
        ("branches", c.root_branches_covered, c.root_branches_valid),
    ] {
        if let (Some(covered), Some(valid)) = (covered, valid)
            && covered > valid
        {
            return Err(impossible(format!(
                "the root declares {covered} {what} covered of {valid}: more than there are"
            )));
        }
    }
    let counted_valid = u64::try_from(c.lines.len())
        .unwrap_or(u64::MAX)
        .saturating_add(c.unnumbered_valid);
    let counted_covered = u64::try_from(c.lines.values().filter(|hit| **hit).count())
        .unwrap_or(u64::MAX)
        .saturating_add(c.unnumbered_covered);
    let (lines_valid, lines_covered) = match (c.root_lines_valid, c.root_lines_covered) {
        (Some(valid), Some(covered)) => (valid, covered),
        _ => (counted_valid, counted_covered),
    };
    let (branches_valid, branches_covered) = match (c.root_branches_valid, c.root_branches_covered)
    {
        (Some(valid), Some(covered)) => (Some(valid), Some(covered)),
        _ if c.branches_valid > 0 => (Some(c.branches_valid), Some(c.branches_covered)),
        _ => (None, None),
    };
    let branch_rate = match (branches_valid, branches_covered) {
        (Some(valid), Some(covered)) if valid > 0 => rate(covered, valid),
        _ => c.root_branch_rate,
    };

    Ok(CoverageSummary {
        format: Format::CoberturaXml,
        lines_valid,
        lines_covered,
        line_rate: rate(lines_covered, lines_valid).or(c.root_line_rate),
        branches_valid,
        branches_covered,
        branch_rate,
        functions_valid: None,
        functions_covered: None,
        files: u64::try_from(c.files.len()).unwrap_or(u64::MAX),
        timestamp: c.timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_coverage_fractions() {
        assert_eq!(condition_coverage("50% (2/4)"), Some((2, 4)));
        assert_eq!(condition_coverage("100% (2/2)"), Some((2, 2)));
        assert_eq!(condition_coverage("50%"), None);
    }
}
