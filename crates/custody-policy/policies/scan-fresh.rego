# The latest scan of the digest is fresh at gate time: under scan.max_age_hours
# (default 24). A scan without a scan time (SARIF without invocations[].startTimeUtc)
# cannot show it is fresh.
package custody.rules.scan_fresh

import data.custody.lib
import rego.v1

meta := {
	"id": "scan-fresh",
	"title": "Scan is fresh",
	"control": "164.308(a)(1)(ii)(A)",
	"gates": ["pre-approval", "pre-deploy"],
}

limit := lib.config.scan.max_age_hours * 3600

deny contains msg if {
	count(lib.scans_of_digest) == 0
	msg := sprintf("no scan of %s to judge freshness", [lib.digest])
}

deny contains msg if {
	count(lib.scans_of_digest) > 0
	count(lib.timed_scans) == 0
	msg := sprintf("no scan of %s records when it ran (a SARIF report needs invocations[].startTimeUtc)", [lib.digest])
}

deny contains msg if {
	lib.latest_scan.ageSeconds > limit
	msg := sprintf("the latest scan of %s (record %s) is %s old; the limit is %d hours (scan.max_age_hours): scan the image again", [lib.digest, lib.latest_scan.record, lib.span(lib.latest_scan.ageSeconds), lib.config.scan.max_age_hours])
}

deny contains msg if {
	lib.latest_scan.ageSeconds < -300
	msg := sprintf("the latest scan of %s (record %s) claims a scan time in the future", [lib.digest, lib.latest_scan.record])
}

pass := sprintf("the latest scan (record %s) is %s old; the limit is %d hours", [lib.latest_scan.record, lib.span(lib.latest_scan.ageSeconds), lib.config.scan.max_age_hours])
