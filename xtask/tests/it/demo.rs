//! `cargo xtask demo`, the README quick start's main job, run for real on the suite's
//! own build of the binaries (`--bins`): the compliant pipeline ends with an allow
//! decision, a verified bundle and an HTML report, and runs twice in the same
//! directory; `--tamper` ends with a deny and a failed verification, with the reasons.

use std::process::Command;

use crate::support;

fn demo(args: &[&str]) -> (bool, String, String) {
    let bins = support::binaries().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("demo")
        .arg("--bins")
        .arg(bins)
        .args(args)
        .current_dir(support::root())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_runs_a_compliant_pipeline_twice_and_its_tamper_variant_shows_the_guards_bite() {
    if support::binaries().is_none() {
        return;
    }
    let started = std::time::SystemTime::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let dir_arg = dir.to_str().unwrap();
    for run in 1..=2 {
        let (ok, stdout, stderr) = demo(&["--dir", dir_arg]);
        assert!(ok, "demo run {run} failed:\n{stdout}\n{stderr}");
        for expected in [
            "policy-check --gate pre-approval: deny",
            "image-signed: no verified signature record",
            "policy-check --gate pre-approval again: allow",
            "policy-check --gate pre-deploy: allow",
            "`custody gate serve` judged the run and approved the deployment to `staging`",
            "deployed to `staging` and recorded",
            "build, test, scan, sign and deploy present",
            "verified offline",
            "the parent signs a checkpoint of the store's transparency log",
            "and complete: the log's entries for the commit",
        ] {
            assert!(
                stdout.contains(expected),
                "run {run}: no {expected:?} in\n{stdout}"
            );
        }
        let report = dir.join("report/custody-bundle/report.html");
        let html = std::fs::read_to_string(&report).unwrap();
        assert!(
            html.contains("<title>Custody audit report — VERIFIED"),
            "{report:?}"
        );
        assert!(
            html.contains("pre-deploy gate: <strong>allow</strong>"),
            "{report:?}"
        );
        let verification: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("report/custody-bundle/verification.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(verification["ok"], true, "{verification}");
    }

    // the coverage build's instrumented build scripts once left their profiles in
    // the checkout (seen on a fresh clone, where they run)
    let litter: Vec<_> = std::fs::read_dir(support::root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "profraw"))
        .filter(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= started)
        })
        .collect();
    assert!(litter.is_empty(), "the demo wrote {litter:?}");

    let tampered = tmp.path().join("tampered");
    let (ok, stdout, stderr) = demo(&["--tamper", "--dir", tampered.to_str().unwrap()]);
    assert!(
        ok,
        "the tamper demo found a guard that did not bite:\n{stdout}\n{stderr}"
    );
    for expected in [
        "policy-check --gate pre-deploy: deny",
        "the scan record is cut from a copy of the store",
        "answers the query but is missing from the bundle",
        "evidence-integrity: scan record",
        "material trivy.json was altered",
        "separation-of-duties: dev approved but is a commit author",
        "approvers-authorized: dev approved but is not an authorized approver",
        "custody verify fails (exit 1)",
        "its bytes changed after it was stored",
        "`custody gate serve` judged the run and rejected the deployment to `staging`",
        "- evidence-integrity: scan record",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in\n{stdout}");
    }
    assert!(!stdout.contains("deployed to"), "{stdout}");
}
