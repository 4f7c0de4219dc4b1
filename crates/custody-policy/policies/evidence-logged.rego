# Every record the decision relies on is in the store's transparency log, under a
# checkpoint signed by a log key of the policy data (log.keys), when
# log.require_checkpoint is true. Inclusion was proven in Rust (the record's log entry,
# its leaf hash authenticated against the checkpoint's root through the log's tiles);
# the policy decides whether it is required.
package custody.rules.evidence_logged

import data.custody.lib
import rego.v1

meta := {
	"id": "evidence-logged",
	"title": "The evidence relied on is in a signed log checkpoint",
	"control": "164.312(b)",
	"gates": ["pre-approval", "pre-deploy"],
}

required if lib.config.log.require_checkpoint == true

skip := "not required (policy data log.require_checkpoint is false)" if not required

deny contains msg if {
	required
	not input.log
	msg := "log.require_checkpoint is true but no log facts were gathered: set log.keys in the policy data to the log's verifier keys"
}

deny contains msg if {
	required
	input.log.problem
	msg := sprintf("no log checkpoint to rely on: %s", [input.log.problem])
}

deny contains msg if {
	required
	some r in input.log.records
	not r.index
	msg := sprintf("record %s is not in the log's checkpoint of size %d%s", [r.record, input.log.checkpoint.size, reason(r)])
}

reason(r) := sprintf(": %s", [r.problem]) if r.problem else := ": it was sequenced after the checkpoint, or not at all (run `custody log checkpoint` before the gate)"

pass := sprintf("%d record(s) included in log %s's checkpoint of size %d", [count(input.log.records), input.log.checkpoint.origin, input.log.checkpoint.size])
