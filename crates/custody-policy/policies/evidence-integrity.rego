# Every record found for this artifact and pipeline verified: a record that fails
# (altered bytes, an untrusted signing key, a replayed subject, missing or altered
# materials) is a sign of tampering, and it denies even when other evidence passes.
package custody.rules.evidence_integrity

import rego.v1

meta := {
	"id": "evidence-integrity",
	"title": "Every evidence record verifies",
	"control": "164.312(c)(2)",
	"gates": ["pre-approval", "pre-deploy"],
}

deny contains msg if {
	some r in input.rejected
	msg := sprintf("%s record %s failed verification: %s", [r.stage, r.record, r.reason])
}

pass := sprintf("%d record(s) verified against trusted keys", [input.verifiedRecords])
