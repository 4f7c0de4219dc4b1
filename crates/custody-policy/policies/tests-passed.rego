# Tests ran and passed: at least one verified test record for this artifact or commit,
# none with failed or errored cases, none empty.
package custody.rules.tests_passed

import data.custody.lib
import rego.v1

meta := {
	"id": "tests-passed",
	"title": "Tests passed",
	"control": "164.308(a)(1)(ii)(B)",
	"gates": ["pre-approval", "pre-deploy"],
}

deny contains msg if {
	count(input.tests) == 0
	msg := sprintf("no verified test record for %s or its commit: run evidence-upload --stage test with the JUnit report%s", [lib.digest, lib.rejected_note("test")])
}

deny contains msg if {
	some t in input.tests
	t.failed + t.errored > 0
	msg := sprintf("test record %s: %d failed and %d errored of %d", [t.record, t.failed, t.errored, t.total])
}

deny contains msg if {
	some t in input.tests
	t.total == 0
	msg := sprintf("test record %s holds no test cases", [t.record])
}

pass := sprintf("%d test record(s), %d tests, none failed", [count(input.tests), sum([t.total | some t in input.tests])])
