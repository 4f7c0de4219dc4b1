# The environment being deployed to is the one recorded when the image was scanned: a
# scan made for staging does not clear a production deploy.
package custody.rules.environment_match

import data.custody.lib
import rego.v1

meta := {
	"id": "environment-match",
	"title": "Target environment matches the scan's",
	"control": "164.308(a)(4)",
	"gates": ["pre-approval", "pre-deploy"],
}

scan := lib.latest_scan if {
	lib.latest_scan
} else := lib.scans_of_digest[0]

deny contains msg if {
	not scan
	msg := sprintf("no scan of %s to compare environments with", [lib.digest])
}

deny contains msg if {
	scan
	not scan.environment
	msg := sprintf("scan record %s names no environment: run the scan stage with --environment", [scan.record])
}

deny contains msg if {
	scan.environment
	scan.environment != input.environment
	msg := sprintf("scan record %s was made for environment %s, the deploy targets %s", [scan.record, scan.environment, input.environment])
}

pass := sprintf("scan record %s was made for environment %s", [scan.record, input.environment])
