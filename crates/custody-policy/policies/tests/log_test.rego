# evidence-logged: required by policy data, decided on the log facts proven in Rust.
package custody_test.log

import data.custody_test.fixtures as f
import rego.v1

required := object.union(f.config, {"log": {"require_checkpoint": true, "keys": ["example.org/log+01234567+AQ=="]}})

checkpoint := {"origin": "example.org/log", "size": 12, "root": "AAAA"}

decide(inp) := d if {
	d := data.custody.decision.result with input as inp with data.custody.config as required
}

test_not_required_skips if {
	f.status(f.input_ok, "evidence-logged") == "skip"
	f.decide(f.input_ok).decision == "allow"
}

test_required_and_included_passes if {
	inp := f.with_field("log", {"checkpoint": checkpoint, "records": [{"record": "sha256:scan", "index": 3}, {"record": "sha256:sbom", "index": 0}]})
	d := decide(inp)
	d.rules["evidence-logged"].status == "pass"
	contains(d.rules["evidence-logged"].message, "2 record(s) included in log example.org/log's checkpoint of size 12")
}

test_required_without_log_facts_fails if {
	d := decide(f.input_ok)
	d.rules["evidence-logged"].status == "fail"
	d.decision == "deny"
}

test_a_record_after_the_checkpoint_fails if {
	inp := f.with_field("log", {"checkpoint": checkpoint, "records": [{"record": "sha256:scan"}, {"record": "sha256:sbom", "index": 0}]})
	d := decide(inp)
	d.rules["evidence-logged"].status == "fail"
	contains(d.rules["evidence-logged"].message, "record sha256:scan is not in the log's checkpoint of size 12")
}

test_a_disproven_record_names_the_problem if {
	inp := f.with_field("log", {"checkpoint": checkpoint, "records": [{"record": "sha256:scan", "problem": "its index marker names log index 4, whose entry is another record's"}]})
	contains(decide(inp).rules["evidence-logged"].message, "another record's")
}

test_no_checkpoint_fails if {
	inp := f.with_field("log", {"problem": "the store's log has no checkpoint signed by the log keys", "records": []})
	d := decide(inp)
	d.rules["evidence-logged"].status == "fail"
	contains(d.rules["evidence-logged"].message, "no log checkpoint to rely on")
}
