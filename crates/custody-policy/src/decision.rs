//! The decision document: what policy-check prints on stdout, renders for CI, and
//! stores (as the `https://custody.dev/policy/decision/v1` predicate) as evidence.
//!
//! A wire format: JSON Schema from `policy-check --print-schema decision`, snapshot
//! tested. The stored predicate is exactly the contract in HELPERS.md (gate, decision,
//! environment, evaluatedAt, policyDigest, rules, approvals); the document on stdout
//! adds the artifact, rule titles, unverified facts and the stored record.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::gate::Gate;
use crate::input::Artifact;

/// predicateType of the stored decision.
pub const DECISION_PREDICATE: &str = "https://custody.dev/policy/decision/v1";

/// Stage name of the stored decision record.
pub const DECISION_STAGE: &str = "policy";

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Deny,
}

/// The status of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Skip => "skip",
        }
    }
}

/// One rule as evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleResult {
    pub id: String,
    pub status: Status,
    pub message: String,
    /// The HIPAA citation the rule serves, e.g. `164.312(c)(2)`.
    pub control: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// One approval the decision rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalEntry {
    pub approver: String,
    /// RFC 3339 when the platform gives the time; null otherwise (GitHub's run
    /// approvals carry none).
    pub at: Option<String>,
    /// `github`, `gitlab`, or `file:<path> (unverified)`.
    pub source: String,
}

/// The decision document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub gate: Gate,
    pub decision: Verdict,
    pub environment: Option<String>,
    pub artifact: Artifact,
    pub evaluated_at: String,
    /// SHA-256 over the policy modules and data that decided.
    pub policy_digest: String,
    /// Every rule evaluated, passes and skips included, ordered by id.
    pub rules: Vec<RuleResult>,
    pub approvals: Vec<ApprovalEntry>,
    /// Facts that came from outside the platform API (`--approvals FILE`).
    pub unverified: Vec<String>,
    /// The stored decision record, when it was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

impl Decision {
    /// The stored predicate: exactly the contract's fields.
    pub fn predicate(&self) -> serde_json::Map<String, serde_json::Value> {
        let rules: Vec<serde_json::Value> = self
            .rules
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "status": r.status,
                    "message": r.message,
                    "control": r.control,
                })
            })
            .collect();
        let mut m = serde_json::Map::new();
        m.insert("gate".into(), self.gate.as_str().into());
        m.insert(
            "decision".into(),
            match self.decision {
                Verdict::Allow => "allow",
                Verdict::Deny => "deny",
            }
            .into(),
        );
        m.insert(
            "environment".into(),
            self.environment
                .clone()
                .map_or(serde_json::Value::Null, Into::into),
        );
        m.insert("evaluatedAt".into(), self.evaluated_at.clone().into());
        m.insert("policyDigest".into(), self.policy_digest.clone().into());
        m.insert("rules".into(), rules.into());
        m.insert(
            "approvals".into(),
            serde_json::to_value(&self.approvals).unwrap_or_default(),
        );
        m
    }

    /// Rules that failed.
    pub fn failures(&self) -> impl Iterator<Item = &RuleResult> {
        self.rules.iter().filter(|r| r.status == Status::Fail)
    }

    /// A Markdown table for `$GITHUB_STEP_SUMMARY`; reads well without color.
    pub fn to_markdown(&self) -> String {
        let verdict = match self.decision {
            Verdict::Allow => "ALLOW",
            Verdict::Deny => "DENY",
        };
        let mut md = format!(
            "### policy-check {}: {verdict}\n\nArtifact `{}` · environment `{}` · policy `{}`\n\n| rule | status | HIPAA | message |\n|---|---|---|---|\n",
            self.gate,
            cell(&self.artifact.digest),
            cell(self.environment.as_deref().unwrap_or("none")),
            cell(self.policy_digest.get(..19).unwrap_or(&self.policy_digest)),
        );
        for r in &self.rules {
            md.push_str(&format!(
                "| {} | {} | §{} | {} |\n",
                cell(&r.id),
                r.status.as_str(),
                cell(&r.control),
                cell(&r.message)
            ));
        }
        if !self.unverified.is_empty() {
            md.push_str(&format!(
                "\nUnverified facts (not from the platform API): {}\n",
                cell(&self.unverified.join(", "))
            ));
        }
        if let Some(r) = &self.record {
            md.push_str(&format!("\nDecision record: `{r}`\n"));
        }
        md
    }

    /// `KEY=value` pairs for a GitLab dotenv report and GitHub step outputs.
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        let failed: Vec<&str> = self.failures().map(|r| r.id.as_str()).collect();
        vec![
            (
                "CUSTODY_POLICY_DECISION",
                match self.decision {
                    Verdict::Allow => "allow".into(),
                    Verdict::Deny => "deny".into(),
                },
            ),
            ("CUSTODY_POLICY_GATE", self.gate.as_str().into()),
            ("CUSTODY_POLICY_FAILED", failed.join(",")),
            (
                "CUSTODY_POLICY_RECORD",
                self.record.clone().unwrap_or_default(),
            ),
            ("CUSTODY_POLICY_DIGEST", self.policy_digest.clone()),
        ]
    }
}

/// Escapes a table cell: pipes would split it, newlines would end the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}
