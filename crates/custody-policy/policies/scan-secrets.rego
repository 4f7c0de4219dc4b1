# No scan of this artifact or its commit found a secret: more than scan.max_secrets
# (default 0) secrets in any scan denies. A secret in an image or a repository is a
# credential to rotate, whatever else the scan says. Scans without a secret scanner
# (an image's vulnerability scan) say nothing either way.
package custody.rules.scan_secrets

import data.custody.lib
import rego.v1

meta := {
	"id": "scan-secrets",
	"title": "No secrets found by any scan",
	"control": "164.312(a)(1)",
	"gates": ["pre-approval", "pre-deploy"],
}

max_secrets := object.get(lib.config.scan, "max_secrets", 0)

secret_scans := [s |
	some s in input.scans
	s.secrets
]

deny contains msg if {
	some s in secret_scans
	s.secrets.total > max_secrets
	msg := sprintf("scan record %s (%s) found %d secret(s): %s; rotate them and remove them from the source (scan.max_secrets %d)", [s.record, s.scanner, s.secrets.total, concat(", ", s.secrets.found), max_secrets])
}

pass := sprintf("%d secret scan(s), none over scan.max_secrets %d", [count(secret_scans), max_secrets]) if {
	count(secret_scans) > 0
} else := "no scan reported on secrets"
