# Shared facts for the built-in policies' tests: a production deploy where every rule
# passes. Each test changes one fact and expects one rule to fail (or pass).
package custody_test.fixtures

import rego.v1

digest := "sha256:1111111111111111111111111111111111111111111111111111111111111111"

config_digest := "sha256:2222222222222222222222222222222222222222222222222222222222222222"

other_digest := "sha256:3333333333333333333333333333333333333333333333333333333333333333"

config := {
	"signature": {"require_cosign": true, "trusted_key_ids": []},
	"sbom": {"denied_licenses": ["AGPL-3.0-only"]},
	"scan": {"max_age_hours": 24, "max_critical": 0, "max_high": 2},
	"exceptions": [{"id": "CVE-2026-0001", "reason": "not reachable", "expires": "2026-12-31"}],
	"tests": {"min_line_rate": 0.8},
	"approvals": {"allow_unverified": false},
	"environments": {"production": {
		"tier": "production",
		"approvers": ["alice", "Bob"],
		"min_approvals": 2,
	}},
}

scan := {
	"record": "sha256:scan",
	"subjectDigests": [digest],
	"scanner": "trivy",
	"manifestDigests": [digest],
	"imageId": config_digest,
	"scannedAt": "2026-11-29T08:00:00Z",
	"ageSeconds": 7200,
	"environment": "production",
	"counts": {"critical": 1, "high": 2, "medium": 0, "low": 0, "negligible": 0, "unknown": 0},
	"findings": [
		{"id": "CVE-2026-0001", "severity": "critical"},
		{"id": "CVE-2026-0002", "severity": "high"},
		{"id": "CVE-2026-0003", "severity": "high"},
	],
}

sbom := {
	"record": "sha256:sbom",
	"subjectDigests": [digest],
	"materialVerified": true,
	"describes": digest,
	"ociDigests": [digest],
	"componentCount": 2,
	"licenses": ["MIT"],
	"components": [
		{"name": "a", "version": "1", "licenses": ["MIT"]},
		{"name": "b", "version": "2", "licenses": ["Apache-2.0"]},
	],
}

input_ok := {
	"gate": "pre-deploy",
	"evaluatedAt": "2026-11-29T10:00:00Z",
	"today": "2026-11-29",
	"artifact": {"name": "ghcr.io/acme/app", "digest": digest},
	"environment": "production",
	"verifiedRecords": 7,
	"signatures": [{
		"record": "sha256:sign",
		"signer": "ci.pub",
		"keyId": "cosign.pub",
		"subjectDigests": [digest],
		"recordedAt": "2026-11-29T07:00:00Z",
	}],
	"cosign": {
		"reference": "ghcr.io/acme/app:sha256-1111.sig",
		"signatures": [{"key": "cosign.pub", "manifestDigest": digest, "dockerReference": "ghcr.io/acme/app"}],
		"problems": [],
	},
	"sboms": [sbom],
	"scans": [scan],
	"tests": [{"record": "sha256:tests", "total": 10, "passed": 10, "failed": 0, "errored": 0, "skipped": 0}],
	"coverage": [{"record": "sha256:cov", "lineRate": 0.9, "linesValid": 100, "linesCovered": 90}],
	"runnerGuard": [{"record": "sha256:guard", "tier": "production", "environment": "production", "outcome": "pass"}],
	"rejected": [],
	"approvals": {"source": "github", "verified": true, "approvals": [
		{"login": "alice", "state": "approved"},
		{"login": "bob", "state": "approved"},
	]},
	"people": {
		"source": "github",
		"verified": true,
		"prAuthors": [{"login": "dev"}],
		"commitAuthors": [{"login": "dev", "name": "Dev Eloper", "email": "dev@example.com"}],
		"committers": [{"login": "web-flow", "name": "GitHub", "email": "noreply@github.com"}],
		"triggeringActors": [{"login": "releaser"}],
	},
	"environmentProtection": {
		"source": "github",
		"verified": true,
		"requiredReviewers": true,
		"reviewers": ["user:alice", "user:bob"],
		"canAdminsBypass": false,
	},
}

# The decision on an input, under the fixture config.
decide(inp) := d if {
	d := data.custody.decision.result with input as inp with data.custody.config as config
}

# A rule's status on an input.
status(inp, id) := decide(inp).rules[id].status

# A rule's message on an input.
message(inp, id) := decide(inp).rules[id].message

# The fixture input with one top-level field replaced.
with_field(k, v) := object.union(input_ok, {k: v})

test_fixture_allows if {
	d := decide(input_ok)
	d.decision == "allow"
	every id, r in d.rules {
		r.status != "fail"
	}
}

test_fixture_every_rule_is_reported if {
	count(decide(input_ok).rules) == 23
}
