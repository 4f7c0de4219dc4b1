# No component of the SBOM carries a license on the deny list (sbom.denied_licenses).
package custody.rules.sbom_licenses

import data.custody.lib
import rego.v1

meta := {
	"id": "sbom-licenses",
	"title": "No denied licenses in the SBOM",
	"control": "164.308(a)(1)(ii)(B)",
	"gates": ["pre-approval", "pre-deploy"],
}

denied := lib.lower_set(object.get(lib.config.sbom, "denied_licenses", []))

skip := "no licenses are denied (sbom.denied_licenses is empty)" if count(denied) == 0

deny contains msg if {
	some s in input.sboms
	some c in s.components
	some l in c.licenses
	lower(l) in denied
	msg := sprintf("%s %s is licensed %s, which is denied", [c.name, object.get(c, "version", ""), l])
}

deny contains "no SBOM to check licenses in" if count(input.sboms) == 0

pass := sprintf("no component of %d carries a denied license", [sum([count(s.components) | some s in input.sboms])])
