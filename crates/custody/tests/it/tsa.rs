//! `--tsa URL` end to end against OpenSSL's TSA on loopback (`openssl ts -reply` behind
//! an HTTP shim): the token is stored in the record, the record verifies against a
//! trusted-keys file naming the TSA's root, the TSA's time decides a revoked key's
//! records, and a TSA that is down or replays stores nothing.

use custody_test_support::tsa::{Behaviour, Tsa, TsaKey};

use super::{Env, attest_args, python, said, sslib};

fn attest(e: &Env, tsa: &str) -> std::process::Output {
    let mut args = attest_args("signer.key");
    args.extend(["--tsa".to_owned(), tsa.to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    e.cmd(&args).output().unwrap()
}

fn record_of(out: &std::process::Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["record"].as_str().unwrap().to_owned()
}

/// A trusted-keys file for `signer.key.pub` with `extra` key fields, trusting the TSA's
/// root, timestamps required.
fn trusted(e: &Env, name: &str, extra: &str) {
    std::fs::write(
        e.path(name),
        format!(
            "keys:\n  - name: ci\n    file: signer.key.pub\n{extra}\
             timestampAuthorities:\n  - name: test-tsa\n    file: tsa/ca.pem\n\
             requireTimestamp: true\n"
        ),
    )
    .unwrap();
}

fn records(e: &Env) -> usize {
    let out = e
        .cmd(&["query", "--store", "store", "--format", "json"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&out.stderr).contains("no records match") {
        return 0;
    }
    assert!(out.status.success(), "{}", said(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn timestamped_records_verify_and_the_tsa_time_decides_a_revocation() {
    let e = Env::new();
    let tsa = Tsa::start(&e.path("tsa"), TsaKey::Rsa);
    let out = attest(&e, &tsa.url());
    assert!(out.status.success(), "{}", said(&out));
    assert_eq!(tsa.served(), 1);
    let record = record_of(&out);
    let envelope = std::fs::read_to_string(e.object(&record)).unwrap();
    assert!(envelope.contains("rfc3161Timestamps"), "{envelope}");

    trusted(&e, "trusted.yaml", "");
    let ok = e.ok(&[
        "verify",
        "--record",
        &record,
        "--store",
        "store",
        "--key",
        "trusted.yaml",
    ]);
    assert!(ok.contains("verified"), "{ok}");

    // OpenSSL verifies the stored reply over the stored signature with the same root
    let env: serde_json::Value = serde_json::from_str(&envelope).unwrap();
    let b64 =
        |s: &str| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).unwrap();
    let sig = &env["signatures"][0];
    std::fs::write(e.path("sig.bin"), b64(sig["sig"].as_str().unwrap())).unwrap();
    let stamp = sig["extension"]["ext"]["timestampVerificationData"]["rfc3161Timestamps"][0]
        ["signedTimestamp"]
        .as_str()
        .unwrap();
    std::fs::write(e.path("reply.der"), b64(stamp)).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["ts", "-verify", "-data", "sig.bin", "-in", "reply.der"])
        .args(["-CAfile", "tsa/ca.pem"])
        .current_dir(e.path(""))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", said(&out));

    // a timestamp from a TSA the trusted keys do not name does not count
    custody_test_support::tsa::mint(&e.path("stranger"), TsaKey::Rsa, "Stranger TSA");
    std::fs::write(
        e.path("stranger.yaml"),
        "keys:\n  - name: ci\n    file: signer.key.pub\n\
         timestampAuthorities:\n  - file: stranger/ca.pem\nrequireTimestamp: true\n",
    )
    .unwrap();
    let err = e.fails(
        1,
        &[
            "verify",
            "--record",
            &record,
            "--store",
            "store",
            "--key",
            "stranger.yaml",
        ],
    );
    assert!(err.contains("no timestamp from a trusted TSA"), "{err}");

    // revoked an hour ago: the record was timestamped after, so it does not count,
    // whatever its own recordedAt says
    let hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    trusted(
        &e,
        "revoked.yaml",
        &format!("    revokedAt: {hour_ago}\n    reason: exposed in a job log\n"),
    );
    let err = e.fails(
        1,
        &[
            "verify",
            "--record",
            &record,
            "--store",
            "store",
            "--key",
            "revoked.yaml",
        ],
    );
    assert!(err.contains("timestamped by CN=Custody Test TSA"), "{err}");
    assert!(err.contains("exposed in a job log"), "{err}");
    // revoked an hour from now: it was signed before, and stays valid
    let in_an_hour = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    trusted(
        &e,
        "rotated.yaml",
        &format!("    revokedAt: {in_an_hour}\n    reason: rotated\n"),
    );
    e.ok(&[
        "verify",
        "--record",
        &record,
        "--store",
        "store",
        "--key",
        "rotated.yaml",
    ]);

    // a record made without --tsa fails where timestamps are required
    let args = attest_args("signer.key");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let bare = record_of(&e.cmd(&args).output().unwrap());
    let err = e.fails(
        1,
        &[
            "verify",
            "--record",
            &bare,
            "--store",
            "store",
            "--key",
            "trusted.yaml",
        ],
    );
    assert!(err.contains("no timestamp from a trusted TSA"), "{err}");

    // the reference verifier ignores the DSSE signature extension, as the spec says
    if let Some(py) = python() {
        let pem = e.path("signer.key.pub");
        let out = sslib(
            &py,
            &[
                "verify",
                e.object(&record).to_str().unwrap(),
                pem.to_str().unwrap(),
                "",
            ],
        );
        assert!(out.status.success(), "{}", said(&out));
    }
}

#[test]
fn a_tsa_that_is_down_or_replays_stores_nothing() {
    let e = Env::new();
    let tsa = Tsa::start(&e.path("tsa"), TsaKey::EcdsaP256);
    tsa.set(Behaviour::Down);
    let out = attest(&e, &tsa.url());
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    let said_down = said(&out);
    assert!(said_down.contains("gave no timestamp"), "{said_down}");
    assert!(said_down.contains("503"), "{said_down}");
    assert_eq!(tsa.served(), 3, "retried, then gave up");
    assert_eq!(records(&e), 0);

    // the first reply is good; every later one is that reply again (another request's
    // nonce): refused as a replay
    tsa.set(Behaviour::Replay);
    let out = attest(&e, &tsa.url());
    assert!(out.status.success(), "{}", said(&out));
    let out = attest(&e, &tsa.url());
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(said(&out).contains("replayed reply"), "{}", said(&out));
    assert_eq!(records(&e), 1);

    // credentials in a TSA URL are refused before anything is asked, and never printed
    let out = attest(&e, "https://user:hunter2@tsa.example/");
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(!said(&out).contains("hunter2"));
}

/// `custody verify BUNDLE --trusted-root …`: a keyless bundle from public-good Sigstore
/// (an `actions/attest`-style provenance), offline, against the pinned trusted root,
/// with cosign's identity flags; another identity, a flipped byte and a missing flag
/// are refused with the documented exit codes.
#[test]
fn keyless_bundles_verify_offline_against_the_pinned_root() {
    let e = Env::new();
    let bundle = super::fixtures().join("attestation-dsse/sigstore-rs-bundle-v0.3.sigstore.json");
    let root = super::fixtures().join("sigstore/trusted_root-public-good.json");
    let (bundle, root) = (bundle.to_str().unwrap(), root.to_str().unwrap());
    let workflow = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
    let issuer = "https://token.actions.githubusercontent.com";
    let out = e.ok(&[
        "verify",
        bundle,
        "--trusted-root",
        root,
        "--certificate-oidc-issuer",
        issuer,
        "--certificate-identity",
        workflow,
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["identity"], workflow);
    assert_eq!(v["logIndex"], 1_261_105_807);
    // any tag of the release workflow
    e.ok(&[
        "verify",
        bundle,
        "--trusted-root",
        root,
        "--certificate-oidc-issuer",
        issuer,
        "--certificate-identity-prefix",
        "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@",
    ]);
    let err = e.fails(
        1,
        &[
            "verify",
            bundle,
            "--trusted-root",
            root,
            "--certificate-oidc-issuer",
            issuer,
            "--certificate-identity-prefix",
            "https://github.com/acme/",
        ],
    );
    assert!(err.contains("not the one the policy requires"), "{err}");
    // one byte of the payload flipped
    let mut b: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle).unwrap()).unwrap();
    let p = b["dsseEnvelope"]["payload"].as_str().unwrap().to_owned();
    let i = p.len() / 2;
    let c = if &p[i..=i] == "A" { "B" } else { "A" };
    b["dsseEnvelope"]["payload"] = format!("{}{c}{}", &p[..i], &p[i + 1..]).into();
    std::fs::write(e.path("tampered.json"), serde_json::to_vec(&b).unwrap()).unwrap();
    let err = e.fails(
        1,
        &[
            "verify",
            "tampered.json",
            "--trusted-root",
            root,
            "--certificate-oidc-issuer",
            issuer,
            "--certificate-identity",
            workflow,
        ],
    );
    assert!(err.contains("altered"), "{err}");
    // who must have signed is not optional
    let err = e.fails(
        2,
        &[
            "verify",
            bundle,
            "--trusted-root",
            root,
            "--certificate-oidc-issuer",
            issuer,
        ],
    );
    assert!(err.contains("--certificate-identity"), "{err}");
    // without a root, the bundle is refused by name, saying how to verify it
    let err = e.fails(2, &["verify", bundle, "--key", "signer.key.pub"]);
    assert!(err.contains("--trusted-root"), "{err}");
}
