//! The verdict: a [`Report`] of checks, each `pass`, `fail` or `warn` with its reason and the
//! source of the signal it rests on, an overall [`Outcome`] and its exit code.
//!
//! The report is a wire format: the caller signs it and stores it as evidence, so it serializes
//! to stable camelCase JSON. It also renders as a markdown table for `$GITHUB_STEP_SUMMARY`.
//!
//! Exit codes (documented for the `runner-guard` binary):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every check passed (warnings allowed) |
//! | 1 | a check failed |
//! | 2 | configuration or usage error (tier model invalid, bad arguments) |
//! | 3 | the trusted signals the tier requires could not be obtained (no OIDC token, JWKS or API unreachable, `/proc` unreadable), and nothing failed outright |

use serde::Serialize;

use crate::local::LocalFacts;
use crate::oidc::Claims;
use crate::platform::RunnerInfo;

/// Every check passed.
pub const EXIT_PASS: i32 = 0;
/// A check failed.
pub const EXIT_CHECK_FAILED: i32 = 1;
/// Configuration or usage error.
pub const EXIT_CONFIG_ERROR: i32 = 2;
/// Trusted signals could not be obtained.
pub const EXIT_UNTRUSTED: i32 = 3;

/// Schema identifier of the report JSON.
pub const REPORT_SCHEMA: &str = "https://custody.dev/runner-guard/report/v1";

/// Status of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
}

impl Status {
    /// `pass`, `fail` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Warn => "warn",
        }
    }
}

/// Where the signal a check rests on came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A claim of an OIDC token verified against the pinned issuer's JWKS.
    VerifiedToken,
    /// An answer of the platform API at the pinned host.
    PlatformApi,
    /// The kernel's view of the guard's own process (procfs, filesystem, network, own env).
    LocalKernel,
    /// A CI variable: spoofable by an earlier step.
    UnverifiedVariable,
}

impl Source {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifiedToken => "verified-token",
            Self::PlatformApi => "platform-api",
            Self::LocalKernel => "local-kernel",
            Self::UnverifiedVariable => "unverified-variable",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable identifier, e.g. `protected-ref`.
    pub id: String,
    pub status: Status,
    pub source: Source,
    pub reason: String,
    /// True when the check failed only because a trusted signal was missing (not because a
    /// signal showed a violation). Such failures alone give exit code 3.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub untrusted: bool,
}

impl Check {
    /// A passing check.
    pub fn pass(id: &str, source: Source, reason: impl Into<String>) -> Self {
        Self::new(id, Status::Pass, source, reason)
    }

    /// A failing check.
    pub fn fail(id: &str, source: Source, reason: impl Into<String>) -> Self {
        Self::new(id, Status::Fail, source, reason)
    }

    /// A warning.
    pub fn warn(id: &str, source: Source, reason: impl Into<String>) -> Self {
        Self::new(id, Status::Warn, source, reason)
    }

    /// A check that fails because the signal it needs could not be obtained.
    pub fn untrusted(id: &str, source: Source, reason: impl Into<String>) -> Self {
        Self {
            untrusted: true,
            ..Self::new(id, Status::Fail, source, reason)
        }
    }

    fn new(id: &str, status: Status, source: Source, reason: impl Into<String>) -> Self {
        Self {
            id: id.to_owned(),
            status,
            source,
            reason: reason.into(),
            untrusted: false,
        }
    }
}

/// Overall result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Untrusted,
}

impl Outcome {
    /// The documented exit code.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Pass => EXIT_PASS,
            Self::Fail => EXIT_CHECK_FAILED,
            Self::Untrusted => EXIT_UNTRUSTED,
        }
    }
}

/// The guard's verdict on this job and runner.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub schema: &'static str,
    /// `github` or `gitlab`.
    pub platform: &'static str,
    /// The tier the job was judged against, if one could be determined.
    pub tier: Option<String>,
    /// The job's environment, if any.
    pub environment: Option<String>,
    pub require_verified: bool,
    /// Digest of the tier model text.
    pub tier_model_digest: String,
    pub outcome: Outcome,
    pub exit_code: i32,
    pub checks: Vec<Check>,
    /// The verified claims (absent when no token verified).
    pub claims: Option<Claims>,
    /// The runner as the platform API described it.
    pub runner: Option<RunnerInfo>,
    pub local: LocalFacts,
}

impl Report {
    /// Computes the outcome from `checks`: any failure that is not for want of trust is a
    /// failure; otherwise failures for want of trust make the result untrusted.
    pub fn outcome_of(checks: &[Check]) -> Outcome {
        let failed = || checks.iter().filter(|c| c.status == Status::Fail);
        if failed().any(|c| !c.untrusted) {
            Outcome::Fail
        } else if failed().next().is_some() {
            Outcome::Untrusted
        } else {
            Outcome::Pass
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail; an empty object is a safe floor.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// A markdown summary for `$GITHUB_STEP_SUMMARY` (reads well without color or emoji).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let verdict = match self.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Untrusted => "UNTRUSTED (could not obtain trusted signals)",
        };
        out.push_str(&format!(
            "### runner-guard: {verdict}\n\nTier: {} · environment: {} · platform: {} · require_verified: {} · exit code {}\n\n",
            code(self.tier.as_deref().unwrap_or("none")),
            code(self.environment.as_deref().unwrap_or("none")),
            self.platform,
            self.require_verified,
            self.exit_code,
        ));
        out.push_str("| check | status | source | reason |\n|---|---|---|---|\n");
        for c in &self.checks {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                cell(&c.id),
                if c.untrusted {
                    "fail (untrusted)"
                } else {
                    c.status.as_str()
                },
                c.source.as_str(),
                cell(&c.reason)
            ));
        }
        out.push_str(&format!(
            "\nTier model: {}\n",
            code(&self.tier_model_digest)
        ));
        out
    }
}

impl Report {
    /// A plain text table for a terminal or a CI log (`--format table`).
    pub fn to_text(&self) -> String {
        let verdict = match self.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Untrusted => "UNTRUSTED",
        };
        let mut out = format!(
            "runner-guard: {verdict} (exit code {}) tier {} environment {} platform {} require_verified {}\n",
            self.exit_code,
            self.tier.as_deref().unwrap_or("none"),
            self.environment.as_deref().unwrap_or("none"),
            self.platform,
            self.require_verified,
        );
        let status = |c: &Check| {
            if c.untrusted {
                "fail (untrusted)"
            } else {
                c.status.as_str()
            }
        };
        let id_w = self
            .checks
            .iter()
            .map(|c| c.id.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let st_w = self
            .checks
            .iter()
            .map(|c| status(c).len())
            .max()
            .unwrap_or(0)
            .max(6);
        let src_w = self
            .checks
            .iter()
            .map(|c| c.source.as_str().len())
            .max()
            .unwrap_or(0)
            .max(6);
        out.push_str(&format!(
            "{:<id_w$}  {:<st_w$}  {:<src_w$}  reason\n",
            "check", "status", "source"
        ));
        for c in &self.checks {
            out.push_str(&format!(
                "{:<id_w$}  {:<st_w$}  {:<src_w$}  {}\n",
                c.id,
                status(c),
                c.source.as_str(),
                c.reason.replace(['\n', '\r'], " ")
            ));
        }
        out.push_str(&format!("tier model {}\n", self.tier_model_digest));
        out
    }

    /// The checks that failed, for annotations.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }
}

fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

/// Escapes a table cell: pipes would split it, newlines would end the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_prefers_real_failures_over_missing_trust() {
        let pass = Check::pass("a", Source::LocalKernel, "ok");
        let untrusted = Check::untrusted("b", Source::VerifiedToken, "no token");
        let fail = Check::fail("c", Source::LocalKernel, "uid 0");
        let warn = Check::warn("d", Source::LocalKernel, "meh");
        assert_eq!(
            Report::outcome_of(&[pass.clone(), warn.clone()]),
            Outcome::Pass
        );
        assert_eq!(
            Report::outcome_of(&[pass.clone(), untrusted.clone()]),
            Outcome::Untrusted
        );
        assert_eq!(Report::outcome_of(&[untrusted, fail, pass]), Outcome::Fail);
        assert_eq!(Outcome::Untrusted.exit_code(), 3);
    }

    #[test]
    fn cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
