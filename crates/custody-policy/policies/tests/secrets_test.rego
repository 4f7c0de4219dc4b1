# scan-secrets and scan-misconfig: secrets deny by default, misconfiguration
# thresholds come from data.
package custody_test.secrets

import data.custody_test.fixtures as f
import rego.v1

with_scan(extra) := f.with_field("scans", [object.union(f.scan, extra)])

test_scans_without_secret_or_config_scans_pass if {
	f.status(f.input_ok, "scan-secrets") == "pass"
	f.message(f.input_ok, "scan-secrets") == "no scan reported on secrets"
	f.status(f.input_ok, "scan-misconfig") == "pass"
}

test_a_secret_denies_naming_rule_and_place if {
	inp := with_scan({"secrets": {"total": 1, "counts": {"critical": 1, "high": 0, "medium": 0, "low": 0, "negligible": 0, "unknown": 0}, "found": ["aws-access-key-id in deploy.sh:3"]}})
	f.status(inp, "scan-secrets") == "fail"
	contains(f.message(inp, "scan-secrets"), "found 1 secret(s): aws-access-key-id in deploy.sh:3")
	f.decide(inp).decision == "deny"
}

test_a_clean_secret_scan_passes if {
	inp := with_scan({"secrets": {"total": 0, "counts": {"critical": 0, "high": 0, "medium": 0, "low": 0, "negligible": 0, "unknown": 0}, "found": []}})
	f.status(inp, "scan-secrets") == "pass"
	contains(f.message(inp, "scan-secrets"), "1 secret scan(s)")
}

test_max_secrets_is_data if {
	cfg := object.union(f.config, {"scan": object.union(f.config.scan, {"max_secrets": 1})})
	inp := with_scan({"secrets": {"total": 1, "counts": {"critical": 1, "high": 0, "medium": 0, "low": 0, "negligible": 0, "unknown": 0}, "found": ["x"]}})
	d := data.custody.decision.result with input as inp with data.custody.config as cfg
	d.rules["scan-secrets"].status == "pass"
}

misconfig(critical, high) := {"misconfigurations": {"failures": critical + high, "counts": {"critical": critical, "high": high, "medium": 0, "low": 0, "negligible": 0, "unknown": 0}, "ids": ["DS002"]}}

test_misconfigurations_within_defaults_pass if {
	f.status(with_scan(misconfig(0, 5)), "scan-misconfig") == "pass"
}

test_misconfigurations_over_thresholds_fail if {
	inp := with_scan(misconfig(1, 6))
	f.status(inp, "scan-misconfig") == "fail"
	contains(f.message(inp, "scan-misconfig"), "1 CRITICAL misconfiguration(s)")
	contains(f.message(inp, "scan-misconfig"), "6 HIGH misconfiguration(s)")
}

test_misconfiguration_thresholds_are_data if {
	cfg := object.union(f.config, {"scan": object.union(f.config.scan, {"misconfigurations": {"max_critical": 1, "max_high": 10}})})
	d := data.custody.decision.result with input as with_scan(misconfig(1, 6)) with data.custody.config as cfg
	d.rules["scan-misconfig"].status == "pass"
}
