# The vulnerability scan is of the deployed image, named by manifest digest (Trivy
# RepoDigests, Grype manifestDigest). A scan that names only the config digest
# (Trivy ImageID, Grype imageID) cannot be tied to what was signed.
package custody.rules.scan_subject

import data.custody.lib
import rego.v1

meta := {
	"id": "scan-subject",
	"title": "Scan is of the deployed digest",
	"control": "164.308(a)(1)(ii)(A)",
	"gates": ["pre-approval", "pre-deploy"],
}

deny contains msg if {
	count(input.scans) == 0
	msg := sprintf("no verified vulnerability scan record for %s: run evidence-upload --stage scan%s", [lib.digest, lib.rejected_note("scan")])
}

deny contains msg if {
	count(input.scans) > 0
	count(lib.scans_of_digest) == 0
	some s in input.scans
	msg := other(s)
}

other(s) := sprintf("scan record %s names the image only by config digest %s; scan it by manifest digest (Trivy RepoDigests, Grype manifestDigest)", [s.record, s.imageId]) if {
	count(s.manifestDigests) == 0
	s.imageId
} else := sprintf("scan record %s names no image digest", [s.record]) if {
	count(s.manifestDigests) == 0
} else := sprintf("scan record %s is of %s, not %s", [s.record, lib.join(", ", s.manifestDigests), lib.digest])

pass := sprintf("%d scan(s) of %s", [count(lib.scans_of_digest), lib.digest])
