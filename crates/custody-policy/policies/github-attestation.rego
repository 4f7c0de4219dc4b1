# A GitHub artifact attestation of the digest (actions/attest: SLSA provenance, an
# SBOM) that Rust verified keyless against the pinned Sigstore trusted root
# (policy-check --trusted-root), signed by the identity the policy data names: the
# Fulcio certificate's issuer, and its subject alternative name by prefix (a workflow
# at any ref, or at a tag: https://github.com/ORG/REPO/.github/workflows/release.yml@).
package custody.rules.github_attestation

import data.custody.lib
import rego.v1

meta := {
	"id": "github-attestation",
	"title": "GitHub artifact attestation",
	"control": "164.312(c)(1)",
	"gates": ["pre-approval", "pre-deploy"],
}

cfg := lib.config.attestations

skip := "GitHub artifact attestations are not required (attestations.require is false)" if {
	not cfg.require == true
}

accepted := [a |
	some a in input.attestations.verified
	a.predicateType in cfg.predicate_types
	a.issuer == cfg.issuer
	startswith(a.identity, cfg.identity_prefix)
]

deny contains "GitHub attestations were not checked: pass --trusted-root with the Sigstore trusted root (gh attestation trusted-root)" if {
	not input.attestations
}

# the policy must say whom it trusts: an empty prefix would accept any signer
deny contains "attestations.identity_prefix is empty: name the workflow that must sign (https://github.com/ORG/REPO/.github/workflows/FILE@)" if {
	input.attestations
	cfg.identity_prefix == ""
}

deny contains msg if {
	input.attestations
	cfg.identity_prefix != ""
	count(accepted) == 0
	seen := [sprintf("%s by %s (%s)", [a.predicateType, a.identity, a.issuer]) | some a in input.attestations.verified]
	msg := sprintf("no attestation of %s in %s is a %s signed by %s* (issuer %s); verified: [%s]; not counted: [%s]", [
		lib.digest,
		input.attestations.repository,
		lib.join(" or ", cfg.predicate_types),
		cfg.identity_prefix,
		cfg.issuer,
		lib.join("; ", seen),
		lib.join("; ", input.attestations.problems),
	])
}

pass := sprintf("%s attestation signed by %s, logged in Rekor entry %d", [
	accepted[0].predicateType,
	accepted[0].identity,
	accepted[0].logIndex,
])
