# The latest scan of the digest is within the severity thresholds: at most
# scan.max_critical CRITICAL (default 0) and scan.max_high HIGH findings, not counting
# findings covered by a valid CVE exception (see cve-exceptions).
package custody.rules.scan_severity

import data.custody.lib
import data.custody.rules.cve_exceptions
import rego.v1

meta := {
	"id": "scan-severity",
	"title": "Findings within severity thresholds",
	"control": "164.308(a)(1)(ii)(B)",
	"gates": ["pre-approval", "pre-deploy"],
}

# The scan judged: the latest timed one, else any scan of the digest.
scan := lib.latest_scan if {
	lib.latest_scan
} else := lib.scans_of_digest[0]

counted_severities := {"critical", "high"}

# The findings of a counted severity, in one pass over the scan (tens of thousands of
# findings; the passes per severity below then see only these).
severe := [f |
	some f in scan.findings
	f.severity in counted_severities
]

# Ids of the findings of a severity that count (no valid exception covers them).
counted_ids(severity) := [f.id |
	some f in severe
	f.severity == severity
	not cve_exceptions.covered(f)
]

critical_ids := sort(counted_ids("critical"))

high_ids := sort(counted_ids("high"))

critical := count(critical_ids)

high := count(high_ids)

deny contains msg if {
	not scan
	msg := sprintf("no scan of %s to judge severities", [lib.digest])
}

deny contains msg if {
	critical > lib.config.scan.max_critical
	msg := sprintf("%d CRITICAL finding(s) in scan record %s (limit %d): %s", [critical, scan.record, lib.config.scan.max_critical, first_five(critical_ids)])
}

deny contains msg if {
	high > lib.config.scan.max_high
	msg := sprintf("%d HIGH finding(s) in scan record %s (limit %d): %s", [high, scan.record, lib.config.scan.max_high, first_five(high_ids)])
}

# Up to five ids, for the message. (rego-cpp leaves a function undefined when its
# argument is used inside a set comprehension nested in calls: ids are computed once.)
first_five(ids) := lib.join(", ", array.slice(ids, 0, 5))

pass := sprintf("%d CRITICAL (limit %d), %d HIGH (limit %d) in scan record %s", [critical, lib.config.scan.max_critical, high, lib.config.scan.max_high, scan.record])
