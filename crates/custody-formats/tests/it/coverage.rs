//! Coverage summaries: Cobertura XML and lcov.

use custody_formats::{CoverageSummary, Format, Kind, Summary, detect, summarize, summarize_for};

use crate::read;

pub(crate) struct Expected {
    format: Format,
    /// lines valid, covered
    lines: (u64, u64),
    branches: Option<(u64, u64)>,
    branch_rate: Option<f64>,
    functions: Option<(u64, u64)>,
    files: u64,
    /// (raw, Unix milliseconds)
    timestamp: Option<(&'static str, i64)>,
}

// How these were counted:
// - Cobertura: python ElementTree; root attributes `lines-valid`/`lines-covered`/
//   `branches-*` where present (gcovr, istanbul); coverage.py 4.0.3 has none, so
//   its lines are the `class/lines/line` elements (10, of which 9 with hits > 0)
//   and its branch rate is the root `branch-rate="0"`. files = distinct
//   `class/@filename`. Epoch: coverage.py and istanbul write milliseconds, gcovr
//   seconds (python `datetime.fromtimestamp` puts all three in 2016–2021).
// - lcov: what the reference tool reads, `lcov --rc lcov_branch_coverage=1 --summary`
//   (LCOV 1.16, Debian): totals counted from the DA, BRDA and FN/FNDA lines, not the
//   declared LF/LH, BRF/BRH, FNF/FNH; files = distinct SF paths.
pub(crate) const CASES: &[(&str, Expected)] = &[
    (
        "coverage-cobertura/coveragepy-4.0.3.cobertura.xml",
        Expected {
            format: Format::CoberturaXml,
            lines: (10, 9),
            branches: None,
            branch_rate: Some(0.0),
            functions: None,
            files: 1,
            timestamp: Some(("1460488624050", 1_460_488_624_050)),
        },
    ),
    (
        "coverage-cobertura/gcovr-5.0.cobertura.xml",
        Expected {
            format: Format::CoberturaXml,
            lines: (572, 345),
            branches: Some((252, 100)),
            branch_rate: Some(100.0 / 252.0),
            functions: None,
            files: 1,
            timestamp: Some(("1632549295", 1_632_549_295_000)),
        },
    ),
    (
        "coverage-cobertura/istanbul.cobertura.xml",
        Expected {
            format: Format::CoberturaXml,
            lines: (51, 51),
            branches: Some((35, 35)),
            branch_rate: Some(1.0),
            functions: None,
            files: 2,
            timestamp: Some(("1577142692246", 1_577_142_692_246)),
        },
    ),
    (
        "coverage-lcov/gcovr-gcc14-nested.lcov",
        Expected {
            format: Format::Lcov,
            lines: (42, 25),
            branches: Some((14, 4)),
            branch_rate: Some(4.0 / 14.0),
            functions: Some((10, 6)),
            files: 8,
            timestamp: None,
        },
    ),
    (
        "coverage-lcov/grcov-fn-with-commas.info",
        Expected {
            format: Format::Lcov,
            // the file declares LF:60 LH:29 FNF:6 FNH:3 over 57 distinct DA lines
            // (12, 18 and 53 twice) and 7 functions: counted, as lcov reads it
            lines: (57, 27),
            branches: Some((20, 3)),
            branch_rate: Some(3.0 / 20.0),
            functions: Some((7, 4)),
            files: 1,
            timestamp: None,
        },
    ),
    (
        "coverage-lcov/istanbul-js.lcov",
        Expected {
            format: Format::Lcov,
            lines: (17, 16),
            branches: Some((8, 7)),
            branch_rate: Some(7.0 / 8.0),
            functions: Some((6, 5)),
            files: 3,
            timestamp: None,
        },
    ),
];

fn coverage(name: &str, bytes: &[u8]) -> CoverageSummary {
    match summarize(name, bytes).unwrap() {
        Summary::Coverage(s) => s,
        other => panic!("{name}: expected a coverage summary, got {other:?}"),
    }
}

fn close(got: Option<f64>, want: Option<f64>, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-12, "{what}: {g} != {w}"),
        (g, w) => assert_eq!(g, w, "{what}"),
    }
}

fn check(name: &str, bytes: &[u8], e: &Expected) {
    assert_eq!(detect(name, bytes).unwrap(), e.format, "{name}");
    assert!(
        summarize_for(name, bytes, Kind::Coverage).is_ok(),
        "{name}: stage"
    );
    let s = coverage(name, bytes);
    assert_eq!((s.lines_valid, s.lines_covered), e.lines, "{name}: lines");
    #[allow(clippy::cast_precision_loss)]
    let rate = e.lines.1 as f64 / e.lines.0 as f64;
    close(s.line_rate, Some(rate), &format!("{name}: line rate"));
    assert_eq!(
        s.branches_valid.zip(s.branches_covered),
        e.branches,
        "{name}: branches"
    );
    close(
        s.branch_rate,
        e.branch_rate,
        &format!("{name}: branch rate"),
    );
    assert_eq!(
        s.functions_valid.zip(s.functions_covered),
        e.functions,
        "{name}: functions"
    );
    assert_eq!(s.files, e.files, "{name}: files");
    match e.timestamp {
        Some((raw, millis)) => {
            let t = s.timestamp.as_ref().expect("timestamp");
            assert_eq!(t.raw, raw, "{name}: timestamp");
            assert_eq!(
                t.utc.map(|u| u.as_millisecond()),
                Some(millis),
                "{name}: instant"
            );
        }
        None => assert_eq!(s.timestamp, None, "{name}: timestamp"),
    }
}

#[test]
fn coverage_fixtures() {
    for (file, expected) in CASES {
        check(file, &read(file), expected);
    }
}

/// Removes whole lines starting with any of `prefixes`, keeping line endings.
fn without(rel: &str, prefixes: &[&str]) -> Vec<u8> {
    let text = String::from_utf8(read(rel)).unwrap();
    let kept: String = text
        .split_inclusive('\n')
        .filter(|l| !prefixes.iter().any(|p| l.starts_with(p)))
        .collect();
    assert_ne!(kept, text, "{rel}: nothing removed");
    kept.into_bytes()
}

/// Without LF/LH/FNF/FNH the totals come from DA and FN/FNDA lines. Counted with
/// python over grcov-fn-with-commas.info: 60 DA lines, 57 distinct line numbers
/// (12, 18 and 53 appear twice), 27 of them with hits > 0; 7 FN names when split
/// at the first comma only (`cubic-bezier(0.0, 0.0, 1.0, 1.0)` stays whole), 4 of
/// them with FNDA count > 0. The file's own LF:60 and FNF:6 disagree; the line
/// records win whether the totals are declared or not (as `lcov --summary` reads it).
#[test]
fn lcov_falls_back_to_da_and_fn_lines() {
    let file = "coverage-lcov/grcov-fn-with-commas.info";
    let s = coverage(file, &without(file, &["LF:", "LH:", "FNF:", "FNH:"]));
    assert_eq!((s.lines_valid, s.lines_covered), (57, 27));
    assert_eq!(s.functions_valid.zip(s.functions_covered), Some((7, 4)));
    assert_eq!(s.branches_valid.zip(s.branches_covered), Some((20, 3)));

    // gcovr's DA lines carry a third checksum field: `grep -c '^DA:'` = 42,
    // `awk -F'[:,]' '$3>0'` = 25, the same as its LF/LH.
    let file = "coverage-lcov/gcovr-gcc14-nested.lcov";
    let s = coverage(file, &without(file, &["LF:", "LH:"]));
    assert_eq!((s.lines_valid, s.lines_covered), (42, 25));
}

/// Old Cobertura without root line attributes counts `class/lines/line` only:
/// the method-level copies istanbul writes must not double the count. This strips
/// istanbul's root attributes; the 51/51 lines and 2 files were counted with
/// python over `class/lines/line`, and branches 16/16 from condition-coverage.
#[test]
fn cobertura_counts_class_lines_without_root_attributes() {
    let file = "coverage-cobertura/istanbul.cobertura.xml";
    let bytes = crate::edit(
        file,
        r#"<coverage lines-valid="51" lines-covered="51" line-rate="1" branches-valid="35" branches-covered="35" branch-rate="1""#,
        r#"<coverage line-rate="1""#,
    );
    let s = coverage(file, &bytes);
    assert_eq!((s.lines_valid, s.lines_covered), (51, 51));
    assert_eq!(s.branches_valid.zip(s.branches_covered), Some((16, 16)));
    assert_eq!(s.files, 2);
}

/// Issue 15, item 10: declared totals were trusted. Every DA line with 0 hits under a
/// declared `LH:300` read as 100% (a rate over 1 was accepted): the line records win,
/// so it reads 0 of 3; a hit count declared above its total, with nothing to count,
/// is refused naming the record; no rate is ever above 1.
#[test]
fn lcov_declared_totals_cannot_outvote_the_lines() {
    let lying = b"TN:\nSF:a.js\nDA:1,0\nDA:2,0\nDA:3,0\nLF:3\nLH:300\nend_of_record\n";
    let err = summarize("lying.lcov", lying).unwrap_err();
    assert!(err.to_string().contains("300 lines hit of 3"), "{err}");
    let declared_only = b"TN:\nSF:a.js\nLF:3\nLH:300\nend_of_record\n";
    let err = summarize("declared.lcov", declared_only).unwrap_err();
    assert!(err.to_string().contains("declared.lcov"), "{err}");
    // consistent declared totals over zero-hit lines: the lines say 0 of 3
    let zero = b"TN:\nSF:a.js\nDA:1,0\nDA:2,0\nDA:3,0\nLF:3\nLH:3\nend_of_record\n";
    let s = coverage("zero.lcov", zero);
    assert_eq!((s.lines_valid, s.lines_covered), (3, 0));
    assert_eq!(s.line_rate, Some(0.0));
}

/// The Cobertura twin: a root claiming more lines covered than valid, or a rate above 1,
/// is refused naming the file.
#[test]
fn cobertura_impossible_totals_are_refused() {
    let file = "coverage-cobertura/istanbul.cobertura.xml";
    let text = String::from_utf8(read(file)).unwrap();
    let valid = text
        .split("lines-valid=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let covered = text
        .split("lines-covered=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let more: u64 = valid.parse::<u64>().unwrap() + 1;
    let bad = text.replacen(
        &format!("lines-covered=\"{covered}\""),
        &format!("lines-covered=\"{more}\""),
        1,
    );
    let err = summarize("more.xml", bad.as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("more.xml") && err.to_string().contains("more than there are"),
        "{err}"
    );
    let rate = text.replacen("line-rate=\"1\"", "line-rate=\"1.5\"", 1);
    assert_ne!(rate, text, "the fixture's root line-rate");
    let err = summarize("rate.xml", rate.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("between 0 and 1"), "{err}");
}
