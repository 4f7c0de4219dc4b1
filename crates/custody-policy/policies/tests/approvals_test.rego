# approvers-authorized, approvals-count, separation-of-duties.
package custody_test.approvals

import data.custody_test.fixtures as f
import rego.v1

approvals(list) := f.with_field("approvals", {"source": "github", "verified": true, "approvals": list})

test_approvals_pass if {
	every id in ["approvers-authorized", "approvals-count", "separation-of-duties"] {
		f.status(f.input_ok, id) == "pass"
	}
}

test_unauthorized_approver_fails if {
	inp := approvals([{"login": "alice", "state": "approved"}, {"login": "mallory", "state": "approved"}])
	f.status(inp, "approvers-authorized") == "fail"
	contains(f.message(inp, "approvers-authorized"), "mallory")
	f.status(inp, "approvals-count") == "fail"
}

test_rejection_fails if {
	inp := approvals([{"login": "alice", "state": "approved"}, {"login": "bob", "state": "rejected"}])
	contains(f.message(inp, "approvers-authorized"), "bob rejected")
}

test_too_few_approvals_fail if {
	inp := approvals([{"login": "alice", "state": "approved"}])
	f.status(inp, "approvals-count") == "fail"
	contains(f.message(inp, "approvals-count"), "1 authorized approval(s) for production; 2 required")
}

test_the_same_approver_twice_counts_once if {
	inp := approvals([{"login": "alice", "state": "approved"}, {"login": "ALICE", "state": "approved"}])
	f.status(inp, "approvals-count") == "fail"
}

test_no_approvals_fail if {
	inp := approvals([])
	f.status(inp, "approvals-count") == "fail"
	f.status(inp, "separation-of-duties") == "fail"
}

people_with(role, person) := f.with_field("people", object.union(f.input_ok.people, {role: [person]}))

test_pr_author_approving_fails if {
	inp := people_with("prAuthors", {"login": "Alice"})
	f.status(inp, "separation-of-duties") == "fail"
	contains(f.message(inp, "separation-of-duties"), "alice approved but is the PR/MR author")
}

test_commit_author_approving_fails if {
	inp := people_with("commitAuthors", {"login": "bob"})
	contains(f.message(inp, "separation-of-duties"), "is a commit author")
}

test_committer_approving_fails if {
	inp := people_with("committers", {"login": "bob"})
	contains(f.message(inp, "separation-of-duties"), "is a committer")
}

test_triggering_actor_approving_fails if {
	inp := people_with("triggeringActors", {"login": "alice"})
	contains(f.message(inp, "separation-of-duties"), "is the triggering actor")
}

test_gitlab_author_matched_by_name if {
	inp := object.union(f.input_ok, {
		"approvals": {"source": "gitlab", "verified": true, "approvals": [{"login": "alice", "name": "Alice Liddell", "state": "approved"}]},
		"people": object.union(f.input_ok.people, {"commitAuthors": [{"name": "alice liddell", "email": "a@example.com"}]}),
	})
	contains(f.message(inp, "separation-of-duties"), "is a commit author")
}

test_missing_people_fail if {
	f.status(object.remove(f.input_ok, ["people"]), "separation-of-duties") == "fail"
}

test_unverified_facts_fail_unless_allowed if {
	inp := object.union(f.input_ok, {"approvals": {"source": "file:a.json", "verified": false}})
	f.status(inp, "approvers-authorized") == "fail"
	contains(f.message(inp, "approvers-authorized"), "file:a.json")
	cfg := object.union(f.config, {"approvals": {"allow_unverified": true}})
	d := data.custody.decision.result with input as inp with data.custody.config as cfg
	d.rules["approvers-authorized"].status == "pass"
	contains(d.rules["approvers-authorized"].message, "unverified")
}
