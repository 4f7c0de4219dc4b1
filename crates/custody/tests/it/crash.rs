//! Issue 15, crash points: a writer killed (abort, as by kill -9) at each step of a
//! record write: after its material, its envelope, its chain entry, an index pointer,
//! its log claim. Each time the store still verifies, and the next write on the same
//! chain succeeds and repairs what the dead writer left half done.

use super::Env;

#[test]
fn a_writer_killed_at_any_step_leaves_a_store_that_verifies_and_takes_the_next_write() {
    for point in ["object", "envelope", "chain-entry", "pointer", "log-claim"] {
        let e = Env::new();
        e.ok(&[
            "log",
            "keygen",
            "--origin",
            "custody.test/crash",
            "--out",
            "log.key",
        ]);
        e.attest(super::SBOM, "build");
        // the dead writer
        let out = e
            .cmd(&[
                "attest",
                super::fixtures().join(super::SCAN).to_str().unwrap(),
                "--subject",
                &super::image(),
                "--key",
                "signer.key",
                "--store",
                "store",
                "--stage",
                "scan",
                "--commit",
                "0123abcd",
                "--pipeline",
                "9",
            ])
            .env("CUSTODY_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{point}: the writer was not killed");
        assert_eq!(
            out.status.code(),
            None,
            "{point}: killed by a signal, not an exit"
        );
        // the next writer on the same chain
        e.attest(super::SBOM, "test");
        e.ok(&[
            "log",
            "checkpoint",
            "--store",
            "store",
            "--log-signing-key",
            "log.key",
        ]);
        let out = e.run(&[
            "log",
            "verify",
            "--store",
            "store",
            "--log-key",
            "log.key.pub",
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{point}: {text}");
        let out = e.run(&[
            "verify",
            "--store",
            "store",
            "--commit",
            "0123abcd",
            "--key",
            "signer.key.pub",
            "--require-stages",
            "none",
            "--log-key",
            "log.key.pub",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{point}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
