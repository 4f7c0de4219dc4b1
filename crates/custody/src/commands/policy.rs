//! `custody policy test`: Rego unit tests of the built-in and user policies, with a
//! line per test (pass/fail/error) and exit 1 when any fails. The logic is in
//! `custody_policy::testing`.

use anyhow::Context as _;
use custody_policy::PolicySet;
use custody_policy::testing::{TestStatus, run_tests};

use crate::cli::{Format, PolicyTestArgs};
use crate::exit::{Exit, fail};

pub fn test(args: &PolicyTestArgs) -> anyhow::Result<Exit> {
    // With DIRs, the user's tests: the built-in tests assert the built-in set (its rule
    // count, its fixtures), which a user rule may rightly change. Without, the
    // built-ins' own.
    let set = PolicySet::load(&args.dirs, &args.data, args.dirs.is_empty())
        .map_err(|e| fail(Exit::Usage, e.to_string()))
        .context("loading policies")?;
    let report = run_tests(&set, args.run.as_deref());
    match args.format {
        Format::Json => out!("{}", serde_json::to_string_pretty(&report)?),
        Format::Table => {
            for r in &report.results {
                let status = match r.status {
                    TestStatus::Pass => "PASS",
                    TestStatus::Fail => "FAIL",
                    TestStatus::Error => "ERROR",
                };
                out!(
                    "{status:<5} data.{}.{} ({} µs)",
                    r.package,
                    r.name,
                    r.duration.as_micros()
                );
                if let Some(m) = &r.message {
                    out!("      {}: {m}", r.file);
                }
            }
            out!(
                "{} passed, {} failed",
                report.passed,
                report.failed + report.errored
            );
        }
    }
    if report.results.is_empty() {
        errln!("no test_* rules found");
        return Ok(Exit::Verify);
    }
    Ok(if report.ok() { Exit::Ok } else { Exit::Verify })
}
