# The target environment is known to the policy: its runner tier, its authorized
# approvers and how many approvals it needs are stated in the policy data. An unknown
# environment denies rather than deploying under no rules.
package custody.rules.environment_configured

import data.custody.lib
import rego.v1

meta := {
	"id": "environment-configured",
	"title": "Target environment is configured",
	"control": "164.308(a)(4)",
	"gates": ["pre-approval", "pre-deploy"],
}

deny contains "no target environment: pass --environment, or run in a job that deploys to an environment" if {
	not input.environment
}

deny contains msg if {
	input.environment
	not lib.config.environments[input.environment]
	msg := sprintf("environment %s is not configured: add it under environments in --data with its runner tier and authorized approvers", [input.environment])
}

pass := sprintf("environment %s is configured", [input.environment])
