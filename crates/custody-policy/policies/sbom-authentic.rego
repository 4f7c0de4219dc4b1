# The SBOM is authentic: its record verified, and the SBOM file in the store still has
# the digest the record names and still says what the record's summary says.
package custody.rules.sbom_authentic

import data.custody.lib
import rego.v1

meta := {
	"id": "sbom-authentic",
	"title": "SBOM record and file are authentic",
	"control": "164.312(c)(1)",
	"gates": ["pre-approval", "pre-deploy"],
}

deny contains msg if {
	count(input.sboms) == 0
	msg := sprintf("no verified SBOM record for %s: run evidence-upload --stage build with the SBOM%s", [lib.digest, lib.rejected_note("build")])
}

deny contains msg if {
	some s in input.sboms
	not s.materialVerified
	msg := sprintf("SBOM record %s: %s", [s.record, s.materialProblem])
}

pass := sprintf("%d SBOM record(s), files match their recorded digests", [count(input.sboms)])
