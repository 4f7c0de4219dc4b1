# image-signed and cosign-signature.
package custody_test.signature

import data.custody_test.fixtures as f
import rego.v1

test_signature_record_passes if f.status(f.input_ok, "image-signed") == "pass"

test_no_signature_record_fails if {
	inp := f.with_field("signatures", [])
	f.status(inp, "image-signed") == "fail"
	contains(f.message(inp, "image-signed"), "no verified signature record")
}

test_untrusted_signature_record_is_named if {
	inp := object.union(f.input_ok, {
		"signatures": [],
		"rejected": [{"record": "sha256:evil", "stage": "sign", "reason": "no trusted key verified the envelope"}],
	})
	contains(f.message(inp, "image-signed"), "sha256:evil")
}

test_signature_of_another_digest_fails if {
	inp := f.with_field("signatures", [object.union(f.input_ok.signatures[0], {"subjectDigests": [f.other_digest]})])
	f.status(inp, "image-signed") == "fail"
}

test_trusted_key_ids_are_enforced if {
	cfg := object.union(f.config, {"signature": {"require_cosign": true, "trusted_key_ids": ["kms://prod"]}})
	d := data.custody.decision.result with input as f.input_ok with data.custody.config as cfg
	d.rules["image-signed"].status == "fail"
}

test_cosign_signature_passes if f.status(f.input_ok, "cosign-signature") == "pass"

test_cosign_not_checked_fails if {
	f.status(object.remove(f.input_ok, ["cosign"]), "cosign-signature") == "fail"
}

test_cosign_without_valid_signature_fails if {
	inp := f.with_field("cosign", {"reference": "r", "signatures": [], "problems": ["signature 0: the signature does not verify with any trusted cosign key"]})
	f.status(inp, "cosign-signature") == "fail"
	contains(f.message(inp, "cosign-signature"), "does not verify")
}

test_cosign_can_be_turned_off if {
	cfg := object.union(f.config, {"signature": {"require_cosign": false}})
	d := data.custody.decision.result with input as object.remove(f.input_ok, ["cosign"]) with data.custody.config as cfg
	d.rules["cosign-signature"].status == "skip"
	d.decision == "allow"
}
