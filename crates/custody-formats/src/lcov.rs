//! lcov tracefiles (geninfo, istanbul/c8, gcovr, grcov). Each `SF:` record
//! declares its totals in `LF`/`LH` (lines), `BRF`/`BRH` (branches) and
//! `FNF`/`FNH` (functions). Where the record also has the lines they summarize (`DA`,
//! `BRDA`, `FN`/`FNDA`), those are counted instead, merging repeated entries for the
//! same line or function as lcov's own tools do: a file can declare anything, and
//! `LH:300` over lines that were never hit is not coverage. A declared hit count above
//! its total is refused; the declared totals are used alone only where nothing else
//! is written.
//!
//! Line formats to be careful with: `DA:<line>,<hits>[,<checksum>]` (gcovr writes
//! the checksum), hit counts written as 2^64-1 by some istanbul versions, and
//! function names with commas (`FN:95,cubic-bezier(0.0, 0.0, 1.0, 1.0)`): only the
//! first comma separates the fields.

use std::collections::{BTreeSet, HashMap};

use crate::error::{FormatError, Syntax};
use crate::format::{Format, strip_bom};
use crate::summary::CoverageSummary;

#[derive(Default)]
struct Record {
    lf: Option<u64>,
    lh: Option<u64>,
    brf: Option<u64>,
    brh: Option<u64>,
    fnf: Option<u64>,
    fnh: Option<u64>,
    /// line → hit, from DA.
    lines: HashMap<u64, bool>,
    /// (line, block, branch) → taken, from BRDA.
    branches: HashMap<(String, String, String), bool>,
    /// function name → hit, from FN and FNDA.
    functions: HashMap<String, bool>,
}

#[derive(Default)]
struct Totals {
    lines_valid: u64,
    lines_covered: u64,
    branches_valid: u64,
    branches_covered: u64,
    branch_data: bool,
    functions_valid: u64,
    functions_covered: u64,
    function_data: bool,
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn hits<K>(map: &HashMap<K, bool>) -> u64 {
    len(map.values().filter(|h| **h).count())
}

/// Declared and counted totals of one kind: the line records win where they exist (a
/// file can declare anything), and a declared hit count above its total is refused.
fn pick<K>(
    declared_total: Option<u64>,
    declared_hit: Option<u64>,
    records: &HashMap<K, bool>,
    what: &str,
) -> Result<(u64, u64), String> {
    if let (Some(total), Some(hit)) = (declared_total, declared_hit)
        && hit > total
    {
        return Err(format!(
            "declares {hit} {what} hit of {total}: more than there are"
        ));
    }
    if !records.is_empty() {
        return Ok((len(records.len()), hits(records)));
    }
    let total = declared_total.unwrap_or(0);
    let hit = declared_hit.unwrap_or(0);
    if hit > total {
        return Err(format!(
            "declares {hit} {what} hit of {total}: more than there are"
        ));
    }
    Ok((total, hit))
}

impl Totals {
    fn add(&mut self, r: Record) -> Result<(), String> {
        let (lines_valid, lines_covered) = pick(r.lf, r.lh, &r.lines, "lines")?;
        let (branches_valid, branches_covered) = pick(r.brf, r.brh, &r.branches, "branches")?;
        let (functions_valid, functions_covered) = pick(r.fnf, r.fnh, &r.functions, "functions")?;
        self.lines_valid = self.lines_valid.saturating_add(lines_valid);
        self.lines_covered = self.lines_covered.saturating_add(lines_covered);
        if r.brf.is_some() || !r.branches.is_empty() {
            self.branch_data = true;
        }
        self.branches_valid = self.branches_valid.saturating_add(branches_valid);
        self.branches_covered = self.branches_covered.saturating_add(branches_covered);
        if r.fnf.is_some() || !r.functions.is_empty() {
            self.function_data = true;
        }
        self.functions_valid = self.functions_valid.saturating_add(functions_valid);
        self.functions_covered = self.functions_covered.saturating_add(functions_covered);
        Ok(())
    }
}

/// A hit count is taken when positive. Parsed as i128 so both 2^64-1 (istanbul's
/// wrapped -1) and negative gcov counts are read instead of rejected.
fn parse_hits(value: &str) -> Option<bool> {
    value.trim().parse::<i128>().ok().map(|n| n > 0)
}

pub(crate) fn summarize(file: &str, bytes: &[u8]) -> Result<CoverageSummary, FormatError> {
    let text = std::str::from_utf8(strip_bom(bytes)).map_err(|e| FormatError::Malformed {
        file: file.to_owned(),
        syntax: Syntax::Lcov,
        detail: format!("not UTF-8: {e}"),
    })?;
    let malformed = |number: usize, line: &str| FormatError::Malformed {
        file: file.to_owned(),
        syntax: Syntax::Lcov,
        detail: format!("line {number}: cannot read `{line}`"),
    };

    let impossible = |number: usize, detail: String| FormatError::Malformed {
        file: file.to_owned(),
        syntax: Syntax::Lcov,
        detail: format!("the record ending at line {number} {detail}"),
    };
    let mut totals = Totals::default();
    let mut files = BTreeSet::new();
    let mut record: Option<Record> = None;
    let mut last_line = "";
    for (index, raw) in text.lines().enumerate() {
        let number = index.saturating_add(1);
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        last_line = line;
        if line == "end_of_record" {
            if let Some(r) = record.take() {
                totals.add(r).map_err(|detail| impossible(number, detail))?;
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(malformed(number, line));
        };
        if key == "SF" {
            // A new SF without end_of_record: close the previous one rather than
            // merge two files' data.
            if let Some(r) = record.take() {
                totals.add(r).map_err(|detail| impossible(number, detail))?;
            }
            files.insert(value.to_owned());
            record = Some(Record::default());
            continue;
        }
        let Some(r) = record.as_mut() else {
            // TN and other keys may precede the first SF.
            continue;
        };
        let count = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| malformed(number, line))
        };
        match key {
            "LF" => r.lf = Some(count()?),
            "LH" => r.lh = Some(count()?),
            "BRF" => r.brf = Some(count()?),
            "BRH" => r.brh = Some(count()?),
            "FNF" => r.fnf = Some(count()?),
            "FNH" => r.fnh = Some(count()?),
            "DA" => {
                let mut fields = value.split(',');
                let (Some(line_no), Some(hit)) = (fields.next(), fields.next()) else {
                    return Err(malformed(number, line));
                };
                let line_no = line_no
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| malformed(number, line))?;
                let hit = parse_hits(hit).ok_or_else(|| malformed(number, line))?;
                *r.lines.entry(line_no).or_insert(false) |= hit;
            }
            "BRDA" => {
                let fields: Vec<&str> = value.splitn(4, ',').collect();
                let [line_no, block, branch, taken] = fields.as_slice() else {
                    return Err(malformed(number, line));
                };
                // "-" means the block was never reached: not taken.
                let taken = *taken != "-" && parse_hits(taken).unwrap_or(false);
                *r.branches
                    .entry((
                        (*line_no).to_owned(),
                        (*block).to_owned(),
                        (*branch).to_owned(),
                    ))
                    .or_insert(false) |= taken;
            }
            "FN" => {
                // FN:<line>[,<end line>],<name>: the name is everything after the
                // last numeric field, commas included.
                let Some((_, rest)) = value.split_once(',') else {
                    return Err(malformed(number, line));
                };
                let name = match rest.split_once(',') {
                    Some((end, name)) if end.trim().parse::<u64>().is_ok() => name,
                    _ => rest,
                };
                r.functions.entry(name.to_owned()).or_insert(false);
            }
            "FNDA" => {
                let Some((hit, name)) = value.split_once(',') else {
                    return Err(malformed(number, line));
                };
                let hit = parse_hits(hit).ok_or_else(|| malformed(number, line))?;
                *r.functions.entry(name.to_owned()).or_insert(false) |= hit;
            }
            _ => {}
        }
    }
    if record.is_some() || last_line != "end_of_record" {
        return Err(FormatError::Truncated {
            file: file.to_owned(),
            syntax: Syntax::Lcov,
            detail: format!(
                "the last record does not end with end_of_record (last line: `{last_line}`)"
            ),
        });
    }

    Ok(CoverageSummary {
        format: Format::Lcov,
        lines_valid: totals.lines_valid,
        lines_covered: totals.lines_covered,
        line_rate: crate::cobertura::rate(totals.lines_covered, totals.lines_valid),
        branches_valid: totals.branch_data.then_some(totals.branches_valid),
        branches_covered: totals.branch_data.then_some(totals.branches_covered),
        branch_rate: crate::cobertura::rate(totals.branches_covered, totals.branches_valid),
        functions_valid: totals.function_data.then_some(totals.functions_valid),
        functions_covered: totals.function_data.then_some(totals.functions_covered),
        files: len(files.len()),
        timestamp: None,
    })
}
