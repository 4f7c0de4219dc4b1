//! `--key pkcs11:…` end to end against SoftHSM2 (Debian `softhsm2`; `cargo xtask test`
//! installs it and sets `CUSTODY_SOFTHSM_MODULE`). Each test makes its own token with
//! `softhsm2-util` and imports a key `custody keygen` made, so the token's signatures
//! are checked against a public key that never came from the token.

use std::process::{Command, Output};

use super::{Env, attest_args as attest, python, said, sslib};

const PIN: &str = "pin-4711-never-printed";

struct Token {
    module: String,
    conf: std::path::PathBuf,
}

impl Token {
    /// A token labelled `custody` holding `signer.key` as `evidence` (id 01).
    fn new(e: &Env) -> Option<Self> {
        let Ok(module) = std::env::var("CUSTODY_SOFTHSM_MODULE") else {
            eprintln!(
                "CUSTODY_SOFTHSM_MODULE not set: the PKCS#11 test was not run (cargo xtask test sets it)"
            );
            return None;
        };
        std::fs::create_dir(e.path("tokens")).unwrap();
        let conf = e.path("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                e.path("tokens").display()
            ),
        )
        .unwrap();
        let t = Self { module, conf };
        t.util(&[
            "--init-token",
            "--free",
            "--label",
            "custody",
            "--so-pin",
            "0000",
            "--pin",
            PIN,
        ]);
        let key = e.path("signer.key");
        t.util(&[
            "--import",
            key.to_str().unwrap(),
            "--token",
            "custody",
            "--label",
            "evidence",
            "--id",
            "01",
            "--pin",
            PIN,
        ]);
        Some(t)
    }

    fn util(&self, args: &[&str]) {
        let o = Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "softhsm2-util {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token=custody;object={object}?module-path={}",
            self.module
        )
    }

    fn run(&self, e: &Env, pin: &str, args: &[&str]) -> Output {
        e.cmd(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .env("CUSTODY_PKCS11_PIN", pin)
            .env_remove("CUSTODY_SIGNING_KEY_PEM")
            .output()
            .unwrap()
    }
}

#[test]
fn a_token_key_signs_records_the_imported_public_key_verifies() {
    let e = Env::new();
    let Some(t) = Token::new(&e) else { return };
    let uri = t.uri("evidence");

    let o = t.run(&e, PIN, &["public-key", "--key", &uri]);
    assert!(o.status.success(), "{}", said(&o));
    let ours = std::fs::read_to_string(e.path("signer.key.pub")).unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), ours.trim());

    let args = attest(&uri);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = t.run(&e, PIN, &args);
    assert!(o.status.success(), "{}", said(&o));
    assert!(!said(&o).contains(PIN));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rec = v["record"].as_str().unwrap().to_owned();
    e.ok(&[
        "verify",
        "--record",
        &rec,
        "--store",
        "store",
        "--key",
        "signer.key.pub",
    ]);
    e.ok(&["keygen", "--out", "other.key"]);
    e.fails(
        1,
        &[
            "verify",
            "--record",
            &rec,
            "--store",
            "store",
            "--key",
            "other.key.pub",
        ],
    );
    if let Some(py) = python() {
        let env = e.object(&rec);
        let pem = e.path("signer.key.pub");
        let o = sslib(
            &py,
            &["verify", env.to_str().unwrap(), pem.to_str().unwrap(), ""],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
}

#[test]
fn a_wrong_pin_a_missing_key_or_module_fails_with_2_and_stores_nothing() {
    let e = Env::new();
    let Some(t) = Token::new(&e) else { return };
    let cases = [
        (
            t.uri("evidence"),
            "wrong-pin-also-secret",
            "PIN is incorrect",
        ),
        (t.uri("nobody"), PIN, "no EC private key"),
        (
            "pkcs11:token=custody;object=evidence?module-path=/nonexistent/libpkcs11.so".to_owned(),
            PIN,
            "cannot load the PKCS#11 module /nonexistent/libpkcs11.so",
        ),
        (
            "pkcs11:token=elsewhere;object=evidence".to_owned() + "?module-path=" + &t.module,
            PIN,
            "no token elsewhere",
        ),
        // a PIN in the URI is used, and never shown
        (
            t.uri("evidence") + "&pin-value=uri-pin-secret",
            "",
            "PIN is incorrect",
        ),
    ];
    for (key, pin, says) in cases {
        let args = attest(&key);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = e.cmd(&args);
        c.env("SOFTHSM2_CONF", &t.conf)
            .env_remove("CUSTODY_SIGNING_KEY_PEM");
        if pin.is_empty() {
            c.env_remove("CUSTODY_PKCS11_PIN");
        } else {
            c.env("CUSTODY_PKCS11_PIN", pin);
        }
        let o = c.output().unwrap();
        let text = said(&o);
        assert_eq!(o.status.code(), Some(2), "{key}: {text}");
        assert!(text.contains(says), "{key}: {text}");
        for secret in [PIN, "wrong-pin-also-secret", "uri-pin-secret"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    assert!(
        !e.path("store/objects").exists(),
        "a refused key stores nothing"
    );
}
