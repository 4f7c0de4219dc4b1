//! `custody policy test`: Rego unit tests, as `opa test` runs them. Every rule named
//! `test_*` in any loaded module is evaluated; it passes when it is `true`, fails when
//! it is false or undefined, and errors when evaluation fails. Tests set their facts
//! with `with input as ...` and `with data.custody.config as ...`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::{Module, PolicySet};

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestStatus {
    Pass,
    Fail,
    Error,
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub package: String,
    pub name: String,
    /// The module defining the test.
    pub file: String,
    pub status: TestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// All tests' results.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestReport {
    pub results: Vec<TestResult>,
    pub passed: usize,
    pub failed: usize,
    pub errored: usize,
}

impl TestReport {
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.errored == 0 && self.passed > 0
    }
}

/// The test rules a module defines, in order of first appearance.
pub fn test_rules(module: &Module) -> Option<(String, Vec<String>)> {
    let mut package = None;
    let mut names: Vec<String> = Vec::new();
    for line in module.text.lines() {
        if let Some(p) = line.strip_prefix("package ") {
            package = Some(p.trim().to_owned());
            continue;
        }
        if !line.starts_with("test_") {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let package = package?;
    (!names.is_empty()).then_some((package, names))
}

/// Runs every `test_*` rule of the set, optionally only those whose
/// `package.name` contains `filter`.
pub fn run_tests(set: &PolicySet, filter: Option<&str>) -> TestReport {
    let mut results = Vec::new();
    for module in set.modules() {
        let Some((package, names)) = test_rules(module) else {
            continue;
        };
        for name in names {
            let full = format!("data.{package}.{name}");
            if filter.is_some_and(|f| !full.contains(f)) {
                continue;
            }
            let mut engine = set.engine().clone();
            let started = Instant::now();
            let outcome = engine.eval_rule(full.clone());
            let duration = started.elapsed();
            let (status, message) = match outcome {
                Ok(v) if v == regorus::Value::from(true) => (TestStatus::Pass, None),
                Ok(regorus::Value::Undefined) => (
                    TestStatus::Fail,
                    Some("undefined: a condition did not hold".to_owned()),
                ),
                Ok(v) => (
                    TestStatus::Fail,
                    Some(format!(
                        "evaluated to {}",
                        serde_json::to_string(&v).unwrap_or_default()
                    )),
                ),
                Err(e) => (TestStatus::Error, Some(e.to_string())),
            };
            results.push(TestResult {
                package: package.clone(),
                name,
                file: module.origin_name(),
                status,
                message,
                duration,
            });
        }
    }
    let count = |s| results.iter().filter(|r| r.status == s).count();
    TestReport {
        passed: count(TestStatus::Pass),
        failed: count(TestStatus::Fail),
        errored: count(TestStatus::Error),
        results,
    }
}
