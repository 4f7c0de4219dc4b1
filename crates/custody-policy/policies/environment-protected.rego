# The platform will actually ask a human: the environment has required reviewers (GitHub
# protection rule, GitLab protected environment approval rules) and administrators
# cannot bypass them. Turn off per environment with require_protection: false.
package custody.rules.environment_protected

import data.custody.lib
import rego.v1

meta := {
	"id": "environment-protected",
	"title": "Environment requires reviewers on the platform",
	"control": "164.308(a)(4)",
	"gates": ["pre-approval", "pre-deploy"],
}

p := input.environmentProtection

skip := sprintf("environment %s does not require platform protection (require_protection: false)", [input.environment]) if {
	object.get(lib.env, "require_protection", true) == false
}

deny contains "the environment is not configured, so its approval rules are unknown" if {
	not lib.env
}

deny contains "no environment protection facts: run on GitHub or GitLab with an API token, or pass them with --approvals FILE" if {
	not p
}

deny contains msg if {
	p.verified == false
	not lib.unverified_allowed
	msg := sprintf("environment protection facts come from %s, not the platform (set approvals.allow_unverified for demos)", [p.source])
}

deny contains msg if {
	p
	p.requiredReviewers != true
	msg := sprintf("environment %s has no required reviewers on %s", [input.environment, p.source])
}

deny contains msg if {
	p.canAdminsBypass == true
	msg := sprintf("administrators can bypass the protection of environment %s", [input.environment])
}

pass := sprintf("environment %s requires reviewers on %s%s", [input.environment, p.source, unverified])

unverified := " (unverified facts)" if {
	p.verified == false
} else := ""
