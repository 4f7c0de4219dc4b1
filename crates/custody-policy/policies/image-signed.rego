# The image to deploy was signed: a signature record (evidence-upload --stage sign) for
# exactly this digest, in an envelope that verified against a trusted key. With
# signature.trusted_key_ids set, the record must name one of those artifact keys.
package custody.rules.image_signed

import data.custody.lib
import rego.v1

meta := {
	"id": "image-signed",
	"title": "Image signature record from a trusted key",
	"control": "164.312(c)(2)",
	"gates": ["pre-approval", "pre-deploy"],
}

signed := [s |
	some s in input.signatures
	lib.digest in s.subjectDigests
]

trusted_ids := object.get(lib.config.signature, "trusted_key_ids", [])

trusted := [s |
	some s in signed
	key_ok(s)
]

key_ok(_) if count(trusted_ids) == 0

key_ok(s) if s.keyId in trusted_ids

deny contains msg if {
	count(signed) == 0
	msg := sprintf("no verified signature record for %s in the evidence store: sign the image and run evidence-upload --stage sign%s", [lib.digest, lib.rejected_note("sign")])
}

deny contains msg if {
	count(signed) > 0
	count(trusted) == 0
	ids := [object.get(s, "keyId", "(none)") | some s in signed]
	msg := sprintf("signature records name key ids %s; trusted: %s", [lib.join(", ", ids), lib.join(", ", trusted_ids)])
}

pass := sprintf("signature record %s for %s, signed by %s", [trusted[0].record, lib.digest, trusted[0].signer])
