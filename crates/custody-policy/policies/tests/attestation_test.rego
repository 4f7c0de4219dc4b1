# github-attestation.
package custody_test.attestation

import data.custody_test.fixtures as f
import rego.v1

workflow := "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.0"

attestations_cfg := {
	"require": true,
	"predicate_types": ["https://slsa.dev/provenance/v1"],
	"issuer": "https://token.actions.githubusercontent.com",
	"identity_prefix": "https://github.com/acme/app/.github/workflows/release.yml@",
}

cfg := object.union(f.config, {"attestations": attestations_cfg})

verified := {
	"predicateType": "https://slsa.dev/provenance/v1",
	"issuer": "https://token.actions.githubusercontent.com",
	"identity": workflow,
	"time": "2026-11-29T09:00:00Z",
	"logIndex": 42,
}

with_attestations(list) := f.with_field("attestations", {"repository": "acme/app", "verified": list, "problems": []})

rule(inp, c) := r if {
	d := data.custody.decision.result with input as inp with data.custody.config as c
	r := d.rules["github-attestation"]
}

test_not_required_by_default_skips if rule(f.input_ok, f.config).status == "skip"

test_a_verified_provenance_by_the_workflow_passes if {
	r := rule(with_attestations([verified]), cfg)
	r.status == "pass"
	contains(r.message, "Rekor entry 42")
}

test_not_checked_fails if {
	r := rule(f.input_ok, cfg)
	r.status == "fail"
	contains(r.message, "--trusted-root")
}

test_another_workflow_fails if {
	other := object.union(verified, {"identity": "https://github.com/evil/app/.github/workflows/release.yml@refs/tags/v1.2.0"})
	r := rule(with_attestations([other]), cfg)
	r.status == "fail"
	contains(r.message, "evil")
}

test_another_issuer_or_predicate_fails if {
	rule(with_attestations([object.union(verified, {"issuer": "https://accounts.google.com"})]), cfg).status == "fail"
	rule(with_attestations([object.union(verified, {"predicateType": "https://spdx.dev/Document/v2.3"})]), cfg).status == "fail"
}

test_an_empty_identity_prefix_trusts_nobody if {
	c := object.union(f.config, {"attestations": object.union(attestations_cfg, {"identity_prefix": ""})})
	r := rule(with_attestations([verified]), c)
	r.status == "fail"
	contains(r.message, "identity_prefix is empty")
}
