//! Sigstore bundles (v0.1 to v0.3) around DSSE envelopes, by public key.
//!
//! Out: [`bundle_v03`] wraps a Custody envelope as a bundle v0.3 whose verification
//! material is a public-key hint (base64 SHA-256 of the DER SubjectPublicKeyInfo, the
//! `hint` keyid scheme), with no transparency-log entry, and the signature's RFC 3161
//! timestamps when it was timestamped (moved from the envelope's signature extension to
//! `timestampVerificationData`, where a bundle keeps them). Sigstore
//! verifiers that take a public key (`@sigstore/verify`, `cosign verify-blob-attestation
//! --key --insecure-ignore-tlog`) verify it.
//!
//! In: [`envelope_from_bundle`] takes the DSSE envelope out of a key-based bundle, to be
//! verified against trusted keys like any envelope; the bundle's RFC 3161 timestamps go
//! with its one signature. A bundle whose material is a
//! certificate (keyless, Fulcio) or whose content is a message signature (cosign
//! `sign-blob`) is refused by name: neither is verified by a public key alone.

use serde::{Deserialize, Serialize};

use crate::dsse::Envelope;
use crate::error::VerifyError;
use crate::keys::{KeyIdScheme, PublicKey};

/// The media type of the bundles Custody writes.
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The prefix of every bundle media type (v0.1 and v0.2 end `+json;version=0.x`).
const BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BundleOut {
    media_type: &'static str,
    verification_material: MaterialOut,
    dsse_envelope: Envelope,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MaterialOut {
    public_key: HintOut,
    tlog_entries: [(); 0],
    timestamp_verification_data: TimestampsOut,
}

#[derive(Serialize)]
struct HintOut {
    hint: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimestampsOut {
    rfc3161_timestamps: Vec<SignedTimestamp>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SignedTimestamp {
    signed_timestamp: String,
}

/// The bundle v0.3 of `env`, signed by `key`: compact JSON with a final newline.
pub fn bundle_v03(env: &Envelope, key: &PublicKey) -> Vec<u8> {
    // a bundle's envelope is plain DSSE: the timestamps move to the material
    let mut plain = env.clone();
    let mut stamps = Vec::new();
    for s in &mut plain.signatures {
        stamps.extend(s.timestamps().into_iter().map(|t| SignedTimestamp {
            signed_timestamp: t,
        }));
        s.extension = None;
    }
    let bundle = BundleOut {
        media_type: BUNDLE_V03,
        verification_material: MaterialOut {
            public_key: HintOut {
                hint: key.keyid(KeyIdScheme::Hint),
            },
            tlog_entries: [],
            timestamp_verification_data: TimestampsOut {
                rfc3161_timestamps: stamps,
            },
        },
        dsse_envelope: plain,
    };
    let mut v = serde_json::to_vec(&bundle).unwrap_or_default();
    v.push(b'\n');
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleIn {
    media_type: String,
    #[serde(default)]
    verification_material: Option<serde_json::Value>,
    dsse_envelope: Option<Envelope>,
    message_signature: Option<serde_json::Value>,
}

/// Whether `bytes` is a Sigstore bundle (by its `mediaType`).
pub fn is_bundle(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: String,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.media_type.starts_with(BUNDLE_PREFIX))
}

/// The DSSE envelope of a key-based bundle.
pub fn envelope_from_bundle(bytes: &[u8]) -> Result<Envelope, VerifyError> {
    let b: BundleIn =
        serde_json::from_slice(bytes).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let refuse = |reason: &str| VerifyError::SigstoreBundle {
        media_type: b.media_type.clone(),
        reason: reason.into(),
    };
    if !b.media_type.starts_with(BUNDLE_PREFIX) {
        return Err(refuse("not a Sigstore bundle media type"));
    }
    let keyless = b
        .verification_material
        .as_ref()
        .is_some_and(|m| m.get("certificate").is_some() || m.get("x509CertificateChain").is_some());
    if keyless {
        return Err(refuse(
            "it is keyless (a Fulcio certificate): verify it with --trusted-root trusted_root.json and the signer's --certificate-oidc-issuer and --certificate-identity",
        ));
    }
    match (b.dsse_envelope, b.message_signature) {
        (Some(mut env), None) => {
            let material = b.verification_material.unwrap_or_default();
            let tokens = crate::timestamp::tokens_in_material(&material);
            if let [only] = env.signatures.as_mut_slice()
                && !tokens.is_empty()
                && only.extension.is_none()
            {
                only.extension = Some(crate::dsse::SignatureExtension {
                    kind: crate::timestamp::VERIFICATION_MATERIAL_KIND.to_owned(),
                    ext: material,
                });
            }
            Ok(env)
        }
        (None, Some(_)) => Err(refuse(
            "it carries a message signature (cosign sign-blob), which is verified against the artifact: use cosign verify-blob --bundle",
        )),
        _ => Err(refuse(
            "it carries neither a DSSE envelope nor a message signature",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::dsse::{sign_statement, verify_envelope};
    use crate::keys::{SigningKey, TrustedKeys};
    use crate::record::RecordInfo;
    use crate::statement::{ResourceDescriptor, Statement};

    fn envelope(key: &SigningKey) -> Envelope {
        let st = Statement::new(
            vec![ResourceDescriptor::sha256("a", &Digest::of(b"a"))],
            "https://custody.dev/evidence/v1",
            serde_json::Map::new(),
            &RecordInfo::for_tests(),
        )
        .unwrap();
        sign_statement(&st, key, KeyIdScheme::Empty).unwrap()
    }

    #[test]
    fn a_bundle_written_reads_back_and_verifies_by_key() {
        let key = SigningKey::generate();
        let env = envelope(&key);
        let bytes = bundle_v03(&env, key.public());
        assert!(is_bundle(&bytes));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["mediaType"], BUNDLE_V03);
        assert_eq!(
            v["verificationMaterial"]["publicKey"]["hint"],
            key.public().keyid(KeyIdScheme::Hint)
        );
        let back = envelope_from_bundle(&bytes).unwrap();
        assert_eq!(back, env);
        verify_envelope(&back, &TrustedKeys::new(vec![key.public().clone()])).unwrap();
        let other = SigningKey::generate();
        assert!(verify_envelope(&back, &TrustedKeys::new(vec![other.public().clone()])).is_err());
        assert!(!is_bundle(&env.to_vec()));
    }

    #[test]
    fn keyless_and_message_signature_bundles_are_refused_by_name() {
        let keyless = br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"AA=="}},"dsseEnvelope":{"payload":"","payloadType":"x","signatures":[]}}"#;
        let e = envelope_from_bundle(keyless).unwrap_err().to_string();
        assert!(e.contains("keyless"), "{e}");
        let blob = br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.2","verificationMaterial":{"publicKey":{"hint":"x"}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AA=="},"signature":"AA=="}}"#;
        let e = envelope_from_bundle(blob).unwrap_err().to_string();
        assert!(e.contains("message signature"), "{e}");
    }
}
