# The decision: every rule package under data.custody.rules is evaluated and reported,
# passes included. A rule package defines `meta` (id, title, HIPAA control, gates),
# `deny` (a set of reasons it fails), and optionally `pass` (the message when it
# passes) and `skip` (why it does not apply). The decision is allow only when at least
# one rule ran and none failed: an empty or broken policy set denies.
package custody.decision

import rego.v1

# Both engines iterate packages with `data.custody.rules[name]`; rego-cpp rejects
# `some name, pkg in data.custody.rules` ("Invalid collection"), and does not bind a
# function argument inside `data.custody.rules[arg]`, so each package is taken whole
# and handed to the helpers.
rules := {id: r |
	pkg := data.custody.rules[_]
	id := pkg.meta.id
	r := {
		"id": id,
		"title": object.get(pkg.meta, "title", id),
		"control": pkg.meta.control,
		"status": status(pkg),
		"message": message(pkg),
	}
}

applies(pkg) if input.gate in pkg.meta.gates

reasons(pkg) := {msg | some msg in object.get(pkg, "deny", set())}

status(pkg) := "skip" if {
	not applies(pkg)
} else := "skip" if {
	pkg.skip
} else := "fail" if {
	count(reasons(pkg)) > 0
} else := "pass"

message(pkg) := sprintf("not checked at gate %s", [input.gate]) if {
	not applies(pkg)
} else := pkg.skip if {
	pkg.skip
} else := concat("; ", sort(reasons(pkg))) if {
	count(reasons(pkg)) > 0
} else := pkg.pass if {
	pkg.pass
} else := "passed"

# `some k, v in x` inside a comprehension is a set literal to rego-cpp ("Invalid
# collection"): comprehensions index instead.
failed := {id | rules[id].status == "fail"}

allow if {
	count(rules) > 0
	count(failed) == 0
}

result := {
	"decision": decision,
	"rules": rules,
}

decision := "allow" if {
	allow
} else := "deny"
