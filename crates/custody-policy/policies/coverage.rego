# Line coverage meets tests.min_line_rate (default 0.8) in every coverage record.
package custody.rules.coverage

import data.custody.lib
import rego.v1

meta := {
	"id": "coverage",
	"title": "Line coverage meets the threshold",
	"control": "164.308(a)(1)(ii)(B)",
	"gates": ["pre-approval", "pre-deploy"],
}

min_rate := lib.config.tests.min_line_rate

deny contains msg if {
	count(input.coverage) == 0
	msg := sprintf("no verified coverage record for %s or its commit: run evidence-upload --stage test with the Cobertura or lcov report%s", [lib.digest, lib.rejected_note("test")])
}

deny contains msg if {
	some c in input.coverage
	not is_number(c.lineRate)
	msg := sprintf("coverage record %s has no line data", [c.record])
}

deny contains msg if {
	some c in input.coverage
	c.lineRate < min_rate
	msg := sprintf("coverage record %s: %d of %d lines covered (%d per mille), below tests.min_line_rate %v", [c.record, c.linesCovered, c.linesValid, per_mille(c), min_rate])
}

per_mille(c) := floor(c.lineRate * 1000)

pass := sprintf("%d coverage record(s), lowest %d per mille (minimum %v)", [count(input.coverage), min([per_mille(c) | some c in input.coverage]), min_rate])
