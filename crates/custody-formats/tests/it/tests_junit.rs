//! JUnit XML summaries across dialects.

use custody_formats::{
    DeclaredTotals, Format, JunitDialect, Kind, Summary, TestSummary, detect, summarize,
    summarize_for,
};

use crate::{edit, read};

pub(crate) struct Expected {
    dialect: JunitDialect,
    suites: u64,
    /// total, passed, failed, errored, skipped
    counts: [u64; 5],
    duration: Option<f64>,
    /// (raw, Unix seconds if the text has an offset)
    timestamp: Option<(&'static str, Option<i64>)>,
    /// tests, failures, errors, skipped as declared
    declared: [Option<u64>; 4],
    disagree: bool,
}

// How these were counted: python ElementTree over each file, counting every
// `testcase` element once, as errored if it has an <error> child, else failed
// with <failure>, else skipped with <skipped>, else passed; suites = number of
// <testsuite> elements. Declared totals are the root <testsuites> attributes, or
// for a missing one the sum over the top-level suites' attributes. Duration is the
// root `time`, else the sum of the suites' `time` (go: 0.160 + 0.151 + 0.150).
// Timestamps are the root's, else the first suite's; Unix seconds from python.
pub(crate) const CASES: &[(&str, Expected)] = &[
    (
        "tests-junit/cargo-nextest-basic.xml",
        Expected {
            dialect: JunitDialect::CargoNextest,
            suites: 1,
            counts: [3, 2, 1, 0, 0],
            duration: Some(0.946),
            timestamp: Some(("2024-12-02T20:06:10.512+00:00", Some(1_733_169_970))),
            // root: tests=3 failures=1 errors=0; no `skipped` anywhere, but the suite's
            // `disabled="0"` declares that no test was left out.
            declared: [Some(3), Some(1), Some(0), Some(0)],
            disagree: false,
        },
    ),
    (
        "tests-junit/go-junit-report-001.xml",
        Expected {
            dialect: JunitDialect::GoJunitReport,
            suites: 3,
            counts: [5, 2, 1, 0, 2],
            duration: Some(0.461),
            timestamp: Some(("2022-01-01T00:00:00Z", Some(1_640_995_200))),
            // root: tests=5 failures=1 skipped=2; errors from suites 0+0+0.
            declared: [Some(5), Some(1), Some(0), Some(2)],
            disagree: false,
        },
    ),
    (
        "tests-junit/jest-junit.xml",
        Expected {
            dialect: JunitDialect::JestJunit,
            suites: 2,
            counts: [6, 1, 4, 0, 1],
            duration: Some(1.36),
            // No offset in the file: no instant is invented.
            timestamp: Some(("2020-10-27T21:39:41", None)),
            // root: tests=6 failures=4 errors=0; skipped from suites 0+1.
            declared: [Some(6), Some(4), Some(0), Some(1)],
            disagree: false,
        },
    ),
    (
        "tests-junit/maven-surefire-StringUtilsTest.xml",
        Expected {
            dialect: JunitDialect::MavenSurefire,
            suites: 1,
            counts: [5, 2, 2, 0, 1],
            duration: Some(0.01),
            timestamp: None,
            declared: [Some(5), Some(2), Some(0), Some(1)],
            disagree: false,
        },
    ),
    (
        "tests-junit/pytest-fail-skip.xml",
        Expected {
            dialect: JunitDialect::Pytest,
            suites: 1,
            counts: [5, 3, 1, 0, 1],
            duration: Some(2.481),
            timestamp: Some(("2020-09-04T16:18:04.966371", None)),
            // root <testsuites> has no attributes: all from the one suite.
            declared: [Some(5), Some(1), Some(0), Some(1)],
            disagree: false,
        },
    ),
];

fn tests(name: &str, bytes: &[u8]) -> TestSummary {
    match summarize(name, bytes).unwrap() {
        Summary::Tests(s) => s,
        other => panic!("{name}: expected a test summary, got {other:?}"),
    }
}

fn check(name: &str, bytes: &[u8], e: &Expected) {
    assert_eq!(detect(name, bytes).unwrap(), Format::JunitXml, "{name}");
    assert!(
        summarize_for(name, bytes, Kind::Tests).is_ok(),
        "{name}: stage"
    );
    let s = tests(name, bytes);
    assert_eq!(s.dialect, e.dialect, "{name}: dialect");
    assert_eq!(s.suites, e.suites, "{name}: suites");
    assert_eq!(
        [s.total, s.passed, s.failed, s.errored, s.skipped],
        e.counts,
        "{name}: total/passed/failed/errored/skipped"
    );
    match (s.duration_seconds, e.duration) {
        (Some(got), Some(want)) => assert!((got - want).abs() < 1e-9, "{name}: {got} != {want}"),
        (got, want) => assert_eq!(got, want, "{name}: duration"),
    }
    match e.timestamp {
        Some((raw, secs)) => {
            let t = s.timestamp.as_ref().expect("timestamp");
            assert_eq!(t.raw, raw, "{name}: timestamp");
            assert_eq!(t.utc.map(|u| u.as_second()), secs, "{name}: instant");
        }
        None => assert_eq!(s.timestamp, None, "{name}: timestamp"),
    }
    let [tests, failures, errors, skipped] = e.declared;
    assert_eq!(
        s.declared,
        DeclaredTotals {
            tests,
            failures,
            errors,
            skipped
        },
        "{name}: declared"
    );
    assert_eq!(s.attributes_disagree, e.disagree, "{name}: disagree");
}

#[test]
fn junit_fixtures() {
    for (file, expected) in CASES {
        check(file, &read(file), expected);
    }
}

/// The negative twin of `disagree: false` above: the same nextest report with its
/// root claiming 4 tests. Counts still come from the 3 test cases.
#[test]
fn junit_attributes_that_disagree_are_flagged() {
    let file = "tests-junit/cargo-nextest-basic.xml";
    let bytes = edit(
        file,
        r#"name="nextest-run" tests="3""#,
        r#"name="nextest-run" tests="4""#,
    );
    let s = tests(file, &bytes);
    assert_eq!(s.total, 3);
    assert_eq!(s.declared.tests, Some(4));
    assert!(s.attributes_disagree);
}

/// Outcome precedence and what does not count, by hand: t1 has <failure> and
/// <error> → errored; t2 has only Surefire's <flakyFailure> (passed on rerun) →
/// passed; t3 <skipped/> → skipped; t4 <failure> → failed; a <failure> inside
/// <system-out> text is not an element. Root <testsuite> without marks → generic.
#[test]
fn junit_outcome_precedence() {
    let doc = br#"<testsuite name="s" tests="4">
  <testcase name="t1"><failure message="x"/><error message="y"/></testcase>
  <testcase name="t2"><flakyFailure message="first run failed"/></testcase>
  <testcase name="t3"><skipped/></testcase>
  <testcase name="t4"><failure>boom</failure><system-out>&lt;failure&gt; in text</system-out></testcase>
</testsuite>"#;
    check(
        "generic.xml",
        doc,
        &Expected {
            dialect: JunitDialect::Generic,
            suites: 1,
            counts: [4, 1, 1, 1, 1],
            duration: None,
            timestamp: None,
            declared: [Some(4), None, None, None],
            disagree: false,
        },
    );
}

/// Issue 15, item 11: disabled tests never ran, yet counted as passed. A case marked
/// `status="disabled"` is skipped, and a suite's `disabled="N"` is a declared skip: a
/// suite claiming disabled tests its cases do not show is flagged.
#[test]
fn junit_disabled_tests_are_skipped_not_passed() {
    let doc = br#"<testsuites tests="3" disabled="1">
  <testsuite name="s" tests="3" disabled="1">
    <testcase name="ran"/>
    <testcase name="off" status="disabled"/>
    <testcase name="also ran"/>
  </testsuite>
</testsuites>"#;
    check(
        "disabled.xml",
        doc,
        &Expected {
            dialect: JunitDialect::Generic,
            suites: 1,
            counts: [3, 2, 0, 0, 1],
            duration: None,
            timestamp: None,
            declared: [Some(3), None, None, Some(1)],
            disagree: false,
        },
    );
    // the twin: the suite says one is disabled, no case says which: counted as they
    // ran, and the disagreement is flagged
    let unmarked = br#"<testsuite name="s" tests="2" disabled="1">
  <testcase name="a"/>
  <testcase name="b"/>
</testsuite>"#;
    let s = tests("unmarked.xml", unmarked);
    assert_eq!((s.passed, s.skipped), (2, 0));
    assert!(s.attributes_disagree);
}
