# The SBOM describes the image being deployed, by manifest digest (what cosign signs and
# a registry serves), not by config digest (Trivy ImageID, Grype imageID).
package custody.rules.sbom_aligned

import data.custody.lib
import rego.v1

meta := {
	"id": "sbom-aligned",
	"title": "SBOM describes the deployed digest",
	"control": "164.312(c)(1)",
	"gates": ["pre-approval", "pre-deploy"],
}

aligned := [s |
	some s in input.sboms
	s.materialVerified
	s.describes == lib.digest
]

config_digests := {d |
	some s in input.scans
	d := s.imageId
}

deny contains "no SBOM to compare with the deployed digest" if count(input.sboms) == 0

deny contains msg if {
	count(aligned) == 0
	some s in input.sboms
	msg := misaligned(s)
}

misaligned(s) := sprintf("SBOM record %s names no image digest (no pkg:oci purl with a sha256 digest)", [s.record]) if {
	not s.describes
} else := sprintf("SBOM record %s describes %s, the image config digest, not the manifest digest %s", [s.record, s.describes, lib.digest]) if {
	s.describes in config_digests
} else := sprintf("SBOM record %s describes %s, not %s", [s.record, s.describes, lib.digest]) if {
	s.describes != lib.digest
} else := sprintf("SBOM record %s is not authentic", [s.record])

pass := sprintf("SBOM record %s describes %s (%d components)", [aligned[0].record, lib.digest, aligned[0].componentCount])
