# tests-passed and coverage.
package custody_test.quality

import data.custody_test.fixtures as f
import rego.v1

test_tests_and_coverage_pass if {
	f.status(f.input_ok, "tests-passed") == "pass"
	f.status(f.input_ok, "coverage") == "pass"
}

test_failing_tests_fail if {
	inp := f.with_field("tests", [{"record": "sha256:t", "total": 10, "passed": 8, "failed": 1, "errored": 1, "skipped": 0}])
	f.status(inp, "tests-passed") == "fail"
	contains(f.message(inp, "tests-passed"), "1 failed and 1 errored of 10")
}

test_empty_test_report_fails if {
	inp := f.with_field("tests", [{"record": "sha256:t", "total": 0, "passed": 0, "failed": 0, "errored": 0, "skipped": 0}])
	f.status(inp, "tests-passed") == "fail"
}

test_missing_tests_fail if {
	f.status(f.with_field("tests", []), "tests-passed") == "fail"
}

test_low_coverage_fails if {
	inp := f.with_field("coverage", [{"record": "sha256:c", "lineRate": 0.5, "linesValid": 100, "linesCovered": 50}])
	f.status(inp, "coverage") == "fail"
	contains(f.message(inp, "coverage"), "50 of 100 lines")
}

test_coverage_threshold_is_data if {
	cfg := object.union(f.config, {"tests": {"min_line_rate": 0.4}})
	inp := f.with_field("coverage", [{"record": "sha256:c", "lineRate": 0.5, "linesValid": 100, "linesCovered": 50}])
	d := data.custody.decision.result with input as inp with data.custody.config as cfg
	d.rules.coverage.status == "pass"
}

test_coverage_without_lines_fails if {
	inp := f.with_field("coverage", [{"record": "sha256:c", "linesValid": 0, "linesCovered": 0}])
	f.status(inp, "coverage") == "fail"
}

test_missing_coverage_fails if {
	f.status(f.with_field("coverage", []), "coverage") == "fail"
}
