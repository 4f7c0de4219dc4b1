//! The decision as an SLSA Verification Summary Attestation (VSA v1,
//! `https://slsa.dev/verification_summary/v1`): who verified (policy-check), what
//! (`resourceUri`, the subject digest), against which policy (its digest), from which
//! evidence (`inputAttestations`: every record the decision relied on), with what
//! result. `verifiedLevels` holds one custom value per gate passed
//! (`CUSTODY_GATE_PRE_DEPLOY`; the spec reserves `SLSA_` for SLSA's own tracks, which
//! Custody does not assess) or `FAILED`.
//!
//! Custody's details travel in one predicate extension, `custody` (in-toto consumers
//! ignore fields they do not know): the gate, the environment, every rule's outcome as
//! the decision has it, the runner-guard verdicts relied on, the CVE exceptions in force
//! and the decision record the VSA summarises.

use serde_json::{Map, Value, json};

use crate::decision::{Decision, Verdict};
use crate::input::PolicyInput;

/// The VSA v1 predicate type.
pub const VSA_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";
/// `verifier.id`.
pub const VERIFIER_ID: &str = "https://custody.dev/policy-check";

/// `sha256:<hex>` as an in-toto digest set.
fn digest_set(d: &str) -> Value {
    match d.split_once(':') {
        Some((alg, hex)) => json!({ alg: hex }),
        None => json!({}),
    }
}

/// The VSA predicate of `decision`, made from `input`, with `exceptions` (the policy
/// data's `exceptions`) and the stored decision record.
pub fn predicate(
    decision: &Decision,
    input: &PolicyInput,
    exceptions: &Value,
    decision_record: Option<&str>,
) -> Map<String, Value> {
    let gate = decision.gate.as_str();
    let resource = if decision.artifact.name.is_empty() {
        decision.artifact.digest.clone()
    } else {
        format!("{}@{}", decision.artifact.name, decision.artifact.digest)
    };
    let passed = decision.decision == Verdict::Allow;
    let levels = if passed {
        vec![format!(
            "CUSTODY_GATE_{}",
            gate.to_uppercase().replace('-', "_")
        )]
    } else {
        vec!["FAILED".to_owned()]
    };
    let inputs: Vec<Value> = input
        .relied_on()
        .iter()
        .map(|r| json!({"uri": format!("custody:record/{r}"), "digest": digest_set(r)}))
        .collect();
    let rules: Vec<Value> = decision
        .rules
        .iter()
        .map(
            |r| json!({"id": r.id, "status": r.status, "message": r.message, "control": r.control}),
        )
        .collect();
    let guards: Vec<Value> = input
        .runner_guard
        .iter()
        .map(|g| json!({"record": g.record, "tier": g.tier, "outcome": g.outcome, "job": g.job}))
        .collect();
    let mut p = Map::new();
    p.insert(
        "verifier".into(),
        json!({"id": VERIFIER_ID, "version": {"policy-check": env!("CARGO_PKG_VERSION")}}),
    );
    p.insert("timeVerified".into(), json!(decision.evaluated_at));
    p.insert("resourceUri".into(), json!(resource));
    p.insert(
        "policy".into(),
        json!({
            "uri": format!("https://custody.dev/policy/{gate}"),
            "digest": digest_set(&decision.policy_digest),
        }),
    );
    p.insert("inputAttestations".into(), Value::Array(inputs));
    p.insert(
        "verificationResult".into(),
        json!(if passed { "PASSED" } else { "FAILED" }),
    );
    p.insert("verifiedLevels".into(), json!(levels));
    p.insert("slsaVersion".into(), json!("1.0"));
    p.insert(
        "custody".into(),
        json!({
            "gate": gate,
            "environment": decision.environment,
            "rules": rules,
            "runnerGuard": guards,
            "exceptions": exceptions,
            "decisionRecord": decision_record,
        }),
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{RuleResult, Status};
    use crate::gate::Gate;
    use crate::input::{Artifact, RunnerGuardFact};

    fn decision(verdict: Verdict, name: &str) -> Decision {
        Decision {
            gate: Gate::PreDeploy,
            decision: verdict,
            environment: Some("production".into()),
            artifact: Artifact {
                name: name.into(),
                digest: format!("sha256:{}", "1".repeat(64)),
            },
            evaluated_at: "2026-12-08T00:00:00Z".into(),
            policy_digest: format!("sha256:{}", "2".repeat(64)),
            rules: vec![RuleResult {
                id: "coverage".into(),
                status: Status::Pass,
                message: "ok".into(),
                control: "164.308(a)(1)(ii)(B)".into(),
                title: None,
            }],
            approvals: vec![],
            unverified: vec![],
            record: None,
        }
    }

    #[test]
    fn an_allow_passes_its_gate_and_a_deny_fails() {
        let mut input = PolicyInput::new(
            Gate::PreDeploy,
            jiff::Timestamp::UNIX_EPOCH,
            Artifact {
                name: "ghcr.io/acme/app".into(),
                digest: format!("sha256:{}", "1".repeat(64)),
            },
        );
        input.runner_guard.push(RunnerGuardFact {
            record: format!("sha256:{}", "3".repeat(64)),
            tier: Some("production".into()),
            environment: None,
            outcome: "pass".into(),
            job: Some("deploy".into()),
        });
        let exceptions = json!([{"id": "CVE-2026-1", "reason": "unused", "expires": "2027-01-01"}]);
        let p = predicate(
            &decision(Verdict::Allow, "ghcr.io/acme/app"),
            &input,
            &exceptions,
            Some("sha256:abc"),
        );
        assert_eq!(p["verificationResult"], "PASSED");
        assert_eq!(p["verifiedLevels"], json!(["CUSTODY_GATE_PRE_DEPLOY"]));
        assert_eq!(
            p["resourceUri"],
            format!("ghcr.io/acme/app@sha256:{}", "1".repeat(64))
        );
        assert_eq!(p["policy"]["digest"]["sha256"], "2".repeat(64));
        assert_eq!(
            p["inputAttestations"][0]["digest"]["sha256"],
            "3".repeat(64)
        );
        assert_eq!(p["custody"]["runnerGuard"][0]["outcome"], "pass");
        assert_eq!(p["custody"]["exceptions"], exceptions);
        assert_eq!(p["custody"]["decisionRecord"], "sha256:abc");
        let p = predicate(&decision(Verdict::Deny, ""), &input, &json!([]), None);
        assert_eq!(p["verificationResult"], "FAILED");
        assert_eq!(p["verifiedLevels"], json!(["FAILED"]));
        // a bare digest is its own resource
        assert_eq!(p["resourceUri"], format!("sha256:{}", "1".repeat(64)));
    }
}
