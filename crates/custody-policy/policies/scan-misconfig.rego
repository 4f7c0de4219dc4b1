# Failed misconfiguration checks (Trivy config scans) are within the thresholds of
# scan.misconfigurations: at most max_critical CRITICAL (default 0) and max_high HIGH
# (default 5) in any scan. Scans without a config scan say nothing either way.
package custody.rules.scan_misconfig

import data.custody.lib
import rego.v1

meta := {
	"id": "scan-misconfig",
	"title": "Misconfigurations within thresholds",
	"control": "164.308(a)(1)(ii)(B)",
	"gates": ["pre-approval", "pre-deploy"],
}

limits := object.get(lib.config.scan, "misconfigurations", {})

max_critical := object.get(limits, "max_critical", 0)

max_high := object.get(limits, "max_high", 5)

config_scans := [s |
	some s in input.scans
	s.misconfigurations
]

deny contains msg if {
	some s in config_scans
	s.misconfigurations.counts.critical > max_critical
	msg := sprintf("scan record %s: %d CRITICAL misconfiguration(s), above scan.misconfigurations.max_critical %d (%s)", [s.record, s.misconfigurations.counts.critical, max_critical, concat(", ", s.misconfigurations.ids)])
}

deny contains msg if {
	some s in config_scans
	s.misconfigurations.counts.high > max_high
	msg := sprintf("scan record %s: %d HIGH misconfiguration(s), above scan.misconfigurations.max_high %d (%s)", [s.record, s.misconfigurations.counts.high, max_high, concat(", ", s.misconfigurations.ids)])
}

pass := sprintf("%d config scan(s) within thresholds (critical %d, high %d)", [count(config_scans), max_critical, max_high]) if {
	count(config_scans) > 0
} else := "no scan reported on configuration"
