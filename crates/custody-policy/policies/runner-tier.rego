# The job ran on a runner of the tier the environment requires: a runner-guard record
# of this pipeline (or commit) that passed, judged against that tier.
package custody.rules.runner_tier

import data.custody.lib
import rego.v1

meta := {
	"id": "runner-tier",
	"title": "Runner tier matches the environment",
	"control": "164.308(a)(4)",
	"gates": ["pre-approval", "pre-deploy"],
}

required := lib.env.tier

skip := sprintf("environment %s requires no runner tier (set tier: to require runner-guard evidence)", [input.environment]) if {
	lib.env
	not lib.env.tier
}

ok := [g |
	some g in input.runnerGuard
	g.tier == required
	g.outcome == "pass"
]

deny contains msg if {
	not lib.env
	msg := "the environment is not configured, so its runner tier is unknown"
}

deny contains msg if {
	required
	count(input.runnerGuard) == 0
	msg := sprintf("no runner-guard record for this pipeline: run runner-guard as the first step of each job (tier %s required)%s", [required, lib.rejected_note("runner-guard")])
}

deny contains msg if {
	required
	count(ok) == 0
	some g in input.runnerGuard
	msg := sprintf("runner-guard record %s: tier %s, outcome %s; environment %s requires tier %s with outcome pass", [g.record, object.get(g, "tier", "(none)"), g.outcome, input.environment, required])
}

pass := sprintf("runner-guard record %s: tier %s passed", [ok[0].record, required])
