//! JUnit XML test reports in the dialects CI meets: pytest, Maven Surefire (root
//! `<testsuite>`), jest-junit, go-junit-report and cargo-nextest.
//!
//! Counts come from `<testcase>` elements, not from the `tests`/`failures`
//! attributes: generators disagree on what those attributes count (some count
//! errors as failures, some omit skipped) and an edited file can say anything. The
//! attributes are recorded beside the counts, with a flag when they differ.

use quick_xml::events::BytesStart;

use crate::error::FormatError;
use crate::format::Format;
use crate::summary::{DeclaredTotals, JunitDialect, ReportTime, TestSummary};
use crate::xml::{self, Visitor, attr, parse_f64, parse_u64};

/// Outcome marks seen inside the current test case.
#[derive(Default)]
struct Case {
    failure: bool,
    error: bool,
    skipped: bool,
}

#[derive(Default)]
struct Signals {
    nextest: bool,
    go: bool,
    jest: bool,
    pytest: bool,
    surefire: bool,
}

#[derive(Default)]
struct Junit {
    root_is_suites: bool,
    suites: u64,
    total: u64,
    passed: u64,
    failed: u64,
    errored: u64,
    skipped: u64,
    case: Option<Case>,
    root: DeclaredTotals,
    top: DeclaredTotals,
    root_time: Option<f64>,
    top_time: Option<f64>,
    timestamp: Option<ReportTime>,
    signals: Signals,
}

/// Adds `value` to an optional sum, keeping `None` when nothing was declared.
fn add(sum: &mut Option<u64>, value: Option<u64>) {
    if let Some(v) = value {
        *sum = Some(sum.unwrap_or(0).saturating_add(v));
    }
}

fn declared(element: &BytesStart<'_>) -> DeclaredTotals {
    let count = |name| attr(element, name).as_deref().and_then(parse_u64);
    // Ant's schema counts disabled tests apart (`disabled="N"`); they did not run, so
    // they are declared skips, compared with the cases counted as skipped
    let skipped = match (count("skipped"), count("disabled")) {
        (Some(s), Some(d)) => Some(s.saturating_add(d)),
        (s, d) => s.or(d),
    };
    DeclaredTotals {
        tests: count("tests"),
        failures: count("failures"),
        errors: count("errors"),
        skipped,
    }
}

impl Junit {
    fn suite(&mut self, depth: usize, element: &BytesStart<'_>) {
        self.suites = self.suites.saturating_add(1);
        let name = attr(element, "name").unwrap_or_default();
        if name == "pytest" {
            self.signals.pytest = true;
        }
        if self.timestamp.is_none() {
            self.timestamp = attr(element, "timestamp")
                .as_deref()
                .and_then(ReportTime::parse);
        }
        // A top-level suite is the root <testsuite> or a child of <testsuites>.
        let top_level = if self.root_is_suites {
            depth == 2
        } else {
            depth == 1
        };
        if top_level {
            let d = declared(element);
            add(&mut self.top.tests, d.tests);
            add(&mut self.top.failures, d.failures);
            add(&mut self.top.errors, d.errors);
            add(&mut self.top.skipped, d.skipped);
            if let Some(t) = attr(element, "time").as_deref().and_then(parse_f64) {
                self.top_time = Some(self.top_time.unwrap_or(0.0) + t);
            }
        }
    }

    fn root(&mut self, element: &BytesStart<'_>, name: &str) {
        self.root_is_suites = name == "testsuites";
        if self.root_is_suites {
            self.root = declared(element);
            self.root_time = attr(element, "time").as_deref().and_then(parse_f64);
            self.timestamp = attr(element, "timestamp")
                .as_deref()
                .and_then(ReportTime::parse);
            let suite_name = attr(element, "name").unwrap_or_default();
            // nextest names the run "nextest-run" by default and always adds a uuid.
            self.signals.nextest = suite_name == "nextest-run" || attr(element, "uuid").is_some();
            // jest-junit's default suiteName is "jest tests".
            self.signals.jest = suite_name.to_ascii_lowercase().contains("jest");
        } else {
            let schema = attr(element, "noNamespaceSchemaLocation").unwrap_or_default();
            self.signals.surefire = schema.contains("surefire");
        }
    }

    fn close_case(&mut self) {
        let Some(case) = self.case.take() else {
            return;
        };
        self.total = self.total.saturating_add(1);
        let slot = if case.error {
            &mut self.errored
        } else if case.failure {
            &mut self.failed
        } else if case.skipped {
            &mut self.skipped
        } else {
            &mut self.passed
        };
        *slot = slot.saturating_add(1);
    }

    fn dialect(&self) -> JunitDialect {
        let s = &self.signals;
        if s.nextest {
            JunitDialect::CargoNextest
        } else if s.go {
            JunitDialect::GoJunitReport
        } else if s.jest {
            JunitDialect::JestJunit
        } else if s.pytest {
            JunitDialect::Pytest
        } else if s.surefire {
            JunitDialect::MavenSurefire
        } else {
            JunitDialect::Generic
        }
    }
}

impl Visitor for Junit {
    fn wants_text(&self) -> bool {
        false
    }

    fn start(&mut self, path: &[String], element: &BytesStart<'_>) {
        let Some((name, parent)) = path.split_last() else {
            return;
        };
        if parent.is_empty() {
            self.root(element, name);
        }
        match name.as_str() {
            "testsuite" => self.suite(path.len(), element),
            "testcase" => {
                // A test case inside a test case is not JUnit; count the outer one.
                if self.case.is_none() {
                    // A disabled test never ran: skipped, as Surefire and the report
                    // actions count it (Ant's `status="disabled"`, and its kin)
                    let status = attr(element, "status").unwrap_or_default();
                    let not_run = matches!(
                        status.to_ascii_lowercase().as_str(),
                        "disabled" | "skipped" | "notrun" | "not run" | "ignored"
                    );
                    self.case = Some(Case {
                        skipped: not_run,
                        ..Case::default()
                    });
                }
                let classname = attr(element, "classname").unwrap_or_default();
                // jest-junit joins describe blocks with " › ".
                if classname.contains(" \u{203a} ") {
                    self.signals.jest = true;
                }
                // pytest records the source file and line of each test.
                let file = attr(element, "file").unwrap_or_default();
                if file.ends_with(".py") && attr(element, "line").is_some() {
                    self.signals.pytest = true;
                }
            }
            // Only direct children mark the outcome: Surefire's <flakyFailure> and
            // <rerunFailure> are other elements, and a flaky test that passed on
            // rerun has no <failure>.
            "failure" | "error" | "skipped" if parent.last().is_some_and(|p| p == "testcase") => {
                if let Some(case) = &mut self.case {
                    match name.as_str() {
                        "failure" => case.failure = true,
                        "error" => case.error = true,
                        _ => case.skipped = true,
                    }
                }
            }
            "property" => {
                let prop = attr(element, "name").unwrap_or_default();
                if prop == "go.version" {
                    self.signals.go = true;
                }
                if prop.starts_with("surefire.") || prop.starts_with("maven.") {
                    self.signals.surefire = true;
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, path: &[String]) {
        if path.last().is_some_and(|n| n == "testcase")
            // Close only the outermost test case (see `start`).
            && !path.iter().rev().skip(1).any(|n| n == "testcase")
        {
            self.close_case();
        }
    }
}

pub(crate) fn summarize(file: &str, bytes: &[u8]) -> Result<TestSummary, FormatError> {
    let mut j = Junit::default();
    xml::walk(file, bytes, &mut j)?;

    // Root attributes win; missing ones fall back to the sum over top-level suites.
    let declared = DeclaredTotals {
        tests: j.root.tests.or(j.top.tests),
        failures: j.root.failures.or(j.top.failures),
        errors: j.root.errors.or(j.top.errors),
        skipped: j.root.skipped.or(j.top.skipped),
    };
    let differs = |d: Option<u64>, counted: u64| d.is_some_and(|d| d != counted);
    let attributes_disagree = differs(declared.tests, j.total)
        || differs(declared.failures, j.failed)
        || differs(declared.errors, j.errored)
        || differs(declared.skipped, j.skipped);

    Ok(TestSummary {
        format: Format::JunitXml,
        dialect: j.dialect(),
        suites: j.suites,
        total: j.total,
        passed: j.passed,
        failed: j.failed,
        errored: j.errored,
        skipped: j.skipped,
        duration_seconds: j.root_time.or(j.top_time),
        timestamp: j.timestamp.clone(),
        declared,
        attributes_disagree,
    })
}
