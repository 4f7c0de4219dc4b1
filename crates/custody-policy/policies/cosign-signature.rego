# The image carries a cosign signature (legacy `sha256-<digest>.sig` tag, or cosign v3's
# Sigstore bundle as an OCI 1.1 referrer) that Rust verified with a trusted static
# cosign key; the signed payload (or statement subject) names this digest.
package custody.rules.cosign_signature

import data.custody.lib
import rego.v1

meta := {
	"id": "cosign-signature",
	"title": "cosign signature in the registry",
	"control": "164.312(c)(2)",
	"gates": ["pre-approval", "pre-deploy"],
}

skip := "cosign signatures are not required (signature.require_cosign is false)" if {
	lib.config.signature.require_cosign == false
}

valid := [s |
	some s in input.cosign.signatures
	s.manifestDigest == lib.digest
]

deny contains "cosign signatures were not checked: pass --cosign-key with the trusted cosign public key" if {
	not input.cosign
}

deny contains msg if {
	input.cosign
	count(valid) == 0
	msg := sprintf("no cosign signature of %s verified at %s: %s", [lib.digest, input.cosign.reference, lib.join("; ", input.cosign.problems)])
}

pass := sprintf("cosign signature at %s verified with %s", [input.cosign.reference, valid[0].key])
