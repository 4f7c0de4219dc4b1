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

# The distinct licenses first (a handful), then only the components that carry a
# denied one: SBOMs list thousands of components, and `lower` per license is costly.
licenses := {l | some s in input.sboms; some c in s.components; some l in c.licenses}

found := {l | some l in licenses; lower(l) in denied}

deny contains msg if {
	count(found) > 0
	some s in input.sboms
	some c in s.components
	some l in c.licenses
	l in found
	msg := sprintf("%s %s is licensed %s, which is denied", [c.name, object.get(c, "version", ""), l])
}

deny contains "no SBOM to check licenses in" if count(input.sboms) == 0

pass := sprintf("no component of %d carries a denied license", [sum([count(s.components) | some s in input.sboms])])
