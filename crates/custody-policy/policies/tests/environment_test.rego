# runner-tier and environment-protected.
package custody_test.environment

import data.custody_test.fixtures as f
import rego.v1

test_runner_tier_passes if f.status(f.input_ok, "runner-tier") == "pass"

test_wrong_tier_fails if {
	inp := f.with_field("runnerGuard", [{"record": "sha256:g", "tier": "build", "outcome": "pass"}])
	f.status(inp, "runner-tier") == "fail"
	contains(f.message(inp, "runner-tier"), "requires tier production")
}

test_failed_guard_fails if {
	inp := f.with_field("runnerGuard", [{"record": "sha256:g", "tier": "production", "outcome": "fail"}])
	f.status(inp, "runner-tier") == "fail"
}

test_missing_guard_fails if {
	inp := f.with_field("runnerGuard", [])
	contains(f.message(inp, "runner-tier"), "no runner-guard record")
}

test_environment_without_tier_skips if {
	production := object.remove(f.config.environments.production, ["tier"])
	cfg := object.union(object.remove(f.config, ["environments"]), {"environments": {"production": production}})
	d := data.custody.decision.result with input as f.input_ok with data.custody.config as cfg
	d.rules["runner-tier"].status == "skip"
	contains(d.rules["runner-tier"].message, "requires no runner tier")
}

test_protection_passes if f.status(f.input_ok, "environment-protected") == "pass"

test_no_required_reviewers_fails if {
	inp := f.with_field("environmentProtection", object.union(f.input_ok.environmentProtection, {"requiredReviewers": false}))
	f.status(inp, "environment-protected") == "fail"
}

test_admin_bypass_fails if {
	inp := f.with_field("environmentProtection", object.union(f.input_ok.environmentProtection, {"canAdminsBypass": true}))
	contains(f.message(inp, "environment-protected"), "bypass")
}

test_missing_protection_fails if {
	f.status(object.remove(f.input_ok, ["environmentProtection"]), "environment-protected") == "fail"
}

test_protection_can_be_waived_per_environment if {
	cfg := object.union(f.config, {"environments": {"production": {"require_protection": false}}})
	d := data.custody.decision.result with input as object.remove(f.input_ok, ["environmentProtection"]) with data.custody.config as cfg
	d.rules["environment-protected"].status == "skip"
}
