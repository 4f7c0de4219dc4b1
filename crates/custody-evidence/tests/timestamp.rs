//! RFC 3161 timestamps against OpenSSL's TSA (`openssl ts -reply`), RSA and ECDSA:
//! tokens Custody verifies are verified by `openssl ts -verify` too, and every way a
//! token or its use can be forged is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use custody_evidence::timestamp::{self, Authorities, TimestampError};
use custody_evidence::{
    Digest, Envelope, KeyIdScheme, PublicKey, RecordInfo, ResourceDescriptor, SignError, Signer,
    SigningKey, Statement, TrustedKeys, Validity, VerifyError, sign_statement, verify_envelope,
};
use custody_test_support::tsa::{TsaKey, mint};

fn scratch(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "custody-ts-{}-{name}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn openssl(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// OpenSSL's TSA reply to Custody's own request over `signature`.
fn reply(tsa: &Path, req: &timestamp::Request) -> Vec<u8> {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let (q, r) = (format!("t{n}.tsq"), format!("t{n}.tsr"));
    std::fs::write(tsa.join(&q), &req.der).unwrap();
    let out = openssl(
        tsa,
        &[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            &q,
            "-out",
            &r,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(tsa.join(&r)).unwrap()
}

/// A key whose signatures OpenSSL's TSA in `tsa` timestamps.
#[derive(Debug)]
struct Stamped {
    key: SigningKey,
    tsa: PathBuf,
}

impl Signer for Stamped {
    fn public(&self) -> &PublicKey {
        self.key.public()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        self.key.sign(msg)
    }
    fn name(&self) -> String {
        "stamped".into()
    }
    fn timestamp(&self, signature: &[u8]) -> Result<Vec<Vec<u8>>, SignError> {
        let req = timestamp::request(signature, *b"\x01\x02\x03\x04\x05\x06\x07\x08").unwrap();
        Ok(vec![
            timestamp::accept_reply(&req, &reply(&self.tsa, &req)).unwrap(),
        ])
    }
}

fn statement(recorded_at: jiff::Timestamp) -> Statement {
    let info = RecordInfo {
        recorded_at,
        ..RecordInfo::for_tests()
    };
    Statement::new(
        vec![ResourceDescriptor::sha256("app", &Digest::of(b"app"))],
        "https://custody.dev/evidence/v1",
        serde_json::Map::new(),
        &info,
    )
    .unwrap()
}

fn authorities(pem: &Path) -> Authorities {
    let mut a = Authorities::default();
    a.add_pem(&std::fs::read(pem).unwrap()).unwrap();
    a
}

fn trusted(key: &PublicKey, validity: Validity, tsa_ca: Option<&Path>) -> TrustedKeys {
    let mut t = TrustedKeys::default();
    t.push_with(key.clone(), validity);
    if let Some(ca) = tsa_ca {
        t.authorities_mut()
            .add_pem(&std::fs::read(ca).unwrap())
            .unwrap();
    }
    t
}

fn signed(tsa: &Path, at: jiff::Timestamp) -> (Envelope, SigningKey) {
    let key = SigningKey::generate();
    let signer = Stamped {
        key: key.clone(),
        tsa: tsa.to_path_buf(),
    };
    (
        sign_statement(&statement(at), &signer, KeyIdScheme::Empty).unwrap(),
        key,
    )
}

fn sig_and_token(env: &Envelope) -> (Vec<u8>, Vec<u8>) {
    let s = &env.signatures[0];
    (
        STANDARD.decode(&s.sig).unwrap(),
        STANDARD.decode(&s.timestamps()[0]).unwrap(),
    )
}

#[test]
fn rsa_and_ecdsa_tsas_verify_here_and_in_openssl() {
    for kind in [TsaKey::Rsa, TsaKey::EcdsaP256] {
        let dir = scratch("ok");
        mint(&dir, kind, "Custody Test TSA");
        let now = jiff::Timestamp::now();
        let (env, key) = signed(&dir, now);
        // the token is in the envelope, as Sigstore verification material
        let ext = env.signatures[0].extension.as_ref().unwrap();
        assert_eq!(ext.kind, timestamp::VERIFICATION_MATERIAL_KIND);
        let (sig, token) = sig_and_token(&env);
        let v = timestamp::verify(&token, &sig, &authorities(&dir.join("ca.pem"))).unwrap();
        assert!(
            v.authority.contains("CN=Custody Test TSA"),
            "{}",
            v.authority
        );
        assert!(
            (v.time - now).get_seconds().abs() <= 60,
            "{} vs {now}",
            v.time
        );
        // OpenSSL agrees: the same stored reply, signature bytes and root
        std::fs::write(dir.join("sig.bin"), &sig).unwrap();
        std::fs::write(dir.join("reply.der"), &token).unwrap();
        let out = openssl(
            &dir,
            &[
                "ts",
                "-verify",
                "-data",
                "sig.bin",
                "-in",
                "reply.der",
                "-CAfile",
                "ca.pem",
            ],
        );
        assert!(
            out.status.success(),
            "{kind:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // and the envelope verifies with the TSA configured, its time the TSA's
        let t = trusted(key.public(), Validity::default(), Some(&dir.join("ca.pem")));
        verify_envelope(&env, &t).unwrap();
        // an untimestamped envelope is byte for byte what it was before timestamps
        let plain = sign_statement(&statement(now), &key, KeyIdScheme::Empty).unwrap();
        assert!(
            !String::from_utf8(plain.to_vec())
                .unwrap()
                .contains("extension")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_record_signed_before_the_revocation_stays_valid_and_one_after_does_not() {
    let dir = scratch("revoked");
    mint(&dir, TsaKey::Rsa, "Custody Test TSA");
    let now = jiff::Timestamp::now();
    let hour = jiff::SignedDuration::from_hours(1);
    let ca = dir.join("ca.pem");

    // revoked an hour from now: the timestamp (now) is before it
    let (env, key) = signed(&dir, now);
    let later = Validity {
        revoked_at: Some(now + hour),
        reason: Some("rotated".into()),
        ..Validity::default()
    };
    verify_envelope(&env, &trusted(key.public(), later, Some(&ca))).unwrap();

    // revoked an hour ago, and the thief backdates recordedAt to before the revocation:
    // the TSA's time, not the record's claim, decides
    let (env, key) = signed(&dir, now - hour - hour);
    let earlier = Validity {
        revoked_at: Some(now - hour),
        reason: Some("exposed in a job log".into()),
        ..Validity::default()
    };
    let err = verify_envelope(&env, &trusted(key.public(), earlier.clone(), Some(&ca)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("revoked at"), "{err}");
    assert!(err.contains("timestamped by CN=Custody Test TSA"), "{err}");
    assert!(
        err.contains("its time is false") || err.contains("exposed in a job log"),
        "{err}"
    );

    // the same backdated record without any timestamp: with TSAs configured, a revoked
    // key's signature needs one
    let bare = sign_statement(&statement(now - hour - hour), &key, KeyIdScheme::Empty).unwrap();
    let err = verify_envelope(&bare, &trusted(key.public(), earlier.clone(), Some(&ca)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no timestamp from a trusted TSA"), "{err}");
    // (without TSAs, the record's own time is all there is: the documented fallback)
    verify_envelope(&bare, &trusted(key.public(), earlier, None)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_record_claiming_a_time_after_its_timestamp_is_refused() {
    let dir = scratch("future");
    mint(&dir, TsaKey::EcdsaP256, "Custody Test TSA");
    let now = jiff::Timestamp::now();
    let (env, key) = signed(&dir, now + jiff::SignedDuration::from_hours(3));
    let err = verify_envelope(
        &env,
        &trusted(key.public(), Validity::default(), Some(&dir.join("ca.pem"))),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("its time is false"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn forged_moved_and_untrusted_tokens_are_refused() {
    let dir = scratch("forged");
    mint(&dir, TsaKey::Rsa, "Custody Test TSA");
    let ca = dir.join("ca.pem");
    let auth = authorities(&ca);
    let now = jiff::Timestamp::now();
    let (env, key) = signed(&dir, now);
    let (sig, token) = sig_and_token(&env);

    // a token moved to another signature covers other bytes
    let (other, _) = signed(&dir, now);
    let (other_sig, _) = sig_and_token(&other);
    assert_eq!(
        timestamp::verify(&token, &other_sig, &auth),
        Err(TimestampError::Imprint)
    );
    // every flipped byte of the token is refused or changes nothing it vouches
    // for: the time and the signature's hash are covered by the TSA's signature
    // (a flip in what CMS leaves unsigned may still parse: SignedData's list of digest
    // algorithms, or the copy of the root the token carries, which is never trusted for
    // being there; it must then vouch for exactly the same time and TSA)
    let good = timestamp::verify(&token, &sig, &auth).unwrap();
    let mut refused = 0;
    for i in 0..token.len() {
        let mut bad = token.clone();
        bad[i] ^= 0x01;
        match timestamp::verify(&bad, &sig, &auth) {
            Err(_) => refused += 1,
            Ok(v) => assert_eq!(v, good, "byte {i} flipped"),
        }
    }
    assert!(refused * 2 > token.len(), "{refused} of {}", token.len());

    // a TSA nobody configured: its token is passed over, and where a timestamp is
    // required that is a refusal
    let stranger = scratch("stranger");
    mint(&stranger, TsaKey::Rsa, "Stranger TSA");
    let mut t = trusted(
        key.public(),
        Validity::default(),
        Some(&stranger.join("ca.pem")),
    );
    verify_envelope(&env, &t).unwrap();
    t.set_require_timestamp(true);
    let err = verify_envelope(&env, &t).unwrap_err();
    assert!(matches!(err, VerifyError::KeyNotValid { .. }), "{err}");
    let e = timestamp::verify(&token, &sig, &authorities(&stranger.join("ca.pem"))).unwrap_err();
    assert!(e.is_unknown_authority(), "{e}");

    // a token over another signature inside the envelope fails the envelope
    let mut swapped = env.clone();
    swapped.signatures[0].extension = other.signatures[0].extension.clone();
    let err = verify_envelope(
        &swapped,
        &trusted(key.public(), Validity::default(), Some(&ca)),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Timestamp {
                source: TimestampError::Imprint,
                ..
            }
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&stranger);
}

#[test]
fn a_replayed_or_refused_reply_gives_no_token() {
    let dir = scratch("replay");
    mint(&dir, TsaKey::EcdsaP256, "Custody Test TSA");
    let sig = b"a signature";
    let first = timestamp::request(sig, [1; 8]).unwrap();
    let answer = reply(&dir, &first);
    timestamp::accept_reply(&first, &answer).unwrap();
    // the same reply to a later request (another nonce): a replay
    let second = timestamp::request(sig, [2; 8]).unwrap();
    assert_eq!(
        timestamp::accept_reply(&second, &answer),
        Err(TimestampError::Nonce)
    );
    // a reply for other bytes
    let other = timestamp::request(b"other", [1; 8]).unwrap();
    assert_eq!(
        timestamp::accept_reply(&other, &answer),
        Err(TimestampError::Imprint)
    );
    // a rejection (a policy the TSA does not serve) names its status
    std::fs::write(dir.join("sig.bin"), sig).unwrap();
    let q = openssl(
        &dir,
        &[
            "ts",
            "-query",
            "-data",
            "sig.bin",
            "-sha256",
            "-tspolicy",
            "1.9.9.9",
            "-out",
            "bad.tsq",
        ],
    );
    assert!(q.status.success());
    let r = openssl(
        &dir,
        &[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            "bad.tsq",
            "-out",
            "bad.tsr",
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let rejected = std::fs::read(dir.join("bad.tsr")).unwrap();
    let err = timestamp::accept_reply(&first, &rejected).unwrap_err();
    assert!(matches!(err, TimestampError::NotGranted { .. }), "{err}");
    assert!(err.to_string().contains("Rejection"), "{err}");
    // garbage is malformed, never a panic
    for junk in [&b""[..], b"\x30\x03\x02\x01\x00", &[0xff; 64]] {
        assert!(matches!(
            timestamp::accept_reply(&first, junk),
            Err(TimestampError::Malformed(_))
        ));
        assert!(matches!(
            timestamp::verify(junk, sig, &Authorities::default()),
            Err(TimestampError::Malformed(_))
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "writes the committed fixtures of the unit tests"]
fn make_fixtures() {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tsa");
    let sig = b"a DSSE signature's bytes, as the unit tests timestamp them";
    std::fs::write(out.join("signature.bin"), sig).unwrap();
    for (kind, name) in [(TsaKey::Rsa, "rsa"), (TsaKey::EcdsaP256, "ecdsa")] {
        let dir = scratch(name);
        mint(&dir, kind, &format!("Custody Fixture TSA {name}"));
        let req = timestamp::request(sig, [7; 8]).unwrap();
        let r = reply(&dir, &req);
        timestamp::accept_reply(&req, &r).unwrap();
        std::fs::write(out.join(format!("{name}.tsr")), &r).unwrap();
        std::fs::copy(dir.join("ca.pem"), out.join(format!("{name}-ca.pem"))).unwrap();
    }
}
