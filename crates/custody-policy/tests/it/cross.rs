//! Cross-check with an independent Rego engine: regopy (rego-cpp) evaluates the same
//! built-in .rego files, data and inputs as regorus, and every decision, rule status and
//! message must agree. The inputs cover each rule passing and failing. The input and
//! decision documents are validated against their JSON Schemas on the way (Python
//! `jsonschema`).
//!
//! Engine differences worked around in the policies (see the comments there):
//! - rego-cpp rejects `some k, v in x` inside a comprehension ("Invalid collection")
//!   and `some name, pkg in data.custody.rules`: comprehensions index (`x[k]`).
//! - rego-cpp does not bind a function argument inside `data.custody.rules[arg]`:
//!   rule packages are taken whole and handed to the helpers.
//! - rego-cpp cannot index a comprehension directly (`[...][0]`): named first.
//! - rego-cpp has no `time.parse_rfc3339_ns`: exception expiry dates compare as
//!   ISO-8601 strings, checked with `regex.match`.
//! - rego-cpp's `sprintf("%s", [concat(...)])` renders the joined string JSON-quoted
//!   (and then emits invalid JSON): `lib.join` passes it through `trim_space` first.
//! - rego-cpp left a helper undefined that built a set comprehension over its argument
//!   inside nested calls (`scan-severity`'s finding ids): the ids are computed once as
//!   rules instead.
//! - regorus rejects `with` in a rule head (OPA does too) and has no `json.patch`
//!   without its `jsonpatch` feature: the Rego tests avoid both.

use std::path::Path;
use std::process::Command;

use custody_policy::{Evaluator, PolicySet, schema};
use serde_json::{Value, json};

use crate::support::data;

fn python() -> Option<String> {
    match std::env::var("CUSTODY_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!(
                "CUSTODY_PYTHON is not set: the regopy cross-check was not run (cargo xtask test sets it)"
            );
            None
        }
    }
}

/// Sets the value at `path` (numeric components index arrays).
fn set(o: &mut Value, path: &[&str], v: Value) {
    let mut cur = o;
    for k in path {
        cur = match k.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[*k],
        };
    }
    *cur = v;
}

fn remove(o: &mut Value, key: &str) {
    o.as_object_mut().unwrap().remove(key);
}

/// Named inputs: the compliant one, and one per way each rule fails.
fn cases() -> Vec<(&'static str, Value)> {
    let ok: Value = serde_json::from_slice(&std::fs::read(data("input-ok.json")).unwrap()).unwrap();
    let other = format!("sha256:{}", "3".repeat(64));
    let config = format!("sha256:{}", "2".repeat(64));
    let mut out: Vec<(&str, Value)> = vec![("ok", ok.clone())];
    let mut case = |name, f: &dyn Fn(&mut Value)| {
        let mut v = ok.clone();
        f(&mut v);
        out.push((name, v));
    };
    case("pre-approval", &|v| {
        set(v, &["gate"], json!("pre-approval"))
    });
    case(
        "nothing",
        &|v| *v = json!({"gate": "pre-deploy", "artifact": {"name": "", "digest": "sha256:00"}, "today": "2026-11-29", "evaluatedAt": "2026-11-29T10:00:00Z", "verifiedRecords": 0, "signatures": [], "sboms": [], "scans": [], "tests": [], "coverage": [], "runnerGuard": [], "rejected": []}),
    );
    case("unknown-environment", &|v| {
        set(v, &["environment"], json!("moon"))
    });
    case("rejected-record", &|v| {
        set(
            v,
            &["rejected"],
            json!([{"record": "sha256:x", "stage": "sign", "reason": "no trusted key verified the envelope"}]),
        )
    });
    case("no-signature", &|v| set(v, &["signatures"], json!([])));
    case("cosign-unverified", &|v| {
        set(v, &["cosign", "signatures"], json!([]))
    });
    case("cosign-unchecked", &|v| remove(v, "cosign"));
    case("sbom-tampered", &|v| {
        set(v, &["sboms", "0", "materialVerified"], json!(false));
        set(
            v,
            &["sboms", "0", "materialProblem"],
            json!("the SBOM file was altered"),
        );
    });
    case("sbom-other-digest", &|v| {
        set(v, &["sboms", "0", "describes"], json!(other))
    });
    case("sbom-config-digest", &|v| {
        set(v, &["sboms", "0", "describes"], json!(config))
    });
    case("sbom-denied-license", &|v| {
        set(
            v,
            &["sboms", "0", "components", "0", "licenses"],
            json!(["AGPL-3.0-only"]),
        )
    });
    case("scan-other-digest", &|v| {
        set(v, &["scans", "0", "manifestDigests"], json!([other]))
    });
    case("scan-config-only", &|v| {
        set(v, &["scans", "0", "manifestDigests"], json!([]))
    });
    case("scan-stale", &|v| {
        set(v, &["scans", "0", "ageSeconds"], json!(90000))
    });
    case("scan-no-time", &|v| {
        remove(&mut v["scans"][0], "ageSeconds")
    });
    case("scan-critical", &|v| {
        v["scans"][0]["findings"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "CVE-2026-0009", "severity": "critical"}));
    });
    case("scan-high", &|v| {
        v["scans"][0]["findings"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "CVE-2026-0010", "severity": "high"}));
    });
    case("exception-expired", &|v| {
        set(v, &["today"], json!("2027-01-01"))
    });
    case("tests-failed", &|v| {
        set(v, &["tests", "0", "failed"], json!(2))
    });
    case("coverage-low", &|v| {
        set(v, &["coverage", "0", "lineRate"], json!(0.5))
    });
    case("runner-wrong-tier", &|v| {
        set(v, &["runnerGuard", "0", "tier"], json!("build"))
    });
    case("environment-mismatch", &|v| {
        set(v, &["scans", "0", "environment"], json!("staging"))
    });
    case("no-protection", &|v| {
        set(
            v,
            &["environmentProtection", "requiredReviewers"],
            json!(false),
        )
    });
    case("unauthorized-approver", &|v| {
        set(
            v,
            &["approvals", "approvals", "1", "login"],
            json!("mallory"),
        )
    });
    case("too-few-approvals", &|v| {
        set(
            v,
            &["approvals", "approvals"],
            json!([{"login": "alice", "state": "approved"}]),
        )
    });
    case("pr-author-approves", &|v| {
        set(v, &["people", "prAuthors"], json!([{"login": "alice"}]))
    });
    case("committer-approves", &|v| {
        set(v, &["people", "committers"], json!([{"login": "BOB"}]))
    });
    case("triggerer-approves", &|v| {
        set(
            v,
            &["people", "triggeringActors"],
            json!([{"login": "alice"}]),
        )
    });
    case("unverified-approvals", &|v| {
        set(v, &["approvals", "verified"], json!(false))
    });
    out
}

#[test]
fn regopy_agrees_with_regorus_on_every_case() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let policies = PolicySet::load(&[], &[data("cross-config.yaml")], false).unwrap();
    let data_path = dir.path().join("data.json");
    std::fs::write(&data_path, serde_json::to_vec(policies.data()).unwrap()).unwrap();
    let input_schema = dir.path().join("input.schema.json");
    std::fs::write(&input_schema, schema::input_schema()).unwrap();
    let decision_schema = dir.path().join("decision.schema.json");
    std::fs::write(&decision_schema, schema::decision_schema()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/regopy_check.py");
    let policy_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let mut checked = 0;
    for (name, input) in cases() {
        let input_path = dir.path().join(format!("{name}.json"));
        std::fs::write(&input_path, serde_json::to_vec(&input).unwrap()).unwrap();
        let ours = policies.evaluate_value(input.clone()).unwrap();
        // a decision document for this input, for the schema check
        let parsed: custody_policy::PolicyInput = serde_json::from_value(input.clone())
            .unwrap_or_else(|e| panic!("{name}: the input does not parse as PolicyInput: {e}"));
        let decision = custody_policy::check::decide(&policies, &parsed).unwrap();
        let decision_path = dir.path().join(format!("{name}.decision.json"));
        std::fs::write(&decision_path, serde_json::to_vec(&decision).unwrap()).unwrap();
        let out = Command::new(&python)
            .arg(&script)
            .args([&policy_dir, &data_path, &input_path])
            .arg("--schema-input")
            .arg(&input_schema)
            .arg("--schema-decision")
            .arg(&decision_schema)
            .arg("--decision")
            .arg(&decision_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
        let want = match ours.decision {
            custody_policy::Verdict::Allow => "allow",
            custody_policy::Verdict::Deny => "deny",
        };
        assert_eq!(theirs["decision"], want, "{name}");
        let rules = theirs["rules"].as_object().unwrap();
        assert_eq!(rules.len(), ours.rules.len(), "{name}");
        for r in &ours.rules {
            let t = &rules[&r.id];
            assert_eq!(t["status"], r.status.as_str(), "{name}: {}", r.id);
            assert_eq!(t["message"], r.message.as_str(), "{name}: {}", r.id);
            assert_eq!(t["control"], r.control.as_str(), "{name}: {}", r.id);
        }
        checked += 1;
    }
    assert_eq!(checked, cases().len());
    // the table exercised both outcomes and every rule failing at least once
    let mut failed_somewhere = std::collections::BTreeSet::new();
    for (_, input) in cases() {
        for r in policies.evaluate_value(input).unwrap().rules {
            if r.status == custody_policy::Status::Fail {
                failed_somewhere.insert(r.id);
            }
        }
    }
    assert_eq!(failed_somewhere.len(), 19, "{failed_somewhere:?}");
}

/// regorus's bytecode VM (what policy-check uses) and its tree-walking interpreter give
/// the same decision, statuses and messages on every case, and the built-in set
/// compiles for the VM.
#[test]
fn the_vm_and_the_interpreter_agree_on_every_case() {
    let policies = PolicySet::load(&[], &[data("cross-config.yaml")], false).unwrap();
    assert_eq!(policies.evaluator(), Evaluator::Vm);
    for (name, input) in cases() {
        let vm = policies.evaluate_with(Evaluator::Vm, input.clone());
        let interpreted = policies.evaluate_with(Evaluator::Interpreter, input);
        match (vm, interpreted) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{name}"),
            (a, b) => panic!("{name}: the VM gave {a:?}, the interpreter {b:?}"),
        }
    }
}

/// A user policy the VM compiler refuses (`with` in a rule body) leaves the decision to
/// the interpreter, and its rule takes part in it.
#[test]
fn a_set_the_vm_refuses_is_decided_by_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("with-keyword.rego"),
        r#"package custody.rules.with_keyword

import rego.v1

meta := {"id": "with-keyword", "control": "164.312(b)", "gates": ["pre-approval", "pre-deploy"]}

gate := input.gate

deny contains "the gate could not be overridden" if {
	not gate == "overridden" with input.gate as "overridden"
}
"#,
    )
    .unwrap();
    let policies = PolicySet::load(
        &[dir.path().to_path_buf()],
        &[data("cross-config.yaml")],
        false,
    )
    .unwrap();
    assert_eq!(policies.evaluator(), Evaluator::Interpreter);
    let input: Value =
        serde_json::from_slice(&std::fs::read(data("input-ok.json")).unwrap()).unwrap();
    let e = policies.evaluate_value(input).unwrap();
    let rule = e.rules.iter().find(|r| r.id == "with-keyword").unwrap();
    assert_eq!(rule.status, custody_policy::Status::Pass, "{rule:?}");
    assert_eq!(e.rules.len(), 24);
}
