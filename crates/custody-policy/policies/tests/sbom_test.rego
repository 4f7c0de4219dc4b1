# sbom-authentic, sbom-aligned, sbom-licenses.
package custody_test.sbom

import data.custody_test.fixtures as f
import rego.v1

test_sbom_passes if {
	f.status(f.input_ok, "sbom-authentic") == "pass"
	f.status(f.input_ok, "sbom-aligned") == "pass"
	f.status(f.input_ok, "sbom-licenses") == "pass"
}

test_missing_sbom_fails if {
	inp := f.with_field("sboms", [])
	f.status(inp, "sbom-authentic") == "fail"
	f.status(inp, "sbom-aligned") == "fail"
}

test_tampered_sbom_fails if {
	inp := f.with_field("sboms", [object.union(f.sbom, {"materialVerified": false, "materialProblem": "the SBOM file bom.json was altered"})])
	f.status(inp, "sbom-authentic") == "fail"
	contains(f.message(inp, "sbom-authentic"), "altered")
	f.status(inp, "sbom-aligned") == "fail"
}

test_sbom_of_another_digest_fails if {
	inp := f.with_field("sboms", [object.union(f.sbom, {"describes": f.other_digest})])
	f.status(inp, "sbom-aligned") == "fail"
	contains(f.message(inp, "sbom-aligned"), f.other_digest)
}

test_sbom_of_the_config_digest_is_named if {
	inp := f.with_field("sboms", [object.union(f.sbom, {"describes": f.config_digest})])
	f.status(inp, "sbom-aligned") == "fail"
	contains(f.message(inp, "sbom-aligned"), "config digest")
}

test_sbom_without_digest_fails if {
	inp := f.with_field("sboms", [object.remove(f.sbom, ["describes"])])
	contains(f.message(inp, "sbom-aligned"), "names no image digest")
}

test_denied_license_fails if {
	bad := object.union(f.sbom, {"components": [{"name": "evil", "version": "6", "licenses": ["agpl-3.0-only"]}]})
	inp := f.with_field("sboms", [bad])
	f.status(inp, "sbom-licenses") == "fail"
	contains(f.message(inp, "sbom-licenses"), "evil")
}
