# Nobody approves their own change: no approver is the PR/MR author, an author or
# committer of the deployed commit (or of the PR's commits), or the actor who triggered
# the run. People match by login, e-mail or name, case-insensitively (GitLab commits
# carry names and e-mails, not usernames).
package custody.rules.separation_of_duties

import data.custody.lib
import rego.v1

meta := {
	"id": "separation-of-duties",
	"title": "No self-approval",
	"control": "164.308(a)(4)",
	"gates": ["pre-deploy"],
}

people := input.people

roles := {
	"the PR/MR author": object.get(people, "prAuthors", []),
	"a commit author": object.get(people, "commitAuthors", []),
	"a committer": object.get(people, "committers", []),
	"the triggering actor": object.get(people, "triggeringActors", []),
}

approved := [a |
	some a in input.approvals.approvals
	a.state == "approved"
]

same(a, p) if {
	a.login
	p.login
	lower(a.login) == lower(p.login)
}

same(a, p) if {
	a.email
	p.email
	lower(a.email) == lower(p.email)
}

same(a, p) if {
	a.name
	p.name
	lower(a.name) == lower(p.name)
}

deny contains "no facts about PR/MR authors, commit authors and committers, and the triggering actor: run on GitHub or GitLab with an API token, or pass them with --approvals FILE" if {
	not people
}

deny contains msg if {
	people.verified == false
	not lib.unverified_allowed
	msg := sprintf("authorship facts come from %s, not the platform (set approvals.allow_unverified for demos)", [people.source])
}

deny contains "no approvals to check for separation of duties" if {
	people
	count(approved) == 0
}

deny contains msg if {
	some a in approved
	some role, list in roles
	some p in list
	same(a, p)
	msg := sprintf("%s approved but is %s", [a.login, role])
}

pass := sprintf("none of %s authored, committed or triggered the change", [lib.join(", ", sort({a.login | some a in approved}))])
