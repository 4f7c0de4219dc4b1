# Enough distinct authorized people approved: environments.<name>.min_approvals
# (default 1).
package custody.rules.approvals_count

import data.custody.lib
import rego.v1

meta := {
	"id": "approvals-count",
	"title": "Enough approvals",
	"control": "164.312(d)",
	"gates": ["pre-deploy"],
}

needed := object.get(lib.env, "min_approvals", 1)

authorized := lib.lower_set(object.get(lib.env, "approvers", []))

approvers := {lower(a.login) |
	some a in input.approvals.approvals
	a.state == "approved"
	lower(a.login) in authorized
}

deny contains "the environment is not configured, so its approval rules are unknown" if {
	not lib.env
}

deny contains msg if {
	count(approvers) < needed
	msg := sprintf("%d authorized approval(s) for %s; %d required", [count(approvers), input.environment, needed])
}

pass := sprintf("%d authorized approval(s); %d required", [count(approvers), needed])
