# The decision document: every rule reported, gates, fail-closed defaults.
package custody_test.decision

import data.custody_test.fixtures as f
import rego.v1

test_pre_approval_skips_approval_rules if {
	d := f.decide(object.union(f.input_ok, {"gate": "pre-approval", "approvals": null}))
	d.decision == "allow"
	d.rules["approvals-count"].status == "skip"
	d.rules["approvers-authorized"].status == "skip"
	d.rules["separation-of-duties"].status == "skip"
	contains(d.rules["approvals-count"].message, "pre-approval")
}

test_pre_deploy_checks_approvals if {
	inp := object.remove(f.input_ok, ["approvals"])
	d := f.decide(inp)
	d.decision == "deny"
	d.rules["approvers-authorized"].status == "fail"
}

test_every_rule_cites_a_hipaa_control if {
	every id, r in f.decide(f.input_ok).rules {
		startswith(r.control, "164.")
	}
}

test_nothing_at_all_denies if {
	d := data.custody.decision.result with input as {"gate": "pre-deploy"} with data.custody.config as f.config
	d.decision == "deny"
}

test_unknown_environment_denies if {
	f.status(f.with_field("environment", "moon"), "environment-configured") == "fail"
	f.status(f.with_field("environment", "moon"), "runner-tier") == "fail"
	f.status(f.with_field("environment", "moon"), "approvals-count") == "fail"
}

test_missing_environment_denies if {
	f.status(object.remove(f.input_ok, ["environment"]), "environment-configured") == "fail"
}

test_rejected_records_deny if {
	inp := f.with_field("rejected", [{"record": "sha256:x", "stage": "scan", "reason": "altered"}])
	f.status(inp, "evidence-integrity") == "fail"
	contains(f.message(inp, "evidence-integrity"), "altered")
}
