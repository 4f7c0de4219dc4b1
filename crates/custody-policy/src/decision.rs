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

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
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

    /// A short plain-text table for a job log: the verdict, one line per rule (failures
    /// first, then the rest in decision order), unverified facts and the stored record.
    /// No color and no escape sequences: every policy-supplied string is put on one line,
    /// so a message can neither spoof a log line nor start a workflow command.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "policy-check {}: {} ({} rules, {} failed)\n",
            self.gate,
            self.decision.as_str(),
            self.rules.len(),
            self.failures().count()
        );
        let (failed, rest): (Vec<&RuleResult>, Vec<&RuleResult>) =
            self.rules.iter().partition(|r| r.status == Status::Fail);
        let rows: Vec<(&str, String, String)> = failed
            .into_iter()
            .chain(rest)
            .map(|r| {
                (
                    match r.status {
                        Status::Pass => "PASS",
                        Status::Fail => "FAIL",
                        Status::Skip => "SKIP",
                    },
                    one_line(&r.id, TEXT_ID_MAX),
                    one_line(&r.message, TEXT_MESSAGE_MAX),
                )
            })
            .collect();
        let width = rows
            .iter()
            .map(|(_, id, _)| id.chars().count())
            .max()
            .unwrap_or(0);
        for (status, id, message) in rows {
            let line = format!("{status}  {id:<width$}  {message}");
            text.push_str(line.trim_end());
            text.push('\n');
        }
        if !self.unverified.is_empty() {
            text.push_str(&format!(
                "unverified facts (not from the platform API): {}\n",
                one_line(&self.unverified.join(", "), TEXT_MESSAGE_MAX)
            ));
        }
        if let Some(r) = &self.record {
            text.push_str(&format!("decision record {}\n", one_line(r, TEXT_ID_MAX)));
        }
        text
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

/// Longest rule message [`Decision::to_text`] prints, in characters; the JSON document
/// keeps the whole text.
const TEXT_MESSAGE_MAX: usize = 200;

/// Longest rule id (or record reference) [`Decision::to_text`] prints, in characters.
const TEXT_ID_MAX: usize = 80;

/// `s` on one line for a plain-text log: runs of whitespace and control characters
/// (newlines, tabs, escape sequences) become one space, and text longer than `max`
/// characters is cut with an ellipsis.
fn one_line(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(max.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// Escapes a table cell: pipes would split it, newlines would end the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, status: Status, message: &str) -> RuleResult {
        RuleResult {
            id: id.into(),
            status,
            message: message.into(),
            control: "164.312(c)(2)".into(),
            title: None,
        }
    }

    fn decision(rules: Vec<RuleResult>) -> Decision {
        Decision {
            gate: Gate::PreApproval,
            decision: Verdict::Deny,
            environment: Some("production".into()),
            artifact: Artifact {
                name: "ghcr.io/acme/app".into(),
                digest: format!("sha256:{}", "1".repeat(64)),
            },
            evaluated_at: "2026-11-29T09:00:00Z".into(),
            policy_digest: format!("sha256:{}", "2".repeat(64)),
            rules,
            approvals: vec![],
            unverified: vec![],
            record: None,
        }
    }

    #[test]
    fn text_puts_failures_first_one_line_per_rule() {
        let d = decision(vec![
            rule("a-rule", Status::Pass, "fine"),
            rule("b-rule", Status::Fail, "first line\nsecond\tline"),
            rule("c-longer-rule", Status::Skip, ""),
            rule("d-rule", Status::Fail, "bad \u{1b}[31mred\u{1b}[0m"),
        ]);
        assert_eq!(
            d.to_text(),
            "policy-check pre-approval: deny (4 rules, 2 failed)\n\
             FAIL  b-rule         first line second line\n\
             FAIL  d-rule         bad [31mred [0m\n\
             PASS  a-rule         fine\n\
             SKIP  c-longer-rule\n"
        );
    }

    #[test]
    fn text_cuts_long_messages_and_names_the_record_and_unverified_facts() {
        let mut d = decision(vec![rule("r", Status::Fail, &"x".repeat(500))]);
        d.decision = Verdict::Allow;
        d.unverified = vec!["approvals (file:a.json)".into()];
        d.record = Some(format!("sha256:{}", "3".repeat(64)));
        let text = d.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(
            lines[0],
            "policy-check pre-approval: allow (1 rules, 1 failed)"
        );
        assert_eq!(lines[1], format!("FAIL  r  {}…", "x".repeat(199)));
        assert_eq!(
            lines[2],
            "unverified facts (not from the platform API): approvals (file:a.json)"
        );
        assert_eq!(
            lines[3],
            format!("decision record sha256:{}", "3".repeat(64))
        );
        // the cut is by characters, never inside one
        assert_eq!(one_line(&"é".repeat(300), 200).chars().count(), 200);
        assert_eq!(one_line("short", 200), "short");
    }
}
