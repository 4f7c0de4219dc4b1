//! Keyless Sigstore bundles from public-good Sigstore, verified offline against the
//! pinned public-good trusted root: a DSSE bundle v0.3 (GitHub Actions), and message
//! signatures in bundles v0.2 (GitHub Actions) and v0.1 (an e-mail identity). Every
//! part an attacker could change is changed, and each change is refused.

use std::path::PathBuf;

use super::{Identity, KeylessError, TrustedRoot, verify_keyless};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

fn shared(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(p)
}

fn ours(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/sigstore")
        .join(p)
}

fn root_json() -> Value {
    serde_json::from_slice(
        &std::fs::read(shared("sigstore/trusted_root-public-good.json")).unwrap(),
    )
    .unwrap()
}

fn root() -> TrustedRoot {
    TrustedRoot::from_json(&serde_json::to_vec(&root_json()).unwrap()).unwrap()
}

const GHA: &str = "https://token.actions.githubusercontent.com";
const KUBEWARDEN: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";

fn kubewarden() -> Value {
    serde_json::from_slice(
        &std::fs::read(shared(
            "attestation-dsse/sigstore-rs-bundle-v0.3.sigstore.json",
        ))
        .unwrap(),
    )
    .unwrap()
}

fn kubewarden_identity() -> Identity {
    Identity {
        issuer: Some(GHA.into()),
        san: Some(KUBEWARDEN.into()),
        san_prefix: None,
    }
}

fn verify(bundle: &Value, root: &TrustedRoot, id: &Identity) -> Result<(), KeylessError> {
    verify_keyless(&serde_json::to_vec(bundle).unwrap(), root, id).map(|_| ())
}

#[test]
fn a_github_actions_dsse_bundle_verifies_offline() {
    let v = verify_keyless(
        &serde_json::to_vec(&kubewarden()).unwrap(),
        &root(),
        &kubewarden_identity(),
    )
    .unwrap();
    assert_eq!(v.issuer, GHA);
    assert_eq!(v.san, KUBEWARDEN);
    // the log's integration time, vouched for by its signed entry timestamp
    assert_eq!(v.time, jiff::Timestamp::from_second(1_775_719_409).unwrap());
    assert_eq!(v.log_index, Some(1_261_105_807));
    let st = v.statement.unwrap();
    assert!(!st.subject.is_empty());
    // a prefix of the workflow (any tag) is enough when the policy says so
    let prefix = Identity {
        issuer: Some(GHA.into()),
        san: None,
        san_prefix: Some(
            "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@"
                .into(),
        ),
    };
    verify(&kubewarden(), &root(), &prefix).unwrap();
}

/// A SLSA provenance written by `actions/attest-build-provenance` (GitHub's reusable
/// attestation workflow), as `gh attestation verify` checks it; one flipped base64
/// character anywhere in its envelope, certificate or log entry is refused.
#[test]
fn an_actions_attest_provenance_verifies_and_any_flip_is_refused() {
    let b: Value = serde_json::from_slice(
        &std::fs::read(ours("actions-attest-provenance-v0.3.sigstore.json")).unwrap(),
    )
    .unwrap();
    let id = Identity {
        issuer: Some(GHA.into()),
        san: None,
        san_prefix: Some(
            "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@"
                .into(),
        ),
    };
    let root = root();
    let v = verify_keyless(&serde_json::to_vec(&b).unwrap(), &root, &id).unwrap();
    let st = v.statement.unwrap();
    assert_eq!(st.predicate_type, "https://slsa.dev/provenance/v1");
    assert_eq!(v.log_index, Some(96_764_485));
    let t = "/verificationMaterial/tlogEntries/0";
    for pointer in [
        "/dsseEnvelope/payload".to_owned(),
        "/dsseEnvelope/signatures/0/sig".to_owned(),
        "/verificationMaterial/certificate/rawBytes".to_owned(),
        format!("{t}/canonicalizedBody"),
        format!("{t}/inclusionPromise/signedEntryTimestamp"),
        format!("{t}/inclusionProof/rootHash"),
        format!("{t}/inclusionProof/hashes/1"),
        format!("{t}/logId/keyId"),
    ] {
        assert!(
            verify(&flip(&b, &pointer), &root, &id).is_err(),
            "{pointer}"
        );
    }
}

#[test]
fn message_signature_bundles_v01_and_v02_verify_offline() {
    for (file, issuer, san) in [
        (
            "sigstore-python-wheel-v0.2.sigstore.json",
            GHA,
            "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2",
        ),
        (
            "cpython-3.12.5-tgz-v0.1.sigstore.json",
            "https://accounts.google.com",
            "thomas@python.org",
        ),
    ] {
        let bytes = std::fs::read(ours(file)).unwrap();
        let id = Identity {
            issuer: Some(issuer.into()),
            san: Some(san.into()),
            san_prefix: None,
        };
        let v = verify_keyless(&bytes, &root(), &id).unwrap_or_else(|e| panic!("{file}: {e}"));
        let b: Value = serde_json::from_slice(&bytes).unwrap();
        let digest = STANDARD
            .decode(
                b["messageSignature"]["messageDigest"]["digest"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let hex: String = digest.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(v.message_digest.as_deref(), Some(hex.as_str()), "{file}");
        assert!(v.statement.is_none());
        // the signature over another digest is refused
        let mut other = b.clone();
        let mut d = digest.clone();
        d[0] ^= 1;
        other["messageSignature"]["messageDigest"]["digest"] = STANDARD.encode(&d).into();
        assert_eq!(
            verify(&other, &root(), &id),
            Err(KeylessError::Signature),
            "{file}"
        );
    }
}

/// Flips one base64 character in the string at `pointer`.
fn flip(bundle: &Value, pointer: &str) -> Value {
    let mut b = bundle.clone();
    let s = b.pointer(pointer).unwrap().as_str().unwrap().to_owned();
    let i = s.len() / 2;
    let c = if &s[i..=i] == "A" { "B" } else { "A" };
    *b.pointer_mut(pointer).unwrap() = format!("{}{c}{}", &s[..i], &s[i + 1..]).into();
    b
}

#[test]
fn every_altered_part_is_refused() {
    let root = root();
    let id = kubewarden_identity();
    let b = kubewarden();
    let e = |v: &Value| verify(v, &root, &id).unwrap_err();

    assert_eq!(
        e(&flip(&b, "/dsseEnvelope/payload")),
        KeylessError::Signature
    );
    assert_eq!(
        e(&flip(&b, "/dsseEnvelope/signatures/0/sig")),
        KeylessError::Signature
    );
    // the certificate: whatever the flip hit, it is refused (the log entry names the
    // original, and Fulcio's signature no longer holds)
    let _ = e(&flip(&b, "/verificationMaterial/certificate/rawBytes"));
    let t = "/verificationMaterial/tlogEntries/0";
    for part in [
        "/canonicalizedBody",
        "/inclusionPromise/signedEntryTimestamp",
        "/inclusionProof/rootHash",
        "/inclusionProof/hashes/0",
    ] {
        assert!(
            matches!(
                e(&flip(&b, &format!("{t}{part}"))),
                KeylessError::Log(_) | KeylessError::Malformed(_)
            ),
            "{part}"
        );
    }
    // a later integration time (to fit a later revocation, say) breaks the SET
    let mut later = b.clone();
    *later.pointer_mut(&format!("{t}/integratedTime")).unwrap() = "1775805809".into();
    assert!(matches!(e(&later), KeylessError::Log(_)));
    // the checkpoint's signature line and its root
    let mut cp = b.clone();
    let note = cp
        .pointer(&format!("{t}/inclusionProof/checkpoint/envelope"))
        .unwrap()
        .as_str()
        .unwrap()
        .replace("\n1139201557\n", "\n1139201558\n");
    *cp.pointer_mut(&format!("{t}/inclusionProof/checkpoint/envelope"))
        .unwrap() = note.into();
    assert!(matches!(e(&cp), KeylessError::Log(_)));
    // without a signed entry timestamp, a proof alone gives no trusted time
    let mut no_set = b.clone();
    no_set
        .pointer_mut(t)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("inclusionPromise");
    assert!(matches!(e(&no_set), KeylessError::NoTime(_)));
    // no log entry at all
    let mut no_log = b.clone();
    no_log["verificationMaterial"]["tlogEntries"] = serde_json::json!([]);
    assert!(matches!(e(&no_log), KeylessError::Log(_)));
    // another identity
    for other in [
        Identity {
            issuer: Some(GHA.into()),
            san: Some(KUBEWARDEN.replace("v1.34.0", "v1.35.0")),
            san_prefix: None,
        },
        Identity {
            issuer: Some("https://accounts.google.com".into()),
            san: Some(KUBEWARDEN.into()),
            san_prefix: None,
        },
        Identity {
            issuer: Some(GHA.into()),
            san: None,
            san_prefix: Some("https://github.com/evil/".into()),
        },
    ] {
        assert!(matches!(
            verify(&b, &root, &other),
            Err(KeylessError::Identity { .. })
        ));
    }
}

#[test]
fn a_root_without_the_bundles_authority_or_log_refuses_it() {
    let id = kubewarden_identity();
    let b = kubewarden();
    // only the 2021-2022 Fulcio authority: the certificate does not chain to it
    let mut old_ca = root_json();
    old_ca["certificateAuthorities"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    let r = TrustedRoot::from_json(&serde_json::to_vec(&old_ca).unwrap()).unwrap();
    assert!(matches!(verify(&b, &r, &id), Err(KeylessError::Chain(_))));
    // the authority trusted only until before the signature
    let mut expired = root_json();
    expired["certificateAuthorities"][1]["validFor"]["end"] = "2026-01-01T00:00:00Z".into();
    let r = TrustedRoot::from_json(&serde_json::to_vec(&expired).unwrap()).unwrap();
    assert!(matches!(verify(&b, &r, &id), Err(KeylessError::Chain(_))));
    // no Rekor key: the entry's log is unknown
    let mut no_log = root_json();
    no_log["tlogs"] = serde_json::json!([]);
    let r = TrustedRoot::from_json(&serde_json::to_vec(&no_log).unwrap()).unwrap();
    assert!(matches!(verify(&b, &r, &id), Err(KeylessError::Log(_))));
    // not a trusted root at all
    assert!(matches!(
        TrustedRoot::from_json(b"{\"mediaType\":\"x\"}"),
        Err(KeylessError::Root(_))
    ));
}
