# scan-subject, scan-fresh, scan-severity, cve-exceptions, environment-match.
package custody_test.scan

import data.custody_test.fixtures as f
import rego.v1

scan_with(change) := f.with_field("scans", [object.union(f.scan, change)])

test_scan_passes if {
	every id in ["scan-subject", "scan-fresh", "scan-severity", "cve-exceptions", "environment-match"] {
		f.status(f.input_ok, id) == "pass"
	}
}

test_missing_scan_fails_everything_scan if {
	inp := f.with_field("scans", [])
	every id in ["scan-subject", "scan-fresh", "scan-severity", "environment-match"] {
		f.status(inp, id) == "fail"
	}
}

test_scan_of_another_digest_fails if {
	inp := scan_with({"manifestDigests": [f.other_digest]})
	f.status(inp, "scan-subject") == "fail"
	contains(f.message(inp, "scan-subject"), f.other_digest)
}

test_scan_by_config_digest_only_fails if {
	inp := scan_with({"manifestDigests": []})
	contains(f.message(inp, "scan-subject"), "config digest")
}

test_stale_scan_fails if {
	inp := scan_with({"ageSeconds": 90000})
	f.status(inp, "scan-fresh") == "fail"
	contains(f.message(inp, "scan-fresh"), "25 hours old")
}

test_freshness_threshold_is_data if {
	cfg := object.union(f.config, {"scan": {"max_age_hours": 48}})
	d := data.custody.decision.result with input as scan_with({"ageSeconds": 90000}) with data.custody.config as cfg
	d.rules["scan-fresh"].status == "pass"
}

test_scan_without_time_fails if {
	inp := f.with_field("scans", [object.remove(f.scan, ["ageSeconds", "scannedAt"])])
	contains(f.message(inp, "scan-fresh"), "records when it ran")
}

test_latest_scan_decides if {
	old := object.union(f.scan, {"record": "sha256:old", "ageSeconds": 900000, "findings": []})
	inp := f.with_field("scans", [old, f.scan])
	f.status(inp, "scan-fresh") == "pass"
}

test_critical_over_threshold_fails if {
	inp := scan_with({"findings": array.concat(f.scan.findings, [{"id": "CVE-2026-0009", "severity": "critical"}])})
	f.status(inp, "scan-severity") == "fail"
	contains(f.message(inp, "scan-severity"), "CVE-2026-0009")
}

test_high_over_threshold_fails if {
	inp := scan_with({"findings": array.concat(f.scan.findings, [{"id": "CVE-2026-0010", "severity": "high"}])})
	f.status(inp, "scan-severity") == "fail"
	contains(f.message(inp, "scan-severity"), "3 HIGH")
}

test_exception_matches_aliases if {
	inp := scan_with({"findings": [{"id": "GHSA-xxxx", "severity": "critical", "aliases": ["CVE-2026-0001"]}]})
	f.status(inp, "scan-severity") == "pass"
}

test_expired_exception_fails if {
	cfg := object.union(f.config, {"exceptions": [{"id": "CVE-2026-0001", "reason": "not reachable", "expires": "2026-11-28"}]})
	d := data.custody.decision.result with input as f.input_ok with data.custody.config as cfg
	d.rules["cve-exceptions"].status == "fail"
	contains(d.rules["cve-exceptions"].message, "expired on 2026-11-28")
	d.rules["scan-severity"].status == "fail"
}

test_exception_valid_through_its_expiry_day if {
	cfg := object.union(f.config, {"exceptions": [{"id": "CVE-2026-0001", "reason": "r", "expires": "2026-11-29"}]})
	d := data.custody.decision.result with input as f.input_ok with data.custody.config as cfg
	d.rules["cve-exceptions"].status == "pass"
}

test_exception_without_reason_fails if {
	cfg := object.union(f.config, {"exceptions": [{"id": "CVE-2026-0001", "reason": " ", "expires": "2026-12-31"}]})
	d := data.custody.decision.result with input as f.input_ok with data.custody.config as cfg
	contains(d.rules["cve-exceptions"].message, "gives no reason")
	d.rules["scan-severity"].status == "fail"
}

test_exception_without_date_fails if {
	cfg := object.union(f.config, {"exceptions": [{"id": "CVE-2026-0001", "reason": "r", "expires": "soon"}]})
	d := data.custody.decision.result with input as f.input_ok with data.custody.config as cfg
	contains(d.rules["cve-exceptions"].message, "no expiry date")
}

test_exception_for_another_environment_does_not_apply if {
	cfg := object.union(f.config, {"exceptions": [{"id": "CVE-2026-0001", "reason": "r", "expires": "2026-12-31", "environments": ["staging"]}]})
	d := data.custody.decision.result with input as f.input_ok with data.custody.config as cfg
	d.rules["scan-severity"].status == "fail"
}

test_environment_mismatch_fails if {
	inp := scan_with({"environment": "staging"})
	f.status(inp, "environment-match") == "fail"
	contains(f.message(inp, "environment-match"), "staging")
}

test_scan_without_environment_fails if {
	inp := f.with_field("scans", [object.remove(f.scan, ["environment"])])
	contains(f.message(inp, "environment-match"), "names no environment")
}
