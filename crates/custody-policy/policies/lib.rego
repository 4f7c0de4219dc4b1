# Helpers shared by the built-in rules. Thresholds and lists come from
# data.custody.config (built-in defaults in defaults.yaml, overridden by --data).
package custody.lib

import rego.v1

config := data.custody.config

digest := input.artifact.digest

# The target environment's settings (undefined when it is not configured).
env := config.environments[input.environment]

# Records of a stage that failed verification, as "record (reason)" texts.
rejected(stage) := [sprintf("%s (%s)", [r.record, r.reason]) |
	some r in input.rejected
	r.stage == stage
]

# A suffix naming rejected records of a stage, or "".
rejected_note(stage) := sprintf("; %d %s record(s) were rejected: %s", [count(x), stage, join(", ", x)]) if {
	x := rejected(stage)
	count(x) > 0
} else := ""

# Scans whose report names the deployed image by manifest digest.
scans_of_digest := [s |
	some s in input.scans
	digest in s.manifestDigests
]

timed_scans := [s |
	some s in scans_of_digest
	is_number(s.ageSeconds)
]

freshest := [s |
	some s in timed_scans
	s.ageSeconds == min([t.ageSeconds | some t in timed_scans])
]

# The freshest scan of the digest that carries a scan time. (rego-cpp cannot index a
# comprehension directly.)
latest_scan := freshest[0]

# Facts that came from a file rather than the platform pass only when allowed.
unverified_allowed if config.approvals.allow_unverified == true

lower_set(xs) := {lower(x) | some x in xs}

# concat for use inside sprintf. rego-cpp renders a concat result JSON-quoted under
# sprintf's %s ("a, b" with the quotes); trim_space yields a plain string in both
# engines, and the joined texts never carry meaningful outer spaces.
join(sep, xs) := trim_space(concat(sep, xs))

# A span of seconds as a person reads it: minutes under two hours, hours from there.
span(seconds) := sprintf("%d minutes", [round(seconds / 60)]) if {
	seconds < 7200
}

span(seconds) := sprintf("%d hours", [round(seconds / 3600)]) if {
	seconds >= 7200
}
