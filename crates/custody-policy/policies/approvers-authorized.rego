# Everyone who approved the deploy is on the environment's list of authorized
# approvers (environments.<name>.approvers in the policy data, compared
# case-insensitively), and nobody rejected it.
package custody.rules.approvers_authorized

import data.custody.lib
import rego.v1

meta := {
	"id": "approvers-authorized",
	"title": "Approvers are authorized for the environment",
	"control": "164.308(a)(4)",
	"gates": ["pre-deploy"],
}

authorized := lib.lower_set(object.get(lib.env, "approvers", []))

approved := [a |
	some a in input.approvals.approvals
	a.state == "approved"
]

deny contains "the environment is not configured, so its approval rules are unknown" if {
	not lib.env
}

deny contains "no approval facts: run on GitHub or GitLab with an API token, or pass them with --approvals FILE" if {
	not input.approvals
}

deny contains msg if {
	input.approvals.verified == false
	not lib.unverified_allowed
	msg := sprintf("approvals come from %s, not the platform (set approvals.allow_unverified for demos)", [input.approvals.source])
}

deny contains msg if {
	some a in approved
	not lower(a.login) in authorized
	msg := sprintf("%s approved but is not an authorized approver for %s", [a.login, input.environment])
}

deny contains msg if {
	some a in input.approvals.approvals
	a.state == "rejected"
	msg := sprintf("%s rejected the deployment", [a.login])
}

pass := sprintf("approvers %s are authorized for %s (%s%s)", [lib.join(", ", sort({a.login | some a in approved})), input.environment, input.approvals.source, unverified])

unverified := ", unverified" if {
	input.approvals.verified == false
} else := ""
